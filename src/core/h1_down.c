/*
 * Downstream HTTP/1.1: one request at a time per connection, pipelined
 * requests wait in the input buffer and are answered in order.
 *
 * A request head is found, parsed strictly in one pass where it lies
 * (mesh_h1_parse_request_head; refused before any stream exists), then
 * copied once into the stream arena with its spans moved onto the copy
 * (mesh_h1_head_keep), so every header pointer stays valid for the stream's
 * life. Framing (Content-Length / chunked) is decided here, not left to a
 * parser's leniency: that is where smuggling lives. Content-Length bodies are
 * counted here; chunked ones are decoded as strictly (h1_chunked.c), their
 * trailers included.
 */
#include "core/common.h"
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include "core/log.h"
#include "core/proxy-int.h"

#define LIT(s) s, sizeof(s) - 1

static const struct mesh_down_ops h1_ops;

/* ---- Refusing a request that never became a stream ---- */

static void reply_error(struct mesh_conn *c, int status, const char *why)
{
    MESH_STAT_INC(&c->w->stats, downstream_rq_rejected);
    MESH_STAT_INC(&c->w->stats, downstream_rq_4xx);
    mesh_log_debug("refusing request from %s: %d %s", c->peer_ip, status, why);
    size_t blen = strlen(why) + 1;
    evbuffer_add_printf(c->out,
                        "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                        "x-meshd-error: %s\r\nconnection: close\r\n\r\n%s\n",
                        status, mesh_http_reason(status), blen, why, why);
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    mesh_conn_close_after_flush(c, true);
}


/* ---- Acting on a parsed request head ---- */

/* What a head's fields decide besides themselves; Connection's tokens from all its fields. */
struct head_facts {
    bool cl_seen, te_seen, upgrade, upgrade_h2c;
    bool conn_upgrade, conn_keep_alive;
};

/* One field of the head: framing, Host and Expect are ours, the rest is forwarded. 0 or a status. */
static int apply_field(struct mesh_stream *s, const struct mesh_h1_field *f, struct head_facts *hf,
                       const char **why)
{
    const char *name = f->name, *value = f->value;
    size_t vlen = f->value_len;
    switch (f->name_len) {
    case 4:
        if (strncasecmp(name, "host", 4) == 0) {
            if (s->req.authority)
                return *why = "more than one Host header", 400;
            if (!mesh_http_authority_ok(value, vlen))
                return *why = "invalid Host header", 400;
            s->req.authority = value;
            s->req.authority_len = (uint32_t)vlen;
        }
        break;
    case 6:
        if (strncasecmp(name, "expect", 6) == 0) {
            if (vlen == 12 && strncasecmp(value, "100-continue", 12) == 0) {
                s->expect_continue = true;
                return 0; /* answered here, not forwarded (as Envoy does) */
            }
            return *why = "unsupported expectation", 417;
        }
        break;
    case 7:
        if (strncasecmp(name, "upgrade", 7) == 0) {
            hf->upgrade = true;
            hf->upgrade_h2c |= mesh_token_list_has(value, vlen, LIT("h2c"));
        }
        break;
    case 10:
        if (strncasecmp(name, "connection", 10) == 0) {
            if (mesh_token_list_has(value, vlen, LIT("close")))
                s->close_after = true;
            hf->conn_keep_alive |= mesh_token_list_has(value, vlen, LIT("keep-alive"));
            hf->conn_upgrade |= mesh_token_list_has(value, vlen, LIT("upgrade"));
        }
        break;
    case 14:
        if (strncasecmp(name, "content-length", 14) == 0) {
            if (!vlen || vlen > 18)
                return *why = "invalid Content-Length", 400;
            int64_t v = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (value[i] < '0' || value[i] > '9')
                    return *why = "invalid Content-Length", 400;
                v = v * 10 + (value[i] - '0');
            }
            if (hf->cl_seen && v != s->req.content_length)
                return *why = "conflicting Content-Length headers", 400;
            hf->cl_seen = true;
            s->req.content_length = v;
            return 0;
        }
        break;
    case 17:
        if (strncasecmp(name, "transfer-encoding", 17) == 0) {
            if (hf->te_seen || !mesh_h1_te_is_chunked(value, vlen))
                return *why = "unsupported Transfer-Encoding (only a single chunked)", 400;
            hf->te_seen = true;
            return 0;
        }
        break;
    }
    if (mesh_headers_add(s->arena, &s->req.hdrs, name, f->name_len, value, vlen))
        return *why = "request header section too large", 431;
    return 0;
}

