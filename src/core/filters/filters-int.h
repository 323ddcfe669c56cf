/*
 * Inside the built-in filters (src/core/filters/): their parsed configs, the
 * pure parts the unit tests call directly (header operations, rewrite, CORS
 * origin match, redirect location), and the local reply they share. Only
 * filter.c, the filters and their tests include this file.
 *
 * Every config lives in the snapshot arena and is immutable once parsed;
 * per-request state lives in the stream (its arena).
 */
#ifndef MESH_CORE_FILTERS_INT_H
#define MESH_CORE_FILTERS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/filter.h"

struct mesh_arena;
struct mesh_headers;
struct mesh_worker;
struct mesh_snap_ctx;
struct mesh_regex;       /* snapshot_match.h */
struct mesh_str_match;

/* The types filter.c registers, by snapshot field. */
extern const struct mesh_filter_type mesh_filter_request_headers; /* header_ops.c */
extern const struct mesh_filter_type mesh_filter_response_headers;
extern const struct mesh_filter_type mesh_filter_cors;            /* cors.c */
extern const struct mesh_filter_type mesh_filter_fault;           /* fault.c */
extern const struct mesh_filter_type mesh_filter_rewrite;         /* rewrite.c */
extern const struct mesh_filter_type mesh_filter_redirect;        /* redirect.c */

/* ---- Header operations: {"set": {}, "add": {}, "remove": []} ---- */
struct mesh_hdr_op {
    const char *name;              /* lowercase token */
    const char *value;             /* NULL for remove */
    uint32_t name_len, value_len;
};

struct mesh_hdr_ops {
    struct mesh_hdr_op *remove, *set, *add;
    size_t n_remove, n_set, n_add;
};

/* Applies <ops> to <h>: remove, then set, then add. Names and values stay in the snapshot. */
void mesh_hdr_ops_apply(struct mesh_arena *a, struct mesh_headers *h, const struct mesh_hdr_ops *ops);
/*
 * Checks a header name from the snapshot (<path> names it in errors): an RFC
 * 9110 token, not a pseudo header, not hop-by-hop, not one the proxy owns
 * (host, content-length). Returns the lowercase copy in the snapshot arena,
 * or NULL after reporting.
 */
const char *mesh_filter_header_name(struct mesh_snap_ctx *c, const char *name, const char *path);

/* ---- CORS ---- */
struct mesh_cors_cfg {
    struct mesh_str_match *origins; /* exact, prefix or whole-value regex (snapshot_match.h) */
    size_t n_origins;
    const char *allow_methods, *allow_headers, *expose_headers; /* joined ", "; NULL = none */
    const char *max_age;           /* decimal text; NULL = none */
    bool allow_credentials;
    bool ignore_unmatched;         /* unmatched_preflights "ignore" */
};

/* Does <origin> match one of the allowed origins? <a> holds regex match data (mesh_str_match_holds). */
bool mesh_cors_origin_allowed(struct mesh_arena *a, const struct mesh_cors_cfg *cfg,
                              const char *origin, size_t len);

/* ---- Fault ---- */
struct mesh_fault_cfg {
    bool has_delay, has_abort;
    uint32_t delay_ms;
    uint32_t delay_percent;        /* millionths */
    uint32_t abort_percent;        /* millionths */
    int http_status;               /* 0 with grpc */
    int grpc_status;               /* -1 without */
};

/* ---- Rewrite ---- */
struct mesh_rewrite_cfg {
    const char *prefix;            /* NULL = no path replacement by prefix */
    size_t prefix_len;
    const struct mesh_regex *re;   /* or NULL; unanchored, freed with the snapshot */
    const char *substitution;      /* in PCRE2's syntax ("${1}", "$$") */
    size_t substitution_len;
    const char *authority;         /* NULL = keep */
    size_t authority_len;
};

/*
 * The rewritten path (query string kept) of <path> for route <r>, in <a>;
 * NULL when there is nothing to rewrite or no memory. <out_len> gets its length.
 */
const char *mesh_rewrite_path(struct mesh_arena *a, const struct mesh_rewrite_cfg *cfg,
                              const struct mesh_route *r, const char *path, size_t len,
                              size_t *out_len);

/* ---- Redirect ---- */
struct mesh_redirect_cfg {
    const char *path, *authority, *scheme; /* NULL = keep */
    uint16_t port;                 /* 0 = keep */
    int code;
};

/*
 * The Location of a redirect of a request to <scheme>://<authority><path>, in
 * <a>; NULL when out of memory.
 */
const char *mesh_redirect_location(struct mesh_arena *a, const struct mesh_redirect_cfg *cfg,
                                   const char *scheme, const char *authority, size_t alen,
                                   const char *path, size_t plen);

/* ---- Shared ---- */

/*
 * Answers the request locally with <status>, the headers already in
 * s->resp.hdrs (the caller cleared s->resp first and added them) and <body>
 * (static or outliving the stream). The response filters run on the head, as
 * on a direct response. <s> may be gone when this returns.
 */
void mesh_filter_reply(struct mesh_stream *s, int status, const char *body, size_t body_len);
/* Clears s->resp for mesh_filter_reply. */
void mesh_filter_reply_begin(struct mesh_stream *s);

#endif /* MESH_CORE_FILTERS_INT_H */
