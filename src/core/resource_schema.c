#include "core/common.h"
#include <math.h> /* isfinite */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "core/arena.h"
#include "core/resource-int.h"
#include "core/validate.h"

/*
 * The generic walker behind every schema table: one pass over the YAML nodes
 * fills the typed struct and validates it, reporting each problem with the
 * node's line:col and the field path, and carrying on so that a file shows
 * all of its errors at once.
 */

#define MAX_FIELDS 64
#define MAX_ONEOF 8

static _Noreturn void oom(void)
{
    fprintf(stderr, "meshd: out of memory loading resources\n");
    abort();
}

static void *zalloc(struct mesh_rctx *c, size_t n, size_t size)
{
    void *p = mesh_arena_calloc(c->arena, n ? n : 1, size);
    if (!p)
        oom();
    return p;
}

/* ---- Paths ---- */

static void append(char *buf, size_t *len, const char *fmt, ...) MESH_PRINTF(3, 4);

static void append(char *buf, size_t *len, const char *fmt, ...)
{
    if (*len >= MESH_RPATH_MAX - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, MESH_RPATH_MAX - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        buf[*len] = '\0';
    else
        *len = MESH_MIN(*len + (size_t)n, (size_t)MESH_RPATH_MAX - 1);
}

static struct mesh_rpath_mark mark(const struct mesh_rctx *c)
{
    return (struct mesh_rpath_mark){c->plen, c->nlen};
}

struct mesh_rpath_mark mesh_resource__push_key(struct mesh_rctx *c, const char *key)
{
    struct mesh_rpath_mark m = mark(c);
    append(c->path, &c->plen, "%s%s", c->plen ? "." : "", key);
    append(c->npath, &c->nlen, "%s%s", c->nlen ? "." : "", key);
    return m;
}

struct mesh_rpath_mark mesh_resource__push_index(struct mesh_rctx *c, size_t i)
{
    struct mesh_rpath_mark m = mark(c);
    append(c->path, &c->plen, "[%zu]", i);
    append(c->npath, &c->nlen, "[]");
    return m;
}

static bool simple_key(const char *k)
{
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_'))
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

struct mesh_rpath_mark mesh_resource__push_mapkey(struct mesh_rctx *c, const char *key)
{
    struct mesh_rpath_mark m = mark(c);
    if (simple_key(key))
        append(c->path, &c->plen, ".%.120s", key);
    else
        append(c->path, &c->plen, "[\"%.120s\"]", key);
    append(c->npath, &c->nlen, ".*");
    return m;
}

void mesh_resource__pop(struct mesh_rctx *c, struct mesh_rpath_mark m)
{
    c->plen = m.plen;
    c->nlen = m.nlen;
    c->path[c->plen] = '\0';
    c->npath[c->nlen] = '\0';
}

/* ---- Reporting ---- */

static void report(struct mesh_rctx *c, enum mesh_diag_severity sev, const struct mesh_ynode *n,
                   const char *sub, const char *fmt, va_list ap) MESH_PRINTF(5, 0);

static void report(struct mesh_rctx *c, enum mesh_diag_severity sev, const struct mesh_ynode *n,
                   const char *sub, const char *fmt, va_list ap)
{
    char path[MESH_RPATH_MAX + 64];
    snprintf(path, sizeof(path), "%s%s%s", c->path, sub && c->plen ? "." : "", sub ? sub : "");
    if (sev == MESH_DIAG_ERROR)
        c->errors++;
    mesh_diags_vadd(c->d, sev, c->file, n ? n->line : c->line, n ? n->col : c->col, c->subject,
                    path, fmt, ap);
}

void mesh_resource__err(struct mesh_rctx *c, const struct mesh_ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, MESH_DIAG_ERROR, n, NULL, fmt, ap);
    va_end(ap);
}

void mesh_resource__warn(struct mesh_rctx *c, const struct mesh_ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, MESH_DIAG_WARNING, n, NULL, fmt, ap);
    va_end(ap);
}

void mesh_resource__err_at(struct mesh_rctx *c, const struct mesh_ynode *n, const char *sub,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, MESH_DIAG_ERROR, n, sub, fmt, ap);
    va_end(ap);
}

