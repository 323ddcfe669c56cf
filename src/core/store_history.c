#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/diff.h"
#include "core/labelsel.h"
#include "core/store-int.h"
#include "core/yaml_emit.h"

/* ---- states: the current one, or the one at a revision ---- */

static void state_push(struct mesh_store__state *s, sqlite3_stmt *q, int kind_col, int64_t id,
                       int64_t rev, int object_col)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = mesh_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    struct mesh_store__entry *e = &s->v[s->n++];
    e->kind = mesh_xstrdup((const char *)sqlite3_column_text(q, kind_col));
    e->ns = mesh_xstrdup((const char *)sqlite3_column_text(q, kind_col + 1));
    e->name = mesh_xstrdup((const char *)sqlite3_column_text(q, kind_col + 2));
    e->object = mesh_xstrdup((const char *)sqlite3_column_text(q, object_col));
    e->id = id;
    e->rev = rev;
}

void mesh_store__state_free(struct mesh_store__state *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].kind);
        free(s->v[i].ns);
        free(s->v[i].name);
        free(s->v[i].object);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

int mesh_store__entry_cmp(const struct mesh_store__entry *a, const struct mesh_store__entry *b)
{
    int c = strcmp(a->kind, b->kind);
    if (c == 0)
        c = strcmp(a->ns, b->ns);
    if (c == 0)
        c = strcmp(a->name, b->name);
    return c;
}

int mesh_store__load_current(struct mesh_store *st, struct mesh_store__state *s,
                             struct mesh_err *err)
{
    sqlite3_stmt *q = mesh_store__stmt(st, MESH_STORE__CURRENT, err);
    if (!q)
        return MESH_ESTORE;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        state_push(s, q, 1, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 4), 5);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? MESH_OK : mesh_store__sql_fail(st, rc, "read objects", err);
}

int mesh_store__load_at(struct mesh_store *st, int64_t rev, struct mesh_store__state *s,
                        struct mesh_err *err)
{
    sqlite3_stmt *q = mesh_store__stmt(st, MESH_STORE__STATE_AT, err);
    if (!q)
        return MESH_ESTORE;
    sqlite3_bind_int64(q, 1, rev);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (strcmp((const char *)sqlite3_column_text(q, 4), "delete") != 0)
            state_push(s, q, 0, 0, sqlite3_column_int64(q, 3), 5);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? MESH_OK : mesh_store__sql_fail(st, rc, "read history", err);
}

/* Resolves MESH_STORE_CURRENT and checks 0 <= *rev <= current. */
static int check_rev(struct mesh_store *st, int64_t *rev, int64_t cur, struct mesh_err *err)
{
    if (*rev == MESH_STORE_CURRENT)
        *rev = cur;
    if (*rev < 0 || *rev > cur)
        return mesh_store__err(err, MESH_EINVAL,
                               "store %s: revision %lld does not exist (the current revision is "
                               "%lld)",
                               st->path, (long long)*rev, (long long)cur);
    return MESH_OK;
}

/* ---- history and changes ---- */

