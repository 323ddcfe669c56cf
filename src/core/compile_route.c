#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include "core/compile-int.h"
#include "core/compile_dest.h"

/*
 * Virtual hosts and routes: VirtualService http routes translated into the
 * snapshot's route tables, for the sidecar's outbound listener (one virtual
 * host per visible service) and for gateways (one listener per Gateway server
 * port, virtual hosts from the bound VirtualServices).
 *
 * A match the snapshot cannot express is left out with a warning (since
 * without that condition it would catch traffic that is not its own); the
 * route's other features come from compile_match.c and compile_action.c.
 */

/* ---- One http route ---- */

static bool names_gateway(const char *ref, const char *vs_ns, const struct mesh_resource *gw)
{
    const char *slash = strchr(ref, '/');
    if (!slash)
        return strcmp(vs_ns, gw->meta.namespace_) == 0 && strcmp(ref, gw->meta.name) == 0;
    size_t n = (size_t)(slash - ref);
    return strlen(gw->meta.namespace_) == n && strncmp(ref, gw->meta.namespace_, n) == 0 &&
           strcmp(slash + 1, gw->meta.name) == 0;
}

bool mesh_cc_gateways_include(const char **gws, size_t n, const char *vs_ns,
                              const struct mesh_resource *gw)
{
    if (n == 0)
        return gw == NULL; /* absent = ["mesh"] */
    for (size_t i = 0; i < n; i++) {
        if (!gw && strcmp(gws[i], "mesh") == 0)
            return true;
        if (gw && strcmp(gws[i], "mesh") != 0 && names_gateway(gws[i], vs_ns, gw))
            return true;
    }
    return false;
}

/*
 * The conditions of a match that are known when compiling (port, gateways,
 * the client's labels and namespace): a match that cannot apply to this proxy
 * is dropped here, as Istio does.
 */
static bool match_applies(struct mesh_cc *c, const struct mesh_crctx *x,
                          const struct mesh_resource *r,
                          const struct mesh_http_match *m)
{
    if (m->port && x->match_port && m->port != x->match_port)
        return false;
    if (m->n_gateways &&
        !mesh_cc_gateways_include(m->gateways, m->n_gateways, r->meta.namespace_, x->gw))
        return false;
    if (m->n_source_labels && !mesh_cc_labels_match(m->source_labels, m->n_source_labels,
                                                    c->node->labels, c->node->n_labels))
        return false;
    if (m->source_namespace && strcmp(m->source_namespace, c->node->namespace_) != 0)
        return false;
    return true;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Base64 (standard or URL alphabet, padding optional) into <out>; NULL on bad input or NUL. */
static char *b64decode(struct mesh_cc *c, const char *in, size_t *len)
{
    size_t n = strlen(in);
    char *out = mesh_cc_alloc(c, n + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=' || in[i] == '\n' || in[i] == '\r')
            continue;
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return NULL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o] = (char)((acc >> bits) & 0xff);
            if (out[o] == '\0')
                return NULL;
            o++;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

static json_t *direct_action(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                             const struct mesh_http_direct_response *d)
{
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "status", json_integer(d->status));
    if (d->body && (d->body->string || d->body->bytes)) {
        const char *text = d->body->string;
        size_t len = text ? strlen(text) : 0;
        if (!text)
            text = b64decode(c, d->body->bytes, &len);
        json_t *s = text ? json_stringn(text, len) : NULL;
        if (!s) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r,
                         mesh_cc_printf(c, "%s.directResponse.body", p),
                         "a body that is not UTF-8 text cannot be carried by this version of "
                         "meshd; the route is left out");
            json_decref(o);
            return NULL;
        }
        json_object_set_new_nocheck(o, "body", s);
    }
    return o;
}

/* Whether cluster <name> hashes (ring_hash, maglev): Istio's retries then keep the host. */
static bool cluster_hashes(struct mesh_cc *c, const char *name)
{
    json_t *cl = mesh_cmap_get(&c->clusters, name);
    const char *lb = json_string_value(json_object_get(cl, "lb_policy"));
    return lb && (strcmp(lb, "ring_hash") == 0 || strcmp(lb, "maglev") == 0);
}

