#include "core/common.h"
#include <string.h>
#include "core/router.h"

/*
 * Per-request route selection. It runs on every request, so it allocates
 * nothing and only reads the snapshot. Domains are stored lowercase by the
 * loader; only the request side is folded here, ASCII only (no locale).
 */

static inline char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* <n> bytes of request text equal the lowercase pattern <low>, ignoring case. */
static bool ieq(const char *s, const char *low, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != low[i])
            return false;
    return true;
}

/* Length of the host part of an authority: "[::1]:80" -> "[::1]", "a.b:80" -> "a.b". */
static size_t host_len(const char *a, size_t len)
{
    if (len == 0)
        return 0;
    if (a[0] == '[') {
        const char *end = memchr(a, ']', len);
        return end ? (size_t)(end - a) + 1 : len;
    }
    const char *colon = memchr(a, ':', len);
    return colon ? (size_t)(colon - a) : len;
}

const struct mesh_vhost *mesh_router_vhost(const struct mesh_route_config *rc,
                                           const char *authority, size_t len)
{
    if (!rc)
        return NULL;
    if (!authority)
        len = 0;
    size_t hlen = host_len(authority, len);
    const struct mesh_vhost *suffix = NULL, *prefix = NULL, *any = NULL;
    size_t suffix_len = 0, prefix_len = 0;

    /* one pass: an exact match returns at once, wildcards keep the longest (first on ties) */
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        const struct mesh_vhost *vh = &rc->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++) {
            const char *d = vh->domains[j];
            size_t n = strlen(d);
            if (n == 1 && d[0] == '*') {
                if (!any)
                    any = vh;
            } else if (n > 0 && d[0] == '*') {
                /* "*.example.com": the wildcard must match at least one character */
                size_t sl = n - 1;
                if (hlen > sl && (!suffix || sl > suffix_len) &&
                    ieq(authority + hlen - sl, d + 1, sl)) {
                    suffix = vh;
                    suffix_len = sl;
                }
            } else if (n > 0 && d[n - 1] == '*') {
                size_t pl = n - 1;
                if (hlen > pl && (!prefix || pl > prefix_len) && ieq(authority, d, pl)) {
                    prefix = vh;
                    prefix_len = pl;
                }
            } else if (n == hlen && ieq(authority, d, n)) {
                return vh;
            }
        }
    }
    if (suffix)
        return suffix;
    if (prefix)
        return prefix;
    return any;
}

const struct mesh_route *mesh_router_route(const struct mesh_vhost *vh, const char *path,
                                           size_t len)
{
    if (!vh)
        return NULL;
    if (!path)
        len = 0;
    const char *q = len ? memchr(path, '?', len) : NULL;
    if (q)
        len = (size_t)(q - path);
    for (size_t i = 0; i < vh->n_routes; i++) {
        const struct mesh_route *r = &vh->routes[i];
        if (r->match.kind == MESH_MATCH_EXACT) {
            if (len == r->match.path_len && (len == 0 || memcmp(path, r->match.path, len) == 0))
                return r;
        } else {
            /* Envoy semantics: a plain string prefix, so "/api" also matches "/apix" */
            if (len >= r->match.path_len && (r->match.path_len == 0 || memcmp(path, r->match.path, r->match.path_len) == 0))
                return r;
        }
    }
    return NULL;
}

const struct mesh_route *mesh_router_match(const struct mesh_route_config *rc,
                                           const char *authority, size_t alen, const char *path,
                                           size_t plen)
{
    const struct mesh_vhost *vh = mesh_router_vhost(rc, authority, alen);
    return vh ? mesh_router_route(vh, path, plen) : NULL;
}
