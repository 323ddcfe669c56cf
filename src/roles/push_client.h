/*
 * The proxy's side of the push (docs/control.md "Push"): one watch stream to the control
 * plane (GET /v1/watch, HTTP/1.1 chunked, on the main thread's event base, never blocking),
 * each snapshot handed to the role's apply callback, the outcome sent back as an ACK or a
 * NACK (POST /v1/ack). When the stream ends or cannot be opened the client reconnects after
 * a backoff with jitter (push_frame.h); the role keeps serving what it has meanwhile.
 */
#ifndef MESH_ROLES_PUSH_CLIENT_H
#define MESH_ROLES_PUSH_CLIENT_H

#include "core/common.h"

struct event_base;
struct mesh_push_client;

/**
 * Applies one snapshot (<json>, <len> bytes, NUL-terminated) of version <version>.
 * Returns 0 when it now serves (ACK), -1 with the reason in <why> (NACK: the previous
 * snapshot keeps serving).
 */
typedef int mesh_push_apply_fn(void *arg, const char *json, size_t len, const char *version,
                               char *why, size_t why_size);

/**
 * Applies a delta (<json>: {"clusters": [...]}, <len> bytes) that turns version <base> into
 * <version>. Returns 0 when it now serves (ACK), -1 with <why> (NACK), 1 when what it serves
 * is not <base>: the client then reconnects at once, and a new watch starts with the whole
 * snapshot.
 */
typedef int mesh_push_delta_fn(void *arg, const char *json, size_t len, const char *base,
                               const char *version, char *why, size_t why_size);

struct mesh_push_client_cfg {
    struct event_base *base;
    const char *host;        /* numeric address of the control plane */
    uint16_t port;
    const char *node;        /* "NS/NAME" (required) */
    const char *labels;      /* "k=v,..." or NULL */
    const char *role;        /* "sidecar" or "gateway" */
    const char *listen;      /* the outbound listener "ADDR:PORT", or NULL (the default) */
    const char *token;       /* bearer token (copied), or NULL */
    mesh_push_apply_fn *apply;
    mesh_push_delta_fn *apply_delta; /* NULL: every delta makes the client reconnect */
    void *arg;
};

/** Copies <cfg> and starts connecting at once. */
struct mesh_push_client *mesh_push_client_new(const struct mesh_push_client_cfg *cfg);
/** Closes the streams and cancels timers; NULL is fine. */
void mesh_push_client_free(struct mesh_push_client *c);

/** Snapshots applied and refused so far, and reconnects (for logs and tests). */
struct mesh_push_client_stats {
    uint64_t applied, refused, connects, failures, deltas;
};
void mesh_push_client_stats(const struct mesh_push_client *c, struct mesh_push_client_stats *out);


#endif /* MESH_ROLES_PUSH_CLIENT_H */
