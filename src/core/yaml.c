#include "core/common.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include "core/arena.h"
#include "core/yaml.h"

/*
 * Event-driven builder: libyaml's parser hands us events, we keep a stack of
 * open collections and turn each into a node when it closes. No recursion, so
 * nesting costs no C stack; MESH_YAML_MAX_DEPTH bounds it anyway because the
 * walkers over the tree (JSON conversion, validation) do recurse.
 */

#define TAG_PREFIX "tag:yaml.org,2002:"
#define MAX_ANCHORS 10000

/* ---- Small string set: duplicate keys and anchors without O(n^2) ---- */

struct strset_slot {
    const char *s;
    size_t len;
    void *val;
};

struct strset {
    struct strset_slot *slot;
    size_t cap, n;          /* cap is a power of two, or 0 */
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void strset_free(struct strset *t)
{
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

static struct strset_slot *strset_find(struct strset *t, const char *s, size_t len)
{
    if (!t->cap)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        struct strset_slot *e = &t->slot[i];
        if (!e->s)
            return e;
        if (e->len == len && memcmp(e->s, s, len) == 0)
            return e;
    }
}

/* Returns the slot for <s> (new slots have val NULL); <s> must outlive the set. */
static struct strset_slot *strset_put(struct strset *t, const char *s, size_t len)
{
    if ((t->n + 1) * 2 > t->cap) {
        struct strset old = *t;
        t->cap = old.cap ? old.cap * 2 : 16;
        t->slot = mesh_xcalloc(t->cap, sizeof(*t->slot));
        t->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            if (!old.slot[i].s)
                continue;
            struct strset_slot *e = strset_find(t, old.slot[i].s, old.slot[i].len);
            *e = old.slot[i];
            t->n++;
        }
        free(old.slot);
    }
    struct strset_slot *e = strset_find(t, s, len);
    if (!e->s) {
        e->s = s;
        e->len = len;
        e->val = NULL;
        t->n++;
    }
    return e;
}

/* ---- Core schema ---- */

static bool all_digits(const char *s, size_t len, int base)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok;
        if (base == 8)
            ok = c >= '0' && c <= '7';
        else if (base == 16)
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        else
            ok = c >= '0' && c <= '9';
        if (!ok)
            return false;
    }
    return true;
}

static bool is_int_text(const char *s, size_t len)
{
    if (len > 2 && s[0] == '0' && s[1] == 'o')
        return all_digits(s + 2, len - 2, 8);
    if (len > 2 && s[0] == '0' && s[1] == 'x')
        return all_digits(s + 2, len - 2, 16);
    if (len && (s[0] == '-' || s[0] == '+'))
        return all_digits(s + 1, len - 1, 10);
    return all_digits(s, len, 10);
}

static bool eq3(const char *s, size_t len, const char *a, const char *b, const char *c)
{
    return (len == strlen(a) && memcmp(s, a, len) == 0) ||
           (len == strlen(b) && memcmp(s, b, len) == 0) ||
           (len == strlen(c) && memcmp(s, c, len) == 0);
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? and .inf/.nan */
static bool is_float_text(const char *s, size_t len)
{
    size_t i = 0;
    if (len && (s[0] == '-' || s[0] == '+'))
        i++;
    if (eq3(s + i, len - i, ".inf", ".Inf", ".INF"))
        return true;
    if (i == 0 && eq3(s, len, ".nan", ".NaN", ".NAN"))
        return true;
    size_t int_digits = 0, frac_digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        int_digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac_digits++;
        }
        if (!int_digits && !frac_digits)
            return false;
    } else if (!int_digits) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp_digits++;
        }
        if (!exp_digits)
            return false;
    }
    return i == len;
}

static enum mesh_yscalar_kind resolve(const char *tag, bool plain, const char *s, size_t len)
{
    if (tag) {
        if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
            return MESH_YSCALAR_STRING;
        const char *t = tag + strlen(TAG_PREFIX);
        if (strcmp(t, "null") == 0)
            return MESH_YSCALAR_NULL;
        if (strcmp(t, "bool") == 0)
            return MESH_YSCALAR_BOOL;
        if (strcmp(t, "int") == 0)
            return MESH_YSCALAR_INT;
        if (strcmp(t, "float") == 0)
            return MESH_YSCALAR_FLOAT;
        return MESH_YSCALAR_STRING;
    }
    if (!plain)
        return MESH_YSCALAR_STRING;
    if (len == 0 || (len == 1 && s[0] == '~') || eq3(s, len, "null", "Null", "NULL"))
        return MESH_YSCALAR_NULL;
    if (eq3(s, len, "true", "True", "TRUE") || eq3(s, len, "false", "False", "FALSE"))
        return MESH_YSCALAR_BOOL;
    if (is_int_text(s, len))
        return MESH_YSCALAR_INT;
    if (is_float_text(s, len))
        return MESH_YSCALAR_FLOAT;
    return MESH_YSCALAR_STRING;
}

