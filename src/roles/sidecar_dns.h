/* The sidecar's DNS proxy, answering from the runtime's current snapshot (docs/sidecar.md). */
#ifndef MESH_ROLES_SIDECAR_DNS_H
#define MESH_ROLES_SIDECAR_DNS_H

#include "core/common.h"
#include "core/dns.h" /* mesh_dns_stop() */

struct event_base;
struct mesh_opts;
struct mesh_runtime;
struct mesh_snapshot;

/* The port `meshd iptables` redirects the pod's outbound TCP to (iptables.h's default). */
#define MESH_SIDECAR_CAPTURE_PORT 15001

enum mesh_sidecar_dns_mode {
    MESH_SIDECAR_DNS_OFF,      /* no --dns and nothing redirects DNS to us, or --dns off */
    MESH_SIDECAR_DNS_FLAG,     /* --dns ADDR:PORT: a failure to start is fatal */
    MESH_SIDECAR_DNS_DEFAULT,  /* 127.0.0.1:15053 in a pod: a failure is only a warning */
};

/**
 * Whether the proxy runs, and why. Without --dns it runs only where `meshd
 * iptables` can send the pod's DNS to it: a sidecar whose outbound listener is
 * the capture port 15001 (--control or --config-dir without --listen or with
 * port 15001; --snapshot: a listener of <snap> on 15001). A sidecar on
 * loopback (--listen 127.0.0.1:0, several on one host) has none unless asked.
 */
enum mesh_sidecar_dns_mode mesh_sidecar_dns_mode(const struct mesh_opts *o,
                                                 const struct mesh_snapshot *snap);

/**
 * Starts the DNS proxy on <base> as mesh_sidecar_dns_mode() says. With
 * --control it is called before the first snapshot (<snap> NULL: it starts
 * then, and forwards every name until a snapshot arrives) and again with the
 * first snapshot (nothing left to do). Names are looked up in the snapshot of
 * *<rt> at each query (*<rt> may still be NULL: nothing is ours then); a
 * snapshot without a dns table answers nothing itself. Other names go to
 * --dns-upstream, else /etc/resolv.conf.
 * Returns 0 with *<out> set (NULL when not started), or -1 after printing why.
 */
int mesh_sidecar_dns_start(struct mesh_dns **out, struct event_base *base,
                           const struct mesh_opts *o, struct mesh_runtime *const *rt,
                           const struct mesh_snapshot *snap);

#endif /* MESH_ROLES_SIDECAR_DNS_H */