/* Splits an absolute-form target into authority and path. */
static int absolute_target(struct mesh_stream *s)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(s->req.path, s->req.path_len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_HOST)))
        return -1;
    size_t hs = u.field_data[UF_HOST].off, he = hs + u.field_data[UF_HOST].len;
    if (u.field_set & (1 << UF_PORT))
        he = u.field_data[UF_PORT].off + u.field_data[UF_PORT].len;
    else if (hs > 0 && s->req.path[hs - 1] == '[')
        hs--, he++; /* keep the IPv6 brackets */
    s->req.authority = s->req.path + hs;
    s->req.authority_len = (uint32_t)(he - hs);
    /* the absolute-form authority wins over Host (RFC 9112 3.2.2): forward that one */
    struct mesh_header *host = mesh_headers_get(&s->req.hdrs, LIT("host"));
    if (host) {
        host->value = s->req.authority;
        host->value_len = s->req.authority_len;
    }
    s->req.scheme = (s->req.path[4] == 's' || s->req.path[4] == 'S') ? "https" : "http";
    if (he < s->req.path_len && s->req.path[he] == '/') {
        s->req.path += he;
        s->req.path_len -= (uint32_t)he;
    } else if (he < s->req.path_len) {
        /* "http://a.example?x=1": the empty path is "/" (RFC 9112 3.2.2), or the backend
         * got "GET ?x=1" */
        size_t rest = s->req.path_len - he;
        char *p = mesh_arena_alloc(s->arena, rest + 2);
        if (!p)
            return -1;
        p[0] = '/';
        memcpy(p + 1, s->req.path + he, rest);
        p[rest + 1] = '\0';
        s->req.path = p;
        s->req.path_len = (uint32_t)(rest + 1);
    } else {
        s->req.path = "/";
        s->req.path_len = 1;
    }
    return 0;
}

/* Fills the stream's request from a parsed head. 0, or a status with <why>. */
static int apply_head(struct mesh_stream *s, const struct mesh_h1_head *h, const char **why)
{
    struct head_facts hf = {0};
    s->req.method = h->method;
    s->req.method_len = h->method_len;
    s->req.path = h->target;
    s->req.path_len = h->target_len;
    s->req.http_minor = h->minor;
    for (unsigned i = 0; i < h->nfields; i++) {
        int st = apply_field(s, &h->field[i], &hf, why);
        if (st)
            return st;
    }
    s->is_head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
    s->is_connect = h->method_len == 7 && memcmp(h->method, "CONNECT", 7) == 0;
    if (hf.te_seen && hf.cl_seen)
        return *why = "both Content-Length and Transfer-Encoding", 400;
    if (hf.te_seen && h->minor == 0)
        return *why = "Transfer-Encoding in an HTTP/1.0 request", 400;
    s->req.chunked = hf.te_seen;
    if (!hf.cl_seen)
        s->req.content_length = -1;
    /*
     * An upgrade needs the Upgrade header and Connection's token (as
     * http-parser), and no body: the bytes after the head are the tunnel's
     * only if the upstream switches, and if it declines they would be read as
     * the next request on both sides. A request with a body is forwarded as a
     * plain request (Upgrade and Connection go as hop-by-hop headers).
     * So is an upgrade that offers h2c (as Envoy): a backend that took it would
     * serve the client's HTTP/2 requests through a tunnel meshd no longer routes
     * or checks (h2c smuggling).
     */
    s->is_upgrade = !s->is_connect && hf.upgrade && hf.conn_upgrade && !hf.te_seen &&
                    s->req.content_length <= 0 && !hf.upgrade_h2c;
    if (h->minor == 0 && !hf.conn_keep_alive)
        s->close_after = true;
    if (s->is_connect) {
        s->req.authority = s->req.path;
        s->req.authority_len = s->req.path_len;
        s->req.path = NULL;
        s->req.path_len = 0;
    } else if (s->req.path[0] != '/' && s->req.path[0] != '*') {
        if (absolute_target(s))
            return *why = "invalid absolute-form request target", 400;
    }
    if (!s->req.authority) {
        if (h->minor == 1)
            return *why = "missing Host header", 400;
        s->req.authority = "";
    }
    if (!s->req.scheme)
        s->req.scheme = "http";
    return 0;
}

