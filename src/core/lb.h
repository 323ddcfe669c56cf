/*
 * Load balancing and outlier detection (docs/snapshot.md, "clusters[]"):
 * which endpoint of a cluster serves a request, and what each answer says
 * about that endpoint's health.
 */
#ifndef MESH_CORE_LB_H
#define MESH_CORE_LB_H

#include "core/snapshot.h"

struct mesh_stream;
struct mesh_worker;
struct mesh_conn;

/*
 * Endpoint of <cl> for <s> (its headers, peer and the endpoints it already
 * tried feed the hash and retry policies). NULL when the cluster has no
 * endpoint to offer (none, or all ejected beyond the policy). Every pick that
 * returns an endpoint is matched by exactly one mesh_lb_done() for <s>.
 */
const struct mesh_endpoint *mesh_lb_pick(struct mesh_stream *s, const struct mesh_cluster *cl);
/*
 * The try that mesh_lb_pick() started ended: <status> is the upstream's final
 * status (0 when there was none: connect failure, reset, timeout, client
 * gone) and <flags> the MESH_RF_* that describe the failure.
 */
void mesh_lb_done(struct mesh_stream *s, int status, unsigned flags);

/*
 * A retry of a request to <cl> may start: false when the cluster's
 * max_retries retries are already in flight (the caller then gives up
 * retrying). Each true is matched by one mesh_lb_retry_release().
 */
bool mesh_lb_retry_acquire(struct mesh_worker *w, const struct mesh_cluster *cl);
void mesh_lb_retry_release(struct mesh_worker *w, const struct mesh_cluster *cl);

/*
 * The same choice for a TCP connection (tcp_routes): no request, so hash
 * policies hash the source address of <c>. Matched by one mesh_lb_done_tcp().
 */
const struct mesh_endpoint *mesh_lb_pick_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                                             const struct mesh_conn *c);
/* <ok>: the connection to <ep> was established (false: it failed or was refused). */
void mesh_lb_done_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                      const struct mesh_endpoint *ep, bool ok);

#endif /* MESH_CORE_LB_H */
