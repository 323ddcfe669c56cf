/*
 * Local handlers: a role serves a listener itself (the control plane's API on
 * 15010) with the engine's HTTP/1.1 and HTTP/2 codecs, instead of proxying.
 * A listener names its handler in the snapshot ("handler": "api").
 *
 * Threading: a handler runs on the worker thread that owns the stream; every
 * function here must be called on that thread.
 */
#ifndef MESH_CORE_HANDLER_H
#define MESH_CORE_HANDLER_H

#include "core/common.h"

struct mesh_runtime;
struct mesh_stream;
struct event_base;

/** Called once the whole request (head and body) has arrived. */
typedef void mesh_handler_fn(void *arg, struct mesh_stream *s);

/**
 * Registers <fn> as handler <name> for listeners that name it. Bodies above
 * <max_body> bytes are answered 413 before the handler runs. Before start.
 */
int mesh_runtime_add_handler(struct mesh_runtime *rt, const char *name, mesh_handler_fn *fn,
                             void *arg, size_t max_body);

/* Request views: borrowed, valid until the stream ends. */
const char *mesh_stream_method(const struct mesh_stream *s, size_t *len);
/** Path with its query string ("/v1/x?y=1"). */
const char *mesh_stream_path(const struct mesh_stream *s, size_t *len);
/** First header named <name> (case-insensitive), or NULL. */
const char *mesh_stream_header(const struct mesh_stream *s, const char *name, size_t *len);
/** Peer IP address as text. */
const char *mesh_stream_peer(const struct mesh_stream *s);
/** Whole request body, contiguous (empty string when none). */
const char *mesh_stream_body(struct mesh_stream *s, size_t *len);
/** The worker's event loop, to schedule later work for this stream. */
struct event_base *mesh_stream_base(const struct mesh_stream *s);

/** Complete response; <body> is copied. */
void mesh_stream_reply(struct mesh_stream *s, int status, const char *content_type,
                       const void *body, size_t len);
/** Adds a response header before the reply starts (copied). */
void mesh_stream_reply_header(struct mesh_stream *s, const char *name, const char *value);
/** Streaming response: start, any number of data pieces, end. */
void mesh_stream_reply_start(struct mesh_stream *s, int status, const char *content_type);
void mesh_stream_reply_data(struct mesh_stream *s, const void *data, size_t len);
void mesh_stream_reply_end(struct mesh_stream *s);
/**
 * Runs <fn>(<arg>) when the stream is freed (response done or client gone):
 * the place to forget a stream a handler keeps for later (watch streams).
 */
int mesh_stream_on_close(struct mesh_stream *s, void (*fn)(void *), void *arg);

#endif /* MESH_CORE_HANDLER_H */
