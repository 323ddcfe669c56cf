#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "core/proxy-int.h"
#include "core/route_index.h"
#include "core/router.h"

/*
 * Per-request route selection. It runs on every request, so it only reads
 * the snapshot and allocates nothing but what a regex or a repeated header
 * needs, from the stream arena. Domains and folded index keys are stored
 * lowercase by the loader; only the request side is folded here, ASCII only
 * (no locale).
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

/* ---- string matches --------------------------------------------------------------- */

static void *arena_malloc(size_t size, void *arena)
{
    return mesh_arena_alloc(arena, size);
}

static void arena_free(void *p, void *arena)
{
    (void)p;
    (void)arena; /* released with the arena */
}

pcre2_match_data *mesh_regex_match_data(struct mesh_arena *a, const struct mesh_regex *re)
{
    pcre2_general_context *g = NULL;
    if (a && !(g = pcre2_general_context_create(arena_malloc, arena_free, a)))
        return NULL;
    return re ? pcre2_match_data_create_from_pattern(re->code, g) : pcre2_match_data_create(1, g);
}

/* A series of regex matches sharing one match data, made at the first. */
struct re_scratch {
    struct mesh_arena *arena;      /* NULL: malloc, freed by scratch_done */
    pcre2_match_data *md;
};

static bool re_match(struct re_scratch *sc, const struct mesh_regex *re, const char *s, size_t n)
{
    if (!re || !re->code)
        return false;
    if (!sc->md && !(sc->md = mesh_regex_match_data(sc->arena, NULL)))
        return false; /* out of memory: no match */
    /* >= 0: a match (0 only says the one-pair ovector was too small for the groups) */
    return pcre2_match(re->code, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, sc->md, NULL) >= 0;
}

static void scratch_done(struct re_scratch *sc)
{
    if (!sc->arena)
        pcre2_match_data_free(sc->md); /* NULL is fine */
}

static bool str_holds(struct re_scratch *sc, const struct mesh_str_match *m, const char *v,
                      size_t n)
{
    switch (m->kind) {
    case MESH_STR_EXACT:
        return n == m->len && (n == 0 || memcmp(v, m->value, n) == 0);
    case MESH_STR_PREFIX:
        return n >= m->len && (m->len == 0 || memcmp(v, m->value, m->len) == 0);
    case MESH_STR_REGEX:
        return re_match(sc, m->re, v, n);
    case MESH_STR_PRESENT:
        return true;
    }
    return false;
}

bool mesh_str_match_holds(const struct mesh_str_match *m, const char *v, size_t n,
                          struct mesh_arena *a)
{
    struct re_scratch sc = {.arena = a, .md = NULL};
    bool ok = str_holds(&sc, m, v, n);
    scratch_done(&sc);
    return ok;
}

/* ---- routes --------------------------------------------------------------------- */

/* One routing call: the request split once, and the scratch it may need. */
struct rstate {
    const struct mesh_router_req *rq;
    const struct mesh_route *routes;
    const char *path;              /* never NULL */
    size_t plen;                   /* up to '?' */
    const char *query;             /* after '?', NULL when there is no '?' */
    size_t qlen;
    struct re_scratch re;          /* in rq->arena */
};

/* A method, scheme or authority match; an absent value never matches. */
static bool field_holds(struct rstate *st, const struct mesh_str_match *m, const char *v, size_t n)
{
    return !m || (v && str_holds(&st->re, m, v, n));
}

static bool header_holds(struct rstate *st, const struct mesh_header_match *hm)
{
    const struct mesh_headers *h = st->rq->headers;
    const struct mesh_header *first = NULL;
    size_t count = 0, total = 0;
    for (uint32_t i = 0; h && i < h->n; i++) {
        if (mesh_header_is(&h->v[i], hm->name, hm->name_len)) {
            if (!first)
                first = &h->v[i];
            count++;
            total += h->v[i].value_len + 1;
        }
    }
    bool holds;
    if (count == 0) {
        holds = false;
    } else if (count == 1 || hm->m.kind == MESH_STR_PRESENT) {
        holds = str_holds(&st->re, &hm->m, first->value, first->value_len);
    } else {
        /* sent several times: matched on the values joined with "," */
        struct mesh_arena *a = st->rq->arena;
        char *buf = a ? mesh_arena_alloc(a, total) : malloc(total);
        if (!buf)
            return false;
        size_t n = 0;
        for (uint32_t i = 0; i < h->n; i++) {
            if (mesh_header_is(&h->v[i], hm->name, hm->name_len)) {
                if (n)
                    buf[n++] = ',';
                memcpy(buf + n, h->v[i].value, h->v[i].value_len);
                n += h->v[i].value_len;
            }
        }
        holds = str_holds(&st->re, &hm->m, buf, n);
        if (!a)
            free(buf);
    }
    return hm->invert ? !holds : holds;
}

