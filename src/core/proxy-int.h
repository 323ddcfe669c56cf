/*
 * Internal structures of the proxy engine, shared by the files that make it:
 * worker.c (threads, listeners), conn.c (downstream transport), h1_down.c /
 * h2_down.c (downstream codecs), proxy.c (routing, the glue between the two
 * sides), upstream.c (pools), h1_up.c / h2_up.c (upstream codecs), tunnel.c.
 * Nothing outside the engine includes this file.
 *
 * Ownership in one paragraph: a worker owns its connections; a downstream
 * connection owns its streams; a stream owns its arena (headers, strings) and
 * its body buffers, and holds one snapshot reference. An upstream connection
 * is owned by its pool and only *borrows* the stream it serves: whichever side
 * goes first detaches the other (mesh_up_detach / mesh_proxy_upstream_error).
 */
#ifndef MESH_CORE_PROXY_INT_H
#define MESH_CORE_PROXY_INT_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include "core/arena.h"
#include "core/io_batch.h"
#include "core/list.h"
#include "core/tqueue.h"
#include "core/snapshot.h"
#include "core/stats.h"
#include "core/status.h"

/* ---- Limits ---- */
#define MESH_MAX_HEADERS 100
#define MESH_MAX_HEADER_BYTES (64 * 1024)
#define MESH_MAX_REQUEST_LINE (8 * 1024)
#define MESH_BUF_HIGH (256 * 1024) /* pause the producer above this backlog */
#define MESH_BUF_LOW (64 * 1024)   /* ...and resume it below this */
/* one read's room: 16 KiB less libevent's chain header, so that the chain is one 16 KiB
 * block (16 KiB plus the header would round up to a 32 KiB allocation) */
#define MESH_READ_SIZE (16 * 1024 - 64)
#define MESH_STREAM_ARENA_BUDGET (256 * 1024)
#define MESH_STREAM_CACHE_MAX 512      /* stream arenas a worker keeps for reuse ... */
#define MESH_STREAM_CACHE_KEEP 32      /* ... and keeps for good; the rest, only while used */
#define MESH_STREAM_CACHE_TRIM_MS 5000 /* how often what no stream took is given back */

struct mesh_worker;
struct mesh_runtime;
struct mesh_conn;
struct mesh_stream;
struct mesh_upconn;
struct mesh_pool;
struct mesh_l4_conn;
struct mesh_lb_worker;
struct mesh_lb_shared;

/* ---- Headers ---- */
struct mesh_header {
    const char *name;              /* original case (HTTP/1.1), lowercase from HTTP/2 */
    const char *value;
    uint32_t name_len, value_len;
};

struct mesh_headers {
    struct mesh_header *v;         /* in the stream arena */
    uint32_t n, cap;
};

/** Appends a header; <name>/<value> must already live as long as the stream. */
int mesh_headers_add(struct mesh_arena *a, struct mesh_headers *h, const char *name, size_t nlen,
                     const char *value, size_t vlen);
/** Copies name and value into the arena, then appends. */
int mesh_headers_add_copy(struct mesh_arena *a, struct mesh_headers *h, const char *name,
                          size_t nlen, const char *value, size_t vlen);
/** First header named <name> (case-insensitive) or NULL. */
struct mesh_header *mesh_headers_get(const struct mesh_headers *h, const char *name, size_t nlen);
void mesh_headers_del(struct mesh_headers *h, const char *name, size_t nlen);
bool mesh_header_is(const struct mesh_header *hd, const char *name, size_t nlen);
/** Token list test: does comma-separated <value> contain <tok> (case-insensitive)? */
bool mesh_token_list_has(const char *value, size_t len, const char *tok, size_t tlen);
/** Removes hop-by-hop headers, including those named in Connection. */
void mesh_headers_strip_hop(struct mesh_headers *h, bool keep_upgrade);
const char *mesh_http_reason(int status);

/* ---- Messages ---- */
struct mesh_msg {
    struct mesh_headers hdrs;
    struct mesh_headers trailers;
    const char *method;            /* request */
    const char *path;              /* request: origin form ("/a?b"), NULL for CONNECT */
    const char *authority;         /* request: Host or :authority */
    const char *scheme;            /* request: "http" / "https" */
    uint32_t method_len, path_len, authority_len;
    int status;                    /* response */
    int64_t content_length;        /* -1 when not given */
    uint8_t http_minor;            /* HTTP/1.x minor version of the peer that sent it */
    bool chunked;                  /* HTTP/1.1 chunked framing on the wire */
};

/* ---- Stream ---- */

