/*
 * CORS (docs/snapshot.md, "cors"): a preflight from an allowed origin is
 * answered here, without reaching the upstream; a plain request from an
 * allowed origin gets access-control-allow-origin (and friends) on its
 * response. The allow-* values are joined once, at load.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/router.h"
#include "core/snapshot-int.h"

#define LIT(s) s, sizeof(s) - 1

static const char *const cors_fields[] = {"allow_origins", "allow_methods", "allow_headers",
                                          "expose_headers", "max_age_s", "allow_credentials",
                                          "unmatched_preflights", NULL};
static const char *const origin_fields[] = {"exact", "prefix", "regex", NULL};

static void parse_origins(struct mesh_snap_ctx *c, struct mesh_cors_cfg *cfg, json_t *v,
                          const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, v, path, "allow_origins", false, p);
    size_t n = arr ? json_array_size(arr) : 0;
    if (!n)
        return;
    cfg->origins = mesh_snap_zalloc(c, n, sizeof(*cfg->origins));
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, p, origin_fields, pi);
        struct mesh_str_match *m = &cfg->origins[cfg->n_origins];
        if (!o || !mesh_snap_parse_str_match(c, m, o, pi, false))
            continue;
        if (m->len == 0) { /* an empty prefix would allow every origin */
            char pk[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(pk, pi, m->kind == MESH_STR_EXACT ? "exact" : "prefix");
            mesh_snap_fail(c, pk, "must not be empty");
            continue;
        }
        cfg->n_origins++;
    }
}

/* ["GET", "POST"] -> "GET, POST" in the snapshot arena; NULL when absent or empty. */
static const char *joined(struct mesh_snap_ctx *c, json_t *v, const char *path, const char *key,
                          bool tokens)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, v, path, key, false, p);
    size_t n = arr ? json_array_size(arr) : 0;
    if (!n)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(pi, p, i);
        json_t *e = json_array_get(arr, i);
        if (!json_is_string(e) || json_string_length(e) == 0) {
            mesh_snap_fail(c, pi, "must be a non-empty string");
            return NULL;
        }
        const char *s = json_string_value(e);
        for (const char *q = s; *q; q++) {
            unsigned char ch = (unsigned char)*q;
            /* header names and methods are tokens; "*" is allowed too */
            if (ch <= ' ' || ch == ',' || ch == 0x7f || (tokens && strchr("\"(),/:;<=>?@[\\]{}", ch))) {
                mesh_snap_fail(c, pi, "'%s' is not a valid token", s);
                return NULL;
            }
        }
        total += json_string_length(e) + 2;
    }
    char *out = mesh_snap_zalloc(c, total + 1, 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        if (i) {
            memcpy(out + off, ", ", 2);
            off += 2;
        }
        memcpy(out + off, json_string_value(e), json_string_length(e));
        off += json_string_length(e);
    }
    out[off] = '\0';
    return out;
}

static const void *parse_cors(struct mesh_snap_ctx *c, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, cors_fields);
    struct mesh_cors_cfg *cfg = mesh_snap_zalloc(c, 1, sizeof(*cfg));
    parse_origins(c, cfg, v, path);
    cfg->allow_methods = joined(c, v, path, "allow_methods", true);
    cfg->allow_headers = joined(c, v, path, "allow_headers", true);
    cfg->expose_headers = joined(c, v, path, "expose_headers", true);
    if (json_object_get(v, "max_age_s")) {
        uint32_t age = 0;
        if (mesh_snap_get_uint(c, v, path, "max_age_s", false, 0, 4294967295LL, &age)) {
            char buf[16];
            int n = snprintf(buf, sizeof(buf), "%u", age);
            cfg->max_age = mesh_snap_sdup(c, buf, (size_t)n);
        }
    }
    mesh_snap_get_bool(c, v, path, "allow_credentials", &cfg->allow_credentials);
    const char *um = mesh_snap_get_string(c, v, path, "unmatched_preflights", false, true);
    if (um) {
        if (strcmp(um, "ignore") == 0) {
            cfg->ignore_unmatched = true;
        } else if (strcmp(um, "forward") != 0) {
            char p[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(p, path, "unmatched_preflights");
            mesh_snap_fail(c, p, "must be \"forward\" or \"ignore\"");
        }
    }
    return cfg;
}