/* ---- Input processing ---- */

/* Offset just past the empty line ending the head, or 0 when not there yet. */
static size_t find_head_end(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *lf = memchr(p + i, '\n', n - i);
        if (!lf)
            return 0;
        i = (size_t)(lf - p);
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static void h1_finish(struct mesh_conn *c);

/*
 * Moves the next body bytes from c->in to c->h1_body: counted here, or decoded
 * (h1_chunked.c). -1 on a malformed chunked body, with c->h1_err_status and c->h1_err.
 */
static int take_body(struct mesh_conn *c)
{
    if (c->h1_body_left >= 0) {
        size_t n = evbuffer_get_length(c->in);
        if ((uint64_t)c->h1_body_left < n)
            n = (size_t)c->h1_body_left;
        evbuffer_remove_buffer(c->in, c->h1_body, n); /* moves whole chains, no copy */
        c->h1_body_left -= (int64_t)n;
        c->h1_msg_complete = c->h1_body_left == 0;
        return 0;
    }
    struct evbuffer_iovec v;
    if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1)
        return 0;
    int st;
    size_t n = mesh_h1_chunked_feed(&c->h1_ck, v.iov_base, v.iov_len, c->h1_body, &st, &c->h1_err);
    evbuffer_drain(c->in, n);
    if (!st && mesh_h1_chunked_done(&c->h1_ck)) {
        struct mesh_stream *s = c->h1_stream;
        st = mesh_h1_chunked_trailers(&c->h1_ck, s->arena, &s->req.trailers, &c->h1_err);
        c->h1_msg_complete = !st;
    }
    c->h1_err_status = st;
    return st ? -1 : 0;
}

/* Feeds body bytes from c->in to the stream, within backpressure. */
static void process_body(struct mesh_conn *c)
{
    struct mesh_stream *s = c->h1_stream;
    while (!c->dead && c->h1_stream == s && !c->h1_msg_complete && !s->req_paused &&
           evbuffer_get_length(c->in) > 0) {
        if (take_body(c)) {
            const char *why = c->h1_err;
            if (!s->resp_headers_sent) {
                s->close_after = true;
                MESH_STAT_INC(&c->w->stats, downstream_rq_rejected);
                s->flags |= MESH_RF_DPE;
                mesh_proxy_local_reply(s, c->h1_err_status, 0, why);
            } else {
                mesh_conn_close(c);
            }
            return;
        }
        if (evbuffer_get_length(c->h1_body) > 0 && mesh_proxy_request_data(s, c->h1_body))
            s->req_paused = true;
        if (c->dead || c->h1_stream != s)
            return;
        if (c->h1_msg_complete) {
            s->req_end = true;
            mesh_proxy_request_end(s);
            return;
        }
    }
    if (s->req_paused)
        mesh_conn_set_reading(c, false);
}