/* One weighted_clusters entry; destination-level header operations make it its own. */
static void split_add(struct mesh_cc *c, const struct mesh_resource *r, const char *dp,
                      json_t *split, const char *name, uint32_t w,
                      const struct mesh_route_headers *hd)
{
    json_t *req = hd ? mesh_cc_header_ops(c, r, MESH_CC_JOIN(c, dp, ".headers.request"),
                                          hd->request, false)
                     : NULL;
    json_t *resp = hd ? mesh_cc_header_ops(c, r, MESH_CC_JOIN(c, dp, ".headers.response"),
                                           hd->response, false)
                      : NULL;
    if (!req && !resp) {
        /* two plain destinations naming one cluster: one entry with both weights */
        for (size_t i = 0; i < json_array_size(split); i++) {
            json_t *e = json_array_get(split, i);
            if (json_object_size(e) == 2 &&
                strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
                json_int_t have = json_integer_value(json_object_get(e, "weight"));
                json_object_set_new_nocheck(e, "weight", json_integer(have + w));
                return;
            }
        }
    }
    json_t *e = json_object();
    json_object_set_new_nocheck(e, "name", json_string(name));
    json_object_set_new_nocheck(e, "weight", json_integer(w));
    if (req)
        json_object_set_new_nocheck(e, "request_headers", req);
    if (resp)
        json_object_set_new_nocheck(e, "response_headers", resp);
    json_array_append_new(split, e);
}

static json_t *forward_action(struct mesh_cc *c, const struct mesh_crctx *x,
                              const struct mesh_resource *r, const char *p,
                              const struct mesh_http_route *h)
{
    json_t *o = json_object();
    json_t *split = json_array();
    uint64_t total = 0;
    bool hashing = false;
    for (size_t k = 0; k < h->n_route; k++) {
        char *dp = mesh_cc_path(c, p, ".route", k, ".destination");
        const char *name = mesh_cc_dest_cluster(c, x, r, dp, h->route[k].destination, "destination",
                                                "the route is left out");
        if (!name)
            goto fail;
        hashing = hashing || cluster_hashes(c, name);
        /* a single destination takes everything, whatever its weight (Istio) */
        uint32_t w = h->n_route == 1 ? 100
                                     : h->route[k].weight > 0 ? (uint32_t)h->route[k].weight : 0;
        split_add(c, r, mesh_cc_path(c, p, ".route", k, ""), split, name, w,
                  h->route[k].headers);
        total += w;
    }
    if (!mesh_cc_split_total_ok(c, r, p, total))
        goto fail;
    json_t *only = json_array_size(split) == 1 ? json_array_get(split, 0) : NULL;
    if (only && json_object_size(only) == 2)
        json_object_set_nocheck(o, "cluster", json_object_get(only, "name"));
    else
        json_object_set_nocheck(o, "weighted_clusters", split);
    json_decref(split);
    if (h->timeout.set) {
        int64_t ms = h->timeout.ns / 1000000;
        json_object_set_new_nocheck(o, "timeout_ms",
                                    json_integer(ms > UINT32_MAX ? UINT32_MAX : ms));
    }
    json_t *retry = mesh_cc_retry(c, r, p, h->retries, hashing);
    if (retry)
        json_object_set_new_nocheck(o, "retry", retry);
    mesh_cc_route_extras(c, x, r, p, h, o);
    return o;
fail:
    json_decref(split);
    json_decref(o);
    return NULL;
}

/* Notes on fields that only mean something for a forwarding route. */
static void note_unused(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                        const struct mesh_http_route *h)
{
    const struct {
        bool set;
        const char *field;
    } f[] = {
        {h->rewrite != NULL, "rewrite"},
        {h->retries != NULL, "retries"},
        {h->timeout.set, "timeout"},
        {h->mirror != NULL || h->n_mirrors > 0, "mirror"},
    };
    for (size_t i = 0; i < MESH_ARRAY_LEN(f); i++)
        if (f[i].set)
            mesh_cc_diag(c, MESH_DIAG_NOTE, r, mesh_cc_printf(c, "%s.%s", p, f[i].field),
                         "ignored: the route answers without forwarding");
}