enum mesh_yscalar_kind mesh_yaml_scalar_kind(const struct mesh_ynode *n)
{
    if (!n || n->type != MESH_YNODE_SCALAR)
        return MESH_YSCALAR_STRING;
    return resolve(n->tag, n->plain, n->value, n->len);
}

bool mesh_yaml_is_null(const struct mesh_ynode *n)
{
    return !n || (n->type == MESH_YNODE_SCALAR && mesh_yaml_scalar_kind(n) == MESH_YSCALAR_NULL);
}

bool mesh_yaml_int(const struct mesh_ynode *n, int64_t *out)
{
    if (!n || n->type != MESH_YNODE_SCALAR || mesh_yaml_scalar_kind(n) != MESH_YSCALAR_INT)
        return false;
    const char *s = n->value;
    if (strlen(s) != n->len || !is_int_text(s, n->len))
        return false;
    int base = 10;
    if (n->len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        s += 2;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool mesh_yaml_number(const struct mesh_ynode *n, double *out)
{
    int64_t i;
    if (mesh_yaml_int(n, &i)) {
        *out = (double)i;
        return true;
    }
    enum mesh_yscalar_kind k = mesh_yaml_scalar_kind(n);
    if (!n || n->type != MESH_YNODE_SCALAR || (k != MESH_YSCALAR_FLOAT && k != MESH_YSCALAR_INT))
        return false;
    const char *s = n->value;
    size_t len = n->len;
    if (strlen(s) != len)
        return false;
    bool neg = len && s[0] == '-';
    const char *u = (len && (s[0] == '-' || s[0] == '+')) ? s + 1 : s;
    if (eq3(u, strlen(u), ".inf", ".Inf", ".INF")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (eq3(s, len, ".nan", ".NaN", ".NAN")) {
        *out = NAN;
        return true;
    }
    if (k == MESH_YSCALAR_FLOAT && !is_float_text(s, len) && !is_int_text(s, len))
        return false; /* an explicit !!float tag on something that is not a number */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s)
        return false;
    *out = v;
    return true;
}

bool mesh_yaml_bool(const struct mesh_ynode *n, bool *out)
{
    if (!n || n->type != MESH_YNODE_SCALAR || mesh_yaml_scalar_kind(n) != MESH_YSCALAR_BOOL)
        return false;
    if (eq3(n->value, n->len, "true", "True", "TRUE")) {
        *out = true;
        return true;
    }
    if (eq3(n->value, n->len, "false", "False", "FALSE")) {
        *out = false;
        return true;
    }
    return false;
}

bool mesh_yaml_eq(const struct mesh_ynode *n, const char *s)
{
    return n && n->type == MESH_YNODE_SCALAR && n->len == strlen(s) &&
           memcmp(n->value, s, n->len) == 0;
}

const struct mesh_ynode *mesh_yaml_get_key(const struct mesh_ynode *map, const char *key)
{
    if (!map || map->type != MESH_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (mesh_yaml_eq(map->pairs[i].key, key))
            return map->pairs[i].key;
    return NULL;
}

const struct mesh_ynode *mesh_yaml_get(const struct mesh_ynode *map, const char *key)
{
    if (!map || map->type != MESH_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (mesh_yaml_eq(map->pairs[i].key, key))
            return map->pairs[i].value;
    return NULL;
}

/* ---- Builder ---- */

struct frame {
    struct mesh_ynode *node;
    struct mesh_ynode **kids;   /* maps: key, value, key, value... */
    size_t n, cap;
    char *anchor;               /* registered when the collection closes */
};

struct builder {
    struct mesh_ystream *s;
    struct mesh_diags *d;
    const char *file;
    struct frame stack[MESH_YAML_MAX_DEPTH];
    int depth;
    struct strset anchors;      /* name -> node, per document */
    char **anchor_names;        /* owned copies of the names in <anchors> */
    size_t n_anchor_names;
    size_t alias_weight;        /* nodes added by aliases and merges in this document */
    bool in_doc, failed;
    struct mesh_ydoc cur;
    size_t docs_cap;
    mesh_ydoc_fn *fn;           /* streaming: called per document, then its nodes are freed */
    void *arg;
    size_t skip;                /* documents already handed over by an earlier pass */
    size_t delivered;
};

static _Noreturn void oom(void)
{
    fprintf(stderr, "meshd: out of memory parsing YAML\n");
    abort();
}

static void *zalloc(struct builder *b, size_t n, size_t size)
{
    void *p = mesh_arena_calloc(b->s->arena, n ? n : 1, size);
    if (!p)
        oom();
    return p;
}

static void fail_at(struct builder *b, int line, int col, const char *fmt, ...) MESH_PRINTF(4, 5);

static void fail_at(struct builder *b, int line, int col, const char *fmt, ...)
{
    b->cur.n_errors++;
    va_list ap;
    va_start(ap, fmt);
    mesh_diags_vadd(b->d, MESH_DIAG_ERROR, b->file, line, col, NULL, NULL, fmt, ap);
    va_end(ap);
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static void reset_doc(struct builder *b)
{
    for (int i = 0; i < b->depth; i++) {
        free(b->stack[i].kids);
        free(b->stack[i].anchor);
    }
    b->depth = 0;
    strset_free(&b->anchors);
    for (size_t i = 0; i < b->n_anchor_names; i++)
        free(b->anchor_names[i]);
    free(b->anchor_names);
    b->anchor_names = NULL;
    b->n_anchor_names = 0;
    b->alias_weight = 0;
    memset(&b->cur, 0, sizeof(b->cur));
}

static bool register_anchor(struct builder *b, const char *name, struct mesh_ynode *n)
{
    if (!name)
        return true;
    struct strset_slot *e = strset_find(&b->anchors, name, strlen(name));
    if (e && e->s) {
        e->val = n; /* YAML lets a later anchor of the same name win */
        return true;
    }
    if (b->n_anchor_names >= MAX_ANCHORS) {
        fail_at(b, n->line, n->col, "too many anchors in one document (limit %d)", MAX_ANCHORS);
        return false;
    }
    char *copy = mesh_xstrdup(name);
    b->anchor_names = mesh_xrealloc(b->anchor_names, (b->n_anchor_names + 1) * sizeof(char *));
    b->anchor_names[b->n_anchor_names++] = copy;
    strset_put(&b->anchors, copy, strlen(copy))->val = n;
    return true;
}

/* Hands a finished node to the open collection, or makes it the document root. */
static void add_child(struct builder *b, struct mesh_ynode *n)
{
    if (b->depth == 0) {
        b->cur.root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->kids = mesh_xrealloc(f->kids, f->cap * sizeof(*f->kids));
    }
    f->kids[f->n++] = n;
}

static struct mesh_ynode *new_node(struct builder *b, enum mesh_ynode_type type,
                                   const yaml_mark_t *m, const yaml_char_t *tag)
{
    struct mesh_ynode *n = zalloc(b, 1, sizeof(*n));
    n->type = type;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    if (tag && strcmp((const char *)tag, "!") != 0)
        n->tag = mesh_arena_strndup(b->s->arena, (const char *)tag, strlen((const char *)tag));
    else if (tag)
        n->tag = TAG_PREFIX "str"; /* the non-specific "!" tag: a string */
    n->weight = 1;
    n->height = 1;
    return n;
}

static bool is_merge_key(const struct mesh_ynode *k)
{
    if (k->type != MESH_YNODE_SCALAR || k->len != 2 || memcmp(k->value, "<<", 2) != 0)
        return false;
    return k->plain || (k->tag && strcmp(k->tag, TAG_PREFIX "merge") == 0);
}

/* Appends the pairs of <src> whose keys are not in <seen> yet (YAML 1.1 merge). */
static bool merge_from(struct builder *b, struct mesh_ypair **out, size_t *n, size_t *cap,
                       struct strset *seen, const struct mesh_ynode *src,
                       const struct mesh_ynode *at)
{
    if (src->type != MESH_YNODE_MAP) {
        fail_at(b, at->line, at->col, "merge key \"<<\" needs a mapping or a list of mappings");
        return false;
    }
    for (size_t i = 0; i < src->n; i++) {
        const struct mesh_ypair *p = &src->pairs[i];
        if (p->key->type == MESH_YNODE_SCALAR) {
            struct strset_slot *e = strset_put(seen, p->key->value, p->key->len);
            if (e->val)
                continue;
            e->val = (void *)p;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *out = mesh_xrealloc(*out, *cap * sizeof(**out));
        }
        (*out)[(*n)++] = *p;
        b->alias_weight = sat_add(b->alias_weight, sat_add(p->key->weight, p->value->weight));
    }
    if (b->alias_weight > MESH_YAML_MAX_ALIAS_NODES) {
        fail_at(b, at->line, at->col, "aliases and merges expand to too many nodes (limit %d)",
                MESH_YAML_MAX_ALIAS_NODES);
        return false;
    }
    return true;
}

static bool same_key(const struct mesh_ynode *a, const struct mesh_ynode *b)
{
    return a->type == MESH_YNODE_SCALAR && a->len == b->len &&
           memcmp(a->value, b->value, a->len) == 0;
}

static void finish_map(struct mesh_ynode *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct mesh_ypair *p = &m->pairs[i];
        m->weight = sat_add(m->weight, sat_add(p->key->weight, p->value->weight));
        m->height = MESH_MAX(m->height, 1 + MESH_MAX(p->key->height, p->value->height));
    }
}

/* Most mappings are small and have no merge key: no hash set, no temporary array. */
static bool close_small_map(struct builder *b, struct frame *f)
{
    struct mesh_ynode *m = f->node;
    size_t npairs = f->n / 2;
    m->pairs = zalloc(b, npairs, sizeof(*m->pairs));
    for (size_t i = 0; i < npairs; i++) {
        struct mesh_ynode *k = f->kids[2 * i], *v = f->kids[2 * i + 1];
        const struct mesh_ynode *first = NULL;
        for (size_t j = 0; k->type == MESH_YNODE_SCALAR && j < m->n && !first; j++)
            if (same_key(m->pairs[j].key, k))
                first = m->pairs[j].key;
        if (first) {
            fail_at(b, k->line, k->col, "duplicate key \"%.*s\" (first defined at line %d)",
                    (int)MESH_MIN(k->len, 200), k->value, first->line);
            continue; /* the first one stays */
        }
        m->pairs[m->n++] = (struct mesh_ypair){k, v};
    }
    finish_map(m);
    return true;
}

static bool close_map(struct builder *b, struct frame *f)
{
    struct mesh_ynode *m = f->node;
    size_t npairs = f->n / 2;
    bool merges = false;
    for (size_t i = 0; i < npairs && !merges; i++)
        merges = is_merge_key(f->kids[2 * i]);
    if (!merges && npairs <= 16)
        return close_small_map(b, f);
    struct mesh_ypair *pairs = NULL;
    size_t n = 0, cap = 0;
    struct strset seen = {0};
    bool ok = true, has_merge = false;

    for (size_t i = 0; i < npairs; i++) {
        struct mesh_ynode *k = f->kids[2 * i], *v = f->kids[2 * i + 1];
        if (is_merge_key(k)) {
            has_merge = true;
            continue;
        }
        if (k->type == MESH_YNODE_SCALAR) {
            struct strset_slot *e = strset_put(&seen, k->value, k->len);
            if (e->val) {
                const struct mesh_ynode *first = e->val;
                fail_at(b, k->line, k->col, "duplicate key \"%.*s\" (first defined at line %d)",
                        (int)MESH_MIN(k->len, 200), k->value, first->line);
                continue; /* the first one stays */
            }
            e->val = k;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            pairs = mesh_xrealloc(pairs, cap * sizeof(*pairs));
        }
        pairs[n++] = (struct mesh_ypair){k, v};
    }
    /* explicit keys win over merged ones, and earlier merge sources over later ones */
    for (size_t i = 0; has_merge && ok && i < npairs; i++) {
        struct mesh_ynode *k = f->kids[2 * i], *v = f->kids[2 * i + 1];
        if (!is_merge_key(k))
            continue;
        if (v->type == MESH_YNODE_SEQ) {
            for (size_t j = 0; ok && j < v->n; j++)
                ok = merge_from(b, &pairs, &n, &cap, &seen, v->items[j], v->items[j]);
        } else {
            ok = merge_from(b, &pairs, &n, &cap, &seen, v, v);
        }
    }
    strset_free(&seen);
    m->n = n;
    m->pairs = zalloc(b, n, sizeof(*m->pairs));
    for (size_t i = 0; i < n; i++)
        m->pairs[i] = pairs[i];
    finish_map(m);
    free(pairs);
    return ok;
}

static bool close_collection(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    struct mesh_ynode *node = f->node;
    bool ok = true;
    if (node->type == MESH_YNODE_SEQ) {
        node->n = f->n;
        node->items = zalloc(b, f->n, sizeof(*node->items));
        for (size_t i = 0; i < f->n; i++) {
            node->items[i] = f->kids[i];
            node->weight = sat_add(node->weight, f->kids[i]->weight);
            node->height = MESH_MAX(node->height, 1 + f->kids[i]->height);
        }
    } else {
        ok = close_map(b, f);
    }
    if (ok)
        ok = register_anchor(b, f->anchor, node);
    free(f->kids);
    free(f->anchor);
    f->kids = NULL;
    f->anchor = NULL;
    b->depth--;
    if (ok)
        add_child(b, node);
    return ok;
}

static bool on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct strset_slot *e = strset_find(&b->anchors, name, strlen(name));
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (!e || !e->s) {
        fail_at(b, line, col, "unknown alias \"*%.100s\"", name);
        return false;
    }
    struct mesh_ynode *n = e->val;
    if ((size_t)b->depth + n->height > MESH_YAML_MAX_DEPTH) {
        fail_at(b, line, col, "nesting deeper than %d levels", MESH_YAML_MAX_DEPTH);
        return false;
    }
    b->alias_weight = sat_add(b->alias_weight, n->weight);
    if (b->alias_weight > MESH_YAML_MAX_ALIAS_NODES) {
        fail_at(b, line, col, "aliases and merges expand to too many nodes (limit %d)",
                MESH_YAML_MAX_ALIAS_NODES);
        return false;
    }
    add_child(b, n);
    return true;
}

static bool on_scalar(struct builder *b, const yaml_event_t *ev)
{
    struct mesh_ynode *n = new_node(b, MESH_YNODE_SCALAR, &ev->start_mark, ev->data.scalar.tag);
    n->len = ev->data.scalar.length;
    n->value = mesh_arena_strndup(b->s->arena, (const char *)ev->data.scalar.value, n->len);
    if (!n->value)
        oom();
    n->plain = !n->tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!register_anchor(b, (const char *)ev->data.scalar.anchor, n))
        return false;
    add_child(b, n);
    return true;
}

static bool on_start(struct builder *b, const yaml_event_t *ev, enum mesh_ynode_type type)
{
    const yaml_char_t *tag = type == MESH_YNODE_SEQ ? ev->data.sequence_start.tag
                                                    : ev->data.mapping_start.tag;
    const yaml_char_t *anchor = type == MESH_YNODE_SEQ ? ev->data.sequence_start.anchor
                                                       : ev->data.mapping_start.anchor;
    if (b->depth >= MESH_YAML_MAX_DEPTH) {
        fail_at(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                "nesting deeper than %d levels", MESH_YAML_MAX_DEPTH);
        return false;
    }
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = new_node(b, type, &ev->start_mark, tag);
    f->anchor = anchor ? mesh_xstrdup((const char *)anchor) : NULL;
    return true;
}

static void end_doc(struct builder *b)
{
    struct mesh_ystream *s = b->s;
    if (b->fn) {
        struct mesh_ydoc doc = b->cur;
        if (doc.root && mesh_yaml_is_null(doc.root) && !doc.root->tag)
            doc.root = NULL;
        if (b->delivered++ >= b->skip)
            b->fn(b->arg, &doc);
        reset_doc(b);
        mesh_arena_reset(s->arena); /* the next document reuses the same memory */
        return;
    }
    if (s->n_docs == b->docs_cap) {
        b->docs_cap = b->docs_cap ? b->docs_cap * 2 : 8;
        s->docs = mesh_xrealloc(s->docs, b->docs_cap * sizeof(*s->docs));
    }
    struct mesh_ydoc *doc = &s->docs[s->n_docs++];
    *doc = b->cur;
    if (doc->root && mesh_yaml_is_null(doc->root) && !doc->root->tag)
        doc->root = NULL; /* "---" with nothing after it */
    reset_doc(b);
}

static void syntax_error(struct builder *b, const yaml_parser_t *p)
{
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR || (m.line == 0 && m.column == 0 && p->mark.index))
        m = p->mark;
    const char *what = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR && p->problem_value != -1)
        fail_at(b, (int)m.line + 1, (int)m.column + 1, "%s (byte 0x%02x at offset %zu)", what,
                p->problem_value & 0xff, p->problem_offset);
    else if (p->context)
        fail_at(b, (int)m.line + 1, (int)m.column + 1, "%s %s", what, p->context);
    else
        fail_at(b, (int)m.line + 1, (int)m.column + 1, "%s", what);
}

