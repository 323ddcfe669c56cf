/*
 * Mirrors (route.mirrors, docs/snapshot.md): a copy of a request goes to
 * another cluster as a *shadow* stream, a mesh_stream with no client behind
 * it. Its down_ops discard the response; it is owned by the worker (listed in
 * w->shadows) and frees itself when its response ends, fails or times out.
 * While the original request still streams its body, the shadow gets a copy
 * of each chunk; a shadow that falls behind is dropped, never the client.
 */
#ifndef MESH_CORE_MIRROR_H
#define MESH_CORE_MIRROR_H

#include <stdbool.h>

struct evbuffer;
struct mesh_mirror;
struct mesh_stream;
struct mesh_worker;

/* proxy.c -> mirror.c */
/** Sends a shadow copy of <s> (routed, request headers final) to <m>'s cluster. */
void mesh_mirror_send(struct mesh_stream *s, const struct mesh_mirror *m);
/** Request body of <s>: copied (not consumed) to its streaming shadows. */
void mesh_mirror_request_data(struct mesh_stream *s, struct evbuffer *data);
/** The request of <s> is complete: its shadows finish theirs and go on alone. */
void mesh_mirror_request_end(struct mesh_stream *s);
/** <s> is being freed: a shadow leaves its lists; a request drops the shadows still copying it. */
void mesh_mirror_stream_gone(struct mesh_stream *s);
/** Worker exit: frees the shadows still in flight (before the pools go). */
void mesh_mirror_free_all(struct mesh_worker *w);

/* mirror.c -> proxy.c */
/** Sends a routed stream upstream: timers, then the first try. May free <s> at once. */
void mesh_proxy_forward(struct mesh_stream *s);
/** Appends a copy of <src> to <dst>; <src> is unchanged. */
void mesh_proxy_copy_buf(struct evbuffer *dst, struct evbuffer *src);

#endif /* MESH_CORE_MIRROR_H */
