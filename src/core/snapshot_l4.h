/*
 * TCP and TLS routes of a listener (docs/snapshot.md, "listeners[].tcp_routes"):
 * connections forwarded as bytes, chosen by destination address and port or
 * by TLS SNI without terminating TLS. Parsed by snapshot_listener.c, run by
 * tcp_proxy.c.
 */
#ifndef MESH_CORE_SNAPSHOT_L4_H
#define MESH_CORE_SNAPSHOT_L4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mesh_cluster;

struct mesh_listener_l4 {
    size_t n_tcp_routes;           /* set by the tcp_routes parser */
};

#endif /* MESH_CORE_SNAPSHOT_L4_H */
