/* Snapshot loader: route_configs[], virtual hosts and routes (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/filter.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const route_fields[] = {"match", "route", "direct_response", "redirect",
                                           "request_headers", "response_headers", "cors", "fault",
                                           NULL};
static const char *const action_fields[] = {"cluster", "weighted_clusters", "timeout_ms", "retry",
                                            "mirrors", "rewrite", NULL};
static const char *const weighted_fields[] = {"name", "weight", "request_headers",
                                              "response_headers", NULL};
static const char *const direct_fields[] = {"status", "body", NULL};
static const char *const vhost_fields[] = {"name", "domains", "routes", NULL};
static const char *const rc_fields[] = {"name", "virtual_hosts", NULL};


/* Cluster named <name> (clusters are parsed first, the array is final), or NULL with an error. */
const struct mesh_cluster *mesh_snap_find_cluster(struct mesh_snap_ctx *c, const char *name, const char *path,
                                               const char *key)
{
    json_t *idx = json_object_get(c->cluster_names, name);
    if (!idx) {
        char pc[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(pc, path, key);
        mesh_snap_fail(c, pc, "no cluster named '%s'", name);
        return NULL;
    }
    return &c->snap->clusters[json_integer_value(idx)];
}

/* A chain under construction: at most one filter per field, so a small fixed array. */
struct chain {
    struct mesh_filter f[8];
    size_t n;
};

/* Parses <obj>.<key>, when present, with the built-in filter type of that name. */
static void add_filter(struct mesh_snap_ctx *c, struct chain *ch, json_t *obj, const char *path,
                       const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    const struct mesh_filter_type *t = mesh_filter_find(key);
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    if (!t) {
        mesh_snap_fail(c, p, "not supported by this build");
        return;
    }
    const void *cfg = t->parse(c, v, p);
    if (cfg && ch->n < MESH_ARRAY_LEN(ch->f))
        ch->f[ch->n++] = (struct mesh_filter){t, cfg};
}

/* The chain's filters in the snapshot arena; NULL when there are none. */
static struct mesh_filter *chain_copy(struct mesh_snap_ctx *c, const struct chain *ch)
{
    struct mesh_filter *f = mesh_snap_zalloc(c, ch->n, sizeof(*f));
    if (ch->n)
        memcpy(f, ch->f, ch->n * sizeof(*f));
    return f;
}

json_t *mesh_snap_weighted_entry(struct mesh_snap_ctx *c, json_t *arr, size_t i, const char *path,
                                 const char *const *fields, char *pi,
                                 const struct mesh_cluster **cluster, uint32_t *weight)
{
    json_t *o = mesh_snap_array_object(c, arr, i, path, fields, pi);
    if (!o)
        return NULL;
    const char *name = mesh_snap_get_string(c, o, pi, "name", true, true);
    if (name)
        *cluster = mesh_snap_find_cluster(c, name, pi, "name");
    mesh_snap_get_uint(c, o, pi, "weight", true, 0, 1000000, weight);
    return o;
}

/* "weighted_clusters": [{"name": "a", "weight": 90}, ...]: a split by weight (canary). */
static void parse_weighted(struct mesh_snap_ctx *c, struct mesh_route *r, json_t *fwd, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, fwd, path, "weighted_clusters", true, p);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    if (n == 0) {
        mesh_snap_fail(c, p, "must name at least one cluster");
        return;
    }
    r->weighted = mesh_snap_zalloc(c, n, sizeof(*r->weighted));
    r->n_weighted = n;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char pi[MESH_SNAP_PATH_MAX];
        struct mesh_weighted_cluster *wc = &r->weighted[i];
        json_t *o = mesh_snap_weighted_entry(c, arr, i, p, weighted_fields, pi, &wc->cluster,
                                             &wc->weight);
        if (!o)
            continue;
        total += wc->weight;
        /* destination-level filters run after the route's */
        struct chain ch = {.n = 0};
        add_filter(c, &ch, o, pi, "request_headers");
        add_filter(c, &ch, o, pi, "response_headers");
        wc->filters = chain_copy(c, &ch);
        wc->n_filters = ch.n;
    }
    if (total == 0)
        mesh_snap_fail(c, p, "weights must not all be 0");
    r->total_weight = (uint32_t)total;
    r->cluster = r->weighted[0].cluster; /* a valid default for code that reads one cluster */
}