/* Response flags, as in Envoy's access log (%RESPONSE_FLAGS%). */
enum {
    MESH_RF_UF = 1u << 0,  /* upstream connection failure */
    MESH_RF_UH = 1u << 1,  /* no healthy upstream */
    MESH_RF_UO = 1u << 2,  /* upstream overflow */
    MESH_RF_UT = 1u << 3,  /* upstream request timeout */
    MESH_RF_UC = 1u << 4,  /* upstream connection termination */
    MESH_RF_NR = 1u << 5,  /* no route */
    MESH_RF_DC = 1u << 6,  /* downstream connection termination */
    MESH_RF_SI = 1u << 7,  /* stream idle timeout */
    MESH_RF_DPE = 1u << 8, /* downstream protocol error */
    MESH_RF_UPE = 1u << 9, /* upstream protocol error */
};
/** "UF,UT" style text of <flags> into <buf>; "-" when none. */
const char *mesh_response_flags_str(unsigned flags, char *buf, size_t size);

/* Implemented by each downstream codec. */
struct mesh_down_ops {
    /* s->resp holds the head; 1xx statuses are interim. <end>: no body follows. */
    void (*send_headers)(struct mesh_stream *s, bool end);
    /* Moves all of <data> towards the client. */
    void (*send_data)(struct mesh_stream *s, struct evbuffer *data);
    /* End of response; s->resp.trailers may hold trailers. */
    void (*send_end)(struct mesh_stream *s);
    /* Abort a response whose headers were already sent. */
    void (*reset)(struct mesh_stream *s);
    /* The request producer may read again (after congestion). */
    void (*resume_read)(struct mesh_stream *s);
    /* Is the client-facing backlog above MESH_BUF_HIGH? */
    bool (*congested)(struct mesh_stream *s);
    /* Response was 101/200-to-CONNECT: become a byte tunnel. */
    void (*start_tunnel)(struct mesh_stream *s);
};

/* Implemented by each upstream codec. */
struct mesh_up_ops {
    void (*send_data)(struct mesh_stream *s, struct evbuffer *data);
    void (*send_end)(struct mesh_stream *s);
    /* The stream is going away: forget it (and reset the upstream request if in flight). */
    void (*detach)(struct mesh_stream *s);
    void (*resume_read)(struct mesh_stream *s);
    bool (*congested)(struct mesh_stream *s);
};

enum mesh_stream_state {
    MESH_SS_HEADERS = 0,   /* receiving the request head */
    MESH_SS_ROUTED,        /* waiting for an upstream connection */
    MESH_SS_UPSTREAM,      /* attached to an upstream connection */
    MESH_SS_LOCAL,         /* answered locally */
    MESH_SS_TUNNEL,
    MESH_SS_HANDLER,       /* served by a role's handler (control API) */
    MESH_SS_DONE,
};

struct mesh_stream {
    struct mesh_arena *arena;
    struct mesh_worker *w;
    struct mesh_conn *conn;              /* downstream connection (owner) */
    const struct mesh_down_ops *dops;
    struct mesh_snapshot *snap;          /* reference held for the stream's life */
    int32_t h2_id;                       /* downstream HTTP/2 stream id, 0 for HTTP/1.1 */
    enum mesh_stream_state state;
    struct mesh_msg req, resp;

    const struct mesh_handler_reg *handler;
    const struct mesh_route *route;
    const struct mesh_cluster *cluster;
    const struct mesh_endpoint *endpoint;
    const struct mesh_weighted_cluster *dest; /* the weighted destination picked, if any */
    unsigned filter_next;                /* next filter of the chain to run (filter.c) */
    struct mesh_headers resp_add;        /* headers to add to the response (filters, lb cookie) */
    const struct mesh_endpoint *tried[4]; /* endpoints already tried (retry on another host) */
    uint8_t n_tried;
    bool lb_picked;                      /* mesh_lb_pick() gave the endpoint: mesh_lb_done() owed */
    struct mesh_upconn *up;              /* borrowed while attached */
    const struct mesh_up_ops *uops;
    struct mesh_list pending_link;       /* in pool->pending while waiting for a connection */
    struct mesh_pool *pending_pool;