/* The first occurrence of parameter <name> in the query, its value not decoded. */
static bool query_holds(struct rstate *st, const struct mesh_query_match *qm)
{
    const char *q = st->query, *end = q ? q + st->qlen : NULL;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        const char *name_end = eq ? eq : seg_end;
        if ((size_t)(name_end - q) == qm->name_len && memcmp(q, qm->name, qm->name_len) == 0) {
            const char *v = eq ? eq + 1 : seg_end;
            return str_holds(&st->re, &qm->m, v, (size_t)(seg_end - v));
        }
        q = amp ? amp + 1 : end;
    }
    return false;
}

static bool ieq2(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static bool path_holds(struct rstate *st, const struct mesh_route_match *m)
{
    switch (m->kind) {
    case MESH_MATCH_EXACT:
        if (st->plen != m->path_len)
            return false;
        break;
    case MESH_MATCH_PREFIX:
        if (st->plen < m->path_len)
            return false;
        break;
    case MESH_MATCH_REGEX:
        return re_match(&st->re, m->regex, st->path, st->plen);
    }
    /* Envoy semantics for prefix: a plain string prefix, so "/api" also matches "/apix" */
    if (m->path_len == 0)
        return true;
    return m->ignore_case ? ieq2(st->path, m->path, m->path_len)
                          : memcmp(st->path, m->path, m->path_len) == 0;
}

static bool route_holds(struct rstate *st, const struct mesh_route_match *m, bool path_known)
{
    /* the cheap conditions first, a path regex last */
    if (m->dst_port && m->dst_port != st->rq->dst_port)
        return false;
    if (!path_known && m->kind != MESH_MATCH_REGEX && !path_holds(st, m))
        return false;
    const struct mesh_router_req *rq = st->rq;
    if (!field_holds(st, m->method, rq->method, rq->method_len) ||
        !field_holds(st, m->scheme, rq->scheme, rq->scheme_len) ||
        !field_holds(st, m->authority, rq->authority, rq->authority_len))
        return false;
    for (size_t i = 0; i < m->n_headers; i++)
        if (!header_holds(st, &m->headers[i]))
            return false;
    for (size_t i = 0; i < m->n_query_params; i++)
        if (!query_holds(st, &m->query_params[i]))
            return false;
    return path_known || m->kind != MESH_MATCH_REGEX || path_holds(st, m);
}

static bool accept_route(void *arg, size_t i, bool path_known)
{
    struct rstate *st = arg;
    return route_holds(st, &st->routes[i].match, path_known);
}

static void rstate_init(struct rstate *st, const struct mesh_router_req *rq,
                        const struct mesh_route *routes)
{
    memset(st, 0, sizeof(*st));
    st->rq = rq;
    st->routes = routes;
    st->re.arena = rq->arena;
    st->path = rq->path ? rq->path : "";
    size_t len = rq->path ? rq->path_len : 0;
    const char *q = len ? memchr(st->path, '?', len) : NULL;
    st->plen = q ? (size_t)(q - st->path) : len;
    if (q) {
        st->query = q + 1;
        st->qlen = len - st->plen - 1;
    }
}

static void rstate_done(struct rstate *st)
{
    scratch_done(&st->re);
}

bool mesh_router_accepts(const struct mesh_route *r, const struct mesh_router_req *rq)
{
    if (!r || !rq)
        return false;
    struct rstate st;
    rstate_init(&st, rq, r);
    bool ok = route_holds(&st, &r->match, false);
    rstate_done(&st);
    return ok;
}

const struct mesh_route *mesh_router_route_scan(const struct mesh_vhost *vh,
                                                const struct mesh_router_req *rq)
{
    if (!vh || !rq)
        return NULL;
    struct rstate st;
    rstate_init(&st, rq, vh->routes);
    const struct mesh_route *found = NULL;
    for (size_t i = 0; i < vh->n_routes && !found; i++)
        if (route_holds(&st, &vh->routes[i].match, false))
            found = &vh->routes[i];
    rstate_done(&st);
    return found;
}

const struct mesh_route *mesh_router_route(const struct mesh_vhost *vh,
                                           const struct mesh_router_req *rq)
{
    if (!vh || !rq)
        return NULL;
    if (!vh->index)
        return mesh_router_route_scan(vh, rq);
    struct rstate st;
    rstate_init(&st, rq, vh->routes);
    size_t i = mesh_route_index_find(vh->index, st.path, st.plen, accept_route, &st, vh->n_routes);
    rstate_done(&st);
    return i < vh->n_routes ? &vh->routes[i] : NULL;
}

uint16_t mesh_router_dst_port(const struct sockaddr_storage *dst, socklen_t len)
{
    if (!dst || len == 0)
        return 0;
    if (dst->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)dst)->sin_port);
    if (dst->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)dst)->sin6_port);
    return 0;
}

const struct mesh_route *mesh_router_match(const struct mesh_route_config *rc,
                                           const struct mesh_router_req *rq)
{
    if (!rq)
        return NULL;
    const struct mesh_vhost *vh = mesh_router_vhost(rc, rq->authority, rq->authority_len);
    return vh ? mesh_router_route(vh, rq) : NULL;
}