/* "route": forward to a cluster or a weighted split, with its timeout, retry, mirrors. */
static void parse_forward(struct mesh_snap_ctx *c, struct mesh_route *r, json_t *fwd, const char *p,
                          struct mesh_route_policy *pol)
{
    mesh_snap_check_fields(c, fwd, p, action_fields);
    mesh_snap_get_duration(c, fwd, p, "timeout_ms", &r->timeout_ms);
    char pk[MESH_SNAP_PATH_MAX];
    json_t *rv = json_object_get(fwd, "retry");
    if (rv) {
        mesh_snap_path_key(pk, p, "retry");
        pol->retry = mesh_snap_parse_retry(c, rv, pk);
    }
    json_t *mv = json_object_get(fwd, "mirrors");
    if (mv) {
        mesh_snap_path_key(pk, p, "mirrors");
        pol->mirrors = mesh_snap_parse_mirrors(c, mv, pk, &pol->n_mirrors);
    }
    json_t *wc = json_object_get(fwd, "weighted_clusters");
    if (!wc == !json_object_get(fwd, "cluster")) {
        mesh_snap_fail(c, p, "must have exactly one of \"cluster\" or \"weighted_clusters\"");
        return;
    }
    if (wc) {
        parse_weighted(c, r, fwd, p);
        return;
    }
    const char *name = mesh_snap_get_string(c, fwd, p, "cluster", true, true);
    if (name)
        r->cluster = mesh_snap_find_cluster(c, name, p, "cluster");
}

static void parse_direct(struct mesh_snap_ctx *c, struct mesh_route *r, json_t *direct,
                         const char *p)
{
    mesh_snap_check_fields(c, direct, p, direct_fields);
    uint32_t status = 0;
    if (mesh_snap_get_uint(c, direct, p, "status", true, 200, 599, &status))
        r->direct_status = (int)status;
    r->direct_body = mesh_snap_get_string(c, direct, p, "body", false, false);
    r->direct_body_len = r->direct_body ? strlen(r->direct_body) : 0;
}

static void parse_route(struct mesh_snap_ctx *c, struct mesh_route *r, json_t *o, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, route_fields);

    json_t *m = mesh_snap_get_object(c, o, path, "match", true, p);
    if (m)
        mesh_snap_parse_match(c, &r->match, m, p);

    json_t *fwd = json_object_get(o, "route");
    json_t *direct = json_object_get(o, "direct_response");
    json_t *redir = json_object_get(o, "redirect");
    if ((fwd != NULL) + (direct != NULL) + (redir != NULL) != 1) {
        mesh_snap_fail(c, path,
                       "must have exactly one of \"route\", \"direct_response\" or \"redirect\"");
        return;
    }
    struct mesh_route_policy pol = {.retry = NULL};
    json_t *fwd_obj = NULL;
    if (fwd) {
        r->action = MESH_ACTION_CLUSTER;
        fwd_obj = mesh_snap_get_object(c, o, path, "route", true, p);
        if (fwd_obj)
            parse_forward(c, r, fwd_obj, p, &pol);
    } else if (direct) {
        r->action = MESH_ACTION_DIRECT;
        direct = mesh_snap_get_object(c, o, path, "direct_response", true, p);
        if (direct)
            parse_direct(c, r, direct, p);
    } else {
        r->action = MESH_ACTION_REDIRECT; /* answered by the redirect filter */
    }

    /* the documented order: cors, fault, redirect, rewrite, request_headers; then the response side */
    struct chain ch = {.n = 0};
    add_filter(c, &ch, o, path, "cors");
    add_filter(c, &ch, o, path, "fault");
    add_filter(c, &ch, o, path, "redirect");
    if (fwd_obj) {
        mesh_snap_path_key(p, path, "route");
        add_filter(c, &ch, fwd_obj, p, "rewrite");
    }
    add_filter(c, &ch, o, path, "request_headers");
    add_filter(c, &ch, o, path, "response_headers");

    /* nothing beyond the action: no policy, so the request path tests one pointer */
    if (!ch.n && !pol.retry && !pol.n_mirrors)
        return;
    struct mesh_route_policy *rp = mesh_snap_zalloc(c, 1, sizeof(*rp));
    *rp = pol;
    rp->filters = chain_copy(c, &ch);
    rp->n_filters = ch.n;
    r->policy = rp;
}

/*
 * Checks the shape of a domain: "*", "*<suffix>", "<prefix>*" or a plain name
 * (Envoy's forms); no port, since the router strips the authority's port.
 */