    struct evbuffer *req_buf;            /* request body not yet handed to the upstream */
    struct evbuffer *resp_buf;           /* HTTP/2 downstream: response body not yet framed */
    struct mesh_tq_entry tmo;            /* request and stream idle timeouts (tqueue.h) ... */
    struct event *timer;                 /* ... or, for what is left after an early fire, this */
    uint32_t timeout_ms;                 /* the request timeout in effect (0: none) */
    uint64_t down_unconsumed;            /* HTTP/2 downstream: bytes received but not acked */
    uint64_t up_unconsumed;              /* HTTP/2 upstream: bytes received but not acked */
    uint64_t req_bytes, resp_bytes;
    uint64_t start_ns;
    uint64_t last_ms, deadline_ms;       /* stream idle / request timeout (cached clock) */
    unsigned flags;                      /* MESH_RF_* */
    unsigned attempts;
    bool req_end;                        /* the client finished the request */
    bool req_sent_end;                   /* the upstream got the end of the request */
    bool resp_headers_sent;
    bool resp_end;
    bool req_paused;                     /* request producer paused for backpressure */
    bool resp_paused;                    /* response producer paused for backpressure */
    bool is_head, is_connect, is_upgrade, expect_continue;
    /* RFC 8441: an HTTP/2 CONNECT with :protocol, sent upstream as an HTTP/1.1 GET with
     * Upgrade (is_upgrade too); the 101 becomes the stream's 200 */
    bool is_ext_connect;
    /* this try's upstream leg is an HTTP/2 extended CONNECT (RFC 8441, h2_up.c): its 2xx
     * opens the tunnel, and the stream's DATA carry it both ways */
    bool up_ext_connect;
    bool up_bytes_seen;                  /* any response byte from the upstream */
    bool close_after;                    /* HTTP/1.1: close the connection after this response */
    bool counted_active;
    /* HTTP/2 bookkeeping */
    struct mesh_list down_link;          /* in conn->h2_streams (HTTP/2 downstream) */
    struct mesh_list up_link;            /* in upconn->h2_streams (HTTP/2 upstream) */
    int32_t up_h2_id;                    /* upstream HTTP/2 stream id */
    bool h2_data_deferred;               /* downstream data provider waits for data */
    bool h2_up_deferred;                 /* upstream data provider waits for data */
    bool up_req_end;                     /* HTTP/2 upstream: request body complete */
    bool up_resp_complete;               /* HTTP/2 upstream: response fully received */
    bool up_resp_final;                  /* HTTP/2 upstream: the final (non-1xx) head came;
                                            a later HEADERS frame is trailers */
    bool up_req_framed;                  /* HTTP/2 upstream: request's end framed by nghttp2 */
    bool h2_in_trailers;                 /* receiving request trailers (downstream) */
    int reject_status;                   /* HTTP/2: refuse once the head is complete */
    const char *reject_why;              /* its static reason */
    /* Retries (proxy.c, retry.h) */
    struct evbuffer *replay;             /* copy of the request body for a retry (<= 64 KiB) */
    struct event *try_timer;             /* per-try timeout, or the backoff before a retry */
    uint8_t retries;                     /* retries started by the route's retry policy */
    uint8_t reuse_retries;               /* replays after a reused connection failed */
    bool replay_lost;                    /* the body outgrew the replay buffer: no retry */
    bool retry_wait;                     /* try_timer is the backoff, not the per-try timeout */
    bool retry_held;                     /* holds one of the cluster's max_retries */
    bool up_refused;                     /* HTTP/2 upstream refused the stream (REFUSED_STREAM) */
    /* Mirrors (mirror.c) */
    bool is_shadow;                      /* a mirror's copy: no client behind it */
    struct mesh_stream *shadow_parent;   /* shadow: the request it copies, while it streams */
    struct mesh_list shadows;            /* request: its shadows still copying its body */
    struct mesh_list shadow_link;        /* shadow: in parent->shadows */
    struct mesh_list worker_link;        /* shadow: in w->shadows (freed at worker exit) */
};

struct mesh_stream *mesh_stream_new(struct mesh_conn *c, const struct mesh_down_ops *dops);
/** Frees the stream; detaches the upstream side first. Called by the downstream codec. */
void mesh_stream_free(struct mesh_stream *s);
/** A reset arena for a new stream (or shadow), from the worker's cache or new; NULL: no memory. */
struct mesh_arena *mesh_stream_arena_take(struct mesh_worker *w);
/** Takes back a stream's arena <a> (ownership passes) for the next stream. */
void mesh_stream_arena_give(struct mesh_worker *w, struct mesh_arena *a);
/** Frees what the worker keeps for its streams, the arena cache and the timeout queues (at
 * worker exit, after its last stream). */
void mesh_stream_worker_free(struct mesh_worker *w);

/* ---- Proxy glue (proxy.c) ---- */
/** Request head complete. <end>: no body follows. */
void mesh_proxy_request_headers(struct mesh_stream *s, bool end);
/** The filter chain let the routed request through: answer it or send it upstream. */
void mesh_proxy_continue(struct mesh_stream *s);
/** Request body bytes (moved out of <data>). Returns true when the producer should pause. */
bool mesh_proxy_request_data(struct mesh_stream *s, struct evbuffer *data);
void mesh_proxy_request_end(struct mesh_stream *s);
/** Downstream went away mid-stream (connection closed or HTTP/2 reset). */
void mesh_proxy_downstream_abort(struct mesh_stream *s);
/** Answers locally (before response headers went out), with <reason> as the body. */
void mesh_proxy_local_reply(struct mesh_stream *s, int status, unsigned flag, const char *reason);
/* Upstream side events */
void mesh_proxy_upstream_ready(struct mesh_stream *s, struct mesh_upconn *u,
                               const struct mesh_up_ops *uops);
/** An HTTP/2 CONNECT stream became a tunnel (tunnel.c): <tops> are its upstream side from
 * now on; its idle timer starts and what the client sent while waiting goes out. */
void mesh_proxy_tunnel_ready(struct mesh_stream *s, const struct mesh_up_ops *tops);
void mesh_proxy_response_headers(struct mesh_stream *s, bool end);
bool mesh_proxy_response_data(struct mesh_stream *s, struct evbuffer *data);
void mesh_proxy_response_end(struct mesh_stream *s);
/** Upstream failed; <retryable>: nothing was received and the connection was reused. */
void mesh_proxy_upstream_error(struct mesh_stream *s, int status, unsigned flag, const char *reason,
                               bool retryable);