static int history_rows(struct mesh_store *st, int64_t since, const struct mesh_store_filter *f,
                        json_t **out, struct mesh_err *err)
{
    sqlite3_stmt *q = mesh_store__stmt(st, MESH_STORE__HISTORY, err);
    if (!q)
        return MESH_ESTORE;
    sqlite3_bind_int64(q, 1, since);
    if (f) {
        sqlite3_bind_text(q, 2, f->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, f->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, f->name, -1, SQLITE_STATIC);
    }
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t rev = sqlite3_column_int64(q, 0);
        json_t *obj = mesh_store__decode((const char *)sqlite3_column_text(q, 7), rev);
        if (!obj) {
            rc = SQLITE_CORRUPT;
            break;
        }
        char ts[32];
        mesh_store__format_time(sqlite3_column_int64(q, 1), ts, sizeof(ts));
        json_t *row = json_pack("{sIss}", "revision", (json_int_t)rev, "timestamp", ts);
        if (sqlite3_column_type(q, 2) != SQLITE_NULL)
            json_object_set_new(row, "note",
                                json_string((const char *)sqlite3_column_text(q, 2)));
        json_object_set_new(row, "op", json_string((const char *)sqlite3_column_text(q, 3)));
        json_object_set_new(row, "kind", json_string((const char *)sqlite3_column_text(q, 4)));
        json_object_set_new(row, "namespace",
                            json_string((const char *)sqlite3_column_text(q, 5)));
        json_object_set_new(row, "name", json_string((const char *)sqlite3_column_text(q, 6)));
        json_object_set_new(row, "object", obj);
        json_array_append_new(arr, row);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        if (rc == SQLITE_CORRUPT)
            return mesh_store__err(err, MESH_ESTORE, "store %s: corrupt object JSON", st->path);
        return mesh_store__sql_fail(st, rc, "read history", err);
    }
    *out = arr;
    return MESH_OK;
}

int mesh_store_history(struct mesh_store *st, const struct mesh_store_filter *f, json_t **out,
                       struct mesh_err *err)
{
    *out = NULL;
    return history_rows(st, 0, f, out, err);
}

int mesh_store_changes(struct mesh_store *st, int64_t since, json_t **out, int64_t *rev,
                       struct mesh_err *err)
{
    *out = NULL;
    int64_t cur = 0;
    int rc = mesh_store__begin(st, false, err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = mesh_store__max_rev(st, &cur, err)) == MESH_OK) {
        int64_t r = since < 0 ? -2 : since; /* -1 is MESH_STORE_CURRENT to check_rev() */
        if ((rc = check_rev(st, &r, cur, err)) == MESH_OK)
            rc = history_rows(st, since, NULL, out, err);
    }
    mesh_store__rollback(st);
    if (rev)
        *rev = cur;
    return rc;
}

/* ---- state at a revision ---- */

static json_t *labels_of(json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "labels");
}

int mesh_store_state_at(struct mesh_store *st, int64_t rev, const struct mesh_store_filter *f,
                        json_t **out, struct mesh_err *err)
{
    static const struct mesh_store_filter all;
    if (!f)
        f = &all;
    *out = NULL;
    struct mesh_labelsel *sel = mesh_labelsel_parse(f->selector, err);
    if (!sel)
        return MESH_EINVAL;
    struct mesh_store__state s = {0};
    int64_t cur = 0;
    int rc = mesh_store__begin(st, false, err);
    if (rc != MESH_OK)
        goto out;
    if ((rc = mesh_store__max_rev(st, &cur, err)) == MESH_OK &&
        (rc = check_rev(st, &rev, cur, err)) == MESH_OK)
        rc = mesh_store__load_at(st, rev, &s, err);
    mesh_store__rollback(st);
    if (rc != MESH_OK)
        goto out;
    json_t *arr = json_array();
    for (size_t i = 0; i < s.n; i++) {
        const struct mesh_store__entry *e = &s.v[i];
        if ((f->kind && strcmp(f->kind, e->kind) != 0) || (f->ns && strcmp(f->ns, e->ns) != 0) ||
            (f->name && strcmp(f->name, e->name) != 0))
            continue;
        json_t *obj = mesh_store__decode(e->object, e->rev);
        if (!obj) {
            json_decref(arr);
            rc = mesh_store__err(err, MESH_ESTORE, "store %s: corrupt object JSON", st->path);
            goto out;
        }
        if (mesh_labelsel_match(sel, labels_of(obj)))
            json_array_append_new(arr, obj);
        else
            json_decref(obj);
    }
    *out = arr;
out:
    mesh_store__state_free(&s);
    mesh_labelsel_free(sel);
    return rc;
}

/* ---- rollback ---- */

