/*
 * The proxy runtime: worker threads (one event loop and one SO_REUSEPORT
 * listener per snapshot listener each), the current snapshot, reload and
 * drain. Roles that proxy traffic (sidecar, gateway) build one of these.
 */
#ifndef MESH_CORE_RUNTIME_H
#define MESH_CORE_RUNTIME_H

#include "core/io_batch.h"
#include "core/snapshot.h"
#include "core/stats.h"

struct mesh_runtime;
struct event_base;

/**
 * evthread_use_pthreads() must have run before <main_base> was created.
 * Creates the runtime for <snap> (the runtime takes the caller's reference)
 * with <n_workers> threads, binding every listener now so that errors show
 * before anything starts. Returns NULL with <err> filled on failure.
 */
struct mesh_runtime *mesh_runtime_new(struct event_base *main_base, struct mesh_snapshot *snap,
                                      unsigned n_workers, struct mesh_err *err);
/**
 * The event loop of worker <i> (< n_workers), to put a role's own events on it
 * (the control plane's registry timer) between mesh_runtime_new() and start;
 * afterwards only from that worker's thread. Freed by mesh_runtime_free().
 */
struct event_base *mesh_runtime_worker_base(struct mesh_runtime *rt, unsigned i);
/** Bound port of listener <i> (after mesh_runtime_new). */
uint16_t mesh_runtime_listener_port(const struct mesh_runtime *rt, size_t i);
/** Logs one line per request (Envoy-style, with response flags). Call before start. */
void mesh_runtime_set_access_log(struct mesh_runtime *rt, bool on);
/** Default of --poll-spins: the most polls a worker spins after a busy turn (worker.c). */
#define MESH_POLL_SPINS_DEFAULT 16
#define MESH_POLL_SPINS_MAX 1024
/**
 * How workers do socket I/O (<mode>; default: io_uring when the kernel allows) and how
 * many times at most they yield and poll after a busy turn before they sleep (<spins>,
 * 0 = never spin, -1 = MESH_POLL_SPINS_DEFAULT). Call before start.
 */
void mesh_runtime_set_io(struct mesh_runtime *rt, enum mesh_io_mode mode, int spins);
/** Starts the worker threads. */
int mesh_runtime_start(struct mesh_runtime *rt);
/**
 * Swaps in <snap> (takes the caller's reference). Refused, with <err>
 * filled, when the listeners differ (as configured: port 0 matches only
 * port 0): those need a restart. On refusal the caller keeps its reference
 * and the current snapshot goes on serving (test_admin).
 */
int mesh_runtime_swap(struct mesh_runtime *rt, struct mesh_snapshot *snap, struct mesh_err *err);
/** New reference to the current snapshot. */
struct mesh_snapshot *mesh_runtime_snapshot(struct mesh_runtime *rt);
/**
 * Stops accepting and drains every connection (GOAWAY / Connection: close).
 * The main loop given to mesh_runtime_new() exits once every worker is done.
 */
void mesh_runtime_drain(struct mesh_runtime *rt);
bool mesh_runtime_draining(struct mesh_runtime *rt);
/** Waits for the workers to finish (after a drain) and frees everything. */
void mesh_runtime_free(struct mesh_runtime *rt);
/** Sums the workers' counters into <out>. */
void mesh_runtime_stats(struct mesh_runtime *rt, uint64_t out[MESH_STAT__COUNT]);

#endif /* MESH_CORE_RUNTIME_H */