/* A route of <match> (taken) and the fields of <tmpl> (shared, not copied). */
static void append_route(json_t *routes, json_t *match, json_t *tmpl)
{
    json_t *rt = json_object();
    json_object_set_new_nocheck(rt, "match", match);
    json_object_update(rt, tmpl);
    json_array_append_new(routes, rt);
}

/* Appends the snapshot routes of spec.http[<i>] of VirtualService <r> to <routes>. */
static void emit_http_route(struct mesh_cc *c, const struct mesh_crctx *x,
                            const struct mesh_resource *r, size_t i, json_t *routes)
{
    const struct mesh_http_route *h = &r->typed.virtual_service->http[i];
    char *p = mesh_cc_path(c, "spec.http", "", i, "");
    size_t n_app = 0;
    for (size_t j = 0; j < h->n_match; j++)
        n_app += match_applies(c, x, r, &h->match[j]);
    if (h->n_match && n_app == 0)
        return; /* not for this proxy or this port */
    if (h->delegate) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, mesh_cc_printf(c, "%s.delegate", p),
                     "not enforced by this version of meshd; the route is left out");
        return;
    }

    json_t *action;
    const char *akey;
    if (h->direct_response) {
        action = direct_action(c, r, p, h->direct_response);
        akey = "direct_response";
        note_unused(c, r, p, h);
    } else if (h->redirect) {
        action = mesh_cc_redirect(c, x, r, p, h->redirect);
        akey = "redirect";
        note_unused(c, r, p, h);
    } else if (h->n_route) {
        action = forward_action(c, x, r, p, h);
        akey = "route";
    } else {
        return; /* the loader refuses a route with no action */
    }
    if (!action)
        return;
    /* everything but the match: shared by the routes of each OR'ed match */
    json_t *tmpl = json_object();
    json_object_set_new_nocheck(tmpl, akey, action);
    mesh_cc_route_filters(c, r, p, h, tmpl);

    if (h->n_match == 0) {
        json_t *m = json_object();
        json_object_set_new_nocheck(m, "prefix", json_string("/"));
        append_route(routes, m, tmpl);
    }
    for (size_t j = 0; j < h->n_match; j++) {
        if (!match_applies(c, x, r, &h->match[j]))
            continue;
        const char *left_out = n_app == 1 ? "the route is left out" : "this match is left out";
        json_t *m = mesh_cc_http_match(c, r, mesh_cc_path(c, p, ".match", j, ""), &h->match[j],
                                       left_out);
        if (m)
            append_route(routes, m, tmpl);
    }
    json_decref(tmpl);
}

static json_t *vs_routes(struct mesh_cc *c, const struct mesh_crctx *x,
                         const struct mesh_resource *r)
{
    json_t *routes = json_array();
    for (size_t i = 0; i < r->typed.virtual_service->n_http; i++)
        emit_http_route(c, x, r, i, routes);
    return routes;
}

/* ---- Sidecar: one virtual host per visible service ---- */

struct cvs {
    const struct mesh_resource *res;
    const char *host;              /* expanded */
    size_t host_idx;
    bool matched;                  /* matched at least one visible service */
    struct cvs *next;              /* same exact host, key order */
};

struct vs_index {
    struct mesh_cmap exact;
    struct cvs **all;              /* every (VS, host) pair, key order */
    size_t n_all;
    struct cvs **wild;             /* the pairs with a wildcard host, key order */
    size_t n_wild;
};

