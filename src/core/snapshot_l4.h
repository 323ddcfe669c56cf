/*
 * TCP and TLS routes of a listener (docs/snapshot.md, "listeners[]" and
 * "tcp_routes[]"): connections forwarded as bytes, chosen by destination
 * address and port or by TLS SNI without terminating TLS, and what happens to
 * the connections none of them takes ("unmatched"). Parsed by
 * snapshot_listener.c, matched and run by tcp_proxy.c (HTTP side: proxy.c).
 */
#ifndef MESH_CORE_SNAPSHOT_L4_H
#define MESH_CORE_SNAPSHOT_L4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct mesh_cluster;

/* An IP network: "10.0.0.0/8", "::1" (= /128). Host bits are cleared at load. */
struct mesh_cidr {
    sa_family_t family;            /* AF_INET or AF_INET6 */
    uint8_t prefix_len;            /* 0..32 or 0..128 */
    uint8_t addr[16];              /* network byte order; 4 bytes used for IPv4 */
};

struct mesh_tcp_weighted {
    const struct mesh_cluster *cluster;
    uint32_t weight;               /* 0..1000000 */
};

struct mesh_tcp_route {
    /* match: every condition given must hold */
    uint16_t dst_port;             /* 0 = any port */
    const struct mesh_cidr *dst_addrs; /* any of them; none = any address */
    size_t n_dst_addrs;
    const char *const *sni;        /* lowercase host names or "*.suffix"; none = no SNI condition */
    size_t n_sni;
    /* destination: <cluster>, or a split by weight */
    const struct mesh_cluster *cluster;
    const struct mesh_tcp_weighted *weighted;
    size_t n_weighted;
    uint32_t total_weight;
    uint32_t idle_timeout_ms;      /* no byte either way; default 3600000, 0 = none */
};

/*
 * What a listener does with a connection or request whose original destination
 * nothing of the snapshot claims (docs/snapshot.md "unmatched"): Istio's
 * outboundTrafficPolicy, ALLOW_ANY (PassthroughCluster) or REGISTRY_ONLY
 * (BlackHoleCluster).
 */
enum mesh_unmatched_action {
    MESH_UNMATCHED_NONE = 0,       /* no "unmatched": HTTP gets 404, TCP is closed (as before) */
    MESH_UNMATCHED_PASSTHROUGH,    /* forwarded to the original destination */
    MESH_UNMATCHED_REFUSE,         /* HTTP 502, TCP closed */
};

struct mesh_route;

struct mesh_unmatched {
    enum mesh_unmatched_action action;
    const struct mesh_cluster *cluster; /* PASSTHROUGH: lb_policy "passthrough" */
    struct mesh_tcp_route tcp;     /* PASSTHROUGH: the TCP route to <cluster> */
    const struct mesh_route *http; /* PASSTHROUGH: the HTTP route to <cluster> */
    const uint16_t *http_ports;    /* sorted, unique: original destination ports served as HTTP */
    size_t n_http_ports;
};

struct mesh_listener_l4 {
    const struct mesh_tcp_route *routes; /* tried in order */
    size_t n_routes;                     /* may be 0 when <unmatched> is set */
    bool any_sni;                  /* some route has an SNI condition: read the ClientHello */
    struct mesh_unmatched unmatched;
};

#endif /* MESH_CORE_SNAPSHOT_L4_H */
