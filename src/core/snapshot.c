#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/snapshot.h"

/*
 * Loader for the JSON snapshot (docs/snapshot.md). One pass over the jansson
 * tree validates and copies into the snapshot's arena at the same time; every
 * problem goes into <err> with its JSON path and the walk carries on, so one
 * run shows the user all of them. On any error the arena is dropped whole.
 */

#define PATH_MAX_LEN 160            /* = sizeof(struct mesh_err_entry.path) */
#define MAX_FILE_SIZE (64u << 20)   /* a snapshot is config, not data */

struct ctx {
    struct mesh_err *err;
    struct mesh_arena *arena;
    struct mesh_snapshot *snap;
    json_t *cluster_names;          /* name -> index into snapshot->clusters */
    json_t *rc_names;               /* name -> index into snapshot->route_configs */
};

_Static_assert(PATH_MAX_LEN == sizeof(((struct mesh_err_entry *)0)->path), "path buffer size");

static _Noreturn void oom(void)
{
    fprintf(stderr, "meshd: out of memory loading a snapshot\n");
    abort();
}

/* Keys and names come from the network: keep control characters out of logs and terminals. */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void fail(struct ctx *c, const char *path, const char *fmt, ...) MESH_PRINTF(3, 4);

static void fail(struct ctx *c, const char *path, const char *fmt, ...)
{
    if (c->err->count >= MESH_ERR_MAX) {
        mesh_err_add(c->err, 0, 0, NULL, "%s", ""); /* only counted */
        return;
    }
    char p[PATH_MAX_LEN];
    char msg[sizeof(c->err->e[0].msg)];
    snprintf(p, sizeof(p), "%s", path);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    scrub(p);
    scrub(msg);
    mesh_err_add(c->err, 0, 0, p, "%s", msg);
}

/* "base.key"; truncation only shortens the path shown in a message. */
static void path_key(char *dst, const char *base, const char *key)
{
    int n = snprintf(dst, PATH_MAX_LEN, "%s%s%s", base, base[0] ? "." : "", key);
    if (n < 0)
        dst[0] = '\0';
}

static void path_idx(char *dst, const char *base, size_t i)
{
    int n = snprintf(dst, PATH_MAX_LEN, "%s[%zu]", base, i);
    if (n < 0)
        dst[0] = '\0';
}

/* The arena has no budget here, so NULL only means malloc failed: setup-path OOM aborts. */
static void *zalloc(struct ctx *c, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = mesh_arena_calloc(c->arena, n, size);
    if (!p)
        oom();
    return p;
}

static char *sdup(struct ctx *c, const char *s, size_t n)
{
    char *p = mesh_arena_strndup(c->arena, s, n);
    if (!p)
        oom();
    return p;
}

/* Every key of <obj> must be in the NULL-terminated <allowed> list. */
static void check_fields(struct ctx *c, json_t *obj, const char *path,
                         const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, key) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char p[PATH_MAX_LEN];
            path_key(p, path, key);
            fail(c, p, "unknown field");
        }
    }
}

/* Returns the member or NULL; reports a missing required one. */
static json_t *member(struct ctx *c, json_t *obj, const char *path, const char *key,
                      bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v && required) {
        char p[PATH_MAX_LEN];
        path_key(p, path, key);
        fail(c, p, "is required");
    }
    return v;
}

static json_t *get_object(struct ctx *c, json_t *obj, const char *path, const char *key,
                          bool required, char *p)
{
    path_key(p, path, key);
    json_t *v = member(c, obj, path, key, required);
    if (v && !json_is_object(v)) {
        fail(c, p, "must be an object");
        return NULL;
    }
    return v;
}

static json_t *get_array(struct ctx *c, json_t *obj, const char *path, const char *key,
                         bool required, char *p)
{
    path_key(p, path, key);
    json_t *v = member(c, obj, path, key, required);
    if (v && !json_is_array(v)) {
        fail(c, p, "must be an array");
        return NULL;
    }
    return v;
}

/* Arena copy of a string member; NULL when absent or invalid (and reported). */
static const char *get_string(struct ctx *c, json_t *obj, const char *path, const char *key,
                              bool required, bool nonempty)
{
    json_t *v = member(c, obj, path, key, required);
    if (!v)
        return NULL;
    char p[PATH_MAX_LEN];
    path_key(p, path, key);
    if (!json_is_string(v)) {
        fail(c, p, "must be a string");
        return NULL;
    }
    size_t len = json_string_length(v);
    if (nonempty && len == 0) {
        fail(c, p, "must not be empty");
        return NULL;
    }
    return sdup(c, json_string_value(v), len);
}