/*
 * libyaml refuses a plain scalar in a flow collection whose ':' is followed by
 * ',', ']' or '}' ("addresses: [1.2.3.4, 2001:db8::]"), which go-yaml, and so
 * Kubernetes and Istio, accept. Such a parse error names where the scalar
 * starts; the caller quotes that scalar and parses again.
 */
static bool flow_colon_error(const yaml_parser_t *p)
{
    return p->error == YAML_SCANNER_ERROR && p->problem && p->context &&
           strcmp(p->problem, "found unexpected ':'") == 0 &&
           strcmp(p->context, "while scanning a plain scalar") == 0;
}

/* Byte offset of character <index> (libyaml counts characters; "\r\n" is two). */
static size_t char_to_byte(const char *buf, size_t len, size_t index)
{
    size_t i = 0;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        i = 3; /* the BOM is not counted */
    for (size_t n = 0; n < index && i < len; n++) {
        unsigned char c = (unsigned char)buf[i];
        i += c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    }
    return MESH_MIN(i, len);
}

/* A copy of <buf> with the plain scalar starting at byte <at> single-quoted. */
static char *quote_scalar(const char *buf, size_t len, size_t at, size_t *out_len)
{
    size_t end = at;
    while (end < len && buf[end] != ',' && buf[end] != ']' && buf[end] != '}' &&
           buf[end] != '\n' && buf[end] != '\r' &&
           !(buf[end] == '#' && end > at && (buf[end - 1] == ' ' || buf[end - 1] == '\t')))
        end++;
    while (end > at && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
        end--;
    size_t quotes = 0;
    for (size_t i = at; i < end; i++)
        quotes += buf[i] == '\'';
    *out_len = len + 2 + quotes;
    char *p = mesh_xmalloc(*out_len);
    size_t o = 0;
    memcpy(p, buf, at);
    o = at;
    p[o++] = '\'';
    for (size_t i = at; i < end; i++) {
        if (buf[i] == '\'')
            p[o++] = '\'';
        p[o++] = buf[i];
    }
    p[o++] = '\'';
    memcpy(p + o, buf + end, len - end);
    return p;
}

/*
 * One libyaml pass; *<fix_at> is set to a byte offset when the input needs
 * quote_scalar(). With <fn>, documents are handed over as they complete
 * (skipping the first <skip>) and *<delivered> counts them.
 */
static struct mesh_ystream *parse_once(const char *buf, size_t len, const char *file,
                                       struct mesh_diags *d, size_t *fix_at, mesh_ydoc_fn *fn,
                                       void *arg, size_t skip, size_t *delivered)
{
    struct mesh_ystream *s = mesh_xcalloc(1, sizeof(*s));
    s->arena = mesh_arena_new(64 * 1024, 0);
    struct builder b = {.s = s, .d = d, .file = file, .fn = fn, .arg = arg, .skip = skip};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        oom();
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    bool done = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            if (flow_colon_error(&p))
                *fix_at = char_to_byte(buf, len, p.context_mark.index);
            else
                syntax_error(&b, &p);
            break;
        }
        bool ok = true;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            reset_doc(&b);
            b.in_doc = true;
            b.cur.line = (int)ev.start_mark.line + 1;
            b.cur.col = (int)ev.start_mark.column + 1;
            break;
        case YAML_DOCUMENT_END_EVENT:
            end_doc(&b);
            b.in_doc = false;
            break;
        case YAML_SCALAR_EVENT: ok = on_scalar(&b, &ev); break;
        case YAML_ALIAS_EVENT: ok = on_alias(&b, &ev); break;
        case YAML_SEQUENCE_START_EVENT: ok = on_start(&b, &ev, MESH_YNODE_SEQ); break;
        case YAML_MAPPING_START_EVENT: ok = on_start(&b, &ev, MESH_YNODE_MAP); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: ok = close_collection(&b); break;
        case YAML_STREAM_END_EVENT: done = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
        if (!ok)
            break;
    }
    yaml_parser_delete(&p);
    reset_doc(&b); /* drops a document cut short by an error */
    *delivered = b.delivered;
    return s;
}