static void check_domain(struct mesh_snap_ctx *c, const char *d, const char *path)
{
    size_t n = strlen(d);
    if (n == 1 && d[0] == '*')
        return;
    const char *star = strchr(d, '*');
    if (star && star != d && star != d + n - 1)
        mesh_snap_fail(c, path, "'*' is only allowed at the start or the end of a domain");
    else if (star && strchr(star + 1, '*'))
        mesh_snap_fail(c, path, "only one '*' is allowed in a domain");
    else if (d[0] == '[' ? (strchr(d, ']') == NULL || strchr(d, ']')[1] != '\0')
                         : strchr(d, ':') != NULL)
        mesh_snap_fail(c, path, "must be a host name without a port");
    for (const char *q = d; *q; q++) {
        if ((unsigned char)*q <= ' ' || *q == '/' || *q == 0x7f) {
            mesh_snap_fail(c, path, "must not contain spaces, control characters or '/'");
            break;
        }
    }
}

static void parse_vhost(struct mesh_snap_ctx *c, struct mesh_vhost *vh, json_t *o, const char *path,
                        json_t *domains_seen)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, vhost_fields);
    vh->name = mesh_snap_get_string(c, o, path, "name", true, true);

    json_t *doms = mesh_snap_get_array(c, o, path, "domains", true, p);
    if (doms) {
        if (json_array_size(doms) == 0)
            mesh_snap_fail(c, p, "must not be empty");
        vh->n_domains = json_array_size(doms);
        vh->domains = mesh_snap_zalloc(c, vh->n_domains, sizeof(*vh->domains));
        for (size_t i = 0; i < vh->n_domains; i++) {
            json_t *d = json_array_get(doms, i);
            char pd[MESH_SNAP_PATH_MAX];
            mesh_snap_path_idx(pd, p, i);
            if (!json_is_string(d) || json_string_length(d) == 0) {
                mesh_snap_fail(c, pd, "must be a non-empty string");
                vh->domains[i] = "";
                continue;
            }
            char *low = mesh_snap_sdup(c, json_string_value(d), json_string_length(d));
            for (char *q = low; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q - 'A' + 'a');
            vh->domains[i] = low;
            check_domain(c, low, pd);
            /* one domain in two virtual hosts would make the choice order-dependent */
            json_t *prev = json_object_get(domains_seen, low);
            if (prev)
                mesh_snap_fail(c, pd, "duplicate domain '%s' (also in %s)", low, json_string_value(prev));
            else if (json_object_set_new(domains_seen, low, json_string(path)) != 0)
                mesh_snap_oom();
        }
    }

    json_t *routes = mesh_snap_get_array(c, o, path, "routes", true, p);
    if (!routes)
        return;
    vh->n_routes = json_array_size(routes);
    vh->routes = mesh_snap_zalloc(c, vh->n_routes, sizeof(*vh->routes));
    for (size_t i = 0; i < vh->n_routes; i++) {
        char pr[MESH_SNAP_PATH_MAX];
        json_t *r = mesh_snap_array_object(c, routes, i, p, NULL, pr);
        if (r)
            parse_route(c, &vh->routes[i], r, pr);
    }
    mesh_snap_index_vhost(c, vh);
}

static void parse_route_config(struct mesh_snap_ctx *c, struct mesh_route_config *rc, size_t index,
                               json_t *o, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, rc_fields);
    rc->name = mesh_snap_get_string(c, o, path, "name", true, true);
    if (rc->name)
        mesh_snap_register_name(c, c->rc_names, rc->name, index, path, "route config");

    json_t *vhs = mesh_snap_get_array(c, o, path, "virtual_hosts", true, p);
    if (!vhs)
        return;
    rc->n_vhosts = json_array_size(vhs);
    rc->vhosts = mesh_snap_zalloc(c, rc->n_vhosts, sizeof(*rc->vhosts));
    json_t *vh_names = json_object();
    json_t *domains_seen = json_object();
    if (!vh_names || !domains_seen)
        mesh_snap_oom();
    for (size_t i = 0; i < rc->n_vhosts; i++) {
        char pv[MESH_SNAP_PATH_MAX];
        json_t *v = mesh_snap_array_object(c, vhs, i, p, NULL, pv);
        if (!v)
            continue;
        parse_vhost(c, &rc->vhosts[i], v, pv, domains_seen);
        if (rc->vhosts[i].name)
            mesh_snap_register_name(c, vh_names, rc->vhosts[i].name, i, pv, "virtual host");
    }
    json_decref(vh_names);
    json_decref(domains_seen);
}

void mesh_snap_parse_route_configs(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                                const char *path)
{
    s->n_route_configs = json_array_size(arr);
    s->route_configs = mesh_snap_zalloc(c, s->n_route_configs, sizeof(*s->route_configs));
    for (size_t i = 0; i < s->n_route_configs; i++) {
        char p[MESH_SNAP_PATH_MAX];
        json_t *o = mesh_snap_array_object(c, arr, i, path, NULL, p);
        if (o)
            parse_route_config(c, &s->route_configs[i], i, o, p);
    }
}