/* Integer member in [min, max]; <out> keeps its default when absent or invalid. */
static bool get_uint(struct ctx *c, json_t *obj, const char *path, const char *key,
                     bool required, json_int_t min, json_int_t max, uint32_t *out)
{
    json_t *v = member(c, obj, path, key, required);
    if (!v)
        return !required;
    char p[PATH_MAX_LEN];
    path_key(p, path, key);
    if (!json_is_integer(v)) {
        fail(c, p, "must be an integer");
        return false;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        fail(c, p, "must be between %lld and %lld", (long long)min, (long long)max);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

static bool get_duration(struct ctx *c, json_t *obj, const char *path, const char *key,
                         uint32_t *out)
{
    return get_uint(c, obj, path, key, false, 0, UINT32_MAX, out);
}

static bool get_port(struct ctx *c, json_t *obj, const char *path, bool allow_zero,
                     uint16_t *out)
{
    uint32_t v = 0;
    if (!get_uint(c, obj, path, "port", true, allow_zero ? 0 : 1, 65535, &v))
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Numeric IPv4 or IPv6 only: a snapshot is compiled, name resolution happened before. */
static bool resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                    socklen_t *salen)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *salen = sizeof(*sin);
        return true;
    }
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *salen = sizeof(*sin6);
        return true;
    }
    return false;
}

static bool is_unspecified(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* "127.0.0.1:8080" or "[::1]:8080", from the canonical address text. */
static const char *sockaddr_key(struct ctx *c, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    char key[INET6_ADDRSTRLEN + 16];
    int n;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        n = snprintf(key, sizeof(key), "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        n = snprintf(key, sizeof(key), "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    }
    if (n < 0)
        key[0] = '\0';
    return sdup(c, key, strlen(key));
}

/* Address and port of a listener, admin or endpoint object. */
static bool get_addr(struct ctx *c, json_t *obj, const char *path, bool allow_zero_port,
                     const char **address, uint16_t *port, struct sockaddr_storage *ss,
                     socklen_t *salen)
{
    *address = get_string(c, obj, path, "address", true, true);
    bool port_ok = get_port(c, obj, path, allow_zero_port, port);
    if (!*address)
        return false;
    if (!resolve(*address, *port, ss, salen)) {
        char p[PATH_MAX_LEN];
        path_key(p, path, "address");
        fail(c, p, "must be a numeric IPv4 or IPv6 address");
        *address = NULL;
        return false;
    }
    return port_ok;
}

/*
 * Registers <name> in the <names> table (name -> index). Reports a duplicate
 * with both positions. Returns false on a duplicate.
 */
static bool register_name(struct ctx *c, json_t *names, const char *name, size_t index,
                          const char *path, const char *what)
{
    json_t *prev = json_object_get(names, name);
    if (prev) {
        char p[PATH_MAX_LEN];
        path_key(p, path, "name");
        fail(c, p, "duplicate %s name '%s' (first at index %lld)", what, name,
             (long long)json_integer_value(prev));
        return false;
    }
    if (json_object_set_new(names, name, json_integer((json_int_t)index)) != 0)
        oom();
    return true;
}

/* ---- clusters ---------------------------------------------------------- */

static const char *const endpoint_fields[] = {"address", "port", "weight", NULL};
static const char *const cluster_fields[] = {
    "name", "protocol", "lb_policy", "connect_timeout_ms", "idle_timeout_ms",
    "max_connections", "max_pending_requests", "max_requests_per_connection", "endpoints", NULL,
};

static void parse_endpoints(struct ctx *c, struct mesh_cluster *cl, json_t *arr,
                            const char *path)
{
    cl->n_endpoints = json_array_size(arr);
    cl->endpoints = zalloc(c, cl->n_endpoints, sizeof(*cl->endpoints));
    uint64_t total_weight = 0;
    json_t *keys = json_object(); /* endpoint key -> index, for duplicates */
    if (!keys)
        oom();
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        struct mesh_endpoint *ep = &cl->endpoints[i];
        json_t *o = json_array_get(arr, i);
        char p[PATH_MAX_LEN];
        path_idx(p, path, i);
        if (!json_is_object(o)) {
            fail(c, p, "must be an object");
            continue;
        }
        check_fields(c, o, p, endpoint_fields);
        ep->weight = 1;
        get_uint(c, o, p, "weight", false, 1, UINT32_MAX, &ep->weight);
        total_weight += ep->weight;
        if (!get_addr(c, o, p, false, &ep->address, &ep->port, &ep->sa, &ep->salen))
            continue;
        if (is_unspecified(&ep->sa)) {
            char pa[PATH_MAX_LEN];
            path_key(pa, p, "address");
            fail(c, pa, "must not be the unspecified address");
            continue;
        }
        ep->key = sockaddr_key(c, &ep->sa);
        json_t *prev = json_object_get(keys, ep->key);
        if (prev)
            fail(c, p, "duplicate endpoint %s (first at index %lld)", ep->key,
                 (long long)json_integer_value(prev));
        else if (json_object_set_new(keys, ep->key, json_integer((json_int_t)i)) != 0)
            oom();
    }
    json_decref(keys);
    /* load balancers sum weights in 32 bits */
    if (total_weight > UINT32_MAX)
        fail(c, path, "the sum of endpoint weights must not exceed %u", UINT32_MAX);
}