static struct vs_index *index_mesh_vs(struct mesh_cc *c)
{
    struct vs_index *ix = mesh_cc_alloc(c, sizeof(*ix));
    mesh_cc_own_map(c, &ix->exact);
    size_t total = 0;
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_VIRTUAL_SERVICE]; i++)
        total += c->by_kind[MESH_KIND_VIRTUAL_SERVICE][i]->typed.virtual_service->n_hosts;
    ix->all = mesh_cc_alloc(c, (total + 1) * sizeof(*ix->all));
    ix->wild = mesh_cc_alloc(c, (total + 1) * sizeof(*ix->wild));
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_VIRTUAL_SERVICE]; i++) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_VIRTUAL_SERVICE][i];
        const struct mesh_virtual_service *vs = r->typed.virtual_service;
        if (!mesh_cc_gateways_include(vs->gateways, vs->n_gateways, r->meta.namespace_, NULL))
            continue;
        if (!mesh_cc_exported(r->meta.namespace_, vs->export_to, vs->n_export_to,
                              c->node->namespace_))
            continue;
        for (size_t h = 0; h < vs->n_hosts; h++) {
            struct cvs *v = mesh_cc_alloc(c, sizeof(*v));
            v->res = r;
            v->host = mesh_cc_expand_host(c, vs->hosts[h], r->meta.namespace_);
            v->host_idx = h;
            ix->all[ix->n_all++] = v;
            if (v->host[0] == '*')
                ix->wild[ix->n_wild++] = v;
        }
    }
    /* chains in key order: insert from the end */
    for (size_t i = ix->n_all; i-- > 0;) {
        struct cvs *v = ix->all[i];
        if (v->host[0] == '*')
            continue;
        v->next = mesh_cmap_get(&ix->exact, v->host);
        mesh_cmap_put(&ix->exact, v->host, v);
    }
    return ix;
}

/* The VirtualService for <host>: exact host first, else the most specific wildcard. */
static struct cvs *vs_for_host(struct mesh_cc *c, struct vs_index *ix, const char *host)
{
    struct cvs *best = NULL;
    for (struct cvs *v = mesh_cmap_get(&ix->exact, host); v; v = v->next) {
        v->matched = true;
        if (!best)
            best = v;
        else if (v->res != best->res)
            mesh_cc_diag(c, MESH_DIAG_WARNING, v->res,
                         mesh_cc_printf(c, "spec.hosts[%zu]", v->host_idx),
                         "%s is also routed by VirtualService %s/%s: only that one is used "
                         "(Istio merges them in creation order; meshd takes the first by name)",
                         host, best->res->meta.namespace_, best->res->meta.name);
    }
    if (best)
        return best;
    size_t best_len = 0;
    for (size_t i = 0; i < ix->n_wild; i++) {
        struct cvs *v = ix->wild[i];
        if (!mesh_cc_host_match(v->host, host))
            continue;
        v->matched = true;
        size_t len = strlen(v->host);
        if (len > best_len) {
            best = v;
            best_len = len;
        }
    }
    return best;
}

/* Whether a route matches every request (nothing after it could be reached). */
static bool has_catch_all(json_t *routes)
{
    size_t i;
    json_t *rt;
    json_array_foreach(routes, i, rt)
    {
        json_t *m = json_object_get(rt, "match");
        const char *pre = json_string_value(json_object_get(m, "prefix"));
        if (pre && strcmp(pre, "/") == 0 && json_object_size(m) == 1)
            return true;
    }
    return false;
}

static json_t *svc_port_routes(struct mesh_cc *c, const struct mesh_csvc *s,
                               const struct mesh_cport *p, const struct cvs *vs)
{
    struct mesh_crctx x = {.match_port = p->port, .dest_port = p->port, .gw = NULL};
    json_t *routes = vs ? vs_routes(c, &x, vs->res) : json_array();
    if (!has_catch_all(routes)) {
        /* Istio's default route: the service's own cluster, all endpoints, default retries */
        json_t *fwd = json_object();
        const char *name = mesh_cc_cluster(c, s, s->host, p->port, NULL, NULL, NULL);
        json_object_set_new_nocheck(fwd, "cluster", json_string(name));
        json_object_set_new_nocheck(fwd, "retry",
                                    mesh_cc_retry(c, NULL, NULL, NULL, cluster_hashes(c, name)));
        json_t *tmpl = json_object(), *m = json_object();
        json_object_set_new_nocheck(tmpl, "route", fwd);
        json_object_set_new_nocheck(m, "prefix", json_string("/"));
        append_route(routes, m, tmpl);
        json_decref(tmpl);
    }
    return routes;
}

struct vhost {
    const char *name;
    const char **alt;              /* other names, assigned after every primary name */
    size_t n_alt;
    json_t *routes;
    const struct mesh_resource *res;
};

