/*
 * mesh-test-backend: a small, real HTTP/1.1 server for meshd's integration tests.
 *
 * A raw libevent bufferevent server with http-parser (not evhttp), so that it
 * sees header names in their original case, streams request and response
 * bodies, can answer 101 and turn into a byte echo, and can reset a socket.
 *
 *   mesh-test-backend --listen 127.0.0.1:0 --ready-file F --name NAME
 *                     [--echo-listen 127.0.0.1:0]
 *
 * Every response carries "x-backend: NAME". Endpoints:
 *   /echo            200, body = request body (streamed; Content-Length if the
 *                    request had one, chunked otherwise); x-echo-method, x-echo-uri
 *   /echo?buffered   same, but the whole body is read before answering
 *   /headers         200, body = the request headers as received, "Name: value\n"
 *   /status/N        status N with a short body
 *   /delay/MS        200 after MS milliseconds
 *   /bytes/N         200, N bytes of 'x', chunked transfer encoding
 *   /trailers        200, chunked body "trailers from NAME\n" and the trailer field
 *                    "x-backend-trailer: NAME" (sent whatever the request's TE says)
 *   /early-hints     103 (link: </style.css>; rel=preload), then 200 "hints from NAME\n"
 *   /hop-headers     200 with a mixed-case "X-Mixed-Case", and hop-by-hop headers a proxy
 *                    must drop: Keep-Alive, Connection: X-Hop with X-Hop, Proxy-Connection
 *   /close           200 with "connection: close", then closes
 *   /reset           closes the socket without answering (RST, SO_LINGER 0)
 *   /cut             200 announcing content-length 20, sends "cut short\n" (10 bytes),
 *                    then closes: a response the upstream breaks after its head
 *   /ws              with "Upgrade: websocket" and a Sec-WebSocket-Key: 101 (the key back
 *                    as x-websocket-key), then echoes every byte; no key: 400
 *   /grpc/N          200 "trailers-only" gRPC answer: content-type application/grpc,
 *                    grpc-status: N (0..16), empty body (retry on gRPC status tests)
 *   /__count         body = requests received so far, /__count and /__last_host excluded
 *   /__last_host     body = the Host header of the last request not under /__ (mirror tests)
 *   /__conns         body = HTTP connections accepted so far (this one included)
 *   /__fail/N        from now on every request but /__* gets status N (0 = back to normal)
 *   CONNECT x        200, then serves HTTP again inside the tunnel
 *   anything else    200, body "hello from NAME\n"
 * "Expect: 100-continue" on a request with a body is answered with 100 first.
 * A request the parser refuses is counted too, then answered with 400.
 *
 * --echo-listen adds a raw TCP echo listener (for CONNECT tunnels).
 * --fail-status N starts in the /__fail/N mode.
 * --stall accepts HTTP connections but never reads from them (with a tiny receive
 * buffer): a peer that falls behind (mirror tests).
 * --ready-file gets "port=N\n" (and "echo_port=M\n"), written atomically.
 * SIGTERM and SIGINT stop the loop; everything is freed before exit.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <http_parser.h>
#include "tool_util.h"

#define OUT_HIGH (1u << 20)     /* stop producing or reading above this much unsent output */
#define OUT_LOW (256u << 10)    /* resume below this */
#define IN_HIGH (1u << 20)      /* read at most this much ahead */
#define CHUNK (16u << 10)       /* /bytes chunk size */

enum endpoint {
    EP_HELLO,
    EP_ECHO,
    EP_ECHO_BUFFERED,
    EP_HEADERS,
    EP_STATUS,
    EP_DELAY,
    EP_BYTES,
    EP_TRAILERS,
    EP_CLOSE,
    EP_RESET,
    EP_CUT,
    EP_COUNT,
    EP_CONNS,
    EP_EARLY_HINTS,
    EP_HOP_HEADERS,
    EP_WS,
    EP_CONNECT,
    EP_GRPC,
    EP_LAST_HOST,
    EP_BAD,
};

enum hdr_state {
    HS_NONE,
    HS_FIELD,
    HS_VALUE,
};