static void parse_cluster(struct ctx *c, struct mesh_cluster *cl, json_t *o, const char *path)
{
    char p[PATH_MAX_LEN];
    check_fields(c, o, path, cluster_fields);

    cl->connect_timeout_ms = 1000;
    cl->idle_timeout_ms = 60000;
    cl->max_connections = 1024;
    cl->max_pending_requests = 1024;
    cl->max_requests_per_connection = 0;

    cl->name = get_string(c, o, path, "name", true, true);
    if (cl->name)
        register_name(c, c->cluster_names, cl->name, cl->index, path, "cluster");

    const char *proto = get_string(c, o, path, "protocol", false, false);
    if (proto) {
        if (strcmp(proto, "http1") == 0) {
            cl->protocol = MESH_PROTO_HTTP1;
        } else if (strcmp(proto, "http2") == 0) {
            cl->protocol = MESH_PROTO_HTTP2;
        } else {
            path_key(p, path, "protocol");
            fail(c, p, "must be \"http1\" or \"http2\"");
        }
    }
    const char *lb = get_string(c, o, path, "lb_policy", false, false);
    if (lb) {
        if (strcmp(lb, "round_robin") == 0) {
            cl->lb_policy = MESH_LBP_ROUND_ROBIN;
        } else if (strcmp(lb, "random") == 0) {
            cl->lb_policy = MESH_LBP_RANDOM;
        } else {
            path_key(p, path, "lb_policy");
            fail(c, p, "must be \"round_robin\" or \"random\"");
        }
    }
    /* a zero connect timeout or connection limit could never succeed */
    get_uint(c, o, path, "connect_timeout_ms", false, 1, UINT32_MAX, &cl->connect_timeout_ms);
    get_duration(c, o, path, "idle_timeout_ms", &cl->idle_timeout_ms);
    get_uint(c, o, path, "max_connections", false, 1, UINT32_MAX, &cl->max_connections);
    get_uint(c, o, path, "max_pending_requests", false, 0, UINT32_MAX,
             &cl->max_pending_requests);
    get_uint(c, o, path, "max_requests_per_connection", false, 0, UINT32_MAX,
             &cl->max_requests_per_connection);

    json_t *eps = get_array(c, o, path, "endpoints", false, p);
    if (eps)
        parse_endpoints(c, cl, eps, p);
}

static void parse_clusters(struct ctx *c, struct mesh_snapshot *s, json_t *arr,
                           const char *path)
{
    s->n_clusters = json_array_size(arr);
    s->clusters = zalloc(c, s->n_clusters, sizeof(*s->clusters));
    for (size_t i = 0; i < s->n_clusters; i++) {
        json_t *o = json_array_get(arr, i);
        char p[PATH_MAX_LEN];
        path_idx(p, path, i);
        s->clusters[i].index = i;
        if (!json_is_object(o)) {
            fail(c, p, "must be an object");
            continue;
        }
        parse_cluster(c, &s->clusters[i], o, p);
    }
}

/* ---- route configs ----------------------------------------------------- */