static void k8s_alt_names(struct mesh_cc *c, const struct mesh_csvc *s, struct vhost *vh)
{
    vh->alt = mesh_cc_alloc(c, (4 + s->n_addrs) * sizeof(*vh->alt));
    if (s->source == MESH_CSVC_K8S) {
        /* Istio: "name" in the same namespace, "name.ns" and "name.ns.svc" everywhere */
        if (s->local)
            vh->alt[vh->n_alt++] = s->name;
        vh->alt[vh->n_alt++] = MESH_CC_JOIN(c, s->name, ".", s->ns);
        vh->alt[vh->n_alt++] = MESH_CC_JOIN(c, s->name, ".", s->ns, ".svc");
    }
    for (size_t i = 0; i < s->n_addrs; i++)
        vh->alt[vh->n_alt++] =
            strchr(s->addrs[i], ':') ? MESH_CC_JOIN(c, "[", s->addrs[i], "]") : s->addrs[i];
}

static json_t *svc_vhost_routes(struct mesh_cc *c, const struct mesh_csvc *s, struct cvs *vs)
{
    json_t *first = NULL;
    const struct mesh_cport *first_port = NULL;
    for (size_t i = 0; i < s->n_ports; i++) {
        const struct mesh_cport *p = &s->ports[i];
        if (!p->http)
            continue;
        json_t *routes = svc_port_routes(c, s, p, vs);
        if (!first) {
            first = routes;
            first_port = p;
            continue;
        }
        if (!json_equal(first, routes))
            mesh_cc_diag(c, MESH_DIAG_WARNING, vs ? vs->res : s->res, NULL,
                         "ports %u and %u of %s route differently, but the router does not "
                         "match on the port yet: requests to any port of %s follow the routes "
                         "of port %u",
                         first_port->port, p->port, s->host, s->host, first_port->port);
        json_decref(routes);
    }
    return first;
}

static int cmp_vhost(const void *a, const void *b)
{
    return strcmp(((const struct vhost *)a)->name, ((const struct vhost *)b)->name);
}

json_t *mesh_cc_sidecar_routes(struct mesh_cc *c, json_t **tcp_routes)
{
    json_t *tcp = json_array();
    struct vs_index *ix = index_mesh_vs(c);
    struct vhost *vh = mesh_cc_alloc(c, (c->n_vis + ix->n_all + 1) * sizeof(*vh));
    size_t n = 0;
    for (size_t i = 0; i < c->n_vis; i++) {
        const struct mesh_csvc *s = c->vis[i];
        struct cvs *vs = vs_for_host(c, ix, s->host);
        for (size_t k = 0; k < s->n_ports; k++)
            if (!s->ports[k].http)
                mesh_cc_sidecar_l4(c, s, &s->ports[k], vs ? vs->res : NULL, tcp);
        json_t *routes = svc_vhost_routes(c, s, vs);
        if (!routes)
            continue; /* TCP/TLS ports only: tcp_routes */
        vh[n].name = s->host;
        vh[n].routes = routes;
        vh[n].res = s->res;
        k8s_alt_names(c, s, &vh[n]);
        n++;
    }
    /* hosts of VirtualServices that name no service ("api.example.com" -> some service) */
    struct mesh_cmap extra = {0};
    for (size_t i = 0; i < ix->n_all; i++) {
        struct cvs *v = ix->all[i];
        if (v->matched || mesh_cmap_get(&c->visible, v->host) ||
            !mesh_cc_sidecar_allows(c, v->res->meta.namespace_, v->host))
            continue;
        struct cvs *have = mesh_cmap_get(&extra, v->host);
        if (have) {
            if (have->res != v->res)
                mesh_cc_diag(c, MESH_DIAG_WARNING, v->res,
                             mesh_cc_printf(c, "spec.hosts[%zu]", v->host_idx),
                             "%s is also routed by VirtualService %s/%s: only that one is used",
                             v->host, have->res->meta.namespace_, have->res->meta.name);
            continue;
        }
        mesh_cmap_put(&extra, v->host, v);
        struct mesh_crctx x = {0};
        vh[n].name = v->host;
        vh[n].routes = vs_routes(c, &x, v->res);
        vh[n].res = v->res;
        n++;
    }
    mesh_cmap_free(&extra);

    qsort(vh, n, sizeof(*vh), cmp_vhost);
    /* a domain may belong to one virtual host: primary names first, then the short forms */
    struct mesh_cmap taken = {0};
    for (size_t i = 0; i < n; i++)
        mesh_cmap_put(&taken, vh[i].name, &vh[i]);
    json_t *vhosts = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *domains = json_array();
        json_array_append_new(domains, json_string(vh[i].name));
        for (size_t k = 0; k < vh[i].n_alt; k++) {
            struct vhost *owner = mesh_cmap_get(&taken, vh[i].alt[k]);
            if (owner) {
                if (owner != &vh[i])
                    mesh_cc_diag(c, MESH_DIAG_NOTE, vh[i].res, NULL,
                                 "%s is left out of the names of %s: it names %s", vh[i].alt[k],
                                 vh[i].name, owner->name);
                continue;
            }
            mesh_cmap_put(&taken, vh[i].alt[k], &vh[i]);
            json_array_append_new(domains, json_string(vh[i].alt[k]));
        }
        json_t *o = json_object();
        json_object_set_new_nocheck(o, "domains", domains);
        json_object_set_new_nocheck(o, "name", json_string(vh[i].name));
        json_object_set_new_nocheck(o, "routes", vh[i].routes);
        json_array_append_new(vhosts, o);
    }
    mesh_cmap_free(&taken);
    json_t *rc = json_object();
    json_object_set_new_nocheck(rc, "name", json_string("outbound"));
    json_object_set_new_nocheck(rc, "virtual_hosts", vhosts);
    if (json_array_size(tcp)) {
        *tcp_routes = tcp;
    } else {
        *tcp_routes = NULL;
        json_decref(tcp);
    }
    return rc;
}

