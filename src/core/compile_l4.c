#include "core/common.h"
#include <string.h>
#include <strings.h>
#include "core/compile-int.h"
#include "core/compile_dest.h"

/*
 * VirtualService tcp and tls routes -> listeners[].tcp_routes
 * (docs/snapshot.md "tcp_routes[]"). A sidecar gets them on its outbound
 * listener, each matching the service's port (and its virtual IPs when known,
 * else the route's destinationSubnets); a gateway gets them on the listener of
 * its TCP and TLS (passthrough) servers. tls routes match the SNI without
 * terminating TLS. The config-time conditions (port, sourceLabels,
 * sourceNamespace, gateways) are decided here, as for http routes.
 */

bool mesh_cc_port_is_tls(const struct mesh_cport *p)
{
    return strcasecmp(p->protocol, "TLS") == 0 || strcasecmp(p->protocol, "HTTPS") == 0;
}

/* A match entry's config-time conditions; false: it cannot apply to this proxy. */
static bool l4_applies(struct mesh_cc *c, const struct mesh_crctx *x,
                       const struct mesh_resource *r, uint32_t port, const struct mesh_kv *sl,
                       size_t n_sl, const char *sns, const char **gws, size_t n_gws)
{
    if (port && x->match_port && port != x->match_port)
        return false;
    if (n_gws && !mesh_cc_gateways_include(gws, n_gws, r->meta.namespace_, x->gw))
        return false;
    if (n_sl && !mesh_cc_labels_match(sl, n_sl, c->node->labels, c->node->n_labels))
        return false;
    if (sns && strcmp(sns, c->node->namespace_) != 0)
        return false;
    return true;
}

/* "cluster" or "weighted_clusters" of <rt>; false (warned) when the route is left out. */
static bool l4_destinations(struct mesh_cc *c, const struct mesh_crctx *x,
                            const struct mesh_resource *r, const char *p,
                            const struct mesh_route_destination *dst, size_t n, json_t *rt)
{
    json_t *split = json_array();
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++) {
        char *dp = mesh_cc_path(c, p, ".route", k, ".destination");
        const char *name = mesh_cc_dest_cluster(c, x, r, dp, dst[k].destination, "destination",
                                                "the route is left out");
        if (!name)
            goto fail;
        uint32_t w = n == 1 ? 100 : dst[k].weight > 0 ? (uint32_t)dst[k].weight : 0;
        json_t *e = json_object();
        json_object_set_new_nocheck(e, "name", json_string(name));
        json_object_set_new_nocheck(e, "weight", json_integer(w));
        json_array_append_new(split, e);
        total += w;
    }
    if (!mesh_cc_split_total_ok(c, r, p, total))
        goto fail;
    if (n == 1)
        json_object_set_nocheck(rt, "cluster",
                                json_object_get(json_array_get(split, 0), "name"));
    else
        json_object_set_nocheck(rt, "weighted_clusters", split);
    json_decref(split);
    return true;
fail:
    json_decref(split);
    return false;
}