static const char *const route_fields[] = {"match", "route", "direct_response", NULL};
static const char *const match_fields[] = {"prefix", "path", NULL};
static const char *const action_fields[] = {"cluster", "weighted_clusters", "timeout_ms", NULL};
static const char *const weighted_fields[] = {"name", "weight", NULL};
static const char *const direct_fields[] = {"status", "body", NULL};
static const char *const vhost_fields[] = {"name", "domains", "routes", NULL};
static const char *const rc_fields[] = {"name", "virtual_hosts", NULL};

static void parse_match(struct ctx *c, struct mesh_route *r, json_t *m, const char *path)
{
    check_fields(c, m, path, match_fields);
    json_t *prefix = json_object_get(m, "prefix");
    json_t *exact = json_object_get(m, "path");
    if (!prefix == !exact) {
        fail(c, path, "must have exactly one of \"prefix\" or \"path\"");
        return;
    }
    const char *key = prefix ? "prefix" : "path";
    r->match = prefix ? MESH_MATCH_PREFIX : MESH_MATCH_EXACT;
    const char *v = get_string(c, m, path, key, true, true);
    if (!v)
        return;
    char p[PATH_MAX_LEN];
    path_key(p, path, key);
    /* the router compares the path before '?', so a '?' here could never match */
    if (v[0] != '/')
        fail(c, p, "must start with '/'");
    else if (strchr(v, '?'))
        fail(c, p, "must not contain '?'");
    r->path = v;
    r->path_len = strlen(v);
}

/* Cluster named <name> (clusters are parsed first, the array is final), or NULL with an error. */
static const struct mesh_cluster *find_cluster(struct ctx *c, const char *name, const char *path,
                                               const char *key)
{
    json_t *idx = json_object_get(c->cluster_names, name);
    if (!idx) {
        char pc[PATH_MAX_LEN];
        path_key(pc, path, key);
        fail(c, pc, "no cluster named '%s'", name);
        return NULL;
    }
    return &c->snap->clusters[json_integer_value(idx)];
}

/* "weighted_clusters": [{"name": "a", "weight": 90}, ...]: a split by weight (canary). */
static void parse_weighted(struct ctx *c, struct mesh_route *r, json_t *fwd, const char *path)
{
    char p[PATH_MAX_LEN];
    json_t *arr = get_array(c, fwd, path, "weighted_clusters", true, p);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    if (n == 0) {
        fail(c, p, "must name at least one cluster");
        return;
    }
    r->weighted = zalloc(c, n, sizeof(*r->weighted));
    r->n_weighted = n;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char pi[PATH_MAX_LEN];
        path_idx(pi, p, i);
        json_t *o = json_array_get(arr, i);
        if (!json_is_object(o)) {
            fail(c, pi, "must be an object");
            continue;
        }
        check_fields(c, o, pi, weighted_fields);
        const char *name = get_string(c, o, pi, "name", true, true);
        if (name)
            r->weighted[i].cluster = find_cluster(c, name, pi, "name");
        uint32_t w = 0;
        get_uint(c, o, pi, "weight", true, 0, 1000000, &w);
        r->weighted[i].weight = w;
        total += w;
    }
    if (total == 0)
        fail(c, p, "weights must not all be 0");
    r->total_weight = (uint32_t)total;
    r->cluster = r->weighted[0].cluster; /* a valid default for code that reads one cluster */
}

static void parse_route(struct ctx *c, struct mesh_route *r, json_t *o, const char *path)
{
    char p[PATH_MAX_LEN];
    check_fields(c, o, path, route_fields);

    json_t *m = get_object(c, o, path, "match", true, p);
    if (m)
        parse_match(c, r, m, p);

    json_t *fwd = json_object_get(o, "route");
    json_t *direct = json_object_get(o, "direct_response");
    if (!fwd == !direct) {
        fail(c, path, "must have exactly one of \"route\" or \"direct_response\"");
        return;
    }
    if (fwd) {
        r->action = MESH_ACTION_CLUSTER;
        fwd = get_object(c, o, path, "route", true, p);
        if (!fwd)
            return;
        check_fields(c, fwd, p, action_fields);
        get_duration(c, fwd, p, "timeout_ms", &r->timeout_ms);
        json_t *wc = json_object_get(fwd, "weighted_clusters");
        if (!wc == !json_object_get(fwd, "cluster")) {
            fail(c, p, "must have exactly one of \"cluster\" or \"weighted_clusters\"");
            return;
        }
        if (wc) {
            parse_weighted(c, r, fwd, p);
            return;
        }
        const char *name = get_string(c, fwd, p, "cluster", true, true);
        if (!name)
            return;
        r->cluster = find_cluster(c, name, p, "cluster");
    } else {
        r->action = MESH_ACTION_DIRECT;
        direct = get_object(c, o, path, "direct_response", true, p);
        if (!direct)
            return;
        check_fields(c, direct, p, direct_fields);
        uint32_t status = 0;
        if (get_uint(c, direct, p, "status", true, 200, 599, &status))
            r->direct_status = (int)status;
        r->direct_body = get_string(c, direct, p, "body", false, false);
        r->direct_body_len = r->direct_body ? strlen(r->direct_body) : 0;
    }
}

