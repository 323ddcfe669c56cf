/* Snapshot loader: routes[].match (docs/snapshot.md, "match"). */
#include "core/common.h"
#include <string.h>
#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "core/arena.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const match_fields[] = {"prefix", "path", "regex", "ignore_case", "method",
                                           "scheme", "authority", "headers", "query_params",
                                           "destination_port", NULL};
static const char *const str_fields[] = {"exact", "prefix", "regex", NULL};
static const char *const header_fields[] = {"name", "exact", "prefix", "regex", "present",
                                            "invert", NULL};
static const char *const query_fields[] = {"name", "exact", "prefix", "regex", "present", NULL};

static void free_code(void *code)
{
    pcre2_code_free(code);
}

const struct mesh_regex *mesh_snap_compile_regex(struct mesh_snap_ctx *c, const char *src,
                                                 unsigned flags, const char *path)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
    if (flags & MESH_SNAP_RE_WHOLE)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    if (flags & MESH_SNAP_RE_CASELESS)
        opts |= PCRE2_CASELESS;
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, strlen(src), opts, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        mesh_snap_fail(c, path, "invalid regex: %s at offset %zu", (const char *)msg, (size_t)off);
        return NULL;
    }
    mesh_snap_defer(c, free_code, re);
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT pcre2_match interprets */
    struct mesh_regex *r = mesh_snap_zalloc(c, 1, sizeof(*r));
    r->source = src;
    r->code = re;
    return r;
}

bool mesh_snap_parse_str_match(struct mesh_snap_ctx *c, struct mesh_str_match *m, json_t *o,
                               const char *path, bool allow_present)
{
    static const char *const keys[] = {"exact", "prefix", "regex", "present"};
    size_t nkeys = allow_present ? 4 : 3, found = 0, which = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (json_object_get(o, keys[i])) {
            found++;
            which = i;
        }
    }
    if (found != 1) {
        mesh_snap_fail(c, path, allow_present
                                    ? "must have exactly one of \"exact\", \"prefix\", \"regex\" or \"present\""
                                    : "must have exactly one of \"exact\", \"prefix\" or \"regex\"");
        return false;
    }
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, keys[which]);
    if (which == 3) {
        bool present = false;
        if (!mesh_snap_get_bool(c, o, path, "present", &present))
            return false;
        if (!present) {
            mesh_snap_fail(c, p, "must be true (an absent header is \"invert\" with \"present\")");
            return false;
        }
        m->kind = MESH_STR_PRESENT;
        m->value = "";
        return true;
    }
    const char *v = mesh_snap_get_string(c, o, path, keys[which], true, which == 2);
    if (!v)
        return false;
    m->kind = which == 0 ? MESH_STR_EXACT : which == 1 ? MESH_STR_PREFIX : MESH_STR_REGEX;
    m->value = v;
    m->len = strlen(v);
    if (m->kind == MESH_STR_REGEX) {
        m->re = mesh_snap_compile_regex(c, v, MESH_SNAP_RE_WHOLE, p);
        return m->re != NULL;
    }
    return true;
}

/* "method", "scheme", "authority": an object with one of exact/prefix/regex; NULL when absent. */
static const struct mesh_str_match *parse_field_match(struct mesh_snap_ctx *c, json_t *m,
                                                      const char *path, const char *key)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *o = mesh_snap_get_object(c, m, path, key, false, p);
    if (!o)
        return NULL;
    mesh_snap_check_fields(c, o, p, str_fields);
    struct mesh_str_match *sm = mesh_snap_zalloc(c, 1, sizeof(*sm));
    return mesh_snap_parse_str_match(c, sm, o, p, false) ? sm : NULL;
}

/* A header name: an HTTP token in lowercase (pseudo headers have their own fields). */
static bool check_header_name(struct mesh_snap_ctx *c, const char *name, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, "name");
    if (name[0] == ':') {
        mesh_snap_fail(c, p, "pseudo header '%s' is not allowed: use \"method\", \"scheme\", "
                             "\"authority\" or the path fields", name);
        return false;
    }
    for (const char *q = name; *q; q++) {
        if (*q >= 'A' && *q <= 'Z') {
            mesh_snap_fail(c, p, "must be lowercase");
            return false;
        }
        if (!strchr("!#$%&'*+-.^_`|~", *q) && !(*q >= 'a' && *q <= 'z') &&
            !(*q >= '0' && *q <= '9')) {
            mesh_snap_fail(c, p, "is not a valid header name");
            return false;
        }
    }
    return true;
}