static void start_request(struct mesh_conn *c)
{
    size_t avail = evbuffer_get_length(c->in);
    size_t look = MESH_MIN(avail, (size_t)MESH_MAX_HEADER_BYTES + 3);
    const unsigned char *p = evbuffer_pullup(c->in, (ev_ssize_t)look);
    /* tolerate blank lines before a request (RFC 9112 2.2) */
    size_t skip = 0;
    while (skip < look && (p[skip] == '\r' || p[skip] == '\n'))
        skip++;
    if (skip) {
        evbuffer_drain(c->in, skip);
        return;
    }
    size_t end = find_head_end(p, look);
    if (!end) {
        const unsigned char *lf = memchr(p, '\n', look);
        if (!lf && look > MESH_MAX_REQUEST_LINE)
            reply_error(c, 414, "request line too long");
        else if (look > MESH_MAX_HEADER_BYTES)
            reply_error(c, 431, "request header section too large");
        return;
    }

    struct mesh_h1_head h;
    const char *why = NULL;
    int status = mesh_h1_parse_request_head((const char *)p, end, &h, &why);
    if (status) {
        reply_error(c, status, why); /* refused before it became a stream */
        return;
    }
    /* one copy into the stream arena: every span of the parse stays valid for the stream */
    struct mesh_stream *s = mesh_stream_new(c, &h1_ops);
    const char *head = s ? mesh_h1_head_keep(&h, s->arena) : NULL;
    if (!head) {
        if (s)
            mesh_stream_free(s);
        reply_error(c, 431, "request header section too large");
        return;
    }
    evbuffer_drain(c->in, end);
    status = apply_head(s, &h, &why);
    if (status) {
        mesh_stream_free(s);
        reply_error(c, status, why);
        return;
    }
    mesh_conn_idle_disarm(c);

    c->h1_stream = s;
    c->h1_msg_complete = false;
    c->h1_err_status = 0;
    c->h1_err = NULL;
    c->h1_body_left = s->req.content_length > 0 ? s->req.content_length : 0;
    if (s->is_upgrade || s->is_connect) {
        s->req_end = true; /* what follows the head is the tunnel's */
    } else if (s->req.chunked) {
        c->h1_body_left = -1;
        mesh_h1_chunked_reset(&c->h1_ck);
    } else if (c->h1_body_left == 0) {
        c->h1_msg_complete = true;
        s->req_end = true;
    }
    bool has_body = !s->req_end;
    if (s->expect_continue && has_body && s->req.http_minor == 1) {
        evbuffer_add(c->out, LIT("HTTP/1.1 100 Continue\r\n\r\n"));
        mesh_conn_flush(c);
        if (c->dead)
            return;
    }
    mesh_proxy_request_headers(s, !has_body);
    if (c->dead || c->h1_stream != s)
        return;
    if (has_body)
        process_body(c);
}

int mesh_h1_down_on_read(struct mesh_conn *c)
{
    while (!c->dead && !c->closing && evbuffer_get_length(c->in) > 0) {
        struct mesh_stream *s = c->h1_stream;
        if (!s) {
            size_t before = evbuffer_get_length(c->in);
            start_request(c);
            if (c->h1_stream == NULL && evbuffer_get_length(c->in) == before)
                break; /* head incomplete */
            continue;
        }
        if (c->proto != MESH_CONN_H1)
            break;
        if (!c->h1_msg_complete && !s->req_end) {
            size_t before = evbuffer_get_length(c->in);
            process_body(c);
            if (c->h1_stream == s && (evbuffer_get_length(c->in) == before || s->req_paused))
                break;
            continue;
        }
        /* a pipelined request waits for this response; stop reading if it piles up */
        if (evbuffer_get_length(c->in) > MESH_MAX_HEADER_BYTES)
            mesh_conn_set_reading(c, false);
        break;
    }
    return MESH_OK;
}

/* ---- Response path (mesh_down_ops) ---- */