/*
 * Checks the shape of a domain: "*", "*<suffix>", "<prefix>*" or a plain name
 * (Envoy's forms); no port, since the router strips the authority's port.
 */
static void check_domain(struct ctx *c, const char *d, const char *path)
{
    size_t n = strlen(d);
    if (n == 1 && d[0] == '*')
        return;
    const char *star = strchr(d, '*');
    if (star && star != d && star != d + n - 1)
        fail(c, path, "'*' is only allowed at the start or the end of a domain");
    else if (star && strchr(star + 1, '*'))
        fail(c, path, "only one '*' is allowed in a domain");
    else if (d[0] == '[' ? (strchr(d, ']') == NULL || strchr(d, ']')[1] != '\0')
                         : strchr(d, ':') != NULL)
        fail(c, path, "must be a host name without a port");
    for (const char *q = d; *q; q++) {
        if ((unsigned char)*q <= ' ' || *q == '/' || *q == 0x7f) {
            fail(c, path, "must not contain spaces, control characters or '/'");
            break;
        }
    }
}

static void parse_vhost(struct ctx *c, struct mesh_vhost *vh, json_t *o, const char *path,
                        json_t *domains_seen)
{
    char p[PATH_MAX_LEN];
    check_fields(c, o, path, vhost_fields);
    vh->name = get_string(c, o, path, "name", true, true);

    json_t *doms = get_array(c, o, path, "domains", true, p);
    if (doms) {
        if (json_array_size(doms) == 0)
            fail(c, p, "must not be empty");
        vh->n_domains = json_array_size(doms);
        vh->domains = zalloc(c, vh->n_domains, sizeof(*vh->domains));
        for (size_t i = 0; i < vh->n_domains; i++) {
            json_t *d = json_array_get(doms, i);
            char pd[PATH_MAX_LEN];
            path_idx(pd, p, i);
            if (!json_is_string(d) || json_string_length(d) == 0) {
                fail(c, pd, "must be a non-empty string");
                vh->domains[i] = "";
                continue;
            }
            char *low = sdup(c, json_string_value(d), json_string_length(d));
            for (char *q = low; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q - 'A' + 'a');
            vh->domains[i] = low;
            check_domain(c, low, pd);
            /* one domain in two virtual hosts would make the choice order-dependent */
            json_t *prev = json_object_get(domains_seen, low);
            if (prev)
                fail(c, pd, "duplicate domain '%s' (also in %s)", low, json_string_value(prev));
            else if (json_object_set_new(domains_seen, low, json_string(path)) != 0)
                oom();
        }
    }

    json_t *routes = get_array(c, o, path, "routes", true, p);
    if (!routes)
        return;
    vh->n_routes = json_array_size(routes);
    vh->routes = zalloc(c, vh->n_routes, sizeof(*vh->routes));
    for (size_t i = 0; i < vh->n_routes; i++) {
        json_t *r = json_array_get(routes, i);
        char pr[PATH_MAX_LEN];
        path_idx(pr, p, i);
        if (!json_is_object(r)) {
            fail(c, pr, "must be an object");
            continue;
        }
        parse_route(c, &vh->routes[i], r, pr);
    }
}