bool mesh_cors_origin_allowed(struct mesh_arena *a, const struct mesh_cors_cfg *cfg,
                              const char *origin, size_t len)
{
    for (size_t i = 0; i < cfg->n_origins; i++)
        if (mesh_str_match_holds(&cfg->origins[i], origin, len, a))
            return true;
    return false;
}

static bool is_preflight(const struct mesh_stream *s)
{
    return s->req.method_len == 7 && memcmp(s->req.method, "OPTIONS", 7) == 0 &&
           mesh_headers_get(&s->req.hdrs, LIT("access-control-request-method")) != NULL;
}

static void add(struct mesh_stream *s, struct mesh_headers *h, const char *name, size_t nlen,
                const char *v)
{
    if (v)
        mesh_headers_add(s->arena, h, name, nlen, v, strlen(v));
}

static enum mesh_filter_status on_request(struct mesh_stream *s, const void *cfgv)
{
    const struct mesh_cors_cfg *cfg = cfgv;
    const struct mesh_header *origin = mesh_headers_get(&s->req.hdrs, LIT("origin"));
    if (!origin || !is_preflight(s))
        return MESH_FILTER_CONTINUE;
    bool allowed = mesh_cors_origin_allowed(s->arena, cfg, origin->value, origin->value_len);
    if (!allowed && !cfg->ignore_unmatched)
        return MESH_FILTER_CONTINUE; /* "forward": the upstream decides */
    MESH_STAT_INC(&s->w->stats, cors_preflight);
    mesh_filter_reply_begin(s);
    if (allowed) {
        struct mesh_headers *h = &s->resp.hdrs;
        mesh_headers_add(s->arena, h, LIT("access-control-allow-origin"), origin->value,
                         origin->value_len);
        add(s, h, LIT("access-control-allow-methods"), cfg->allow_methods);
        add(s, h, LIT("access-control-allow-headers"), cfg->allow_headers);
        add(s, h, LIT("access-control-max-age"), cfg->max_age);
        if (cfg->allow_credentials)
            mesh_headers_add(s->arena, h, LIT("access-control-allow-credentials"), LIT("true"));
    }
    mesh_filter_reply(s, 200, NULL, 0);
    return MESH_FILTER_STOP;
}

static void on_response(struct mesh_stream *s, const void *cfgv)
{
    const struct mesh_cors_cfg *cfg = cfgv;
    const struct mesh_header *origin = mesh_headers_get(&s->req.hdrs, LIT("origin"));
    if (!origin || is_preflight(s) || !mesh_cors_origin_allowed(s->arena, cfg, origin->value, origin->value_len))
        return;
    struct mesh_headers *h = &s->resp.hdrs;
    mesh_headers_del(h, LIT("access-control-allow-origin"));
    mesh_headers_add(s->arena, h, LIT("access-control-allow-origin"), origin->value,
                     origin->value_len);
    if (cfg->allow_credentials) {
        mesh_headers_del(h, LIT("access-control-allow-credentials"));
        mesh_headers_add(s->arena, h, LIT("access-control-allow-credentials"), LIT("true"));
    }
    if (cfg->expose_headers) {
        mesh_headers_del(h, LIT("access-control-expose-headers"));
        add(s, h, LIT("access-control-expose-headers"), cfg->expose_headers);
    }
}

const struct mesh_filter_type mesh_filter_cors = {
    .name = "cors",
    .parse = parse_cors,
    .on_request = on_request,
    .on_response = on_response,
};
