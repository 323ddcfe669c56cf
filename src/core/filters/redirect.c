/*
 * Redirect (docs/snapshot.md, "redirect"): a route whose action is to answer
 * with a 3xx and a Location built from the request's scheme, authority and
 * path, each replaced when the config says so.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/arena.h"
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/snapshot-int.h"

#define LIT(s) s, sizeof(s) - 1

static const char *const redirect_fields[] = {"path", "authority", "scheme", "port", "code", NULL};

static const void *parse_redirect(struct mesh_snap_ctx *c, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, redirect_fields);
    struct mesh_redirect_cfg *cfg = mesh_snap_zalloc(c, 1, sizeof(*cfg));
    char p[MESH_SNAP_PATH_MAX];
    cfg->path = mesh_snap_get_string(c, v, path, "path", false, true);
    if (cfg->path) {
        mesh_snap_path_key(p, path, "path");
        bool bad = cfg->path[0] != '/';
        for (const char *q = cfg->path; *q; q++)
            bad |= (unsigned char)*q <= ' ' || *q == 0x7f || *q == '?' || *q == '#';
        if (bad)
            mesh_snap_fail(c, p, "must start with '/' and have no spaces, control characters, '?' or '#'");
    }
    cfg->authority = mesh_snap_get_string(c, v, path, "authority", false, true);
    if (cfg->authority) {
        mesh_snap_path_key(p, path, "authority");
        for (const char *q = cfg->authority; *q; q++) {
            if ((unsigned char)*q <= ' ' || *q == 0x7f || strchr("/?#@", *q)) {
                mesh_snap_fail(c, p, "must be a host[:port] without spaces, control characters or '/?#@'");
                break;
            }
        }
    }
    cfg->scheme = mesh_snap_get_string(c, v, path, "scheme", false, true);
    if (cfg->scheme) {
        mesh_snap_path_key(p, path, "scheme");
        /* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), kept lowercase */
        bool bad = !(cfg->scheme[0] >= 'a' && cfg->scheme[0] <= 'z');
        for (const char *q = cfg->scheme; *q; q++)
            bad |= !((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || strchr("+-.", *q));
        if (bad)
            mesh_snap_fail(c, p, "must be a lowercase URI scheme such as \"https\"");
    }
    uint32_t port = 0;
    if (mesh_snap_get_uint(c, v, path, "port", false, 1, 65535, &port))
        cfg->port = (uint16_t)port;
    uint32_t code = 301;
    if (mesh_snap_get_uint(c, v, path, "code", false, 0, 999, &code) && code != 301 && code != 302 &&
        code != 303 && code != 307 && code != 308) {
        mesh_snap_path_key(p, path, "code");
        mesh_snap_fail(c, p, "must be 301, 302, 303, 307 or 308");
    }
    cfg->code = (int)code;
    return cfg;
}

/* Length of the host part of <a> (without ":port"; "[v6]" kept whole). */
static size_t host_len(const char *a, size_t n)
{
    if (n && a[0] == '[') {
        const char *e = memchr(a, ']', n);
        return e ? (size_t)(e - a) + 1 : n;
    }
    const char *colon = memchr(a, ':', n);
    return colon ? (size_t)(colon - a) : n;
}

static unsigned default_port(const char *scheme)
{
    if (strcmp(scheme, "http") == 0)
        return 80;
    if (strcmp(scheme, "https") == 0)
        return 443;
    return 0;
}

const char *mesh_redirect_location(struct mesh_arena *a, const struct mesh_redirect_cfg *cfg,
                                   const char *scheme, const char *authority, size_t alen,
                                   const char *path, size_t plen)
{
    const char *old_scheme = scheme ? scheme : "http";
    const char *sch = cfg->scheme ? cfg->scheme : old_scheme;
    const char *auth = authority ? authority : "";
    if (cfg->authority) {
        auth = cfg->authority;
        alen = strlen(auth);
    }
    size_t hlen = host_len(auth, alen);
    char port[8] = "";
    if (cfg->port) {
        /* the configured port replaces any; a scheme's default port is left implicit */
        if (cfg->port != default_port(sch))
            snprintf(port, sizeof(port), ":%u", (unsigned)cfg->port);
    } else if (hlen < alen) {
        unsigned p = 0;
        for (size_t i = hlen + 1; i < alen && auth[i] >= '0' && auth[i] <= '9' && p < 65536; i++)
            p = p * 10 + (unsigned)(auth[i] - '0');
        /* switching scheme drops the old scheme's default port ("a:80" http -> "a" https) */
        if (!(cfg->scheme && strcmp(sch, old_scheme) != 0 && p == default_port(old_scheme)))
            hlen = alen;
    }
    if (!path) {
        path = "/";
        plen = 1;
    }
    const char *q = memchr(path, '?', plen);
    size_t qlen = q ? plen - (size_t)(q - path) : 0;
    const char *np = path;
    size_t nplen = plen - qlen;
    if (cfg->path) {
        np = cfg->path;
        nplen = strlen(np);
    }
    size_t slen = strlen(sch);
    size_t total = slen + 3 + hlen + strlen(port) + nplen + qlen;
    char *out = mesh_arena_alloc(a, total + 1);
    if (!out)
        return NULL;
    snprintf(out, total + 1, "%s://%.*s%s%.*s%.*s", sch, (int)hlen, auth, port, (int)nplen, np,
             (int)qlen, q ? q : "");
    return out;
}

static enum mesh_filter_status on_request(struct mesh_stream *s, const void *cfgv)
{
    const struct mesh_redirect_cfg *cfg = cfgv;
    const char *loc = mesh_redirect_location(s->arena, cfg, s->req.scheme, s->req.authority,
                                             s->req.authority_len, s->req.path, s->req.path_len);
    if (!loc) {
        mesh_proxy_local_reply(s, 500, 0, "redirect: stream memory exhausted");
        return MESH_FILTER_STOP;
    }
    MESH_STAT_INC(&s->w->stats, redirects);
    mesh_filter_reply_begin(s);
    mesh_headers_add(s->arena, &s->resp.hdrs, LIT("location"), loc, strlen(loc));
    mesh_filter_reply(s, cfg->code, NULL, 0);
    return MESH_FILTER_STOP;
}

const struct mesh_filter_type mesh_filter_redirect = {
    .name = "redirect",
    .parse = parse_redirect,
    .on_request = on_request,
};