static void parse_route_config(struct ctx *c, struct mesh_route_config *rc, size_t index,
                               json_t *o, const char *path)
{
    char p[PATH_MAX_LEN];
    check_fields(c, o, path, rc_fields);
    rc->name = get_string(c, o, path, "name", true, true);
    if (rc->name)
        register_name(c, c->rc_names, rc->name, index, path, "route config");

    json_t *vhs = get_array(c, o, path, "virtual_hosts", true, p);
    if (!vhs)
        return;
    rc->n_vhosts = json_array_size(vhs);
    rc->vhosts = zalloc(c, rc->n_vhosts, sizeof(*rc->vhosts));
    json_t *vh_names = json_object();
    json_t *domains_seen = json_object();
    if (!vh_names || !domains_seen)
        oom();
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        json_t *v = json_array_get(vhs, i);
        char pv[PATH_MAX_LEN];
        path_idx(pv, p, i);
        if (!json_is_object(v)) {
            fail(c, pv, "must be an object");
            continue;
        }
        parse_vhost(c, &rc->vhosts[i], v, pv, domains_seen);
        if (rc->vhosts[i].name)
            register_name(c, vh_names, rc->vhosts[i].name, i, pv, "virtual host");
    }
    json_decref(vh_names);
    json_decref(domains_seen);
}

static void parse_route_configs(struct ctx *c, struct mesh_snapshot *s, json_t *arr,
                                const char *path)
{
    s->n_route_configs = json_array_size(arr);
    s->route_configs = zalloc(c, s->n_route_configs, sizeof(*s->route_configs));
    for (size_t i = 0; i < s->n_route_configs; i++) {
        json_t *o = json_array_get(arr, i);
        char p[PATH_MAX_LEN];
        path_idx(p, path, i);
        if (!json_is_object(o)) {
            fail(c, p, "must be an object");
            continue;
        }
        parse_route_config(c, &s->route_configs[i], i, o, p);
    }
}

/* ---- listeners, admin, timeouts ---------------------------------------- */

static const char *const listener_fields[] = {"name", "address", "port", "route_config", "handler",
                                              NULL};
static const char *const admin_fields[] = {"address", "port", NULL};
static const char *const timeout_fields[] = {"request_ms", "idle_ms", "stream_idle_ms",
                                             "drain_ms", NULL};
static const char *const root_fields[] = {"version", "admin", "timeouts", "listeners",
                                          "route_configs", "clusters", NULL};

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static void parse_listeners(struct ctx *c, struct mesh_snapshot *s, json_t *arr,
                            const char *path)
{
    s->n_listeners = json_array_size(arr);
    if (s->n_listeners == 0) {
        fail(c, path, "must have at least one listener");
        return;
    }
    s->listeners = zalloc(c, s->n_listeners, sizeof(*s->listeners));
    json_t *names = json_object();
    if (!names)
        oom();
    for (size_t i = 0; i < s->n_listeners; i++) {
        struct mesh_listener_cfg *l = &s->listeners[i];
        json_t *o = json_array_get(arr, i);
        char p[PATH_MAX_LEN];
        path_idx(p, path, i);
        if (!json_is_object(o)) {
            fail(c, p, "must be an object");
            continue;
        }
        check_fields(c, o, p, listener_fields);
        l->name = get_string(c, o, p, "name", true, true);
        if (l->name)
            register_name(c, names, l->name, i, p, "listener");
        bool addr_ok = get_addr(c, o, p, true, &l->address, &l->port, &l->sa, &l->salen);
        /* a listener either routes (route_config) or is served by a role's handler */
        l->handler = get_string(c, o, p, "handler", false, true);
        const char *rc = get_string(c, o, p, "route_config", !l->handler, true);
        if (rc && l->handler) {
            fail(c, p, "has both route_config and handler: give one");
        } else if (rc) {
            json_t *idx = json_object_get(c->rc_names, rc);
            if (idx) {
                l->route_config = &s->route_configs[json_integer_value(idx)];
            } else {
                char pr[PATH_MAX_LEN];
                path_key(pr, p, "route_config");
                fail(c, pr, "no route config named '%s'", rc);
            }
        }
        /* port 0 is ephemeral, so only fixed ports can collide */
        if (!addr_ok || l->port == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (s->listeners[j].address && same_sockaddr(&s->listeners[j].sa, &l->sa)) {
                fail(c, p, "address %s port %u is already used by listeners[%zu]", l->address,
                     (unsigned)l->port, j);
                break;
            }
        }
        if (s->admin_address && s->admin_port != 0 && same_sockaddr(&s->admin_sa, &l->sa))
            fail(c, p, "address %s port %u is already used by admin", l->address,
                 (unsigned)l->port);
    }
    json_decref(names);
}

