/*
 * Retry policy decisions (docs/snapshot.md, "retry"): pure functions of a
 * route's mesh_retry_policy. proxy.c owns the state of a request's tries
 * (replay buffer, per-try timer, backoff) and asks these what to do.
 */
#ifndef MESH_CORE_RETRY_H
#define MESH_CORE_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/snapshot_policy.h"

/* The request body kept for a replay; a longer body is never retried. */
#define MESH_RETRY_REPLAY_MAX (64 * 1024)

/* How a try ended when there is no response to judge. */
enum mesh_try_failure {
    MESH_TRY_CONNECT_FAILURE, /* no connection: refused, unreachable, connect timeout */
    MESH_TRY_RESET,           /* connection closed or reset mid-exchange, protocol error */
    MESH_TRY_REFUSED_STREAM,  /* HTTP/2 REFUSED_STREAM from the upstream */
    MESH_TRY_TIMEOUT,         /* the per-try timeout fired before a response */
};

/* Does <rp> retry a try that failed this way? */
bool mesh_retry_on_failure(const struct mesh_retry_policy *rp, enum mesh_try_failure f);
/* Does <rp> retry a final response with <status> and <grpc_status> (-1: none)? */
bool mesh_retry_on_response(const struct mesh_retry_policy *rp, int status, int grpc_status);
/* The value of a grpc-status header (0..99), -1 when it is not a number. */
int mesh_retry_grpc_status(const char *v, size_t len);
/*
 * Backoff before retry number <n> (1 for the first retry): full jitter, a
 * uniform draw from [0, min(base x 2^(n-1), max)] ms using the random <r>.
 */
uint32_t mesh_retry_backoff_ms(const struct mesh_retry_policy *rp, unsigned n, uint64_t r);

#endif /* MESH_CORE_RETRY_H */
