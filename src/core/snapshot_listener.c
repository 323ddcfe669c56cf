/* Snapshot loader: listeners[] and their tcp_routes[] (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const listener_fields[] = {"name",       "address",   "port", "route_config",
                                              "handler",    "tcp_routes", "unmatched", NULL};
static const char *const unmatched_fields[] = {"action", "cluster", "http_ports", "idle_timeout_ms",
                                               NULL};
static const char *const tcp_route_fields[] = {"match", "cluster", "weighted_clusters",
                                               "idle_timeout_ms", NULL};
static const char *const tcp_match_fields[] = {"destination_port", "destination_addresses", "sni",
                                               NULL};
static const char *const tcp_weighted_fields[] = {"name", "weight", NULL};

#define TCP_IDLE_DEFAULT_MS 3600000u

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

/* ---- tcp_routes[] ---------------------------------------------------------------- */

/* "10.0.0.0/8", "fd00::/8" or a plain address (a /32 or /128). Host bits are cleared. */
static bool parse_cidr(const char *s, struct mesh_cidr *out, const char **why)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t iplen = slash ? (size_t)(slash - s) : strlen(s);
    *why = "must be an IP address or a CIDR range (\"10.0.0.0/8\", \"fd00::/8\")";
    if (iplen == 0 || iplen >= sizeof(ip))
        return false;
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, ip, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, ip, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return false;
    }
    unsigned len = max;
    if (slash) {
        const char *d = slash + 1;
        size_t nd = strlen(d);
        if (nd == 0 || nd > 3)
            return false;
        len = 0;
        for (size_t i = 0; i < nd; i++) {
            if (!isdigit((unsigned char)d[i]))
                return false;
            len = len * 10 + (unsigned)(d[i] - '0');
        }
        if (len > max) {
            *why = max == 32 ? "prefix length must be between 0 and 32"
                             : "prefix length must be between 0 and 128";
            return false;
        }
    }
    out->prefix_len = (uint8_t)len;
    /* clear the host bits: matching then compares whole bytes and one masked byte */
    size_t nbytes = max / 8;
    for (size_t i = 0; i < nbytes; i++) {
        unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
        out->addr[i] &= (uint8_t)(0xffu << (8 - keep));
    }
    return true;
}

/*
 * A server name as a TLS client sends it: letters, digits, '-', '_', dot-separated
 * non-empty labels, at most 253 characters. "*.example.com" (a wildcard for every name
 * ending in ".example.com"). Lowercased in place.
 */
static bool valid_sni(char *s, const char **why)
{
    size_t n = strlen(s);
    const char *name = s;
    if (n >= 2 && s[0] == '*' && s[1] == '.')
        name = s + 2;
    *why = "must be a host name (\"a.example.com\") or a wildcard \"*.example.com\"";
    size_t nn = strlen(name);
    if (nn == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < nn; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum(ch) && ch != '-' && ch != '_')
            return false;
        if (++label > 63)
            return false;
    }
    if (label == 0)
        return false;
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

static void parse_tcp_match(struct mesh_snap_ctx *c, struct mesh_tcp_route *r, json_t *m,
                            const char *path)
{
    mesh_snap_check_fields(c, m, path, tcp_match_fields);
    uint32_t port = 0;
    if (mesh_snap_get_uint(c, m, path, "destination_port", false, 1, 65535, &port))
        r->dst_port = (uint16_t)port;

    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, m, path, "destination_addresses", false, p);
    if (arr) {
        size_t n = json_array_size(arr);
        if (n == 0)
            mesh_snap_fail(c, p, "must not be empty (leave it out to match any address)");
        struct mesh_cidr *v = mesh_snap_zalloc(c, n, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
            char pi[MESH_SNAP_PATH_MAX];
            mesh_snap_path_idx(pi, p, i);
            json_t *e = json_array_get(arr, i);
            const char *why;
            if (!json_is_string(e))
                mesh_snap_fail(c, pi, "must be a string");
            else if (!parse_cidr(json_string_value(e), &v[i], &why))
                mesh_snap_fail(c, pi, "%s", why);
        }
        r->dst_addrs = v;
        r->n_dst_addrs = n;
    }

    arr = mesh_snap_get_array(c, m, path, "sni", false, p);
    if (arr) {
        size_t n = json_array_size(arr);
        if (n == 0)
            mesh_snap_fail(c, p, "must not be empty (leave it out to match without SNI)");
        const char **v = mesh_snap_zalloc(c, n, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
            char pi[MESH_SNAP_PATH_MAX];
            mesh_snap_path_idx(pi, p, i);
            json_t *e = json_array_get(arr, i);
            const char *why;
            if (!json_is_string(e)) {
                mesh_snap_fail(c, pi, "must be a string");
                continue;
            }
            char *name = mesh_snap_sdup(c, json_string_value(e), json_string_length(e));
            if (!valid_sni(name, &why))
                mesh_snap_fail(c, pi, "%s", why);
            v[i] = name;
        }
        r->sni = v;
        r->n_sni = n;
    }
}

