/*
 * Rewrite (docs/snapshot.md, "route", `rewrite`): the path the upstream sees
 * (the matched prefix or the whole path replaced, or a regex substitution)
 * and its authority. The router already chose the route on the original
 * path; the query string is kept. Both upstream codecs emit s->req.path and
 * s->req.authority (HTTP/1.1 writes a Host header only when the request has
 * none, so a Host header is rewritten too).
 */
#include "core/common.h"
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "core/arena.h"
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/router.h"
#include "core/snapshot-int.h"

#define LIT(s) s, sizeof(s) - 1

static const char *const rewrite_fields[] = {"prefix", "regex", "authority", NULL};
static const char *const regex_fields[] = {"pattern", "substitution", NULL};

/*
 * Envoy's substitution syntax ("\1" back references, "\\" a backslash) into
 * PCRE2's ("${1}", "$$" for a dollar), checking the group numbers.
 */
static const char *translate_substitution(struct mesh_snap_ctx *c, const char *in,
                                          uint32_t groups, const char *path, size_t *out_len)
{
    size_t n = strlen(in);
    char *out = mesh_snap_zalloc(c, n * 4 + 1, 1); /* "\1" -> "${1}" at most doubles; "$" -> "$$" */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '$') {
            out[o++] = '$';
            out[o++] = '$';
        } else if (ch == '\\' && i + 1 < n && in[i + 1] >= '0' && in[i + 1] <= '9') {
            uint32_t g = (uint32_t)(in[++i] - '0');
            if (g > groups) {
                mesh_snap_fail(c, path, "\\%u refers to a group the pattern does not have", g);
                return NULL;
            }
            out[o++] = '$';
            out[o++] = '{';
            out[o++] = (char)('0' + g);
            out[o++] = '}';
        } else if (ch == '\\' && i + 1 < n && in[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
        } else {
            out[o++] = ch;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static bool bad_path_chars(const char *s)
{
    for (const char *q = s; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f || *q == '?' || *q == '#')
            return true;
    return false;
}

static void parse_regex(struct mesh_snap_ctx *c, struct mesh_rewrite_cfg *cfg, json_t *v,
                        const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *o = mesh_snap_get_object(c, v, path, "regex", true, p);
    if (!o)
        return;
    mesh_snap_check_fields(c, o, p, regex_fields);
    const char *pat = mesh_snap_get_string(c, o, p, "pattern", true, true);
    const char *sub = mesh_snap_get_string(c, o, p, "substitution", true, false);
    if (!pat || !sub)
        return;
    char pp[MESH_SNAP_PATH_MAX], ps[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(pp, p, "pattern");
    mesh_snap_path_key(ps, p, "substitution");
    const struct mesh_regex *re = mesh_snap_compile_regex(c, pat, 0, pp);
    if (!re)
        return;
    uint32_t groups = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (bad_path_chars(sub)) {
        mesh_snap_fail(c, ps, "must not contain spaces, control characters, '?' or '#'");
        return;
    }
    cfg->substitution = translate_substitution(c, sub, groups, ps, &cfg->substitution_len);
    if (cfg->substitution)
        cfg->re = re;
}

static const void *parse_rewrite(struct mesh_snap_ctx *c, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, rewrite_fields);
    struct mesh_rewrite_cfg *cfg = mesh_snap_zalloc(c, 1, sizeof(*cfg));
    bool has_prefix = json_object_get(v, "prefix") != NULL;
    bool has_regex = json_object_get(v, "regex") != NULL;
    bool has_auth = json_object_get(v, "authority") != NULL;
    if (has_prefix && has_regex)
        mesh_snap_fail(c, path, "must not have both \"prefix\" and \"regex\"");
    else if (!has_prefix && !has_regex && !has_auth)
        mesh_snap_fail(c, path, "must have \"prefix\", \"regex\" or \"authority\"");
    char p[MESH_SNAP_PATH_MAX];
    if (has_prefix) {
        cfg->prefix = mesh_snap_get_string(c, v, path, "prefix", true, true);
        mesh_snap_path_key(p, path, "prefix");
        if (cfg->prefix && (cfg->prefix[0] != '/' || bad_path_chars(cfg->prefix))) {
            mesh_snap_fail(c, p, "must start with '/' and have no spaces, control characters, '?' or '#'");
            cfg->prefix = NULL;
        }
        cfg->prefix_len = cfg->prefix ? strlen(cfg->prefix) : 0;
    } else if (has_regex) {
        parse_regex(c, cfg, v, path);
    }
    if (has_auth) {
        cfg->authority = mesh_snap_get_string(c, v, path, "authority", true, true);
        mesh_snap_path_key(p, path, "authority");
        for (const char *q = cfg->authority; q && *q; q++) {
            if ((unsigned char)*q <= ' ' || *q == 0x7f || *q == '/' || *q == '?' || *q == '#' ||
                *q == '@') {
                mesh_snap_fail(c, p, "must be a host[:port] without spaces, control characters or '/?#@'");
                cfg->authority = NULL;
                break;
            }
        }
        cfg->authority_len = cfg->authority ? strlen(cfg->authority) : 0;
    }
    return cfg;
}

/* <head> (the new path) then <tail> (the original query, with its '?') into the arena. */
static const char *join(struct mesh_arena *a, const char *head, size_t hlen, const char *tail,
                        size_t tlen, size_t *out_len)
{
    char *p = mesh_arena_alloc(a, hlen + tlen + 2);
    if (!p)
        return NULL;
    size_t o = 0;
    if (hlen == 0 || head[0] != '/')
        p[o++] = '/'; /* a substitution that ate the leading slash */
    memcpy(p + o, head, hlen);
    o += hlen;
    memcpy(p + o, tail, tlen);
    o += tlen;
    p[o] = '\0';
    *out_len = o;
    return p;
}

const char *mesh_rewrite_path(struct mesh_arena *a, const struct mesh_rewrite_cfg *cfg,
                              const struct mesh_route *r, const char *path, size_t len,
                              size_t *out_len)
{
    const char *q = memchr(path, '?', len);
    size_t plen = q ? (size_t)(q - path) : len;
    const char *tail = path + plen;
    size_t tlen = len - plen;
    if (cfg->prefix) {
        /* a prefix route replaces what its prefix matched; path and regex routes the whole path */
        if (r && r->match.kind == MESH_MATCH_PREFIX && r->match.path_len <= plen) {
            size_t keep = plen - r->match.path_len;
            char *p = mesh_arena_alloc(a, cfg->prefix_len + keep + tlen + 1);
            if (!p)
                return NULL;
            memcpy(p, cfg->prefix, cfg->prefix_len);
            memcpy(p + cfg->prefix_len, path + r->match.path_len, keep + tlen);
            p[cfg->prefix_len + keep + tlen] = '\0';
            *out_len = cfg->prefix_len + keep + tlen;
            return p;
        }
        return join(a, cfg->prefix, cfg->prefix_len, tail, tlen, out_len);
    }
    if (!cfg->re)
        return NULL;
    pcre2_match_data *md = mesh_regex_match_data(a, cfg->re);
    if (!md)
        return NULL;
    PCRE2_SIZE cap = plen * 2 + cfg->substitution_len + 64;
    for (int tries = 0; tries < 2; tries++) {
        char *buf = mesh_arena_alloc(a, cap);
        if (!buf)
            return NULL;
        PCRE2_SIZE olen = cap;
        int rc = pcre2_substitute(cfg->re->code, (PCRE2_SPTR)path, plen, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, md,
                                  NULL, (PCRE2_SPTR)cfg->substitution, cfg->substitution_len,
                                  (PCRE2_UCHAR *)buf, &olen);
        if (rc == PCRE2_ERROR_NOMEMORY) {
            cap = olen + 1; /* the length it needs */
            continue;
        }
        if (rc <= 0)
            return NULL; /* no match (or an error): the path stays */
        return join(a, buf, olen, tail, tlen, out_len);
    }
    return NULL;
}

static enum mesh_filter_status on_request(struct mesh_stream *s, const void *cfgv)
{
    const struct mesh_rewrite_cfg *cfg = cfgv;
    if (s->req.path && (cfg->prefix || cfg->re)) {
        size_t n;
        const char *p = mesh_rewrite_path(s->arena, cfg, s->route, s->req.path, s->req.path_len, &n);
        if (p) {
            s->req.path = p;
            s->req.path_len = (uint32_t)n;
        }
    }
    if (cfg->authority) {
        s->req.authority = cfg->authority;
        s->req.authority_len = (uint32_t)cfg->authority_len;
        struct mesh_header *host = mesh_headers_get(&s->req.hdrs, LIT("host"));
        if (host) {
            host->value = cfg->authority;
            host->value_len = (uint32_t)cfg->authority_len;
        }
    }
    return MESH_FILTER_CONTINUE;
}

const struct mesh_filter_type mesh_filter_rewrite = {
    .name = "rewrite",
    .parse = parse_rewrite,
    .on_request = on_request,
};
