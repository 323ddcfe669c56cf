#include "core/common.h"
#include <string.h>
#include "core/labelsel.h"

enum req_op { REQ_EQ, REQ_NE, REQ_IN, REQ_NOTIN, REQ_EXISTS, REQ_NOT_EXISTS };

struct req {
    enum req_op op;
    char *key;
    size_t nvalues;
    char **values; /* one for EQ/NE, the set for IN/NOTIN */
};

struct mesh_labelsel {
    size_t n;
    struct req *reqs;
};

struct parser {
    const char *text;
    const char *p;
    struct mesh_err *err;
};

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
}

static bool is_value_char(char c)
{
    return c != '/' && is_key_char(c);
}

static void skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

static int fail(struct parser *ps, const char *what)
{
    if (!ps->err)
        return MESH_EINVAL;
    if (*ps->p)
        mesh_err_add(ps->err, 0, 0, NULL, "label selector \"%s\": %s at column %d (near \"%.10s\")",
                     ps->text, what, (int)(ps->p - ps->text) + 1, ps->p);
    else
        mesh_err_add(ps->err, 0, 0, NULL, "label selector \"%s\": %s at the end", ps->text, what);
    return MESH_EINVAL;
}

/* Reads a run of characters accepted by <ok>; NULL when empty and !allow_empty. */
static char *read_word(struct parser *ps, bool (*ok)(char), bool allow_empty)
{
    const char *start = ps->p;
    while (*ps->p && ok(*ps->p))
        ps->p++;
    if (ps->p == start && !allow_empty)
        return NULL;
    size_t n = (size_t)(ps->p - start);
    char *w = mesh_xmalloc(n + 1);
    memcpy(w, start, n);
    w[n] = '\0';
    return w;
}

static void add_value(struct req *r, char *v)
{
    r->values = mesh_xrealloc(r->values, (r->nvalues + 1) * sizeof(*r->values));
    r->values[r->nvalues++] = v;
}

/* "(a, b, c)": at least one value, as in Kubernetes. */
static int parse_set(struct parser *ps, struct req *r)
{
    skip_ws(ps);
    if (*ps->p != '(')
        return fail(ps, "expected \"(\"");
    ps->p++;
    for (;;) {
        skip_ws(ps);
        char *v = read_word(ps, is_value_char, true);
        add_value(r, v);
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == ')') {
            ps->p++;
            return MESH_OK;
        }
        return fail(ps, "expected \",\" or \")\" in a value set");
    }
}

static int parse_req(struct parser *ps, struct req *r)
{
    skip_ws(ps);
    if (*ps->p == '!') {
        ps->p++;
        skip_ws(ps);
        r->op = REQ_NOT_EXISTS;
        r->key = read_word(ps, is_key_char, false);
        return r->key ? MESH_OK : fail(ps, "expected a label key after \"!\"");
    }
    r->key = read_word(ps, is_key_char, false);
    if (!r->key)
        return fail(ps, "expected a label key");
    const char *after_key = ps->p;
    skip_ws(ps);
    if (*ps->p == '\0' || *ps->p == ',') {
        r->op = REQ_EXISTS;
        return MESH_OK;
    }
    if (ps->p[0] == '!' && ps->p[1] == '=') {
        r->op = REQ_NE;
        ps->p += 2;
    } else if (ps->p[0] == '=') {
        r->op = REQ_EQ;
        ps->p += ps->p[1] == '=' ? 2 : 1;
    } else if (ps->p != after_key) {
        /* "in" / "notin" must be separated from the key by blanks */
        size_t n = 0;
        while (ps->p[n] >= 'a' && ps->p[n] <= 'z')
            n++;
        if (n == 2 && strncmp(ps->p, "in", 2) == 0)
            r->op = REQ_IN;
        else if (n == 5 && strncmp(ps->p, "notin", 5) == 0)
            r->op = REQ_NOTIN;
        else
            return fail(ps, "expected \"=\", \"==\", \"!=\", \"in\" or \"notin\"");
        ps->p += n;
        return parse_set(ps, r);
    } else {
        return fail(ps, "expected \"=\", \"==\", \"!=\", \"in\" or \"notin\"");
    }
    skip_ws(ps);
    add_value(r, read_word(ps, is_value_char, true));
    return MESH_OK;
}

struct mesh_labelsel *mesh_labelsel_parse(const char *text, struct mesh_err *err)
{
    struct mesh_labelsel *sel = mesh_xcalloc(1, sizeof(*sel));
    struct parser ps = {.text = text ? text : "", .p = text ? text : "", .err = err};
    skip_ws(&ps);
    if (*ps.p == '\0')
        return sel;
    for (;;) {
        sel->reqs = mesh_xrealloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
        struct req *r = &sel->reqs[sel->n++];
        memset(r, 0, sizeof(*r));
        if (parse_req(&ps, r) != MESH_OK)
            goto fail;
        skip_ws(&ps);
        if (*ps.p == '\0')
            return sel;
        if (*ps.p != ',') {
            fail(&ps, "expected \",\" between requirements");
            goto fail;
        }
        ps.p++;
    }
fail:
    mesh_labelsel_free(sel);
    return NULL;
}

void mesh_labelsel_free(struct mesh_labelsel *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; i < sel->n; i++) {
        for (size_t j = 0; j < sel->reqs[i].nvalues; j++)
            free(sel->reqs[i].values[j]);
        free(sel->reqs[i].values);
        free(sel->reqs[i].key);
    }
    free(sel->reqs);
    free(sel);
}

static bool in_set(const struct req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool mesh_labelsel_match(const struct mesh_labelsel *sel, json_t *labels)
{
    for (size_t i = 0; i < sel->n; i++) {
        const struct req *r = &sel->reqs[i];
        json_t *jv = json_is_object(labels) ? json_object_get(labels, r->key) : NULL;
        const char *v = json_is_string(jv) ? json_string_value(jv) : NULL;
        bool ok;
        switch (r->op) {
        case REQ_EQ:
        case REQ_IN: ok = v && in_set(r, v); break;
        case REQ_NE:
        case REQ_NOTIN: ok = !v || !in_set(r, v); break;
        case REQ_EXISTS: ok = v != NULL; break;
        case REQ_NOT_EXISTS: ok = v == NULL; break;
        default: ok = false; break;
        }
        if (!ok)
            return false;
    }
    return true;
}