static void parse_tcp_weighted(struct mesh_snap_ctx *c, struct mesh_tcp_route *r, json_t *arr,
                               const char *path)
{
    size_t n = json_array_size(arr);
    if (n == 0) {
        mesh_snap_fail(c, path, "must name at least one cluster");
        return;
    }
    struct mesh_tcp_weighted *v = mesh_snap_zalloc(c, n, sizeof(*v));
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        mesh_snap_weighted_entry(c, arr, i, path, tcp_weighted_fields, pi, &v[i].cluster,
                                 &v[i].weight);
        total += v[i].weight;
    }
    if (total == 0)
        mesh_snap_fail(c, path, "weights must not all be 0");
    r->weighted = v;
    r->n_weighted = n;
    r->total_weight = (uint32_t)total; /* at most 1000000 x array size: checked by the caller */
}

static void parse_tcp_route(struct mesh_snap_ctx *c, struct mesh_tcp_route *r, json_t *o,
                            const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, tcp_route_fields);
    json_t *m = mesh_snap_get_object(c, o, path, "match", false, p);
    if (m)
        parse_tcp_match(c, r, m, p);
    r->idle_timeout_ms = TCP_IDLE_DEFAULT_MS;
    mesh_snap_get_duration(c, o, path, "idle_timeout_ms", &r->idle_timeout_ms);

    json_t *wc = json_object_get(o, "weighted_clusters");
    if (!wc == !json_object_get(o, "cluster")) {
        mesh_snap_fail(c, path, "must have exactly one of \"cluster\" or \"weighted_clusters\"");
        return;
    }
    if (wc) {
        json_t *arr = mesh_snap_get_array(c, o, path, "weighted_clusters", true, p);
        if (arr && json_array_size(arr) > 1000)
            mesh_snap_fail(c, p, "must have at most 1000 entries");
        else if (arr)
            parse_tcp_weighted(c, r, arr, p);
        return;
    }
    const char *name = mesh_snap_get_string(c, o, path, "cluster", true, true);
    if (name)
        r->cluster = mesh_snap_find_cluster(c, name, path, "cluster");
}

/* NULL when the array is empty (the listener is then HTTP only). */
static struct mesh_listener_l4 *parse_tcp_routes(struct mesh_snap_ctx *c, json_t *arr,
                                                 const char *path)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return NULL;
    struct mesh_listener_l4 *l4 = mesh_snap_zalloc(c, 1, sizeof(*l4));
    struct mesh_tcp_route *routes = mesh_snap_zalloc(c, n, sizeof(*routes));
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, path, NULL, pi);
        if (!o)
            continue;
        parse_tcp_route(c, &routes[i], o, pi);
        if (routes[i].n_sni)
            l4->any_sni = true;
    }
    l4->routes = routes;
    l4->n_routes = n;
    return l4;
}