static void parse_headers(struct mesh_snap_ctx *c, struct mesh_route_match *r, json_t *m,
                          const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, m, path, "headers", false, p);
    if (!arr || json_array_size(arr) == 0)
        return;
    size_t n = json_array_size(arr);
    struct mesh_header_match *h = mesh_snap_zalloc(c, n, sizeof(*h));
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, p, header_fields, pi);
        if (!o)
            continue;
        const char *name = mesh_snap_get_string(c, o, pi, "name", true, true);
        if (name && check_header_name(c, name, pi)) {
            h[i].name = name;
            h[i].name_len = strlen(name);
        }
        mesh_snap_get_bool(c, o, pi, "invert", &h[i].invert);
        mesh_snap_parse_str_match(c, &h[i].m, o, pi, true);
    }
    r->headers = h;
    r->n_headers = n;
}

static void parse_query(struct mesh_snap_ctx *c, struct mesh_route_match *r, json_t *m,
                        const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, m, path, "query_params", false, p);
    if (!arr || json_array_size(arr) == 0)
        return;
    size_t n = json_array_size(arr);
    struct mesh_query_match *q = mesh_snap_zalloc(c, n, sizeof(*q));
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, p, query_fields, pi);
        if (!o)
            continue;
        const char *name = mesh_snap_get_string(c, o, pi, "name", true, true);
        if (name) {
            char pn[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(pn, pi, "name");
            /* the router splits the query at '&' and '=': such a name could never match */
            if (strpbrk(name, "&=#"))
                mesh_snap_fail(c, pn, "must not contain '&', '=' or '#'");
            q[i].name = name;
            q[i].name_len = strlen(name);
        }
        mesh_snap_parse_str_match(c, &q[i].m, o, pi, true);
    }
    r->query_params = q;
    r->n_query_params = n;
}

void mesh_snap_parse_match(struct mesh_snap_ctx *c, struct mesh_route_match *r, json_t *m,
                           const char *path)
{
    mesh_snap_check_fields(c, m, path, match_fields);
    mesh_snap_get_bool(c, m, path, "ignore_case", &r->ignore_case);
    r->method = parse_field_match(c, m, path, "method");
    r->scheme = parse_field_match(c, m, path, "scheme");
    r->authority = parse_field_match(c, m, path, "authority");
    parse_headers(c, r, m, path);
    parse_query(c, r, m, path);
    /* the inbound listener's routes: the port iptables redirected the connection from */
    uint32_t port = 0;
    if (mesh_snap_get_uint(c, m, path, "destination_port", false, 1, 65535, &port))
        r->dst_port = (uint16_t)port;

    static const char *const kinds[] = {"prefix", "path", "regex"};
    size_t found = 0, which = 0;
    for (size_t i = 0; i < 3; i++) {
        if (json_object_get(m, kinds[i])) {
            found++;
            which = i;
        }
    }
    if (found != 1) {
        mesh_snap_fail(c, path, "must have exactly one of \"prefix\", \"path\" or \"regex\"");
        return;
    }
    const char *key = kinds[which];
    r->kind = which == 0 ? MESH_MATCH_PREFIX : which == 1 ? MESH_MATCH_EXACT : MESH_MATCH_REGEX;
    const char *v = mesh_snap_get_string(c, m, path, key, true, true);
    if (!v)
        return;
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    r->path = v;
    r->path_len = strlen(v);
    if (r->kind == MESH_MATCH_REGEX) {
        r->regex = mesh_snap_compile_regex(
            c, v, MESH_SNAP_RE_WHOLE | (r->ignore_case ? MESH_SNAP_RE_CASELESS : 0), p);
        return;
    }
    /* the router compares the path before '?', so a '?' here could never match */
    if (v[0] != '/')
        mesh_snap_fail(c, p, "must start with '/'");
    else if (strchr(v, '?'))
        mesh_snap_fail(c, p, "must not contain '?'");
}