static void d_send_headers(struct mesh_stream *s, bool end)
{
    struct mesh_conn *c = s->conn;
    int st = s->resp.status;
    if (st < 200) {
        if (st != 101 && s->req.http_minor >= 1) {
            mesh_h1_write_response_head(c->out, &s->resp, 1, false, false);
            mesh_conn_flush(c);
        }
        return;
    }
    bool nobody = s->is_head || st == 204 || st == 304;
    bool chunked = false;
    /* announced trailers (gRPC-web, h2 upstreams) need chunked framing to reach the client */
    if (!nobody && !end && s->req.http_minor >= 1 && mesh_headers_get(&s->resp.hdrs, LIT("trailer")))
        s->resp.content_length = -1;
    if (!nobody && s->resp.content_length < 0) {
        if (end)
            s->resp.content_length = 0;
        else if (s->req.http_minor >= 1)
            chunked = true;
        else
            s->close_after = true; /* HTTP/1.0: the close ends the body */
    }
    if (c->draining || c->w->draining)
        s->close_after = true;
    c->h1_resp_chunked = chunked;
    c->h1_resp_nobody = nobody;
    s->resp_headers_sent = true;
    mesh_h1_write_response_head(c->out, &s->resp, s->req.http_minor, chunked, s->close_after);
    if (!end)
        mesh_conn_flush(c);
}

static void d_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    struct mesh_conn *c = s->conn;
    if (c->h1_resp_nobody)
        evbuffer_drain(data, evbuffer_get_length(data));
    else if (c->h1_resp_chunked)
        mesh_h1_write_chunk(c->out, data);
    else
        evbuffer_add_buffer(c->out, data);
    mesh_conn_flush(c);
}

static void d_send_end(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    if (c->proto == MESH_CONN_TUNNEL) { /* an upstream extended CONNECT's END_STREAM */
        s->resp_end = true;
        mesh_tunnel_h1_stream_end(c);
        return;
    }
    if (c->h1_resp_chunked)
        mesh_h1_write_last_chunk(c->out, &s->resp.trailers);
    s->resp_end = true;
    h1_finish(c);
}

static void d_reset(struct mesh_stream *s)
{
    /* HTTP/1.1 can only signal a broken response by closing the connection. What of it
     * is buffered goes first: the client sees the response cut short (a body shorter than
     * its Content-Length, no last chunk), not a connection closed with no answer, which
     * it could take for a request never processed and send again. */
    mesh_conn_close_after_flush(s->conn, true);
}

static void d_resume_read(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    s->req_paused = false;
    mesh_conn_set_reading(c, true);
    if (evbuffer_get_length(c->in) > 0)
        event_active(c->rev, EV_READ, 0);
}

static bool d_congested(struct mesh_stream *s)
{
    return evbuffer_get_length(s->conn->out) >= MESH_BUF_HIGH;
}

/*
 * The 101 that answers a WebSocket Upgrade whose upstream took an HTTP/2 extended CONNECT
 * (RFC 8441): that server saw no Sec-WebSocket-Key, so meshd answers the client's (RFC
 * 6455 4.2.2: base64 of the SHA-1 of the key and the protocol's GUID). The 2xx's other
 * fields go with it (Sec-WebSocket-Protocol, -Extensions).
 */
static void write_websocket_101(struct mesh_conn *c, struct mesh_stream *s)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* upstream.c took this way only with a key of MESH_WS_KEY_LEN */
    const struct mesh_header *key = mesh_headers_get(&s->req.hdrs, LIT("sec-websocket-key"));
    unsigned char in[MESH_WS_KEY_LEN + sizeof(guid) - 1], digest[20];
    char *accept = mesh_arena_alloc(s->arena, 32);
    size_t n = 0;
    s->resp.status = 101;
    s->resp.content_length = -1;
    mesh_headers_add(s->arena, &s->resp.hdrs, LIT("Upgrade"), LIT("websocket"));
    mesh_headers_add(s->arena, &s->resp.hdrs, LIT("Connection"), LIT("Upgrade"));
    if (key && accept && key->value_len == MESH_WS_KEY_LEN) {
        memcpy(in, key->value, MESH_WS_KEY_LEN);
        memcpy(in + MESH_WS_KEY_LEN, guid, sizeof(guid) - 1);
        if (mbedtls_sha1_ret(in, sizeof(in), digest) == 0 &&
            mbedtls_base64_encode((unsigned char *)accept, 32, &n, digest, sizeof(digest)) == 0)
            mesh_headers_add(s->arena, &s->resp.hdrs, LIT("Sec-WebSocket-Accept"), accept, n);
    }
    mesh_h1_write_response_head(c->out, &s->resp, 1, false, false);
}