static json_t *string_array(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/*
 * One tcp route per applicable match entry: <base> (destination port and
 * addresses of a sidecar's service, or empty) plus the entry's own conditions.
 */
static void emit(struct mesh_cc *c, json_t *out, json_t *base, json_t *tmpl, const char **subnets,
                 size_t n_subnets, const char **sni, size_t n_sni)
{
    json_t *m = json_deep_copy(base);
    if (n_subnets)
        json_object_set_new_nocheck(m, "destination_addresses", string_array(subnets, n_subnets));
    if (n_sni)
        json_object_set_new_nocheck(m, "sni", string_array(sni, n_sni));
    json_t *rt = json_object();
    if (json_object_size(m))
        json_object_set_new_nocheck(rt, "match", m);
    else
        json_decref(m);
    json_object_update(rt, tmpl);
    json_array_append_new(out, rt);
    (void)c;
}

/* sniHosts narrowed to the host being compiled (a sidecar's service), as Istio does. */
static const char **sni_for(struct mesh_cc *c, const struct mesh_tls_match *m, const char *host,
                            size_t *n)
{
    const char **v = mesh_cc_alloc(c, (m->n_sni_hosts + 1) * sizeof(*v));
    *n = 0;
    for (size_t i = 0; i < m->n_sni_hosts; i++) {
        const char *h = m->sni_hosts[i];
        if (!host || mesh_cc_host_match(h, host) || mesh_cc_host_match(host, h))
            v[(*n)++] = host && mesh_cc_host_match(h, host) ? host : h;
    }
    return v;
}

void mesh_cc_l4_routes(struct mesh_cc *c, const struct mesh_crctx *x,
                       const struct mesh_resource *r, const char *host, bool tls, json_t *base,
                       json_t *out)
{
    const struct mesh_virtual_service *vs = r->typed.virtual_service;
    for (size_t i = 0; tls && i < vs->n_tls; i++) {
        const struct mesh_tls_route *t = &vs->tls[i];
        char *p = mesh_cc_path(c, "spec.tls", "", i, "");
        size_t n_app = 0;
        for (size_t j = 0; j < t->n_match; j++) {
            const struct mesh_tls_match *m = &t->match[j];
            n_app += l4_applies(c, x, r, m->port, m->source_labels, m->n_source_labels,
                                m->source_namespace, m->gateways, m->n_gateways);
        }
        if (n_app == 0)
            continue;
        json_t *tmpl = json_object();
        if (!l4_destinations(c, x, r, p, t->route, t->n_route, tmpl)) {
            json_decref(tmpl);
            continue;
        }
        for (size_t j = 0; j < t->n_match; j++) {
            const struct mesh_tls_match *m = &t->match[j];
            if (!l4_applies(c, x, r, m->port, m->source_labels, m->n_source_labels,
                            m->source_namespace, m->gateways, m->n_gateways))
                continue;
            size_t n_sni;
            const char **sni = sni_for(c, m, host, &n_sni);
            if (m->n_sni_hosts && !n_sni)
                continue; /* names another host of the VirtualService */
            emit(c, out, base, tmpl, m->destination_subnets, m->n_destination_subnets, sni,
                 n_sni);
        }
        json_decref(tmpl);
    }
    for (size_t i = 0; i < vs->n_tcp; i++) {
        const struct mesh_tcp_route *t = &vs->tcp[i];
        char *p = mesh_cc_path(c, "spec.tcp", "", i, "");
        size_t n_app = 0;
        for (size_t j = 0; j < t->n_match; j++) {
            const struct mesh_l4_match *m = &t->match[j];
            if (m->source_subnet) {
                mesh_cc_diag(c, MESH_DIAG_WARNING, r,
                             mesh_cc_path(c, p, ".match", j, ".sourceSubnet"),
                             "not enforced by this version of meshd; this match is left out");
                continue;
            }
            n_app += l4_applies(c, x, r, m->port, m->source_labels, m->n_source_labels,
                                m->source_namespace, m->gateways, m->n_gateways);
        }
        if (t->n_match && n_app == 0)
            continue;
        json_t *tmpl = json_object();
        if (!l4_destinations(c, x, r, p, t->route, t->n_route, tmpl)) {
            json_decref(tmpl);
            continue;
        }
        if (t->n_match == 0)
            emit(c, out, base, tmpl, NULL, 0, NULL, 0);
        for (size_t j = 0; j < t->n_match; j++) {
            const struct mesh_l4_match *m = &t->match[j];
            if (m->source_subnet ||
                !l4_applies(c, x, r, m->port, m->source_labels, m->n_source_labels,
                            m->source_namespace, m->gateways, m->n_gateways))
                continue;
            emit(c, out, base, tmpl, m->destination_subnets, m->n_destination_subnets, NULL, 0);
        }
        json_decref(tmpl);
    }
}

/* Whether the last route of <routes> takes every connection <base> describes. */
static bool ends_catch_all(json_t *routes, json_t *base)
{
    json_t *last = json_array_get(routes, json_array_size(routes) - 1);
    if (!last)
        return false;
    json_t *m = json_object_get(last, "match");
    return m ? json_equal(m, base) : json_object_size(base) == 0;
}

void mesh_cc_sidecar_l4(struct mesh_cc *c, const struct mesh_csvc *s, const struct mesh_cport *p,
                        const struct mesh_resource *vs, json_t *out)
{
    struct mesh_crctx x = {.match_port = p->port, .dest_port = p->port, .gw = NULL};
    bool tls = mesh_cc_port_is_tls(p);
    json_t *base = json_object();
    json_object_set_new_nocheck(base, "destination_port", json_integer(p->port));
    /* an allocated VIP only reaches apps that used the mesh's DNS: SNI names TLS anyway */
    if (s->n_addrs && !(tls && s->vip_allocated))
        json_object_set_new_nocheck(base, "destination_addresses",
                                    string_array(s->addrs, s->n_addrs));
    size_t before = json_array_size(out);
    if (vs) {
        const struct mesh_virtual_service *v = vs->typed.virtual_service;
        if (!tls && v->n_tls)
            mesh_cc_diag(c, MESH_DIAG_NOTE, vs, "spec.tls",
                         "port %u of %s is not TLS: its tls routes do not apply there", p->port,
                         s->host);
        mesh_cc_l4_routes(c, &x, vs, s->host, tls, base, out);
    }
    json_t *added = json_array();
    for (size_t i = before; i < json_array_size(out); i++)
        json_array_append(added, json_array_get(out, i));
    /* the service's own cluster: for TLS by its name in the SNI, as Istio's default */
    json_t *def = json_deep_copy(base);
    if (tls) {
        json_t *sni = json_array();
        json_array_append_new(sni, json_string(s->host));
        json_object_set_new_nocheck(def, "sni", sni);
    }
    if (!ends_catch_all(added, base) && !(tls && ends_catch_all(added, def))) {
        json_t *rt = json_object();
        json_object_set_new_nocheck(rt, "match", def);
        json_object_set_new_nocheck(
            rt, "cluster", json_string(mesh_cc_cluster(c, s, s->host, p->port, NULL, NULL, NULL)));
        json_array_append_new(out, rt);
    } else {
        json_decref(def);
    }
    json_decref(added);
    json_decref(base);
}

void mesh_cc_gateway_tcp_routes(struct mesh_cc *c, const struct mesh_resource *gw,
                                const struct mesh_server *srv, uint32_t port, json_t *out)
{
    struct mesh_crctx x = {.match_port = port, .dest_port = 0, .gw = gw};
    bool tls = srv->port && srv->port->protocol &&
               (strcasecmp(srv->port->protocol, "TLS") == 0 ||
                strcasecmp(srv->port->protocol, "HTTPS") == 0);
    json_t *base = json_object();
    for (size_t k = 0; k < c->n_by_kind[MESH_KIND_VIRTUAL_SERVICE]; k++) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_VIRTUAL_SERVICE][k];
        const struct mesh_virtual_service *vs = r->typed.virtual_service;
        if (!mesh_cc_vs_on_gateway(r, gw))
            continue;
        bool bound = false;
        for (size_t h = 0; h < vs->n_hosts && !bound; h++) {
            const char *vh = mesh_cc_expand_host(c, vs->hosts[h], r->meta.namespace_);
            for (size_t s = 0; s < srv->n_hosts && !bound; s++) {
                const char *sh = mesh_cc_server_host(srv->hosts[s], gw, r);
                if (!sh)
                    continue;
                sh = mesh_cc_expand_host(c, sh, gw->meta.namespace_);
                bound = mesh_cc_host_match(sh, vh) || mesh_cc_host_match(vh, sh);
            }
        }
        if (bound)
            mesh_cc_l4_routes(c, &x, r, NULL, tls, base, out);
    }
    json_decref(base);
}
