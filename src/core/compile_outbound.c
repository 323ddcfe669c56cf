/*
 * The sidecar's outbound traffic policy (docs/compile.md "Outbound traffic
 * policy"): what its outbound listener does with a connection whose original
 * destination no service of the registry claims. Istio's
 * outboundTrafficPolicy.mode, from the node's Sidecar resource, else the
 * mesh-wide default (meshConfig; node->registry_only), else ALLOW_ANY:
 *
 * - ALLOW_ANY: "unmatched": {"action": "passthrough", "cluster": "PassthroughCluster"}
 *   and the cluster itself (lb_policy "passthrough": the original destination);
 * - REGISTRY_ONLY: "unmatched": {"action": "refuse"} (Istio's BlackHoleCluster and
 *   block_all virtual host).
 *
 * Both carry "http_ports": the ports of the HTTP services the node sees. A
 * connection to an unknown address on one of them is served as HTTP (Istio's
 * 0.0.0.0:PORT HTTP listener, whose unknown hosts pass through or get 502);
 * on any other port it is TCP (passed through as bytes, or closed).
 */
#include "core/common.h"
#include <stdlib.h>
#include "core/compile-int.h"

#define PASSTHROUGH_CLUSTER "PassthroughCluster" /* Istio's name, seen in the access log */

static int cmp_port(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The ports of every HTTP port of the visible services, sorted, once each. */
static json_t *http_ports(struct mesh_cc *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_vis; i++)
        n += c->vis[i]->n_ports;
    uint32_t *v = mesh_cc_alloc(c, (n + 1) * sizeof(*v));
    n = 0;
    for (size_t i = 0; i < c->n_vis; i++)
        for (size_t k = 0; k < c->vis[i]->n_ports; k++)
            if (c->vis[i]->ports[k].http)
                v[n++] = c->vis[i]->ports[k].port;
    qsort(v, n, sizeof(*v), cmp_port);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (i == 0 || v[i] != v[i - 1])
            json_array_append_new(arr, json_integer(v[i]));
    return arr;
}

enum mesh_outbound_mode mesh_cc_outbound_mode(struct mesh_cc *c)
{
    const struct mesh_resource *sc = c->sidecar;
    const struct mesh_outbound_traffic_policy *p =
        sc ? sc->typed.sidecar->outbound_traffic_policy : NULL;
    if (p) {
        if (p->egress_proxy)
            mesh_cc_diag(c, MESH_DIAG_WARNING, sc, "spec.outboundTrafficPolicy.egressProxy",
                         "egressProxy is not supported by this version of meshd: connections to "
                         "destinations outside the registry go straight to their original "
                         "destination (ALLOW_ANY)");
        return p->mode;
    }
    return c->node->registry_only ? MESH_OUTBOUND_REGISTRY_ONLY : MESH_OUTBOUND_ALLOW_ANY;
}

void mesh_cc_outbound_unmatched(struct mesh_cc *c, json_t *listener)
{
    json_t *u = json_object();
    if (mesh_cc_outbound_mode(c) == MESH_OUTBOUND_REGISTRY_ONLY) {
        json_object_set_new_nocheck(u, "action", json_string("refuse"));
    } else {
        json_object_set_new_nocheck(u, "action", json_string("passthrough"));
        json_object_set_new_nocheck(u, "cluster", json_string(PASSTHROUGH_CLUSTER));
        if (!mesh_cmap_get(&c->clusters, PASSTHROUGH_CLUSTER)) {
            /* Istio's PassthroughCluster: ORIGINAL_DST, 10 s connect, plain HTTP/1.1 */
            json_t *o = mesh_cc_cluster_json(PASSTHROUGH_CLUSTER, false, NULL);
            json_object_set_new_nocheck(o, "lb_policy", json_string("passthrough"));
            json_object_set_new_nocheck(o, "endpoints", json_array());
            json_array_append_new(c->cluster_list, o);
            mesh_cmap_put(&c->clusters, PASSTHROUGH_CLUSTER, o);
        }
    }
    json_t *ports = http_ports(c);
    if (json_array_size(ports))
        json_object_set_new_nocheck(u, "http_ports", ports);
    else
        json_decref(ports);
    json_object_set_new_nocheck(listener, "unmatched", u);
}