static struct mesh_ystream *parse(const char *buf, size_t len, const char *file,
                                  struct mesh_diags *d, mesh_ydoc_fn *fn, void *arg)
{
    char *patched = NULL;
    size_t skip = 0;
    for (int attempt = 0;; attempt++) {
        struct mesh_diags tmp;
        mesh_diags_init(&tmp);
        size_t fix_at = SIZE_MAX, delivered = 0;
        struct mesh_ystream *s = parse_once(buf, len, file, &tmp, &fix_at, fn, arg, skip,
                                            &delivered);
        skip = MESH_MAX(skip, delivered);
        if (fix_at != SIZE_MAX && attempt < 64 && fix_at < len) {
            size_t nlen;
            char *next = quote_scalar(buf, len, fix_at, &nlen);
            free(patched);
            patched = next;
            buf = next;
            len = nlen;
            mesh_yaml_free(s);
            mesh_diags_free(&tmp);
            continue;
        }
        if (fix_at != SIZE_MAX) /* gave up: report libyaml's error */
            mesh_diags_add(&tmp, MESH_DIAG_ERROR, file, 0, 0, NULL, NULL,
                           "found unexpected ':' while scanning a plain scalar");
        for (size_t i = 0; i < tmp.n; i++) {
            const struct mesh_diag *e = &tmp.v[i];
            mesh_diags_add(d, e->severity, e->file, e->line, e->col, e->subject, e->path, "%s",
                           e->msg);
        }
        mesh_diags_free(&tmp);
        free(patched);
        /* node strings live in the arena, nothing points into the patched copy */
        return s;
    }
}