struct server {
    struct event_base *base;
    const char *name;
    unsigned long requests;
    unsigned long accepted;
    long fail_status;     /* --fail-status / "/__fail/N": every other request gets N; 0 = off */
    char last_host[256];  /* Host of the last request not under /__ */
    bool stall;           /* --stall: never read HTTP connections */
    struct conn *conns;
};

struct conn {
    struct server *srv;
    struct conn *prev, *next;
    struct bufferevent *bev;
    http_parser parser;
    struct event *timer;

    bool echo_mode;       /* raw byte echo: --echo-listen, or after a /ws upgrade */
    bool busy;            /* a complete request whose response is not finished */
    bool close_after;     /* close once the current response is flushed */
    bool peer_eof;
    bool throttled;       /* reading stopped: too much unsent output */
    bool reset_now;
    bool msg_done;        /* on_message_complete ran during the last execute */

    /* the request being parsed */
    bool started;
    bool counted;
    bool headers_done;
    bool head;
    bool keep_alive;
    bool echo_chunked;
    bool echo_close_delimited;
    enum hdr_state hs;
    enum endpoint ep;
    long arg;
    uint64_t bytes_left;
    struct evbuffer *url;
    struct evbuffer *hdrs;
    struct evbuffer *trailers;
    struct evbuffer *body;
};

static void process_input(struct conn *c);
static void settle(struct conn *c);
static void conn_free(struct conn *c);

/* ---- small helpers ---------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static struct evbuffer *out_of(struct conn *c)
{
    return bufferevent_get_output(c->bev);
}

static void check_throttle(struct conn *c)
{
    if (!c->throttled && evbuffer_get_length(out_of(c)) > OUT_HIGH) {
        bufferevent_disable(c->bev, EV_READ);
        c->throttled = true;
    }
}

/* Returns the URL's path (up to '?') in <buf>; the query, if any, in <query>. */
static void split_url(struct conn *c, char *buf, size_t bufsz, const char **query)
{
    size_t len = evbuffer_get_length(c->url);
    if (len >= bufsz)
        len = bufsz - 1;
    evbuffer_copyout(c->url, buf, len);
    buf[len] = '\0';
    char *q = strchr(buf, '?');
    if (q) {
        *q = '\0';
        *query = q + 1;
    } else {
        *query = "";
    }
}

/* Case-insensitive search for a header among the received ones; value copied to <val>. */
static bool find_header(struct conn *c, const char *name, char *val, size_t valsz)
{
    size_t len = evbuffer_get_length(c->hdrs);
    const char *p = (const char *)evbuffer_pullup(c->hdrs, -1);
    const char *end = p + len;
    size_t nlen = strlen(name);
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if ((size_t)(nl - p) > nlen + 1 && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < nl && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(nl - v);
            if (vlen >= valsz)
                vlen = valsz - 1;
            memcpy(val, v, vlen);
            val[vlen] = '\0';
            return true;
        }
        p = nl + 1;
    }
    return false;
}

static void write_head(struct conn *c, int status, const char *extra)
{
    evbuffer_add_printf(out_of(c), "HTTP/1.1 %d %s\r\nx-backend: %s\r\n%s%s", status,
                        reason(status), c->srv->name, extra ? extra : "",
                        c->close_after ? "connection: close\r\n" : "");
}

/* A complete response with a body from memory. */
static void respond(struct conn *c, int status, const char *extra, const void *body, size_t len)
{
    bool has_body = status_has_body(status);
    write_head(c, status, extra);
    if (has_body)
        evbuffer_add_printf(out_of(c), "content-type: text/plain\r\ncontent-length: %zu\r\n",
                            len);
    evbuffer_add(out_of(c), "\r\n", 2);
    if (has_body && !c->head && len > 0)
        evbuffer_add(out_of(c), body, len);
}