/* ---- unmatched -------------------------------------------------------------------- */

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * "unmatched": {"action": "passthrough"|"refuse", "cluster", "http_ports", "idle_timeout_ms"}.
 * Filled into <u> (the listener's l4 block, created for it).
 */
static void parse_unmatched(struct mesh_snap_ctx *c, struct mesh_unmatched *u, json_t *o,
                            const char *path)
{
    mesh_snap_check_fields(c, o, path, unmatched_fields);
    const char *action = mesh_snap_get_string(c, o, path, "action", true, true);
    char p[MESH_SNAP_PATH_MAX];
    if (action && strcmp(action, "passthrough") == 0) {
        u->action = MESH_UNMATCHED_PASSTHROUGH;
    } else if (action && strcmp(action, "refuse") == 0) {
        u->action = MESH_UNMATCHED_REFUSE;
    } else if (action) {
        mesh_snap_path_key(p, path, "action");
        mesh_snap_fail(c, p, "must be \"passthrough\" or \"refuse\"");
    }
    const char *name = mesh_snap_get_string(c, o, path, "cluster",
                                            u->action == MESH_UNMATCHED_PASSTHROUGH, true);
    if (name && u->action == MESH_UNMATCHED_REFUSE) {
        mesh_snap_path_key(p, path, "cluster");
        mesh_snap_fail(c, p, "only with action \"passthrough\"");
    } else if (name) {
        u->cluster = mesh_snap_find_cluster(c, name, path, "cluster");
        if (u->cluster && u->cluster->lb_policy != MESH_LBP_PASSTHROUGH) {
            mesh_snap_path_key(p, path, "cluster");
            mesh_snap_fail(c, p, "cluster '%s' must have lb_policy \"passthrough\" (it connects "
                           "to the original destination)", name);
        }
    }
    u->tcp.idle_timeout_ms = TCP_IDLE_DEFAULT_MS;
    mesh_snap_get_duration(c, o, path, "idle_timeout_ms", &u->tcp.idle_timeout_ms);
    u->tcp.cluster = u->cluster;
    if (u->cluster) {
        struct mesh_route *r = mesh_snap_zalloc(c, 1, sizeof(*r));
        r->action = MESH_ACTION_CLUSTER;
        r->cluster = u->cluster;
        u->http = r;
    }

    json_t *arr = mesh_snap_get_array(c, o, path, "http_ports", false, p);
    size_t n = arr ? json_array_size(arr) : 0;
    if (!n)
        return;
    uint16_t *v = mesh_snap_zalloc(c, n, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(pi, p, i);
        json_t *e = json_array_get(arr, i);
        json_int_t x = json_is_integer(e) ? json_integer_value(e) : 0;
        if (x < 1 || x > 65535)
            mesh_snap_fail(c, pi, "must be an integer between 1 and 65535");
        else
            v[i] = (uint16_t)x;
    }
    qsort(v, n, sizeof(*v), cmp_u16);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* duplicates are harmless: kept once */
        if (k == 0 || v[i] != v[k - 1])
            v[k++] = v[i];
    u->http_ports = v;
    u->n_http_ports = k;
}

/* ---- listeners[] ------------------------------------------------------------------ */

void mesh_snap_parse_listeners(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                            const char *path)
{
    s->n_listeners = json_array_size(arr);
    if (s->n_listeners == 0) {
        mesh_snap_fail(c, path, "must have at least one listener");
        return;
    }
    s->listeners = mesh_snap_zalloc(c, s->n_listeners, sizeof(*s->listeners));
    json_t *names = json_object();
    if (!names)
        mesh_snap_oom();
    for (size_t i = 0; i < s->n_listeners; i++) {
        struct mesh_listener_cfg *l = &s->listeners[i];
        char p[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, path, listener_fields, p);
        if (!o)
            continue;
        l->name = mesh_snap_get_string(c, o, p, "name", true, true);
        if (l->name)
            mesh_snap_register_name(c, names, l->name, i, p, "listener");
        bool addr_ok = mesh_snap_get_addr(c, o, p, true, &l->address, &l->port, &l->sa, &l->salen);
        /* a listener either routes (route_config and/or tcp_routes) or is served by a
         * role's handler */
        l->handler = mesh_snap_get_string(c, o, p, "handler", false, true);
        const char *rc = mesh_snap_get_string(c, o, p, "route_config", false, true);
        char pt[MESH_SNAP_PATH_MAX];
        json_t *tcp = mesh_snap_get_array(c, o, p, "tcp_routes", false, pt);
        if (l->handler && (json_object_get(o, "route_config") || json_object_get(o, "tcp_routes"))) {
            mesh_snap_fail(c, p, "has a handler and %s: give one",
                           json_object_get(o, "route_config") ? "route_config" : "tcp_routes");
        } else if (!l->handler && !json_object_get(o, "route_config") &&
                   !json_object_get(o, "tcp_routes")) {
            char pr[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(pr, p, "route_config");
            mesh_snap_fail(c, pr, "is required (or give \"tcp_routes\" or \"handler\")");
        } else if (tcp && json_array_size(tcp) == 0 && !json_object_get(o, "route_config")) {
            mesh_snap_fail(c, pt, "must have at least one route (or give route_config)");
        }
        if (rc && !l->handler) {
            json_t *idx = json_object_get(c->rc_names, rc);
            if (idx) {
                l->route_config = &s->route_configs[json_integer_value(idx)];
            } else {
                char pr[MESH_SNAP_PATH_MAX];
                mesh_snap_path_key(pr, p, "route_config");
                mesh_snap_fail(c, pr, "no route config named '%s'", rc);
            }
        }
        struct mesh_listener_l4 *l4 = tcp && !l->handler ? parse_tcp_routes(c, tcp, pt) : NULL;
        char pu[MESH_SNAP_PATH_MAX];
        json_t *um = mesh_snap_get_object(c, o, p, "unmatched", false, pu);
        if (um && l->handler) {
            mesh_snap_fail(c, pu, "not with a handler");
        } else if (um) {
            /* the l4 block exists for every listener with "unmatched": each connection's
             * destination is looked at (tcp_proxy.c), even without tcp_routes */
            if (!l4)
                l4 = mesh_snap_zalloc(c, 1, sizeof(*l4));
            parse_unmatched(c, &l4->unmatched, um, pu);
        }
        l->l4 = l4;
        /* port 0 is ephemeral, so only fixed ports can collide */
        if (!addr_ok || l->port == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (s->listeners[j].address && same_sockaddr(&s->listeners[j].sa, &l->sa)) {
                mesh_snap_fail(c, p, "address %s port %u is already used by listeners[%zu]", l->address,
                     (unsigned)l->port, j);
                break;
            }
        }
        if (s->admin_address && s->admin_port != 0 && same_sockaddr(&s->admin_sa, &l->sa))
            mesh_snap_fail(c, p, "address %s port %u is already used by admin", l->address,
                 (unsigned)l->port);
    }
    json_decref(names);
}