/** Response fully sent to the client: stats, access log. */
void mesh_proxy_stream_done(struct mesh_stream *s);
/**
 * An HTTP/1.1 stream that became a tunnel waits for the tunnel's end, for its access-log
 * line with the bytes and the time of the whole tunnel: its timers, retry slot, mirror
 * copies and buffers end now (the tunnel's idle timeout is the connection's).
 */
void mesh_proxy_stream_park(struct mesh_stream *s);

/* ---- Downstream connection (conn.c) ---- */
enum mesh_conn_proto {
    MESH_CONN_SNIFF = 0,
    MESH_CONN_H1,
    MESH_CONN_H2,
    MESH_CONN_TUNNEL,
    MESH_CONN_L4, /* tcp_routes: waiting for a ClientHello, or proxied as bytes (tcp_proxy.c) */
};

/*
 * Lazy idle timers (conn.c, upstream.c): arming stamps a deadline and adds the timer only
 * when none is pending for an earlier time; disarming clears a flag. The timer re-arms
 * itself for the rest when it fires early, and ignores a connection in use, so a request
 * does not touch the timer heap for its connections' idle timeouts.
 */
struct mesh_lazy_timer {
    uint64_t deadline_ms;   /* when the connection times out, if <on> */
    uint64_t fire_ms;       /* when the pending timer fires (valid while it is pending) */
    bool on;
};

/*
 * A chunked request body, decoded strictly (RFC 9112 7.1, h1_chunked.c): hex sizes
 * without sign, space or prefix, CRLF after every size line and every chunk's data, no
 * bare CR or LF in extensions, trailers in the head's grammar and without the fields
 * that frame, route or authenticate a request. http-parser, as Debian builds it, took
 * any two bytes for the CRLF after a chunk's data, and a bare LF in places: a front
 * proxy that reads the same bytes otherwise splits the request differently.
 */
struct mesh_h1_chunked {
    uint8_t state;
    uint8_t tstate;          /* where in a trailer line */
    uint8_t digits;          /* of the chunk size being read */
    uint16_t ext_len;        /* bytes of the current size line's extensions */
    uint64_t left;           /* chunk data still to come */
    struct evbuffer *trailer; /* the trailer section's bytes, once one began */
};
struct mesh_conn {
    struct mesh_worker *w;
    int fd;
    enum mesh_conn_proto proto;
    struct event *rev, *wev, *idle;
    struct mesh_lazy_timer idle_t;        /* the idle timeout behind <idle> */
    struct evbuffer *in, *out;
    size_t listener_idx;                  /* index into every snapshot's listeners (stable) */
    char peer_ip[64];
    struct sockaddr_storage dst;          /* where the client connected: SO_ORIGINAL_DST, else local */
    socklen_t dst_len;
    struct mesh_l4_conn *l4;              /* tcp/tls route state (tcp_proxy.c), NULL for HTTP */
    struct mesh_list link;                /* in worker->conns */
    bool reading;                         /* read event enabled */
    bool closing;                         /* close once out is flushed */
    bool shut_wr_pending;                 /* send FIN once out is flushed (tcp_routes half-close) */
    bool draining;                        /* SIGTERM: finish in-flight, then close */
    bool eof;
    bool dead;                            /* closed: teardown runs on the next loop turn */
    struct mesh_io_op rop, wop;           /* reads into <in>, writes from <out> (io_batch.h) */
    bool linger;                          /* after an error reply: FIN, then drain input briefly */
    bool lingering;
    size_t linger_bytes;
    /* HTTP/1.1 */
    struct mesh_stream *h1_stream;        /* request being parsed or answered */
    int64_t h1_body_left;                 /* body bytes still to come; -1: chunked */
    struct mesh_h1_chunked h1_ck;         /* chunked: the decoder's state */
    bool h1_resp_chunked, h1_resp_nobody, h1_msg_complete;
    int h1_err_status;                    /* a malformed chunked body: its status (400/431) */
    const char *h1_err;                   /* static reason for h1_err_status */
    struct evbuffer *h1_body;             /* decoded body bytes of the current read */
    /* HTTP/2 */
    nghttp2_session *h2;
    struct mesh_list h2_streams;
    /* the stream whose header block is being received: its fields come one callback each,
     * and nghttp2's stream lookup (a hash probe) was 1.6% of an HTTP/2 request */
    struct mesh_stream *h2_hdr_stream;
    unsigned h2_in_cb;                    /* inside nghttp2 callbacks: no mem_send now */
    struct evbuffer *h2_tmp;
    /* Tunnel */
    struct mesh_upconn *tunnel_up;
    struct mesh_stream *tunnel_log;       /* HTTP/1.1: the stream that became the tunnel, kept
                                           * for its access-log line at the end (owned) */
    struct mesh_stream *tunnel_stream;    /* HTTP/1.1: the tunnel is that stream's upstream
                                           * HTTP/2 extended CONNECT (the same as tunnel_log) */
};

