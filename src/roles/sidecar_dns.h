/* The sidecar's DNS proxy, answering from the runtime's current snapshot (docs/sidecar.md). */
#ifndef MESH_ROLES_SIDECAR_DNS_H
#define MESH_ROLES_SIDECAR_DNS_H

#include "core/common.h"
#include "core/dns.h" /* mesh_dns_stop() */

struct event_base;
struct mesh_opts;
struct mesh_runtime;
struct mesh_snapshot;

/**
 * Starts the DNS proxy on <base> when --dns ADDR:PORT is given (a failure is
 * fatal), or for a sidecar whose first snapshot <snap> (may be NULL) has a dns
 * table (on 127.0.0.1:15053; a failure is only a warning). Names are looked up
 * in the snapshot of *<rt> at each query (*<rt> may still be NULL: nothing is
 * ours then). Other names go to --dns-upstream, else /etc/resolv.conf.
 * Returns 0 with *<out> set (NULL when not started), or -1 after printing why.
 */
int mesh_sidecar_dns_start(struct mesh_dns **out, struct event_base *base,
                           const struct mesh_opts *o, struct mesh_runtime *const *rt,
                           const struct mesh_snapshot *snap);

#endif /* MESH_ROLES_SIDECAR_DNS_H */