struct mesh_ystream *mesh_yaml_parse(const char *buf, size_t len, const char *file,
                                     struct mesh_diags *d)
{
    return parse(buf, len, file, d, NULL, NULL);
}

void mesh_yaml_parse_each(const char *buf, size_t len, const char *file, struct mesh_diags *d,
                          mesh_ydoc_fn *fn, void *arg)
{
    mesh_yaml_free(parse(buf, len, file, d, fn, arg));
}

void mesh_yaml_free(struct mesh_ystream *s)
{
    if (!s)
        return;
    mesh_arena_free(s->arena);
    free(s->docs);
    free(s);
}

/* ---- JSON ---- */

json_t *mesh_yaml_to_json(const struct mesh_ynode *n)
{
    if (!n)
        return NULL;
    switch (n->type) {
    case MESH_YNODE_SCALAR: {
        int64_t i;
        double v;
        bool t;
        switch (mesh_yaml_scalar_kind(n)) {
        case MESH_YSCALAR_NULL: return json_null();
        case MESH_YSCALAR_BOOL:
            if (mesh_yaml_bool(n, &t))
                return json_boolean(t);
            break;
        case MESH_YSCALAR_INT:
            if (mesh_yaml_int(n, &i))
                return json_integer(i);
            if (mesh_yaml_number(n, &v) && isfinite(v))
                return json_real(v);
            break;
        case MESH_YSCALAR_FLOAT:
            if (mesh_yaml_number(n, &v) && isfinite(v))
                return json_real(v);
            break;
        case MESH_YSCALAR_STRING: break;
        }
        json_t *j = json_stringn_nocheck(n->value, n->len);
        return j ? j : json_string("");
    }
    case MESH_YNODE_SEQ: {
        json_t *a = json_array();
        for (size_t i = 0; i < n->n; i++)
            json_array_append_new(a, mesh_yaml_to_json(n->items[i]));
        return a;
    }
    case MESH_YNODE_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; i < n->n; i++) {
            const struct mesh_ynode *k = n->pairs[i].key;
            if (k->type != MESH_YNODE_SCALAR)
                continue; /* JSON has no complex keys; the validator reports them */
            /* a key with a NUL in it is cut there: jansson before 2.14 has no sized keys */
            json_object_set_new_nocheck(o, k->value, mesh_yaml_to_json(n->pairs[i].value));
        }
        return o;
    }
    }
    return json_null();
}