void mesh_conn_accept(struct mesh_worker *w, int fd, size_t listener_idx,
                      const struct sockaddr *sa, socklen_t salen);
/** Schedules writing <out> at the end of this loop turn (coalesces writes). */
void mesh_conn_flush(struct mesh_conn *c);
/** Writes what <c> holds, then closes it (a lingering close with <linger>, for a client
 * whose unread input would turn the close into a reset). Reading stops; the idle timeout
 * bounds the wait for a client that does not read. */
void mesh_conn_close_after_flush(struct mesh_conn *c, bool linger);
void mesh_conn_set_reading(struct mesh_conn *c, bool on);
/** Closes now (streams aborted). */
void mesh_conn_close(struct mesh_conn *c);
/** Starts a graceful close (HTTP/2 GOAWAY, HTTP/1.1 Connection: close). */
void mesh_conn_drain(struct mesh_conn *c);
void mesh_conn_idle_arm(struct mesh_conn *c);
void mesh_conn_idle_disarm(struct mesh_conn *c);

/* Codec entry points called by conn.c */
int mesh_h1_down_init(struct mesh_conn *c);
int mesh_h1_down_on_read(struct mesh_conn *c);      /* parse what is in c->in */
void mesh_h1_down_on_written(struct mesh_conn *c);  /* out drained below MESH_BUF_LOW */
void mesh_h1_down_close(struct mesh_conn *c);
void mesh_h1_down_drain(struct mesh_conn *c);
int mesh_h2_down_init(struct mesh_conn *c);
int mesh_h2_down_on_read(struct mesh_conn *c);
void mesh_h2_down_on_written(struct mesh_conn *c);
void mesh_h2_down_close(struct mesh_conn *c);
void mesh_h2_down_drain(struct mesh_conn *c);

/* ---- HTTP/1.1 helpers (http1.c) ---- */
/** One header field of a parsed head: spans into the head, the value without OWS. */
struct mesh_h1_field {
    const char *name, *value;
    uint32_t name_len, value_len;
};

/** A parsed HTTP/1.x head; every pointer points into the text it was parsed from. */
struct mesh_h1_head {
    const char *method, *target;       /* requests */
    uint32_t method_len, target_len;
    int status;                        /* responses */
    uint8_t minor;                     /* HTTP/1.<minor> */
    const unsigned char *start;        /* the head's first byte */
    size_t len;                        /* the head's length, its empty line included */
    unsigned nfields;
    struct mesh_h1_field field[MESH_MAX_HEADERS];
};

/**
 * Strict parse of a request head (request line + header lines, up to and
 * including the empty line) in one pass: the request line's grammar, a
 * method http-parser knows, token names right before their colons, no
 * obs-fold, CRLF only, no NUL or control bytes, counts and sizes. Returns 0
 * with <h> filled, or an HTTP status (400/414/431) with <why> set to a
 * static reason.
 */
int mesh_h1_parse_request_head(const char *p, size_t len, struct mesh_h1_head *h, const char **why);
/**
 * Header lines in the head's strict grammar, up to and including the empty line (a
 * chunked body's trailer section): 0 with <h> filled, or 400/431 with <why>.
 */
int mesh_h1_parse_fields(const char *p, size_t len, struct mesh_h1_head *h, const char **why);

/** Ready for a new body (the trailer buffer is kept for the next). */
void mesh_h1_chunked_reset(struct mesh_h1_chunked *ck);
/**
 * Decodes from <p> (<n> bytes): chunk data goes to <body>. Returns the bytes used;
 * *<status> is set (400/431, with <why>) when the body is malformed, and
 * mesh_h1_chunked_done() says when it ended (then the trailers are ready).
 */
size_t mesh_h1_chunked_feed(struct mesh_h1_chunked *ck, const char *p, size_t n,
                            struct evbuffer *body, int *status, const char **why);
bool mesh_h1_chunked_done(const struct mesh_h1_chunked *ck);
/**
 * A field that may not come as a trailer (RFC 9110 6.5.1): one that frames, routes or
 * authenticates a request, or meshd's own word about it (x-forwarded-*, x-request-id).
 * Both HTTP/1.1 (h1_chunked.c) and HTTP/2 (h2_down.c) refuse a request that sends one.
 */
bool mesh_http_trailer_forbidden(const char *name, size_t len);
/**
 * The ended body's trailers, copied into <a> and added to <out>: 0, or 400/431 with
 * <why> (a field the head's grammar refuses, or one that may not be a trailer).
 */
int mesh_h1_chunked_trailers(struct mesh_h1_chunked *ck, struct mesh_arena *a,
                             struct mesh_headers *out, const char **why);

/**
 * Copies a parsed head into <a> and moves every span of <h> onto the copy, so
 * that they outlive the input buffer. Returns the copy; NULL past the arena's
 * budget.
 */
