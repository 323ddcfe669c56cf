/*
 * The push stream's framing (docs/control.md, "Push"): what the control plane writes on a
 * watch response and the sidecar reads. Every message is one header line, a JSON object
 * ending in "\n"; a header with "length": N is followed by a body of exactly N bytes and
 * one "\n" (not counted), so a snapshot travels as its own JSON text, parsed once:
 *
 *   {"type":"snapshot","id":3,"version":"9f2c...","revision":12,"length":5012}\n
 *   {...5012 bytes of snapshot JSON...}\n
 *   {"type":"ping"}\n
 *   {"type":"delta","id":3,"version":"c-7a...","base":"9f2c...","revision":13,"length":310}\n
 *   {"clusters":[...the clusters that changed...]}\n
 *
 * Also here: the sidecar's reconnect backoff, a pure function so that it can be tested.
 */
#ifndef MESH_ROLES_PUSH_FRAME_H
#define MESH_ROLES_PUSH_FRAME_H

#include <jansson.h>
#include "core/common.h"

/* A header line longer than this is a protocol error (a header is a few fields). */
#define MESH_PUSH_MAX_HEADER (64u << 10)
/* A body longer than this is refused (a 1,000-service snapshot is a few MiB). */
#define MESH_PUSH_MAX_BODY (256u << 20)

/** One message; every pointer is borrowed from the parser until its next call. */
struct mesh_push_frame {
    json_t *header;     /* the header object */
    const char *type;   /* its "type" ("snapshot", "error", "ping"...) */
    const char *body;   /* NUL-terminated; NULL when the header has no "length" */
    size_t body_len;
};

struct mesh_push_parser {
    char *buf;          /* received bytes; [off, len) not consumed yet */
    size_t off, len, cap;
    json_t *header;     /* the last frame's header (freed at the next call) */
    bool failed;        /* a protocol error was returned: the stream is unusable */
};

void mesh_push_parser_init(struct mesh_push_parser *p);
void mesh_push_parser_free(struct mesh_push_parser *p);
/** Appends received bytes (copied). */
void mesh_push_parser_feed(struct mesh_push_parser *p, const void *data, size_t len);
/**
 * The next complete message: 1 with <f> filled, 0 when more bytes are needed, -1 on a
 * protocol error (the reason in <why>; every later call fails the same way).
 */
int mesh_push_parser_next(struct mesh_push_parser *p, struct mesh_push_frame *f, char *why,
                          size_t why_size);

/**
 * One message into a malloc'd buffer (caller frees; *<out_len> bytes): the header line, and
 * when <body> is not NULL the body after it. <header> stays the caller's; "length" is set in
 * it when there is a body.
 */
char *mesh_push_frame_encode(json_t *header, const char *body, size_t body_len, size_t *out_len);

/*
 * Reconnect delay before attempt <attempt> (0 = the first retry): 200 ms doubling up to
 * 10 s, with jitter: a value in [d/2, d] chosen by <rnd>, so that a fleet of sidecars
 * does not reconnect in step after the control plane restarts.
 */
#define MESH_PUSH_BACKOFF_BASE_MS 200u
#define MESH_PUSH_BACKOFF_MAX_MS 10000u
uint32_t mesh_push_backoff_ms(unsigned attempt, uint32_t rnd);

#endif /* MESH_ROLES_PUSH_FRAME_H */