static void d_start_tunnel(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    struct mesh_upconn *u = s->up;
    if (s->up_ext_connect) {
        /* the stream stays: its upstream HTTP/2 stream carries the connection's bytes */
        write_websocket_101(c, s);
        s->resp_headers_sent = true;
        c->h1_resp_chunked = false;
        c->h1_resp_nobody = false;
        c->h1_stream = NULL;
        mesh_tunnel_start_h1_stream(c, s);
        return;
    }
    if (s->is_connect) {
        evbuffer_add(c->out, LIT("HTTP/1.1 200 Connection Established\r\n\r\n"));
        s->resp.status = 200; /* meshd's own answer: the access log and stats say so */
    } else {
        mesh_h1_write_response_head(c->out, &s->resp, 1, false, false);
    }
    s->resp_headers_sent = true;
    /* the upstream connection now belongs to the tunnel, not to the pool's stream */
    u->stream = NULL;
    s->up = NULL;
    s->uops = NULL;
    s->resp_end = true;
    mesh_proxy_stream_park(s);
    c->h1_stream = NULL;
    c->tunnel_log = s;
    c->proto = MESH_CONN_TUNNEL;
    mesh_tunnel_start(c, u);
}

static const struct mesh_down_ops h1_ops = {
    .send_headers = d_send_headers,
    .send_data = d_send_data,
    .send_end = d_send_end,
    .reset = d_reset,
    .resume_read = d_resume_read,
    .congested = d_congested,
    .start_tunnel = d_start_tunnel,
};

/* The response is complete: log, free the stream, go on with the next request. */
static void h1_finish(struct mesh_conn *c)
{
    struct mesh_stream *s = c->h1_stream;
    if (!s->req_end)
        s->close_after = true; /* the rest of the body is unread: cannot find the next request */
    bool close = s->close_after;
    mesh_proxy_stream_done(s);
    c->h1_stream = NULL;
    mesh_stream_free(s);
    if (close || c->draining) {
        mesh_conn_close_after_flush(c, false);
        return;
    }
    mesh_conn_flush(c);
    if (c->dead)
        return;
    mesh_conn_idle_arm(c);
    mesh_conn_set_reading(c, true);
    if (evbuffer_get_length(c->in) > 0)
        event_active(c->rev, EV_READ, 0); /* pipelined: parse outside this call chain */
}

void mesh_h1_down_on_written(struct mesh_conn *c)
{
    struct mesh_stream *s = c->h1_stream;
    if (s && s->resp_paused && s->uops) {
        s->resp_paused = false;
        s->uops->resume_read(s);
    }
}

int mesh_h1_down_init(struct mesh_conn *c)
{
    c->h1_body = evbuffer_new();
    return c->h1_body ? MESH_OK : MESH_ENOMEM;
}

void mesh_h1_down_close(struct mesh_conn *c)
{
    struct mesh_stream *s = c->h1_stream;
    if (s) {
        c->h1_stream = NULL;
        mesh_proxy_downstream_abort(s);
        mesh_stream_free(s);
    }
}

void mesh_h1_down_drain(struct mesh_conn *c)
{
    if (!c->h1_stream) {
        mesh_conn_close(c);
        return;
    }
    c->h1_stream->close_after = true;
}
