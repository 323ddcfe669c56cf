/*
 * The control plane's push (docs/control.md, "Push"): watch streams that carry each proxy
 * its compiled snapshot, ACK/NACK, and the table of connected proxies behind
 * `meshd ctl proxy-status`.
 *
 *   GET  /v1/watch?node=NS/NAME[&labels=k=v,...][&role=sidecar|gateway][&listen=ADDR:PORT]
 *                 [&locality=R/Z/S]                   a stream of frames (push_frame.h)
 *   POST /v1/ack  {"id": 3, "node": "NS/NAME", "version": "...", "error": "..."}
 *   GET  /v1/proxies                                 every connected proxy and its state
 *
 * Every other request goes to the resource API (control_api.h); after a change through it
 * the push recompiles (debounced) and sends a snapshot to each proxy whose snapshot changed.
 *
 * Threads: the handler and mesh_control_push_changed() run on the control role's single
 * worker (the store's thread); mesh_control_push_shutdown() may be called from any thread.
 */
#ifndef MESH_ROLES_CONTROL_PUSH_H
#define MESH_ROLES_CONTROL_PUSH_H

#include "core/common.h"

struct mesh_control_push;
struct mesh_control_api;
struct mesh_store;
struct mesh_stream;

#define MESH_PUSH_DEFAULT_DEBOUNCE_MS 100u

/**
 * A push over <st> and <api> (both borrowed: they must outlive it). A change is pushed at
 * once when no push round ran in the last <debounce_ms>, else at the end of that time with
 * every change made meanwhile (at most one round per <debounce_ms>). <registry_only> is the
 * mesh's outbound traffic policy for proxies whose Sidecar sets none (docs/compile.md).
 */
struct mesh_control_push *mesh_control_push_new(struct mesh_store *st,
                                                struct mesh_control_api *api,
                                                unsigned debounce_ms, bool registry_only);
/** After the worker has stopped (every watch stream is gone by then). NULL is fine. */
void mesh_control_push_free(struct mesh_control_push *p);

/** The engine's handler for the API listener: <arg> is the push. */
void mesh_control_push_handle(void *arg, struct mesh_stream *s);

/** The store changed by some other way than the API (the registry): recompile, debounced. */
void mesh_control_push_changed(struct mesh_control_push *p);

/** Any thread: end every watch stream soon (the control plane drains). */
void mesh_control_push_shutdown(void *p);

#endif /* MESH_ROLES_CONTROL_PUSH_H */