static void respond_text(struct conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_text(struct conn *c, int status, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    respond(c, status, NULL, body, (size_t)n);
}

static void respond_buffer(struct conn *c, int status, const char *extra, struct evbuffer *b)
{
    write_head(c, status, extra);
    evbuffer_add_printf(out_of(c), "content-type: text/plain\r\ncontent-length: %zu\r\n\r\n",
                        evbuffer_get_length(b));
    if (!c->head)
        evbuffer_add_buffer(out_of(c), b);
    else
        evbuffer_drain(b, evbuffer_get_length(b));
}

/* ---- request state ---------------------------------------------------- */

static void request_reset(struct conn *c)
{
    evbuffer_drain(c->url, evbuffer_get_length(c->url));
    evbuffer_drain(c->hdrs, evbuffer_get_length(c->hdrs));
    evbuffer_drain(c->trailers, evbuffer_get_length(c->trailers));
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
    c->started = false;
    c->counted = false;
    c->headers_done = false;
    c->head = false;
    c->keep_alive = true;
    c->echo_chunked = false;
    c->echo_close_delimited = false;
    c->hs = HS_NONE;
    c->ep = EP_HELLO;
    c->arg = 0;
    c->bytes_left = 0;
}

static void parser_init(struct conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
}

static void response_done(struct conn *c)
{
    c->busy = false;
    if (!c->keep_alive)
        c->close_after = true;
}

/* ---- http-parser callbacks -------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    request_reset(c);
    c->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    evbuffer_add(c->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct evbuffer *b = c->headers_done ? c->trailers : c->hdrs;
    if (c->hs == HS_VALUE)
        evbuffer_add(b, "\n", 1);
    evbuffer_add(b, at, len);
    c->hs = HS_FIELD;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct evbuffer *b = c->headers_done ? c->trailers : c->hdrs;
    if (c->hs == HS_FIELD)
        evbuffer_add(b, ": ", 2);
    evbuffer_add(b, at, len);
    c->hs = HS_VALUE;
    return 0;
}

static void end_header_block(struct conn *c, struct evbuffer *b)
{
    if (c->hs == HS_FIELD)
        evbuffer_add(b, ": \n", 3);
    else if (c->hs == HS_VALUE)
        evbuffer_add(b, "\n", 1);
    c->hs = HS_NONE;
}

static enum endpoint classify(struct conn *c, long *arg)
{
    char path[1024];
    const char *query;
    char *end;
    split_url(c, path, sizeof(path), &query);
    *arg = 0;
    if (c->parser.method == HTTP_CONNECT)
        return EP_CONNECT;
    if (c->srv->fail_status && strncmp(path, "/__", 3) != 0) {
        *arg = c->srv->fail_status; /* every request, /echo and /delay included */
        return EP_STATUS;
    }
    if (strcmp(path, "/ws") == 0 && c->parser.upgrade)
        return EP_WS;
    if (strcmp(path, "/echo") == 0)
        return strstr(query, "buffered") ? EP_ECHO_BUFFERED : EP_ECHO;
    if (strcmp(path, "/headers") == 0)
        return EP_HEADERS;
    if (strcmp(path, "/close") == 0)
        return EP_CLOSE;
    if (strcmp(path, "/trailers") == 0)
        return EP_TRAILERS;
    if (strcmp(path, "/reset") == 0)
        return EP_RESET;
    if (strcmp(path, "/cut") == 0)
        return EP_CUT;
    if (strcmp(path, "/__count") == 0)
        return EP_COUNT;
    if (strcmp(path, "/__conns") == 0)
        return EP_CONNS;
    if (strcmp(path, "/__last_host") == 0)
        return EP_LAST_HOST;
    if (strncmp(path, "/__fail/", 8) == 0) {
        /* switch failure mode at run time: outlier tests eject an endpoint, then heal it */
        errno = 0;
        long v = strtol(path + 8, &end, 10);
        if (errno || *end || (v != 0 && (v < 200 || v > 599)))
            return EP_BAD;
        c->srv->fail_status = v;
        return EP_HELLO;
    }
    if (strcmp(path, "/early-hints") == 0)
        return EP_EARLY_HINTS;
    if (strcmp(path, "/hop-headers") == 0)
        return EP_HOP_HEADERS;
    if (strncmp(path, "/status/", 8) == 0) {
        errno = 0;
        *arg = strtol(path + 8, &end, 10);
        return (errno || *end || *arg < 200 || *arg > 599) ? EP_BAD : EP_STATUS;
    }
    if (strncmp(path, "/grpc/", 6) == 0) {
        errno = 0;
        *arg = strtol(path + 6, &end, 10);
        return (errno || *end || *arg < 0 || *arg > 16) ? EP_BAD : EP_GRPC;
    }
    if (strncmp(path, "/delay/", 7) == 0) {
        errno = 0;
        *arg = strtol(path + 7, &end, 10);
        return (errno || *end || *arg < 0 || *arg > 600000) ? EP_BAD : EP_DELAY;
    }
    if (strncmp(path, "/bytes/", 7) == 0) {
        errno = 0;
        *arg = strtol(path + 7, &end, 10);
        return (errno || *end || *arg < 0) ? EP_BAD : EP_BYTES;
    }
    return EP_HELLO;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    char val[256];
    end_header_block(c, c->hdrs);
    c->headers_done = true;
    c->head = p->method == HTTP_HEAD;
    c->ep = classify(c, &c->arg);
    if (evbuffer_get_length(c->url) < 3 ||
        memcmp(evbuffer_pullup(c->url, 3), "/__", 3) != 0) {
        if (!find_header(c, "host", c->srv->last_host, sizeof(c->srv->last_host)))
            c->srv->last_host[0] = '\0';
    }
    if (c->ep != EP_COUNT && c->ep != EP_LAST_HOST) {
        c->srv->requests++;
        c->counted = true;
    }
    bool has_body = (p->flags & F_CHUNKED) ||
                    (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (has_body && find_header(c, "expect", val, sizeof(val)) &&
        strcasecmp(val, "100-continue") == 0 && c->ep != EP_RESET)
        evbuffer_add_printf(out_of(c), "HTTP/1.1 100 Continue\r\n\r\n");

    if (c->ep == EP_ECHO) {
        struct evbuffer *o = out_of(c);
        evbuffer_add_printf(o, "HTTP/1.1 200 OK\r\nx-backend: %s\r\nx-echo-method: %s\r\n"
                            "x-echo-uri: ", c->srv->name, http_method_str(p->method));
        evbuffer_add(o, evbuffer_pullup(c->url, -1), evbuffer_get_length(c->url));
        evbuffer_add_printf(o, "\r\ncontent-type: application/octet-stream\r\n");
        if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX) {
            evbuffer_add_printf(o, "content-length: %" PRIu64 "\r\n\r\n",
                                (uint64_t)p->content_length);
        } else if (!(p->flags & F_CHUNKED)) {
            evbuffer_add_printf(o, "content-length: 0\r\n\r\n");
        } else if (p->http_major == 1 && p->http_minor >= 1) {
            evbuffer_add_printf(o, "transfer-encoding: chunked\r\n\r\n");
            c->echo_chunked = true;
        } else {
            evbuffer_add_printf(o, "connection: close\r\n\r\n");
            c->echo_close_delimited = true;
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->ep == EP_ECHO && !c->head) {
        struct evbuffer *o = out_of(c);
        if (c->echo_chunked)
            evbuffer_add_printf(o, "%zx\r\n", len);
        evbuffer_add(o, at, len);
        if (c->echo_chunked)
            evbuffer_add(o, "\r\n", 2);
        check_throttle(c);
    } else if (c->ep == EP_ECHO_BUFFERED) {
        evbuffer_add(c->body, at, len);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (c->headers_done && c->hs != HS_NONE)
        end_header_block(c, c->trailers);
    c->keep_alive = http_should_keep_alive(p);
    c->msg_done = true;
    /* Stop after each request so that pipelined ones wait for this answer. An
     * upgrade makes execute return here anyway. */
    if (!p->upgrade)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- responses that take time ------------------------------------------ */

static void pump_bytes(struct conn *c)
{
    static char xs[CHUNK];
    struct evbuffer *o = out_of(c);
    if (!xs[0])
        memset(xs, 'x', sizeof(xs));
    while (c->bytes_left > 0 && evbuffer_get_length(o) < OUT_HIGH) {
        size_t n = c->bytes_left < CHUNK ? (size_t)c->bytes_left : CHUNK;
        if (!c->head) {
            evbuffer_add_printf(o, "%zx\r\n", n);
            evbuffer_add(o, xs, n);
            evbuffer_add(o, "\r\n", 2);
        }
        c->bytes_left -= n;
    }
    if (c->bytes_left == 0 && c->busy) {
        if (!c->head)
            evbuffer_add(o, "0\r\n\r\n", 5);
        response_done(c);
    }
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    respond_text(c, 200, "delayed %ld ms by %s\n", c->arg, c->srv->name);
    response_done(c);
    process_input(c);
    settle(c);
}

/* Runs the request whose message just completed (outside parser callbacks). */
static void dispatch(struct conn *c)
{
    struct server *s = c->srv;
    if (!c->keep_alive && c->ep != EP_WS && c->ep != EP_CONNECT)
        c->close_after = true;
    switch (c->ep) {
    case EP_HELLO:
        respond_text(c, 200, "hello from %s\n", s->name);
        break;
    case EP_ECHO:
        if (c->echo_chunked && !c->head)
            evbuffer_add(out_of(c), "0\r\n\r\n", 5);
        if (c->echo_close_delimited)
            c->close_after = true;
        break;
    case EP_ECHO_BUFFERED: {
        char extra[1200], uri[1024];
        const char *query;
        split_url(c, uri, sizeof(uri), &query);
        snprintf(extra, sizeof(extra), "x-echo-method: %s\r\nx-echo-uri: %s%s%s\r\n",
                 http_method_str(c->parser.method), uri, *query ? "?" : "", query);
        respond_buffer(c, 200, extra, c->body);
        break;
    }
    case EP_HEADERS:
        if (evbuffer_get_length(c->trailers) > 0) {
            evbuffer_add_printf(c->hdrs, "\n# trailers\n");
            evbuffer_add_buffer(c->hdrs, c->trailers);
        }
        respond_buffer(c, 200, NULL, c->hdrs);
        break;
    case EP_STATUS:
        respond_text(c, (int)c->arg, "status %ld from %s\n", c->arg, s->name);
        break;
    case EP_DELAY: {
        struct timeval tv = { c->arg / 1000, (c->arg % 1000) * 1000 };
        c->busy = true;
        evtimer_add(c->timer, &tv);
        return;
    }
    case EP_BYTES:
        c->busy = true;
        c->bytes_left = (uint64_t)c->arg;
        write_head(c, 200, "content-type: application/octet-stream\r\n"
                           "transfer-encoding: chunked\r\n");
        evbuffer_add(out_of(c), "\r\n", 2);
        pump_bytes(c);
        return;
    case EP_TRAILERS: {
        char body[300];
        int n = snprintf(body, sizeof(body), "trailers from %s\n", s->name);
        write_head(c, 200, "content-type: text/plain\r\ntrailer: x-backend-trailer\r\n"
                           "transfer-encoding: chunked\r\n");
        evbuffer_add(out_of(c), "\r\n", 2);
        if (!c->head)
            evbuffer_add_printf(out_of(c), "%x\r\n%s\r\n0\r\nx-backend-trailer: %s\r\n\r\n", n,
                                body, s->name);
        break;
    }
    case EP_CLOSE:
        c->close_after = true;
        respond_text(c, 200, "closing, from %s\n", s->name);
        break;
    case EP_RESET:
        c->reset_now = true;
        return;
    case EP_HOP_HEADERS:
        respond(c, 200,
                "X-Mixed-Case: Kept\r\nKeep-Alive: timeout=5\r\nConnection: X-Hop\r\n"
                "X-Hop: dropped\r\nProxy-Connection: keep-alive\r\n",
                "hop headers\n", 12);
        break;
    case EP_CUT:
        write_head(c, 200, "content-type: text/plain\r\ncontent-length: 20\r\n");
        evbuffer_add(out_of(c), "\r\n", 2);
        if (!c->head)
            evbuffer_add(out_of(c), "cut short\n", 10);
        c->close_after = true;
        break;
    case EP_COUNT:
        respond_text(c, 200, "%lu\n", s->requests);
        break;
    case EP_CONNS:
        respond_text(c, 200, "%lu\n", s->accepted);
        break;
    case EP_LAST_HOST:
        respond_text(c, 200, "%s\n", s->last_host);
        break;
    case EP_GRPC: {
        char extra[160];
        snprintf(extra, sizeof(extra), "content-type: application/grpc\r\ngrpc-status: %ld\r\n"
                 "grpc-message: status %ld\r\ncontent-length: 0\r\n", c->arg, c->arg);
        write_head(c, 200, extra);
        evbuffer_add(out_of(c), "\r\n", 2);
        break;
    }
    case EP_EARLY_HINTS:
        evbuffer_add_printf(out_of(c), "HTTP/1.1 103 Early Hints\r\n"
                            "link: </style.css>; rel=preload\r\n\r\n");
        respond_text(c, 200, "hints from %s\n", s->name);
        break;
    case EP_WS: {
        /* RFC 6455 4.2.1: no key, no handshake. The key comes back as x-websocket-key
         * (tests check the one a proxy made up); the accept is a stand-in, not its hash */
        char key[128];
        if (!find_header(c, "sec-websocket-key", key, sizeof(key))) {
            respond_text(c, 400, "no sec-websocket-key\n");
            break;
        }
        evbuffer_add_printf(out_of(c), "HTTP/1.1 101 Switching Protocols\r\nx-backend: %s\r\n"
                            "upgrade: websocket\r\nconnection: Upgrade\r\n"
                            "sec-websocket-accept: not-checked\r\nx-websocket-key: %s\r\n\r\n",
                            s->name, key);
        c->echo_mode = true;
        return;
    }
    case EP_CONNECT:
        evbuffer_add_printf(out_of(c), "HTTP/1.1 200 Connection established\r\n"
                            "x-backend: %s\r\n\r\n", s->name);
        parser_init(c);
        return;
    case EP_BAD:
        respond_text(c, 400, "%s: bad endpoint argument\n", s->name);
        break;
    }
    response_done(c);
}

/* Feeds buffered input to the parser, one request at a time. Never frees <c>. */
static void process_input(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->busy && !c->close_after && !c->reset_now && !c->throttled &&
           evbuffer_get_length(in) > 0) {
        if (c->echo_mode) {
            evbuffer_add_buffer(out_of(c), in);
            check_throttle(c);
            break;
        }
        size_t n = evbuffer_get_contiguous_space(in);
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        c->msg_done = false;
        size_t used = http_parser_execute(&c->parser, &settings, data, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            char path[1024];
            const char *query;
            split_url(c, path, sizeof(path), &query);
            if (!c->counted && strcmp(path, "/__count") != 0)
                c->srv->requests++;
            c->head = false;
            c->close_after = true;
            respond_text(c, 400, "%s: bad request (%s: %s)\n", c->srv->name,
                         http_errno_name(e), http_errno_description(e));
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        evbuffer_drain(in, used);
        if (c->msg_done) {
            bool upgrade = c->parser.upgrade;
            c->msg_done = false;
            if (e == HPE_PAUSED)
                http_parser_pause(&c->parser, 0);
            dispatch(c);
            if (upgrade && !c->echo_mode && c->ep != EP_CONNECT)
                parser_init(c);    /* an upgrade we did not take: stay HTTP */
        } else if (used < n && !c->parser.upgrade) {
            break;  /* should not happen without an error */
        }
    }
}

/* ---- connection life --------------------------------------------------- */

/* Ends <c> when there is nothing more to do; must be the last use of <c>. */
static void settle(struct conn *c)
{
    if (c->reset_now) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        conn_free(c);
        return;
    }
    /* After the peer's EOF, whatever input is left cannot become a request. */
    if (c->busy || !(c->close_after || c->peer_eof))
        return;
    if (evbuffer_get_length(out_of(c)) == 0) {
        conn_free(c);
        return;
    }
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    process_input(c);
    settle(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (c->busy && c->ep == EP_BYTES)
        pump_bytes(c);
    if (c->throttled && evbuffer_get_length(out_of(c)) <= OUT_LOW) {
        c->throttled = false;
        if (!c->close_after && !c->peer_eof)
            bufferevent_enable(c->bev, EV_READ);
    }
    process_input(c);
    settle(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_ERROR) {
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->peer_eof = true;
        process_input(c);
        settle(c);
    }
}

static void conn_free(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    event_free(c->timer);
    evbuffer_free(c->url);
    evbuffer_free(c->hdrs);
    evbuffer_free(c->trailers);
    evbuffer_free(c->body);
    free(c);
}

static void accept_common(struct evconnlistener *l, evutil_socket_t fd, void *arg, bool echo)
{
    struct server *s = arg;
    struct event_base *base = evconnlistener_get_base(l);
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(base, delay_cb, c);
    c->url = evbuffer_new();
    c->hdrs = evbuffer_new();
    c->trailers = evbuffer_new();
    c->body = evbuffer_new();
    if (!c->bev || !c->timer || !c->url || !c->hdrs || !c->trailers || !c->body) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->timer)
            event_free(c->timer);
        if (c->url)
            evbuffer_free(c->url);
        if (c->hdrs)
            evbuffer_free(c->hdrs);
        if (c->trailers)
            evbuffer_free(c->trailers);
        if (c->body)
            evbuffer_free(c->body);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->echo_mode = echo;
    if (!echo)
        s->accepted++;
    parser_init(c);
    request_reset(c);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(c->bev, s->stall && !echo ? EV_WRITE : EV_READ | EV_WRITE);
}

static void accept_http(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    (void)sa;
    (void)salen;
    accept_common(l, fd, arg, false);
}

static void accept_echo(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    (void)sa;
    (void)salen;
    accept_common(l, fd, arg, true);
}

/* ---- setup -------------------------------------------------------------- */

/* Parses "A.B.C.D:PORT" or "[v6]:PORT" (port 0 allowed, unlike evutil's parser). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    size_t hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *sslen = (int)sizeof(*s6);
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *sslen = (int)sizeof(*s4);
    return 0;
}

static struct evconnlistener *listen_on(struct event_base *base, const char *addr,
                                        evconnlistener_cb cb, struct server *s, int *port)
{
    struct sockaddr_storage ss;
    int sslen = 0;
    if (parse_addr(addr, &ss, &sslen) != 0) {
        fprintf(stderr, "mesh-test-backend: bad address '%s' (want ADDR:PORT)\n", addr);
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        base, cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128, (struct sockaddr *)&ss,
        sslen);
    if (!l) {
        fprintf(stderr, "mesh-test-backend: cannot listen on %s: %s\n", addr, strerror(errno));
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen) != 0) {
        evconnlistener_free(l);
        return NULL;
    }
    if (bound.ss_family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    else
        *port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return l;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mesh-test-backend [--listen ADDR:PORT] [--ready-file F] [--name NAME]\n"
               "                         [--echo-listen ADDR:PORT] [--fail-status N] [--stall]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "ready-file", required_argument, NULL, 'r' },
        { "name", required_argument, NULL, 'n' },
        { "echo-listen", required_argument, NULL, 'e' },
        { "fail-status", required_argument, NULL, 'f' },
        { "stall", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen_addr = "127.0.0.1:0", *ready = NULL, *echo_addr = NULL;
    struct server s = { .name = "backend" };
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "l:r:n:e:f:sh", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': listen_addr = optarg; break;
        case 'r': ready = optarg; break;
        case 'n': s.name = optarg; break;
        case 'e': echo_addr = optarg; break;
        case 'f':
            s.fail_status = strtol(optarg, NULL, 10);
            if (s.fail_status < 200 || s.fail_status > 599) {
                usage(stderr);
                return 2;
            }
            break;
        case 's': s.stall = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    s.base = event_base_new();
    if (!s.base)
        return 1;
    struct event *sigterm = evsignal_new(s.base, SIGTERM, tool_signal_cb, s.base);
    struct event *sigint = evsignal_new(s.base, SIGINT, tool_signal_cb, s.base);
    struct evconnlistener *http = NULL, *echo = NULL;
    int port = -1, echo_port = -1;
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL))
        goto out;
    http = listen_on(s.base, listen_addr, accept_http, &s, &port);
    if (!http)
        goto out;
    if (s.stall) {
        /* accepted sockets inherit it: the peer's writes block after a few KiB */
        int small = 4096;
        setsockopt(evconnlistener_get_fd(http), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
    if (echo_addr && !(echo = listen_on(s.base, echo_addr, accept_echo, &s, &echo_port)))
        goto out;
    if (ready && tool_write_ready_file(ready, port, echo_port) != 0) {
        fprintf(stderr, "mesh-test-backend: cannot write %s: %s\n", ready, strerror(errno));
        goto out;
    }
    fprintf(stderr, "mesh-test-backend %s: listening on port %d\n", s.name, port);
    event_base_dispatch(s.base);
    rc = 0;
out:
    while (s.conns)
        conn_free(s.conns);
    if (http)
        evconnlistener_free(http);
    if (echo)
        evconnlistener_free(echo);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    event_base_free(s.base);
    return rc;
}