/* ---- Gateways ---- */

/* The narrower of two host patterns when one covers the other, else NULL. */
static const char *host_intersect(const char *a, const char *b)
{
    if (mesh_cc_host_match(b, a))
        return a;
    if (mesh_cc_host_match(a, b))
        return b;
    return NULL;
}

struct gw_server {
    const struct mesh_resource *gw;
    const struct mesh_server *srv;
    size_t idx;
    const char *bind;
    bool l4;                       /* TCP or TLS passthrough: tcp_routes */
};

static int cmp_server(const void *a, const void *b)
{
    const struct gw_server *x = a, *y = b;
    uint32_t px = x->srv->port->number, py = y->srv->port->number;
    if (px != py)
        return px < py ? -1 : 1;
    int d = strcmp(x->gw->key, y->gw->key);
    if (d)
        return d;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool http_protocol(const char *p)
{
    return p && (strcasecmp(p, "HTTP") == 0 || strcasecmp(p, "HTTP2") == 0 ||
                 strcasecmp(p, "GRPC") == 0 || strcasecmp(p, "GRPC-WEB") == 0);
}

static size_t collect_servers(struct mesh_cc *c, struct gw_server **out)
{
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_GATEWAY]; i++)
        cap += c->by_kind[MESH_KIND_GATEWAY][i]->typed.gateway->n_servers;
    struct gw_server *v = mesh_cc_alloc(c, (cap + 1) * sizeof(*v));
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_GATEWAY]; i++) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_GATEWAY][i];
        const struct mesh_gateway *g = r->typed.gateway;
        if (!mesh_cc_labels_match(g->selector, g->n_selector, c->node->labels, c->node->n_labels))
            continue;
        for (size_t j = 0; j < g->n_servers; j++) {
            const struct mesh_server *s = &g->servers[j];
            char *p = mesh_cc_printf(c, "spec.servers[%zu]", j);
            if (!s->port || s->port->number == 0 || s->port->number > 65535)
                continue;
            bool l4 = false;
            if (s->tls && s->tls->mode == MESH_SERVER_TLS_PASSTHROUGH && !s->tls->https_redirect &&
                s->port->protocol && (strcasecmp(s->port->protocol, "TLS") == 0 ||
                                      strcasecmp(s->port->protocol, "HTTPS") == 0)) {
                l4 = true; /* SNI routing, TLS not terminated */
            } else if (s->tls) {
                mesh_cc_diag(c, MESH_DIAG_WARNING, r, mesh_cc_printf(c, "%s.tls", p),
                             "TLS termination, AUTO_PASSTHROUGH and httpsRedirect are not "
                             "enforced by this version of meshd; the server is left out");
                continue;
            } else if (!http_protocol(s->port->protocol)) {
                /* TCP, MONGO, MYSQL... and TLS without a tls block: forwarded as bytes */
                l4 = true;
                if (s->port->protocol && (strcasecmp(s->port->protocol, "HTTPS") == 0 ||
                                          strcasecmp(s->port->protocol, "TLS") == 0)) {
                    mesh_cc_diag(c, MESH_DIAG_WARNING, r, mesh_cc_printf(c, "%s.tls", p),
                                 "an %s server needs a tls block; the server is left out",
                                 s->port->protocol);
                    continue;
                }
            }
            if (s->default_endpoint)
                mesh_cc_diag(c, MESH_DIAG_WARNING, r,
                             mesh_cc_printf(c, "%s.defaultEndpoint", p), "not enforced yet");
            const char *bind = c->node->gateway_address ? c->node->gateway_address : "0.0.0.0";
            if (s->bind) {
                unsigned char buf[16];
                if (inet_pton(AF_INET, s->bind, buf) == 1 || inet_pton(AF_INET6, s->bind, buf) == 1)
                    bind = s->bind;
                else
                    mesh_cc_diag(c, MESH_DIAG_WARNING, r, mesh_cc_printf(c, "%s.bind", p),
                                 "only numeric addresses are supported; %s is used", bind);
            }
            v[n++] = (struct gw_server){r, s, j, bind, l4};
        }
    }
    qsort(v, n, sizeof(*v), cmp_server);
    *out = v;
    return n;
}