void mesh_resource__warn_at(struct mesh_rctx *c, const struct mesh_ynode *n, const char *sub,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, MESH_DIAG_WARNING, n, sub, fmt, ap);
    va_end(ap);
}

const struct mesh_ynode *mesh_resource__node(const struct mesh_ynode *map, const char *key)
{
    const struct mesh_ynode *v = mesh_yaml_get(map, key);
    return mesh_yaml_is_null(v) ? NULL : v;
}

const struct mesh_ynode *mesh_resource__item(const struct mesh_ynode *map, const char *key,
                                             size_t i)
{
    const struct mesh_ynode *v = mesh_yaml_get(map, key);
    if (!v || v->type != MESH_YNODE_SEQ || i >= v->n)
        return v;
    return v->items[i];
}

/* ---- Durations ---- */

bool mesh_resource__parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},          {"us", 1000},          {"\xc2\xb5s", 1000}, {"\xce\xbcs", 1000},
        {"ms", 1000000},    {"s", 1000000000},     {"m", 60000000000},  {"h", 3600000000000},
    };
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0) {
        *ns = 0;
        return true;
    }
    if (!*p)
        return false;
    long double total = 0;
    while (*p) {
        long double v = 0;
        bool digits = false;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            digits = true;
        }
        if (*p == '.') {
            p++;
            long double scale = 1;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                v += scale * (*p++ - '0');
                digits = true;
            }
        }
        if (!digits)
            return false;
        const char *u = p;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '.')
            p++;
        size_t ulen = (size_t)(p - u);
        int64_t mult = 0;
        for (size_t i = 0; i < MESH_ARRAY_LEN(units); i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
                mult = units[i].ns;
        if (!mult)
            return false;
        total += v * mult;
        if (total > (long double)INT64_MAX)
            return false;
    }
    long double r = total + 0.5L; /* total >= 0: truncation rounds; no libm needed */
    if (r > (long double)INT64_MAX)
        return false;
    *ns = neg ? -(int64_t)r : (int64_t)r;
    return true;
}

/* ---- Scalars ---- */

static const char *describe(const struct mesh_ynode *n)
{
    if (n->type == MESH_YNODE_MAP)
        return "a mapping";
    if (n->type == MESH_YNODE_SEQ)
        return "a list";
    switch (mesh_yaml_scalar_kind(n)) {
    case MESH_YSCALAR_NULL: return "null";
    case MESH_YSCALAR_BOOL: return "a boolean";
    case MESH_YSCALAR_INT: return "an integer";
    case MESH_YSCALAR_FLOAT: return "a number";
    case MESH_YSCALAR_STRING: break;
    }
    return "a string";
}

static bool is_string(const struct mesh_ynode *n)
{
    return n->type == MESH_YNODE_SCALAR && mesh_yaml_scalar_kind(n) == MESH_YSCALAR_STRING;
}

static size_t scalar_size(uint8_t type)
{
    switch (type) {
    case MESH_F_STRING:
    case MESH_F_BYTES: return sizeof(const char *);
    case MESH_F_BOOL: return sizeof(bool);
    case MESH_F_OBOOL: return sizeof(struct mesh_opt_bool);
    case MESH_F_INT32: return sizeof(int32_t);
    case MESH_F_UINT32: return sizeof(uint32_t);
    case MESH_F_OUINT32: return sizeof(struct mesh_opt_u32);
    case MESH_F_UINT64: return sizeof(uint64_t);
    case MESH_F_DOUBLE: return sizeof(double);
    case MESH_F_ODOUBLE: return sizeof(struct mesh_opt_double);
    case MESH_F_DURATION: return sizeof(struct mesh_duration);
    case MESH_F_ENUM: return sizeof(int);
    case MESH_F_INTSTR: return sizeof(struct mesh_int_or_string);
    default: return 1;
    }
}

static const char *dup_node(struct mesh_rctx *c, const struct mesh_ynode *n)
{
    char *s = mesh_arena_strndup(c->arena, n->value, n->len);
    if (!s)
        oom();
    return s;
}