const char *mesh_h1_head_keep(struct mesh_h1_head *h, struct mesh_arena *a);
/**
 * Parses a response head in its plain shape ("HTTP/1.x DDD reason", the
 * same strict field grammar) from the start of <p>, which may hold more
 * than the head. Returns the head's length, or 0 when it is anything else
 * or not all there: the caller hands it to http-parser, which judges it.
 */
size_t mesh_h1_parse_response_head(const char *p, size_t len, struct mesh_h1_head *h);
/**
 * Appends a piece of a header name or value that http-parser handed over
 * (pieces may span reads): a new arena copy of the whole. -1 past
 * MESH_MAX_HEADER_BYTES or the arena's budget.
 */
int mesh_h1_append_piece(struct mesh_arena *a, char **dst, size_t *dlen, const char *at,
                         size_t len);
/** <v> without the spaces and tabs around it; <len> is updated. */
const char *mesh_h1_trim_ows(const char *v, size_t *len);
/** A method meshd forwards (the ones http-parser knows; exact case). */
bool mesh_http_method_known(const char *m, size_t len);
/**
 * A Host or :authority value meshd forwards: uri-host [":" port] characters only (empty
 * too: RFC 9112 3.2), so no userinfo, space, path or query reaches a backend as a host.
 */
bool mesh_http_authority_ok(const char *v, size_t len);
/** A Transfer-Encoding value (trimmed) meshd can undo: "chunked" alone, in any case.
 * Anything else (gzip, "gzip, chunked") is refused both ways: meshd re-frames bodies. */
static inline bool mesh_h1_te_is_chunked(const char *v, size_t len)
{
    return len == 7 && strncasecmp(v, "chunked", 7) == 0;
}
/** Serialises a request head (HTTP/1.1) into <out>. */
void mesh_h1_write_request_head(struct evbuffer *out, const struct mesh_msg *m, bool chunked);
/** Serialises a response head into <out>, HTTP/1.1 always; <minor> is the client's: an
 * HTTP/1.0 client kept alive is told so (Connection: keep-alive). */
void mesh_h1_write_response_head(struct evbuffer *out, const struct mesh_msg *m, int minor,
                                 bool chunked, bool close);
/** Appends <data> to <out> as one chunk (moves it). */
void mesh_h1_write_chunk(struct evbuffer *out, struct evbuffer *data);
void mesh_h1_write_last_chunk(struct evbuffer *out, const struct mesh_headers *trailers);
/** Writes <v> in decimal at <out> (room for 20 digits), no NUL; returns the digits written. */
size_t mesh_u64_dec(char *out, uint64_t v);

/* ---- Upstream pools (upstream.c) ---- */
/* A Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 4.1). */
#define MESH_WS_KEY_LEN 24

/* What an HTTP/2 endpoint said of RFC 8441 in its SETTINGS (pool->ext_connect). */
enum {
    MESH_EXT_CONNECT_UNKNOWN = 0, /* no connection to it has had its SETTINGS yet */
    MESH_EXT_CONNECT_YES,
    MESH_EXT_CONNECT_NO,
};

struct mesh_pool {
    const char *key;                   /* endpoint key, owned by the pool */
    struct sockaddr_storage sa;
    socklen_t salen;
    enum mesh_upstream_proto proto;
    struct mesh_worker *w;
    struct mesh_list idle;             /* idle HTTP/1.1 connections */
    struct mesh_list all;              /* every connection of this pool */
    struct mesh_list pending;          /* streams waiting for a connection */
    uint32_t n_conns, n_pending;
    uint32_t max_conns, max_pending, max_reqs_per_conn;
    uint32_t connect_timeout_ms, idle_timeout_ms;
    struct mesh_tcp_keepalive keepalive; /* for new connections */
    uint32_t n_connecting;
    uint8_t ext_connect;               /* HTTP/2: MESH_EXT_CONNECT_* from the endpoint's SETTINGS */
    struct event *dispatch;            /* hands pending streams to freed connections */
    struct mesh_pool *hnext;           /* worker hash chain */
};

enum mesh_upconn_state {
    MESH_UP_CONNECTING = 0,
    MESH_UP_READY,
    MESH_UP_CLOSED,
};

