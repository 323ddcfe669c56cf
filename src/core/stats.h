/*
 * Counters: one block per worker, written only by its own thread and summed
 * by the admin thread on scrape. Relaxed atomic load/store (not read-modify-
 * write) keeps the hot path a plain add while staying race-free for readers.
 */
#ifndef MESH_CORE_STATS_H
#define MESH_CORE_STATS_H

#include <stdatomic.h>
#include "core/common.h"

#define MESH_STATS_FIELDS(X)                                                                       \
    X(downstream_cx_total, counter, "downstream connections accepted")                             \
    X(downstream_cx_active, gauge, "downstream connections open")                                  \
    X(downstream_cx_http1, counter, "downstream HTTP/1.1 connections")                             \
    X(downstream_cx_http2, counter, "downstream HTTP/2 connections")                               \
    X(downstream_rq_total, counter, "downstream requests")                                         \
    X(downstream_rq_active, gauge, "downstream requests in flight")                                \
    X(downstream_rq_1xx, counter, "responses 1xx")                                                 \
    X(downstream_rq_2xx, counter, "responses 2xx")                                                 \
    X(downstream_rq_3xx, counter, "responses 3xx")                                                 \
    X(downstream_rq_4xx, counter, "responses 4xx")                                                 \
    X(downstream_rq_5xx, counter, "responses 5xx")                                                 \
    X(downstream_rq_rejected, counter, "malformed requests refused")                               \
    X(downstream_rq_no_route, counter, "requests with no route (404 NR)")                          \
    X(downstream_rq_timeout, counter, "requests timed out (504 UT)")                               \
    X(downstream_rq_idle_timeout, counter, "streams idle too long (408/504 SI)")                   \
    X(downstream_cx_idle_timeout, counter, "downstream connections closed idle")                   \
    X(upstream_cx_total, counter, "upstream connections opened")                                   \
    X(upstream_cx_active, gauge, "upstream connections open")                                      \
    X(upstream_cx_connect_fail, counter, "upstream connect failures (UF)")                         \
    X(upstream_cx_connect_timeout, counter, "upstream connect timeouts")                           \
    X(upstream_cx_reused, counter, "requests sent on a reused upstream connection")                \
    X(upstream_rq_total, counter, "upstream requests")                                             \
    X(upstream_rq_reset, counter, "upstream resets or bad responses (502 UC)")                     \
    X(upstream_rq_overflow, counter, "pool overflow (503 UO)")                                     \
    X(upstream_rq_no_healthy, counter, "no endpoint (503 UH)")                                     \
    X(upstream_rq_retry_reused, counter, "requests retried after a reused connection closed")      \
    X(upstream_rq_retry, counter, "retries sent (route retry policy)")                           \
    X(upstream_rq_retry_success, counter, "requests that succeeded on a retry")                    \
    X(upstream_rq_retry_overflow, counter, "retries refused by the cluster's max_retries")         \
    X(upstream_rq_per_try_timeout, counter, "tries that hit the per-try timeout")                   \
    X(upstream_rq_pending_total, counter, "requests that waited for a connection")                 \
    X(upstream_cx_overflow, counter, "connections refused by max_connections")                     \
    X(outlier_ejections_total, counter, "endpoints ejected by outlier detection")                  \
    X(outlier_ejections_consecutive_5xx, counter, "ejections for consecutive 5xx")                 \
    X(outlier_ejections_consecutive_gateway, counter, "ejections for consecutive gateway errors")  \
    X(outlier_ejections_overflow, counter, "ejections skipped by max_ejection_percent")            \
    X(lb_cookie_generated, counter, "hash cookies set on responses")                               \
    X(fault_delays_injected, counter, "requests delayed by fault injection")                       \
    X(fault_aborts_injected, counter, "requests aborted by fault injection")                       \
    X(mirror_rq_total, counter, "mirrored (shadow) requests sent")                                 \
    X(mirror_rq_failed, counter, "mirrored requests that failed")                                  \
    X(cors_preflight, counter, "CORS preflight requests answered")                                 \
    X(redirects, counter, "requests answered with a redirect")                                     \
    X(tcp_cx_total, counter, "TCP connections proxied by tcp_routes")                              \
    X(tcp_cx_no_route, counter, "TCP/TLS connections no tcp_route matched")                        \
    X(tcp_cx_sni, counter, "TLS connections routed by SNI")                                        \
    X(passthrough_rq_total, counter, "requests for unknown hosts sent to their original destination (ALLOW_ANY)") \
    X(passthrough_cx_total, counter, "TCP connections to unknown destinations forwarded (ALLOW_ANY)") \
    X(blackhole_rq_total, counter, "requests for unknown hosts refused, 502 (REGISTRY_ONLY)")      \
    X(blackhole_cx_total, counter, "TCP connections to unknown destinations closed (REGISTRY_ONLY)") \
    X(passthrough_loop, counter, "passthroughs refused: the destination is this proxy")            \
    X(tunnels_total, counter, "CONNECT and Upgrade tunnels")                                     \
    X(io_uring_workers, gauge, "workers whose socket I/O goes through io_uring (0: one system call per operation)") \
    X(io_rounds, counter, "kernel entries for socket reads and writes (io_uring_enter, or system calls)") \
    X(io_ops, counter, "socket reads and writes issued")                                           \
    X(io_spin_polls, counter, "polls a worker made without blocking after a busy turn, instead of sleeping (--poll-spins)") \
    X(io_spin_hits, counter, "spin polls that found work")

enum mesh_stat_id {
#define X(name, type, help) MESH_STAT_##name,
    MESH_STATS_FIELDS(X)
#undef X
    MESH_STAT__COUNT,
};

struct mesh_stats {
    _Atomic uint64_t v[MESH_STAT__COUNT];
};

static inline void mesh_stat_add(struct mesh_stats *st, enum mesh_stat_id id, int64_t d)
{
    uint64_t cur = atomic_load_explicit(&st->v[id], memory_order_relaxed);
    atomic_store_explicit(&st->v[id], cur + (uint64_t)d, memory_order_relaxed);
}
#define MESH_STAT_INC(st, name) mesh_stat_add((st), MESH_STAT_##name, 1)
#define MESH_STAT_DEC(st, name) mesh_stat_add((st), MESH_STAT_##name, -1)

struct mesh_stat_desc {
    const char *name, *type, *help;
};
extern const struct mesh_stat_desc mesh_stat_descs[MESH_STAT__COUNT];

#endif /* MESH_CORE_STATS_H */
