/*
 * The filter chain (docs/ARCHITECTURE.md): once a request is routed, the
 * route's filters run in order on its head, then the destination's; on the
 * way back each sees the response head before it is sent. Built-in filters
 * (src/core/filters/: header operations, CORS, fault injection, rewrite,
 * redirect) implement this interface; Lua scripts and plugins will too.
 *
 * A filter's config is parsed once, at snapshot load, by its type's parse
 * callback, and is immutable afterwards: filters keep per-request state in
 * the stream (its arena), never in the config.
 */
#ifndef MESH_CORE_FILTER_H
#define MESH_CORE_FILTER_H

#include <jansson.h>
#include "core/snapshot.h"

struct mesh_stream;
struct mesh_snap_ctx;

enum mesh_filter_status {
    MESH_FILTER_CONTINUE = 0,      /* go on with the next filter, then the upstream */
    MESH_FILTER_STOP = 1,          /* the filter answered locally (mesh_proxy_local_reply) */
    MESH_FILTER_PAUSE = 2,         /* the filter resumes the chain later (mesh_filter_resume) */
};

struct mesh_filter_type {
    const char *name;              /* the snapshot field that configures it: "fault", "cors"... */
    /*
     * Parses the field's JSON value at <path> into a config allocated in the
     * snapshot arena (mesh_snap_zalloc). Problems go to mesh_snap_fail; the
     * return value is then ignored. Setup path.
     */
    const void *(*parse)(struct mesh_snap_ctx *c, json_t *v, const char *path);
    /* The request head, routed (s->route, s->cluster set). NULL: nothing to do. */
    enum mesh_filter_status (*on_request)(struct mesh_stream *s, const void *cfg);
    /* The final response head, before it goes to the client; may edit s->resp. NULL: nothing. */
    void (*on_response)(struct mesh_stream *s, const void *cfg);
};

/* Built-in filter types, by snapshot field name; NULL when unknown. */
const struct mesh_filter_type *mesh_filter_find(const char *name);

/*
 * Runs the request side of the chain from where it stands (s->filter_next):
 * the route's filters, then the chosen destination's. MESH_FILTER_CONTINUE
 * when every filter let the request through.
 */
enum mesh_filter_status mesh_filter_request(struct mesh_stream *s);
/* A filter that paused lets the chain go on; the proxy continues the request when it ends. */
void mesh_filter_resume(struct mesh_stream *s);
/* Runs every filter's on_response (route's, then destination's) on s->resp. */
void mesh_filter_response(struct mesh_stream *s);

#endif /* MESH_CORE_FILTER_H */
