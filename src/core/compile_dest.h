/*
 * Route destinations, shared by the HTTP route compiler (compile_route.c,
 * compile_action.c) and the TCP/TLS one (compile_l4.c). Inside the compiler
 * only, like compile-int.h.
 */
#ifndef MESH_CORE_COMPILE_DEST_H
#define MESH_CORE_COMPILE_DEST_H

#include "core/compile-int.h"

/**
 * The cluster name (mesh_cc_cluster) of destination <d> of VirtualService
 * <r>, whose field path is <dp>. NULL when <d> has no host, or with a warning
 * at <dp>.port ("the <what> needs a port; <left_out>") when its port is
 * unknown. compile_action.c
 */
const char *mesh_cc_dest_cluster(struct mesh_cc *c, const struct mesh_crctx *x,
                                 const struct mesh_resource *r, const char *dp,
                                 const struct mesh_destination *d, const char *what,
                                 const char *left_out);

/**
 * Whether the weights of route <p>'s split add up to what the snapshot takes
 * (1..1000000); else warned at <p>.route, and the route is left out.
 * compile_action.c
 */
bool mesh_cc_split_total_ok(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                            uint64_t total);

/**
 * Whether Gateway <gw>'s server host "ns/host" (or "host") <h> lets
 * VirtualService <vs> bind: its host part, or NULL. compile_route.c
 */
const char *mesh_cc_server_host(const char *h, const struct mesh_resource *gw,
                                const struct mesh_resource *vs);

/**
 * Whether VirtualService <r> applies to Gateway <gw>: it names the gateway
 * and is exported to the gateway's namespace. compile_route.c
 */
bool mesh_cc_vs_on_gateway(const struct mesh_resource *r, const struct mesh_resource *gw);

#endif /* MESH_CORE_COMPILE_DEST_H */