static bool want_string(struct mesh_rctx *c, const struct mesh_ynode *n, const char *what)
{
    if (is_string(n) && strlen(n->value) == n->len)
        return true;
    if (is_string(n))
        mesh_resource__err(c, n, "must not contain NUL characters");
    else if (n->type == MESH_YNODE_SCALAR)
        mesh_resource__err(c, n, "must be %s, not %s (quote it: \"%.100s\")", what, describe(n),
                           n->value);
    else
        mesh_resource__err(c, n, "must be %s, not %s", what, describe(n));
    return false;
}

static bool want_int(struct mesh_rctx *c, const struct mesh_field *f, const struct mesh_ynode *n,
                     int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;
    if (!mesh_yaml_int(n, &v)) {
        if (n->type == MESH_YNODE_SCALAR && mesh_yaml_scalar_kind(n) == MESH_YSCALAR_INT)
            mesh_resource__err(c, n, "integer out of range");
        else
            mesh_resource__err(c, n, "must be an integer, not %s", describe(n));
        return false;
    }
    if (f->min < f->max) {
        lo = MESH_MAX(lo, f->min);
        hi = MESH_MIN(hi, f->max);
    }
    if (v < lo || v > hi) {
        mesh_resource__err(c, n, "must be between %lld and %lld", (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static bool fill_scalar(struct mesh_rctx *c, const struct mesh_field *f, const struct mesh_ynode *n,
                        void *dst)
{
    int64_t i;
    double d;
    bool b;
    switch (f->type) {
    case MESH_F_STRING:
    case MESH_F_BYTES: {
        if (!want_string(c, n, "a string"))
            return false;
        const char *s = dup_node(c, n);
        if ((f->flags & MESH_FF_NONEMPTY) && !*s) {
            mesh_resource__err(c, n, "must not be empty");
            return false;
        }
        if (f->type == MESH_F_BYTES && mesh_validate_base64(s)) {
            mesh_resource__err(c, n, "%s", mesh_validate_base64(s));
            return false;
        }
        *(const char **)dst = s;
        if (f->check)
            f->check(c, n, s);
        return true;
    }
    case MESH_F_BOOL:
    case MESH_F_OBOOL:
        if (!mesh_yaml_bool(n, &b)) {
            mesh_resource__err(c, n, "must be true or false, not %s", describe(n));
            return false;
        }
        if (f->type == MESH_F_BOOL)
            *(bool *)dst = b;
        else
            *(struct mesh_opt_bool *)dst = (struct mesh_opt_bool){true, b};
        return true;
    case MESH_F_INT32:
        if (!want_int(c, f, n, INT32_MIN, INT32_MAX, &i))
            return false;
        *(int32_t *)dst = (int32_t)i;
        return true;
    case MESH_F_UINT32:
    case MESH_F_OUINT32:
        if (!want_int(c, f, n, 0, UINT32_MAX, &i))
            return false;
        if (f->type == MESH_F_UINT32)
            *(uint32_t *)dst = (uint32_t)i;
        else
            *(struct mesh_opt_u32 *)dst = (struct mesh_opt_u32){true, (uint32_t)i};
        return true;
    case MESH_F_UINT64:
        if (!want_int(c, f, n, 0, INT64_MAX, &i))
            return false;
        *(uint64_t *)dst = (uint64_t)i;
        return true;
    case MESH_F_DOUBLE:
    case MESH_F_ODOUBLE:
        if (!mesh_yaml_number(n, &d) || !isfinite(d)) {
            mesh_resource__err(c, n, "must be a finite number, not %s", describe(n));
            return false;
        }
        if (f->min < f->max && (d < (double)f->min || d > (double)f->max)) {
            mesh_resource__err(c, n, "must be between %lld and %lld", (long long)f->min,
                               (long long)f->max);
            return false;
        }
        if (f->type == MESH_F_DOUBLE)
            *(double *)dst = d;
        else
            *(struct mesh_opt_double *)dst = (struct mesh_opt_double){true, d};
        return true;
    case MESH_F_DURATION: {
        if (!is_string(n)) {
            if (n->type == MESH_YNODE_SCALAR)
                mesh_resource__err(c, n, "must be a duration such as \"%.60ss\" or \"250ms\", "
                                         "not %s", n->value, describe(n));
            else
                mesh_resource__err(c, n, "must be a duration such as \"10s\", not %s", describe(n));
            return false;
        }
        int64_t ns;
        if (!mesh_resource__parse_duration(n->value, &ns) || strlen(n->value) != n->len) {
            mesh_resource__err(c, n, "invalid duration \"%.100s\" (use e.g. \"1h\", \"1.5s\", "
                                     "\"250ms\")", n->value);
            return false;
        }
        if (ns < 0) {
            mesh_resource__err(c, n, "duration must not be negative");
            return false;
        }
        if (f->flags & MESH_FF_MIN_1MS) {
            if (ns < 1000000) {
                mesh_resource__err(c, n, "duration must be at least 1ms");
                return false;
            }
            if (ns % 1000000) {
                mesh_resource__err(c, n, "only durations to millisecond precision are supported");
                return false;
            }
        }
        *(struct mesh_duration *)dst = (struct mesh_duration){true, ns};
        return true;
    }
    case MESH_F_ENUM: {
        if (!want_string(c, n, "a string"))
            return false;
        for (int k = 0; f->enums[k]; k++) {
            if (strcmp(f->enums[k], n->value) == 0) {
                *(int *)dst = k;
                return true;
            }
        }
        char list[512] = "";
        size_t len = 0;
        for (int k = 0; f->enums[k] && len < sizeof(list); k++) {
            int w = snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "", f->enums[k]);
            if (w < 0)
                break;
            len += (size_t)w;
        }
        mesh_resource__err(c, n, "invalid value \"%.100s\": must be one of %s", n->value, list);
        return false;
    }
    case MESH_F_INTSTR: {
        struct mesh_int_or_string *v = dst;
        if (mesh_yaml_int(n, &i)) {
            v->num = i;
            v->str = NULL;
            return true;
        }
        if (!want_string(c, n, "an integer or a string"))
            return false;
        v->str = dup_node(c, n);
        if (f->check)
            f->check(c, n, v->str);
        return true;
    }
    case MESH_F_IGNORE: return true;
    default: MESH_BUG_ON(true);
    }
    return false;
}

/* ---- Messages, lists, maps ---- */

static bool fill_into(struct mesh_rctx *c, const struct mesh_schema *s, const struct mesh_ynode *n,
                      void *mem, enum mesh_support sup)
{
    return mesh_resource__fill(c, s, n, mem, sup);
}

static bool fill_value(struct mesh_rctx *c, const struct mesh_field *f, const struct mesh_ynode *n,
                       void *dst, enum mesh_support sup)
{
    if (f->type == MESH_F_MESSAGE)
        return fill_into(c, f->msg, n, dst, sup);
    return fill_scalar(c, f, n, dst);
}

static void fill_list(struct mesh_rctx *c, const struct mesh_field *f, const struct mesh_ynode *n,
                      void *out, enum mesh_support sup)
{
    if (n->type != MESH_YNODE_SEQ) {
        mesh_resource__err(c, n, "must be a list, not %s", describe(n));
        return;
    }
    if ((f->flags & MESH_FF_NONEMPTY) && n->n == 0)
        mesh_resource__err(c, n, "must not be empty");
    size_t es = f->type == MESH_F_MESSAGE ? f->elem_size : scalar_size(f->type);
    char *arr = n->n ? zalloc(c, n->n, es) : NULL;
    for (size_t i = 0; i < n->n; i++) {
        struct mesh_rpath_mark m = mesh_resource__push_index(c, i);
        const struct mesh_ynode *item = n->items[i];
        if (mesh_yaml_is_null(item))
            mesh_resource__err(c, item, "must not be null");
        else
            fill_value(c, f, item, arr + i * es, sup);
        mesh_resource__pop(c, m);
    }
    *(void **)((char *)out + f->off) = arr;
    *(size_t *)((char *)out + f->n_off) = n->n;
}

static void fill_map(struct mesh_rctx *c, const struct mesh_field *f, const struct mesh_ynode *n,
                     void *out, enum mesh_support sup)
{
    if (n->type != MESH_YNODE_MAP) {
        mesh_resource__err(c, n, "must be a mapping, not %s", describe(n));
        return;
    }
    char *arr = n->n ? zalloc(c, n->n, f->elem_size) : NULL;
    for (size_t i = 0; i < n->n; i++) {
        const struct mesh_ynode *k = n->pairs[i].key, *v = n->pairs[i].value;
        char *entry = arr + i * f->elem_size;
        if (k->type != MESH_YNODE_SCALAR || strlen(k->value) != k->len) {
            mesh_resource__err(c, k, "map keys must be strings, not %s", describe(k));
            continue;
        }
        const char *key = dup_node(c, k);
        *(const char **)entry = key;
        struct mesh_rpath_mark m = mesh_resource__push_mapkey(c, key);
        if (f->key_check)
            f->key_check(c, k, key);
        if (mesh_yaml_is_null(v) && f->type != MESH_F_MESSAGE && f->type != MESH_F_STRING)
            mesh_resource__err(c, v, "must not be null");
        else if (mesh_yaml_is_null(v) && f->type == MESH_F_STRING)
            *(const char **)(entry + f->val_off) = ""; /* "key:" is an empty value in k8s maps */
        else if (mesh_yaml_is_null(v))
            mesh_resource__err(c, v, "must not be null");
        else
            fill_value(c, f, v, entry + f->val_off, sup);
        mesh_resource__pop(c, m);
    }
    *(void **)((char *)out + f->off) = arr;
    *(size_t *)((char *)out + f->n_off) = n->n;
}

/*
 * A likely intended field: same letters ignoring case and '_'/'-' ("Hosts",
 * "service_account"), or at most two edits away ("hosst", "weigth").
 */
static bool near_miss(const char *a, const char *b)
{
    char x[64], y[64];
    size_t m = 0, n = 0;
    for (; *a && m < sizeof(x); a++)
        if (*a != '_' && *a != '-')
            x[m++] = (char)(*a | 0x20);
    for (; *b && n < sizeof(y); b++)
        if (*b != '_' && *b != '-')
            y[n++] = (char)(*b | 0x20);
    if (*a || *b || (m > n ? m - n : n - m) > 2)
        return false;
    unsigned dist[64 + 1][64 + 1];
    for (size_t i = 0; i <= m; i++)
        dist[i][0] = (unsigned)i;
    for (size_t j = 0; j <= n; j++)
        dist[0][j] = (unsigned)j;
    for (size_t i = 1; i <= m; i++)
        for (size_t j = 1; j <= n; j++) {
            unsigned sub = dist[i - 1][j - 1] + (x[i - 1] != y[j - 1]);
            unsigned del = dist[i - 1][j] + 1, ins = dist[i][j - 1] + 1;
            dist[i][j] = MESH_MIN(sub, MESH_MIN(del, ins));
        }
    return dist[m][n] <= (n > 4 ? 2u : 1u);
}

static void unknown_field(struct mesh_rctx *c, const struct mesh_schema *s,
                          const struct mesh_ynode *k, const char *key)
{
    struct mesh_rpath_mark m = mesh_resource__push_key(c, key);
    for (size_t i = 0; i < s->n_fields; i++) {
        if (near_miss(key, s->fields[i].name)) {
            mesh_resource__err(c, k, "unknown field (did you mean \"%s\"?)", s->fields[i].name);
            mesh_resource__pop(c, m);
            return;
        }
    }
    mesh_resource__err(c, k, "unknown field");
    mesh_resource__pop(c, m);
}

bool mesh_resource__fill(struct mesh_rctx *c, const struct mesh_schema *s,
                         const struct mesh_ynode *map, void *out, enum mesh_support sup)
{
    if (map->type != MESH_YNODE_MAP) {
        mesh_resource__err(c, map, "must be a mapping, not %s", describe(map));
        return false;
    }
    MESH_BUG_ON(s->n_fields > MAX_FIELDS);
    bool seen[MAX_FIELDS] = {false};
    struct oneof_seen {
        const char *group, *field;
    } oneof[MAX_ONEOF];
    size_t n_oneof = 0;

    for (size_t i = 0; i < map->n; i++) {
        const struct mesh_ynode *k = map->pairs[i].key, *v = map->pairs[i].value;
        if (k->type != MESH_YNODE_SCALAR || strlen(k->value) != k->len) {
            mesh_resource__err(c, k, "keys must be strings, not %s", describe(k));
            continue;
        }
        const struct mesh_field *f = NULL;
        size_t fi = 0;
        for (; fi < s->n_fields; fi++) {
            if (strcmp(s->fields[fi].name, k->value) == 0) {
                f = &s->fields[fi];
                break;
            }
        }
        if (!f && strchr(k->value, '_')) {
            /* protobuf's own spelling ("prefix_rewrite"), which Istio's parser accepts */
            char camel[128];
            size_t o = 0;
            bool upper = false;
            for (const char *p = k->value; *p && o + 1 < sizeof(camel); p++) {
                if (*p == '_' && o > 0) {
                    upper = true;
                    continue;
                }
                camel[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
                upper = false;
            }
            camel[o] = '\0';
            for (fi = 0; fi < s->n_fields; fi++) {
                if (strcmp(s->fields[fi].name, camel) == 0) {
                    f = &s->fields[fi];
                    struct mesh_rpath_mark m = mesh_resource__push_key(c, k->value);
                    mesh_resource__warn(c, k, "read as \"%s\": Kubernetes only knows the "
                                              "camelCase spelling", camel);
                    mesh_resource__pop(c, m);
                    break;
                }
            }
        }
        if (!f) {
            unknown_field(c, s, k, k->value);
            continue;
        }
        if (mesh_yaml_is_null(v))
            continue; /* "field: null" or "field:" means absent, as in Kubernetes */
        if (seen[fi]) {
            struct mesh_rpath_mark m = mesh_resource__push_key(c, k->value);
            mesh_resource__err(c, k, "\"%s\" is set twice", f->name);
            mesh_resource__pop(c, m);
            continue;
        }
        seen[fi] = true;
        struct mesh_rpath_mark m = mesh_resource__push_key(c, f->name);
        if (f->oneof) {
            const char *prev = NULL;
            for (size_t j = 0; j < n_oneof; j++)
                if (strcmp(oneof[j].group, f->oneof) == 0)
                    prev = oneof[j].field;
            if (prev) {
                mesh_resource__err(c, k, "only one of \"%s\" and \"%s\" may be set", prev,
                                   f->name);
                mesh_resource__pop(c, m);
                continue;
            }
            if (n_oneof < MAX_ONEOF)
                oneof[n_oneof++] = (struct oneof_seen){f->oneof, f->name};
        }
        enum mesh_support child = sup;
        if (sup == MESH_SUPPORT_PARTIAL) {
            child = mesh_resource__support(c->kind, c->npath);
            if (child == MESH_SUPPORT_NONE) {
                mesh_resource__warn(c, k, "not enforced yet: meshd accepts this field but does "
                                          "not act on it");
                child = MESH_SUPPORT_WARNED;
            }
        }
        if (f->flags & MESH_FF_DEPRECATED)
            mesh_resource__warn(c, k, "deprecated%s%s", f->note ? ": " : "",
                                f->note ? f->note : "");
        char *dst = (char *)out + f->off;
        switch (f->card) {
        case MESH_C_ONE:
            if (f->type == MESH_F_MESSAGE) {
                void *mem = zalloc(c, 1, f->msg->size);
                if (fill_into(c, f->msg, v, mem, child))
                    *(void **)dst = mem;
            } else {
                fill_scalar(c, f, v, dst);
            }
            break;
        case MESH_C_LIST: fill_list(c, f, v, out, child); break;
        case MESH_C_MAP: fill_map(c, f, v, out, child); break;
        default: MESH_BUG_ON(true);
        }
        mesh_resource__pop(c, m);
    }
    for (size_t fi = 0; fi < s->n_fields; fi++)
        if ((s->fields[fi].flags & MESH_FF_REQUIRED) && !seen[fi])
            mesh_resource__err_at(c, map, s->fields[fi].name, "is required");
    if (s->post)
        s->post(c, map, out);
    return true;
}

/* ---- Shared value checks ---- */

#define CHECK(fn, what, validator)                                                                 \
    void fn(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)                        \
    {                                                                                              \
        const char *why = validator(s);                                                            \
        if (why)                                                                                   \
            mesh_resource__err(c, n, "invalid " what " \"%.100s\": %s", s, why);                   \
    }

CHECK(mesh_check_label_key, "label key", mesh_validate_label_key)
CHECK(mesh_check_label_value, "label value", mesh_validate_label_value)
CHECK(mesh_check_annotation_key, "annotation key", mesh_validate_label_key)
CHECK(mesh_check_dns1123_label, "name", mesh_validate_dns1123_label)
CHECK(mesh_check_port_name, "port name", mesh_validate_istio_label)
CHECK(mesh_check_ip, "IP address", mesh_validate_ip)
CHECK(mesh_check_ip_or_cidr, "address", mesh_validate_ip_or_cidr)
CHECK(mesh_check_header_name, "header name", mesh_validate_header_name)
CHECK(mesh_check_protocol, "protocol", mesh_validate_protocol)

/* Workload selectors: label syntax, and no wildcards (Istio). */
void mesh_check_selector_key(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (strchr(s, '*'))
        mesh_resource__err(c, n, "wildcard is not supported in selector keys");
    else
        mesh_check_label_key(c, n, s);
}

void mesh_check_selector_value(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (strchr(s, '*'))
        mesh_resource__err(c, n, "wildcard is not supported in selector values");
    else
        mesh_check_label_value(c, n, s);
}

void mesh_check_regex(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    char why[300];
    if (!*s)
        mesh_resource__err(c, n, "regex must not be empty");
    else if (!mesh_validate_regex(s, why, sizeof(why)))
        mesh_resource__err(c, n, "%s", why);
}

void mesh_check_export_to(struct mesh_rctx *c, const struct mesh_ynode *map, const char **v,
                          size_t n, bool is_service_entry)
{
    const char *own = c->res ? c->res->meta.namespace_ : "default";
    bool has_public = false, has_none = false;
    for (size_t i = 0; i < n; i++) {
        if (!v[i])
            continue;
        const struct mesh_ynode *at = mesh_resource__item(map, "exportTo", i);
        char sub[32];
        snprintf(sub, sizeof(sub), "exportTo[%zu]", i);
        const char *key = strcmp(v[i], ".") == 0 ? own : v[i];
        for (size_t j = 0; j < i; j++) {
            if (!v[j])
                continue;
            const char *kj = strcmp(v[j], ".") == 0 ? own : v[j];
            if (strcmp(kj, key) == 0) {
                if (strcmp(v[j], v[i]) != 0)
                    mesh_resource__err_at(c, at, sub, "duplicate entries in exportTo: \".\" and "
                                                      "the current namespace %s", own);
                else
                    mesh_resource__err_at(c, at, sub, "duplicate entry in exportTo");
                break;
            }
        }
        if (strcmp(v[i], "*") == 0) {
            has_public = true;
        } else if (strcmp(v[i], "~") == 0) {
            if (!is_service_entry)
                mesh_resource__err_at(c, at, sub, "\"~\" is only allowed for ServiceEntry");
            has_none = true;
        } else if (strcmp(v[i], ".") != 0) {
            const char *why = mesh_validate_dns1123_label(v[i]);
            if (why)
                mesh_resource__err_at(c, at, sub, "invalid namespace \"%.100s\": %s", v[i], why);
        }
    }
    if (has_public && n > 1)
        mesh_resource__err_at(c, mesh_resource__node(map, "exportTo"), "exportTo",
                              "cannot have both public (*) and non-public exportTo values");
    if (has_none && n > 1)
        mesh_resource__err_at(c, mesh_resource__node(map, "exportTo"), "exportTo",
                              "cannot export to no one (~) and someone");
}