/* Writes <e> (an object of the target state) as a create or an update of row <id>. */
static int restore(struct mesh_store *st, int64_t rev, const struct mesh_store__entry *e,
                   int64_t id, struct mesh_err *err)
{
    json_t *obj = json_loads(e->object, 0, NULL);
    if (!obj)
        return mesh_store__err(err, MESH_ESTORE, "store %s: corrupt object JSON", st->path);
    const char *api = json_string_value(json_object_get(obj, "apiVersion"));
    json_t *jl = labels_of(obj);
    char *labels = json_is_object(jl) ? json_dumps(jl, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc;
    if (id)
        rc = mesh_store__write_update(st, rev, id, e->kind, e->ns, e->name, api ? api : "",
                                      labels ? labels : "{}", e->object, err);
    else
        rc = mesh_store__write_create(st, rev, e->kind, e->ns, e->name, api ? api : "",
                                      labels ? labels : "{}", e->object, err);
    free(labels);
    json_decref(obj);
    return rc;
}

static void note_change(json_t *changes, const struct mesh_store__entry *e, enum mesh_store_op op)
{
    json_array_append_new(changes, json_pack("{ssssssss}", "kind", e->kind, "namespace", e->ns,
                                             "name", e->name, "op", mesh_store_op_name(op)));
}

int mesh_store_rollback(struct mesh_store *st, int64_t to_rev, const char *note, json_t **changes,
                        int64_t *rev, struct mesh_err *err)
{
    struct mesh_store__state want = {0}, have = {0};
    json_t *ch = json_array();
    int64_t cur = 0;
    char defnote[64];
    int rc = mesh_store__begin(st, true, err);
    if (rc != MESH_OK)
        goto out;
    if ((rc = mesh_store__max_rev(st, &cur, err)) != MESH_OK ||
        (rc = check_rev(st, &to_rev, cur, err)) != MESH_OK ||
        (rc = mesh_store__load_at(st, to_rev, &want, err)) != MESH_OK ||
        (rc = mesh_store__load_current(st, &have, err)) != MESH_OK)
        goto rollback;
    snprintf(defnote, sizeof(defnote), "rollback to revision %lld", (long long)to_rev);
    int64_t nrev = cur + 1;
    if ((rc = mesh_store__new_rev(st, nrev, note && *note ? note : defnote, err)) != MESH_OK)
        goto rollback;
    /* merge the two sorted states */
    size_t i = 0, j = 0;
    while (rc == MESH_OK && (i < want.n || j < have.n)) {
        int c = i == want.n ? 1 : j == have.n ? -1 : mesh_store__entry_cmp(&want.v[i], &have.v[j]);
        if (c < 0) {
            rc = restore(st, nrev, &want.v[i], 0, err);
            note_change(ch, &want.v[i++], MESH_STORE_CREATED);
        } else if (c > 0) {
            const struct mesh_store__entry *e = &have.v[j++];
            rc = mesh_store__write_delete(st, nrev, e->id, e->kind, e->ns, e->name, e->object, err);
            note_change(ch, e, MESH_STORE_DELETED);
        } else {
            if (strcmp(want.v[i].object, have.v[j].object) != 0) {
                rc = restore(st, nrev, &want.v[i], have.v[j].id, err);
                note_change(ch, &want.v[i], MESH_STORE_CONFIGURED);
            }
            i++, j++;
        }
    }
    if (rc != MESH_OK)
        goto rollback;
    if (json_array_size(ch) == 0) {
        mesh_store__rollback(st); /* already equal: no empty revision */
        goto out;
    }
    if ((rc = mesh_store__commit(st, err)) == MESH_OK)
        cur = nrev;
    goto out;
rollback:
    mesh_store__rollback(st);
out:
    mesh_store__state_free(&want);
    mesh_store__state_free(&have);
    if (rc != MESH_OK)
        json_array_clear(ch);
    if (changes)
        *changes = ch;
    else
        json_decref(ch);
    if (rev)
        *rev = cur;
    return rc;
}

/* ---- diff ---- */

static int render(struct mesh_store *st, const struct mesh_store__entry *e, char **out,
                  size_t *len, struct mesh_err *err)
{
    *out = NULL;
    *len = 0;
    if (!e)
        return MESH_OK;
    json_t *obj = json_loads(e->object, 0, NULL);
    if (!obj)
        return mesh_store__err(err, MESH_ESTORE, "store %s: corrupt object JSON", st->path);
    int rc = mesh_yaml_emit_json(obj, out, len);
    json_decref(obj);
    if (rc != MESH_OK)
        return mesh_store__err(err, rc, "store %s: cannot render %s %s/%s as YAML", st->path,
                               e->kind, e->ns, e->name);
    return MESH_OK;
}

static void diff_label(char *buf, size_t size, const struct mesh_store__entry *e, int64_t rev)
{
    if (!e)
        snprintf(buf, size, "/dev/null");
    else if (*e->ns)
        snprintf(buf, size, "%s/%s/%s@%lld", e->kind, e->ns, e->name, (long long)rev);
    else
        snprintf(buf, size, "%s/%s@%lld", e->kind, e->name, (long long)rev);
}

static int diff_one(struct mesh_store *st, FILE *f, const struct mesh_store__entry *a,
                    int64_t rev_a, const struct mesh_store__entry *b, int64_t rev_b,
                    struct mesh_err *err)
{
    if (a && b && strcmp(a->object, b->object) == 0)
        return MESH_OK;
    char *ya = NULL, *yb = NULL;
    size_t la = 0, lb = 0;
    int rc = render(st, a, &ya, &la, err);
    if (rc == MESH_OK)
        rc = render(st, b, &yb, &lb, err);
    if (rc == MESH_OK) {
        char label_a[400], label_b[400];
        diff_label(label_a, sizeof(label_a), a, rev_a);
        diff_label(label_b, sizeof(label_b), b, rev_b);
        mesh_diff_unified(f, ya ? ya : "", la, yb ? yb : "", lb, label_a, label_b, 3);
    }
    free(ya);
    free(yb);
    return rc;
}

int mesh_store_diff(struct mesh_store *st, int64_t rev_a, int64_t rev_b, char **out, size_t *len,
                    struct mesh_err *err)
{
    *out = NULL;
    struct mesh_store__state sa = {0}, sb = {0};
    int64_t cur = 0;
    int rc = mesh_store__begin(st, false, err);
    if (rc != MESH_OK)
        return rc;
    if ((rc = mesh_store__max_rev(st, &cur, err)) == MESH_OK &&
        (rc = check_rev(st, &rev_a, cur, err)) == MESH_OK &&
        (rc = check_rev(st, &rev_b, cur, err)) == MESH_OK &&
        (rc = mesh_store__load_at(st, rev_a, &sa, err)) == MESH_OK)
        rc = mesh_store__load_at(st, rev_b, &sb, err);
    mesh_store__rollback(st);

    char *buf = NULL;
    size_t size = 0;
    FILE *f = rc == MESH_OK ? open_memstream(&buf, &size) : NULL;
    if (rc == MESH_OK && !f)
        rc = mesh_store__err(err, MESH_ENOMEM, "store: diff: out of memory");
    size_t i = 0, j = 0;
    while (rc == MESH_OK && (i < sa.n || j < sb.n)) {
        int c = i == sa.n ? 1 : j == sb.n ? -1 : mesh_store__entry_cmp(&sa.v[i], &sb.v[j]);
        const struct mesh_store__entry *a = c <= 0 ? &sa.v[i++] : NULL;
        const struct mesh_store__entry *b = c >= 0 ? &sb.v[j++] : NULL;
        rc = diff_one(st, f, a, rev_a, b, rev_b, err);
    }
    if (f && fclose(f) != 0 && rc == MESH_OK)
        rc = mesh_store__err(err, MESH_ENOMEM, "store: diff: out of memory");
    mesh_store__state_free(&sa);
    mesh_store__state_free(&sb);
    if (rc != MESH_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    if (len)
        *len = size;
    return MESH_OK;
}