struct mesh_upconn {
    struct mesh_pool *pool;
    int fd;
    enum mesh_upconn_state state;
    enum mesh_upstream_proto proto;
    struct event *rev, *wev, *timer;   /* timer: connect timeout, then the pool's idle timeout */
    struct mesh_lazy_timer idle_t;     /* the idle timeout, while in pool->idle */
    struct evbuffer *in, *out;
    struct evbuffer *tmp;              /* decoded response body of one read */
    struct mesh_list link;             /* in pool->all */
    struct mesh_list idle_link;        /* in pool->idle when idle */
    bool in_idle, reading, tunnel;
    uint32_t requests;                 /* requests sent on it */
    bool dead;                         /* closed: freed on the next loop turn */
    int connect_err;
    struct mesh_io_op rop, wop;        /* reads into <in>, writes from <out> (io_batch.h) */
    /* HTTP/1.1: one stream at a time */
    struct mesh_stream *stream;
    http_parser parser;
    char *hdr_name;
    size_t hdr_name_len;
    bool in_value, resp_headers_done, resp_headers_emitted, resp_complete, body_sent_end;
    bool req_chunked, interim;
    bool parser_fed;                   /* this response's bytes went to a parser already */
    bool plain;                        /* this response's head was parsed without http-parser */
    bool plain_keep_alive;             /* plain: the upstream keeps the connection open */
    const char *refused;               /* why a callback refused the response (static text) */
    int64_t plain_left;                /* plain: body bytes still to come */
    unsigned nhdr;
    char *hdr_value;
    size_t hdr_value_len;
    /* HTTP/2 */
    nghttp2_session *h2;
    struct mesh_list h2_streams;       /* attached streams */
    struct mesh_list h2_tails;         /* tunnels' last bytes whose stream has gone (h2_up.c) */
    unsigned h2_in_cb;
    uint32_t h2_active;
    uint32_t h2_max_streams;
    bool goaway;
    bool h2_settings_seen;             /* the peer's first SETTINGS came */
    /* Tunnel peer: a whole HTTP/1.1 connection, or one HTTP/2 CONNECT stream */
    struct mesh_conn *tunnel_down;
    struct mesh_stream *tunnel_stream;
    bool shut_wr_pending;              /* tunnel: half-close once out is flushed */
    bool tunnel_eof;                   /* tunnel: the upstream's FIN came */
    bool tunnel_finishing;             /* tunnel over both ways: closes once out is written */
};

/** Attaches <s> to a connection of its endpoint, now or when one is free. */
void mesh_upstream_start(struct mesh_stream *s);
/** Removes <s> from a pending queue it may be in. */
void mesh_upstream_cancel_pending(struct mesh_stream *s);
/** A connection finished a request and may serve another (or is closed). */
void mesh_upconn_release(struct mesh_upconn *u, bool reusable);
void mesh_upconn_close(struct mesh_upconn *u);
void mesh_upconn_flush(struct mesh_upconn *u);
void mesh_upconn_set_reading(struct mesh_upconn *u, bool on);
void mesh_pools_free(struct mesh_worker *w);

/* Upstream codecs */
void mesh_h1_up_attach(struct mesh_upconn *u, struct mesh_stream *s);
/* The *_on_read functions get the result of the read the batch did for them (io_batch.h):
 * bytes appended to u->in, 0 at end of stream, or -errno. */
int mesh_h1_up_on_read(struct mesh_upconn *u, ssize_t res);
void mesh_h1_up_on_written(struct mesh_upconn *u);
void mesh_h1_up_on_close(struct mesh_upconn *u);
int mesh_h2_up_init(struct mesh_upconn *u);
void mesh_h2_up_attach(struct mesh_upconn *u, struct mesh_stream *s);
int mesh_h2_up_on_read(struct mesh_upconn *u, ssize_t res);
void mesh_h2_up_on_written(struct mesh_upconn *u);
void mesh_h2_up_on_close(struct mesh_upconn *u);
bool mesh_h2_up_has_capacity(struct mesh_upconn *u);
/** A tunnel stream's upstream ended its side, then RST_STREAM(NO_ERROR): a clean end. */
void mesh_proxy_tunnel_upstream_done(struct mesh_stream *s);
/** The peer's SETTINGS allow RFC 8441's extended CONNECT on this connection. */
bool mesh_h2_up_takes_ext_connect(struct mesh_upconn *u);

/* Tunnels (tunnel.c): after CONNECT 200 or Upgrade 101, bytes flow both ways. */
void mesh_tunnel_start(struct mesh_conn *c, struct mesh_upconn *u);
/** HTTP/2 CONNECT (RFC 9113 8.5): s->up carries the bytes of the stream's DATA frames,
 * both ways. The stream owns the connection from here: it closes when the stream goes. */
void mesh_tunnel_start_stream(struct mesh_stream *s);
/** An HTTP/1.1 Upgrade whose upstream is an HTTP/2 extended CONNECT stream: the client
 * connection's bytes are that stream's DATA (tunnel.c). The 101 is in c->out already. */
void mesh_tunnel_start_h1_stream(struct mesh_conn *c, struct mesh_stream *s);
/** Such a tunnel's upstream sent END_STREAM: a FIN to the client once <out> is written. */
void mesh_tunnel_h1_stream_end(struct mesh_conn *c);
void mesh_tunnel_on_down_read(struct mesh_conn *c);
void mesh_tunnel_on_up_read(struct mesh_upconn *u, ssize_t res);
void mesh_tunnel_on_down_written(struct mesh_conn *c);
void mesh_tunnel_on_up_written(struct mesh_upconn *u);
void mesh_tunnel_down_closed(struct mesh_conn *c);