bool mesh_cc_vs_on_gateway(const struct mesh_resource *r, const struct mesh_resource *gw)
{
    const struct mesh_virtual_service *vs = r->typed.virtual_service;
    return mesh_cc_gateways_include(vs->gateways, vs->n_gateways, r->meta.namespace_, gw) &&
           mesh_cc_exported(r->meta.namespace_, vs->export_to, vs->n_export_to,
                            gw->meta.namespace_);
}

const char *mesh_cc_server_host(const char *h, const struct mesh_resource *gw,
                                const struct mesh_resource *vs)
{
    const char *slash = strchr(h, '/');
    if (!slash)
        return h;
    size_t n = (size_t)(slash - h);
    const char *ns = vs->meta.namespace_;
    if (n == 1 && h[0] == '*')
        return slash + 1;
    if (n == 1 && h[0] == '.')
        return strcmp(ns, gw->meta.namespace_) == 0 ? slash + 1 : NULL;
    return strlen(ns) == n && strncmp(h, ns, n) == 0 ? slash + 1 : NULL;
}

struct gw_vhost {
    const char *domain;
    const struct mesh_resource *vs;
    json_t *routes;
};

static void gateway_port(struct mesh_cc *c, const struct gw_server *sv, size_t n, json_t *listeners,
                         json_t *route_configs)
{
    uint32_t port = sv[0].srv->port->number;
    char *rc_name = mesh_cc_printf(c, "http.%u", port);
    struct mesh_cmap by_domain = {0};
    struct gw_vhost *vh = NULL;
    size_t n_vh = 0, cap_vh = 0;
    json_t *tcp = json_array();
    bool has_http = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(sv[i].bind, sv[0].bind) != 0)
            mesh_cc_diag(c, MESH_DIAG_WARNING, sv[i].gw,
                         mesh_cc_printf(c, "spec.servers[%zu].bind", sv[i].idx),
                         "port %u is already bound to %s by another server; that address is "
                         "used",
                         port, sv[0].bind);
        const struct mesh_resource *gw = sv[i].gw;
        if (sv[i].l4) {
            mesh_cc_gateway_tcp_routes(c, gw, sv[i].srv, port, tcp);
            continue;
        }
        has_http = true;
        for (size_t k = 0; k < c->n_by_kind[MESH_KIND_VIRTUAL_SERVICE]; k++) {
            const struct mesh_resource *r = c->by_kind[MESH_KIND_VIRTUAL_SERVICE][k];
            const struct mesh_virtual_service *vs = r->typed.virtual_service;
            if (!mesh_cc_vs_on_gateway(r, gw))
                continue;
            for (size_t h = 0; h < vs->n_hosts; h++) {
                const char *vh_host = mesh_cc_expand_host(c, vs->hosts[h], r->meta.namespace_);
                for (size_t s = 0; s < sv[i].srv->n_hosts; s++) {
                    const char *sh = mesh_cc_server_host(sv[i].srv->hosts[s], gw, r);
                    const char *d = sh ? host_intersect(vh_host, mesh_cc_expand_host(
                                                                     c, sh, gw->meta.namespace_))
                                       : NULL;
                    if (!d)
                        continue;
                    struct gw_vhost *have = mesh_cmap_get(&by_domain, d);
                    if (have) {
                        if (have->vs != r)
                            mesh_cc_diag(c, MESH_DIAG_WARNING, r,
                                         mesh_cc_printf(c, "spec.hosts[%zu]", h),
                                         "%s on port %u is also routed by VirtualService %s/%s: "
                                         "only that one is used",
                                         d, port, have->vs->meta.namespace_,
                                         have->vs->meta.name);
                        continue;
                    }
                    if (n_vh == cap_vh) {
                        /* the map points into <vh>: rebuild it after growing */
                        cap_vh = cap_vh ? cap_vh * 2 : 16;
                        struct gw_vhost *nv = mesh_cc_alloc(c, cap_vh * sizeof(*nv));
                        if (n_vh)
                            memcpy(nv, vh, n_vh * sizeof(*nv));
                        vh = nv;
                        for (size_t q = 0; q < n_vh; q++)
                            mesh_cmap_put(&by_domain, vh[q].domain, &vh[q]);
                    }
                    struct mesh_crctx x = {.match_port = port, .dest_port = 0, .gw = gw};
                    vh[n_vh] = (struct gw_vhost){d, r, vs_routes(c, &x, r)};
                    mesh_cmap_put(&by_domain, d, &vh[n_vh]);
                    n_vh++;
                }
            }
        }
    }
    mesh_cmap_free(&by_domain);

    json_t *vhosts = json_array();
    for (size_t i = 0; i < n_vh; i++) {
        json_t *o = json_object();
        json_t *domains = json_array();
        json_array_append_new(domains, json_string(vh[i].domain));
        json_object_set_new_nocheck(o, "domains", domains);
        json_object_set_new_nocheck(o, "name", json_string(vh[i].domain));
        json_object_set_new_nocheck(o, "routes", vh[i].routes);
        json_array_append_new(vhosts, o);
    }
    if (!has_http && json_array_size(tcp) == 0) {
        /* the snapshot wants a route (as Envoy, a listener without a filter chain is useless) */
        mesh_cc_diag(c, MESH_DIAG_WARNING, sv[0].gw,
                     mesh_cc_printf(c, "spec.servers[%zu]", sv[0].idx),
                     "no tcp or tls route of a VirtualService bound to this gateway takes "
                     "port %u: it gets no listener",
                     port);
        json_decref(vhosts);
        json_decref(tcp);
        return;
    }
    json_t *l = json_object();
    json_object_set_new_nocheck(l, "address", json_string(sv[0].bind));
    json_object_set_new_nocheck(l, "name",
                                json_string(mesh_cc_printf(c, "%s_%u", sv[0].bind, port)));
    json_object_set_new_nocheck(l, "port", json_integer(port));
    if (has_http) {
        json_t *rc = json_object();
        json_object_set_new_nocheck(rc, "name", json_string(rc_name));
        json_object_set_new_nocheck(rc, "virtual_hosts", vhosts);
        json_array_append_new(route_configs, rc);
        json_object_set_new_nocheck(l, "route_config", json_string(rc_name));
    } else {
        json_decref(vhosts);
    }
    if (json_array_size(tcp))
        json_object_set_new_nocheck(l, "tcp_routes", tcp);
    else
        json_decref(tcp);
    json_array_append_new(listeners, l);
}

void mesh_cc_gateway(struct mesh_cc *c, json_t *listeners, json_t *route_configs)
{
    struct gw_server *sv;
    size_t n = collect_servers(c, &sv);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && sv[j].srv->port->number == sv[i].srv->port->number)
            j++;
        gateway_port(c, sv + i, j - i, listeners, route_configs);
        i = j;
    }
}