static void parse_root(struct ctx *c, struct mesh_snapshot *s, json_t *root)
{
    char p[PATH_MAX_LEN];
    check_fields(c, root, "", root_fields);

    s->version = get_string(c, root, "", "version", true, true);

    json_t *admin = get_object(c, root, "", "admin", false, p);
    if (admin) {
        check_fields(c, admin, p, admin_fields);
        if (!get_addr(c, admin, p, true, &s->admin_address, &s->admin_port, &s->admin_sa,
                      &s->admin_salen))
            s->admin_address = NULL;
    }

    s->timeouts.request_ms = 15000;
    s->timeouts.idle_ms = 300000;
    s->timeouts.stream_idle_ms = 300000;
    s->timeouts.drain_ms = 5000;
    json_t *t = get_object(c, root, "", "timeouts", false, p);
    if (t) {
        check_fields(c, t, p, timeout_fields);
        get_duration(c, t, p, "request_ms", &s->timeouts.request_ms);
        get_duration(c, t, p, "idle_ms", &s->timeouts.idle_ms);
        get_duration(c, t, p, "stream_idle_ms", &s->timeouts.stream_idle_ms);
        get_duration(c, t, p, "drain_ms", &s->timeouts.drain_ms);
    }

    /* referenced objects first, so references resolve in one pass */
    json_t *a = get_array(c, root, "", "clusters", false, p);
    if (a)
        parse_clusters(c, s, a, p);
    a = get_array(c, root, "", "route_configs", false, p);
    if (a)
        parse_route_configs(c, s, a, p);
    a = get_array(c, root, "", "listeners", true, p);
    if (a)
        parse_listeners(c, s, a, p);
}

static struct mesh_snapshot *parse_doc(const char *json, size_t len, struct mesh_err *err)
{
    if (!json || len == 0) {
        mesh_err_add(err, 0, 0, NULL, "the document is empty");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        scrub(jerr.text); /* "near '...'" quotes the input */
        mesh_err_add(err, jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1,
                     NULL, "invalid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        mesh_err_add(err, 0, 0, NULL, "the snapshot must be a JSON object");
        json_decref(root);
        return NULL;
    }

    struct ctx c = {
        .err = err,
        .arena = mesh_arena_new(4096, 0),
        .cluster_names = json_object(),
        .rc_names = json_object(),
    };
    if (!c.cluster_names || !c.rc_names)
        oom();
    struct mesh_snapshot *s = zalloc(&c, 1, sizeof(*s));
    c.snap = s;
    s->arena = c.arena;
    atomic_init(&s->refcnt, 1);

    size_t before = err->total;
    parse_root(&c, s, root);
    json_decref(c.cluster_names);
    json_decref(c.rc_names);

    if (err->total != before) {
        json_decref(root);
        mesh_arena_free(c.arena);
        return NULL;
    }
    char *dump = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!dump)
        oom();
    s->json = sdup(&c, dump, strlen(dump));
    free(dump);
    return s;
}

struct mesh_snapshot *mesh_snapshot_parse(const char *json, size_t len, struct mesh_err *err)
{
    struct mesh_err scratch;
    if (!err)
        err = &scratch;
    mesh_err_init(err, NULL);
    return parse_doc(json, len, err);
}

/* Whole file into a malloc'd buffer; works for pipes and /dev/stdin too. */
static char *read_file(const char *path, size_t *len, struct mesh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mesh_err_add(err, 0, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 16384, n = 0;
    char *buf = mesh_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                mesh_err_add(err, 0, 0, NULL, "file is larger than %u bytes", MAX_FILE_SIZE);
                goto fail;
            }
            cap *= 2;
            buf = mesh_xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            mesh_err_add(err, 0, 0, NULL, "cannot read: %s", strerror(errno));
            goto fail;
        }
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

struct mesh_snapshot *mesh_snapshot_load_file(const char *path, struct mesh_err *err)
{
    struct mesh_err scratch;
    if (!err)
        err = &scratch;
    mesh_err_init(err, path);
    size_t len = 0;
    char *buf = read_file(path, &len, err);
    if (!buf)
        return NULL;
    struct mesh_snapshot *s = parse_doc(buf, len, err);
    free(buf);
    return s;
}

void mesh_snapshot_unref(struct mesh_snapshot *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1)
        mesh_arena_free(s->arena); /* <s> itself lives in the arena */
}

const struct mesh_cluster *mesh_snapshot_find_cluster(const struct mesh_snapshot *s,
                                                      const char *name)
{
    for (size_t i = 0; i < s->n_clusters; i++)
        if (strcmp(s->clusters[i].name, name) == 0)
            return &s->clusters[i];
    return NULL;
}