/* ---- Workers (worker.c) ---- */
struct mesh_worker {
    int id;
    struct mesh_runtime *rt;
    struct event_base *base;
    pthread_t thread;
    struct mesh_snapshot *snap;        /* reference: what new streams use */
    uint64_t loop_warn_ms;             /* next passthrough-loop warning (mesh_l4_loop_warn) */
    int *listen_fds;                   /* one per snapshot listener */
    struct event **listen_evs;
    size_t n_listen;
    struct event *notify;              /* main thread -> worker: new snapshot / drain */
    int notify_fd;                     /* eventfd behind <notify> */
    struct mesh_tqs *tqs;              /* streams' timeout queues (tqueue.h; lazily made) */
    struct mesh_arena *arena_cache[MESH_STREAM_CACHE_MAX]; /* reset stream arenas, reused */
    size_t n_arena_cache;
    size_t arena_cache_low;            /* fewest kept since the trim timer was armed */
    struct event *arena_trim;          /* gives back what a burst left (lazily made) */
    bool arena_trim_armed;
    uint32_t arena_trim_ms;            /* its period; 0: MESH_STREAM_CACHE_TRIM_MS (tests set it) */
    struct mesh_list conns;
    uint32_t n_conns;
    uint32_t n_tails;                  /* tunnels' last bytes still going upstream (h2_up.c): a
                                        * drain waits for them as for connections */
    struct mesh_pool **pool_tab;       /* hash of endpoint pools */
    size_t pool_tab_size, n_pools;
    uint64_t rand_state;
    struct mesh_lb_worker *lb;         /* load balancer state of this worker (lb.c) */
    struct mesh_list shadows;          /* mirror copies in flight (mirror.c; lazily set up) */
    bool draining;
    struct mesh_stats stats;
    struct mesh_io_batch *io;          /* socket reads and writes of a loop turn (io_batch.c) */
    unsigned spin_budget;              /* polls to spin after a busy turn (worker_spin) */
    bool turn_clock;                   /* in the batch's callbacks: the clocks below serve */
    uint64_t now_ms, now_ns;           /* the turn's clocks, read on first use (0: not yet) */
};

struct mesh_handler_reg {
    char *name;
    void (*fn)(void *arg, struct mesh_stream *s);
    void *arg;
    size_t max_body;
};

struct mesh_runtime {
    pthread_mutex_t lock;
    struct mesh_snapshot *current;     /* reference; guarded by lock */
    uint64_t generation;               /* bumps with each snapshot swap */
    struct mesh_worker *workers;
    size_t n_workers;
    struct event_base *main_base;
    uint16_t *listen_ports;            /* bound port of each listener (ephemeral resolved) */
    bool access_log;                   /* one line per request at info level */
    struct event *done_ev;             /* main thread: a worker finished */
    struct mesh_handler_reg handlers[8];
    size_t n_handlers;
    _Atomic unsigned workers_done;
    struct mesh_lb_shared *lb;         /* state shared by the workers: outlier detection (lb.c) */
    bool draining;
    enum mesh_io_mode io_mode;         /* how workers do socket I/O (io_batch.h) */
    unsigned poll_spins;               /* most polls a worker spins before it sleeps */
};

uint64_t mesh_now_ns(void);
/*
 * The worker's clocks of the current loop turn. Why cached: the codecs run in the I/O
 * batch's callbacks, after libevent's turn, where libevent's cached time is gone and
 * every read was a gettimeofday (3% of a proxied request's CPU). So the batch's callbacks
 * share one read per turn (worker_io_run), and libevent's own callbacks read its cache.
 */
/** Wall clock of the turn in ms (the clock timers and load balancers keep time by). */
static inline uint64_t mesh_worker_now_ms(struct mesh_worker *w)
{
    if (!w->turn_clock)
        return mesh_base_now_ms(w->base);
    if (!w->now_ms)
        w->now_ms = mesh_base_now_ms(w->base);
    return w->now_ms;
}
/** Monotonic clock of the turn in ns (durations). */
static inline uint64_t mesh_worker_now_ns(struct mesh_worker *w)
{
    if (!w->turn_clock)
        return mesh_now_ns();
    if (!w->now_ns)
        w->now_ns = mesh_now_ns();
    return w->now_ns;
}
/** Arms <t> (its event <ev>) for <ms> from now (struct mesh_lazy_timer). */
void mesh_lazy_timer_arm(struct mesh_worker *w, struct mesh_lazy_timer *t, struct event *ev,
                         uint32_t ms);
/** In the timer's callback: true when the timeout is due, else re-arms for the rest. */
bool mesh_lazy_timer_due(struct mesh_worker *w, struct mesh_lazy_timer *t, struct event *ev);
/** Worker's reference to the current snapshot (refreshed on notify). Borrowed. */
struct mesh_snapshot *mesh_worker_snapshot(struct mesh_worker *w);
/**
 * Runs <w>'s base without blocking, each turn followed by its I/O batch, until nothing is
 * active or queued (at most 64 turns): for winding down, and for harnesses that drive a
 * worker themselves. A plain EVLOOP_NONBLOCK loop must not be used on a worker's base.
 */
void mesh_worker_settle(struct mesh_worker *w);
/** Called when a connection closes during a drain: exits the loop when the last one goes. */
void mesh_worker_conn_gone(struct mesh_worker *w);

#endif /* MESH_CORE_PROXY_INT_H */
