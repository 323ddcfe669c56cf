/* Upstream HTTP/1.1: one request at a time on a keep-alive connection. */
#include "core/common.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "core/log.h"
#include "core/proxy-int.h"

static const struct mesh_up_ops h1_up_ops;
static http_parser_settings resp_settings;

/* ---- Response parsing ---- */

static int commit(struct mesh_upconn *u)
{
    struct mesh_stream *s = u->stream;
    const char *name = u->hdr_name, *value = u->hdr_value ? u->hdr_value : "";
    size_t nlen = u->hdr_name_len, vlen = u->hdr_value_len;
    u->hdr_name = u->hdr_value = NULL;
    u->hdr_name_len = u->hdr_value_len = 0;
    u->in_value = false;
    if (!name)
        return 0;
    value = mesh_h1_trim_ows(value, &vlen);
    if (u->resp_headers_done)
        return mesh_headers_add(s->arena, &s->resp.trailers, name, nlen, value, vlen) ? -1 : 0;
    if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
        /* a body also gzip'ed (say) would reach the client as if it were not: refused
         * in on_headers_complete if a body follows, as a request with one is (400) */
        if (!mesh_h1_te_is_chunked(value, vlen))
            u->refused = "a transfer-coding other than chunked";
        return 0;
    }
    if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0)
        return 0; /* framing is re-decided for the downstream side */
    return mesh_headers_add(s->arena, &s->resp.hdrs, name, nlen, value, vlen) ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct mesh_upconn *u = p->data;
    if (u->in_value && commit(u))
        return -1;
    if (!u->hdr_name && ++u->nhdr > MESH_MAX_HEADERS)
        return -1;
    return mesh_h1_append_piece(u->stream->arena, &u->hdr_name, &u->hdr_name_len, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct mesh_upconn *u = p->data;
    u->in_value = true;
    return mesh_h1_append_piece(u->stream->arena, &u->hdr_value, &u->hdr_value_len, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct mesh_upconn *u = p->data;
    struct mesh_stream *s = u->stream;
    if (u->in_value && commit(u))
        return -1;
    s->resp.status = p->status_code;
    s->resp.http_minor = (uint8_t)p->http_minor;
    s->resp.chunked = (p->flags & F_CHUNKED) != 0;
    s->resp.content_length =
        (!s->resp.chunked && p->content_length != ULLONG_MAX) ? (int64_t)p->content_length : -1;
    u->resp_headers_done = true;
    u->interim = p->status_code >= 100 && p->status_code < 200 && p->status_code != 101;
    /* A 1xx ends with its head (RFC 9110 15.2) whatever length it announces: http-parser
     * read an announced body, and it went out ahead of the final response's, outside its
     * framing (a response desync on a keep-alive client connection) */
    if (u->interim)
        return 1;
    if (s->is_head)
        return 1; /* no body follows, whatever the length says */
    if (u->refused && !u->interim && p->status_code != 204 && p->status_code != 304)
        return -1; /* see commit() */
    u->refused = NULL;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct mesh_upconn *u = p->data;
    evbuffer_add(u->tmp, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct mesh_upconn *u = p->data;
    if (u->in_value && commit(u)) /* the last trailer */
        return -1;
    u->resp_complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    return 0;
}

static http_parser_settings resp_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

static void reset_parser(struct mesh_upconn *u)
{
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    u->resp_headers_done = u->resp_headers_emitted = u->resp_complete = false;
    u->interim = false;
    u->refused = NULL;
    u->plain = u->parser_fed = false;
    u->plain_left = 0;
    u->nhdr = 0;
    u->hdr_name = u->hdr_value = NULL;
    u->hdr_name_len = u->hdr_value_len = 0;
    u->in_value = false;
}

/* The upstream broke the exchange: tell the stream, close the connection. */
static void fail(struct mesh_upconn *u, int status, unsigned flag, const char *why, bool retryable)
{
    struct mesh_stream *s = u->stream;
    u->stream = NULL;
    mesh_upconn_close(u);
    if (s)
        mesh_proxy_upstream_error(s, status, flag, why, retryable);
}

/* Hands parsed events to the stream in order: headers, body, end. */
static void deliver(struct mesh_upconn *u)
{
    struct mesh_stream *s = u->stream;
    if (u->resp_headers_done && !u->resp_headers_emitted) {
        if (u->interim) {
            mesh_proxy_response_headers(s, false);
            if (u->stream != s)
                return;
            reset_parser(u);
            return;
        }
        u->resp_headers_emitted = true;
        if (s->resp.status == 101) {
            mesh_proxy_response_headers(s, false); /* becomes a tunnel */
            return;
        }
        bool end = u->resp_complete && evbuffer_get_length(u->tmp) == 0;
        mesh_proxy_response_headers(s, end);
        if (end || u->stream != s)
            return;
    }
    if (evbuffer_get_length(u->tmp) > 0) {
        if (mesh_proxy_response_data(s, u->tmp) && u->stream == s) {
            s->resp_paused = true;
            mesh_upconn_set_reading(u, false);
        }
        if (u->stream != s)
            return;
    }
    if (u->resp_complete)
        mesh_proxy_response_end(s);
}

/*
 * The common response, parsed in one pass instead of http-parser's callback
 * per piece (a quarter of a proxied request's user-space instructions): its
 * whole head in the first buffer segment, a final status with a body framed
 * by one Content-Length, or no body (a HEAD's answer, 204, 304: whatever a
 * Content-Length says, RFC 9112 6.3), no Transfer-Encoding. Returns true when
 * it took the head; anything else stays with http-parser, whose judgement is
 * unchanged.
 */
static bool plain_head(struct mesh_upconn *u)
{
    struct mesh_stream *s = u->stream;
    u->parser_fed = true; /* one try per response: http-parser takes it from here */
    struct evbuffer_iovec v;
    if (evbuffer_peek(u->in, -1, NULL, &v, 1) < 1 || v.iov_len < 4)
        return false;
    const char *p = v.iov_base;
    struct mesh_h1_head h;
    size_t len = MESH_MIN(v.iov_len, (size_t)MESH_MAX_HEADER_BYTES);
    size_t end = mesh_h1_parse_response_head(p, len, &h);
    if (!end || h.status < 200)
        return false;
    bool nobody = s->is_head || h.status == 204 || h.status == 304;
    if (!mesh_h1_head_keep(&h, s->arena))
        return false;
    int64_t cl = -1;
    bool close = false, keep = false;
    uint32_t had = s->resp.hdrs.n;
    for (unsigned i = 0; i < h.nfields; i++) {
        const struct mesh_h1_field *f = &h.field[i];
        if (f->name_len == 17 && strncasecmp(f->name, "transfer-encoding", 17) == 0)
            goto other;
        if (f->name_len == 14 && strncasecmp(f->name, "content-length", 14) == 0) {
            if (cl >= 0 || !f->value_len || f->value_len > 18)
                goto other;
            cl = 0;
            for (uint32_t k = 0; k < f->value_len; k++) {
                if (f->value[k] < '0' || f->value[k] > '9')
                    goto other;
                cl = cl * 10 + (f->value[k] - '0');
            }
            continue; /* framing is re-decided for the downstream side */
        }
        if (f->name_len == 10 && strncasecmp(f->name, "connection", 10) == 0) {
            if (f->value_len == 10 && strncasecmp(f->value, "keep-alive", 10) == 0)
                keep = true; /* what most servers send: no list to walk */
            else {
                close |= mesh_token_list_has(f->value, f->value_len, "close", 5);
                keep |= mesh_token_list_has(f->value, f->value_len, "keep-alive", 10);
            }
        }
        if (mesh_headers_add(s->arena, &s->resp.hdrs, f->name, f->name_len, f->value, f->value_len))
            goto other;
    }
    if (cl < 0 && !nobody)
        goto other; /* the close ends the body: http-parser's case */
    evbuffer_drain(u->in, end);
    s->resp.status = h.status;
    s->resp.http_minor = h.minor;
    s->resp.chunked = false;
    s->resp.content_length = h.status == 204 ? -1 : cl; /* a 204 has none to announce */
    u->plain = true;
    u->plain_keep_alive = !close && (h.minor == 1 || keep);
    u->plain_left = nobody ? 0 : cl;
    u->resp_headers_done = true;
    u->resp_complete = u->plain_left == 0;
    return true;
other:
    s->resp.hdrs.n = had; /* http-parser adds them again */
    return false;
}

/* Body bytes of a plain response: counted, moved to u->tmp without a copy. */
static void plain_body(struct mesh_upconn *u)
{
    size_t n = evbuffer_get_length(u->in);
    if ((uint64_t)u->plain_left < n)
        n = (size_t)u->plain_left;
    evbuffer_remove_buffer(u->in, u->tmp, n);
    u->plain_left -= (int64_t)n;
    u->resp_complete = u->plain_left == 0;
}

static void process(struct mesh_upconn *u)
{
    while (u->stream && !u->dead && !u->tunnel && evbuffer_get_length(u->in) > 0) {
        struct mesh_stream *s = u->stream;
        if (s->resp_paused || u->resp_complete)
            return;
        if (u->plain || (!u->parser_fed && plain_head(u))) {
            if (!u->resp_complete)
                plain_body(u);
            deliver(u);
            if (u->stream != s || u->resp_complete)
                return;
            continue;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(u->in, -1, NULL, &v, 1) < 1)
            return;
        size_t n = http_parser_execute(&u->parser, &resp_settings, v.iov_base, v.iov_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&u->parser);
        evbuffer_drain(u->in, n);
        if (e != HPE_OK && e != HPE_PAUSED) {
            char why[160];
            snprintf(why, sizeof(why), "upstream sent an invalid response: %s",
                     u->refused ? u->refused : http_errno_description(e));
            fail(u, 502, MESH_RF_UPE, why, false);
            return;
        }
        if (u->parser.upgrade && s->resp.status == 101) {
            deliver(u);
            return;
        }
        deliver(u);
        if (u->stream != s)
            return;
        if (!u->resp_headers_done)
            continue; /* an interim 1xx was passed on: parse the final response */
        if (e == HPE_PAUSED)
            return;
    }
}

static void on_eof(struct mesh_upconn *u, int err)
{
    struct mesh_stream *s = u->stream;
    if (s && u->resp_headers_done && !u->resp_complete && !u->interim && !u->plain) {
        /* a close-delimited body ends here (http-parser completes it on a zero-length read) */
        http_parser_execute(&u->parser, &resp_settings, NULL, 0);
        if (u->resp_complete) {
            deliver(u);
            mesh_upconn_close(u);
            return;
        }
    }
    if (!s) {
        mesh_upconn_close(u);
        return;
    }
    bool retryable = u->requests > 1 && !u->resp_headers_done && !s->up_bytes_seen;
    char why[160];
    snprintf(why, sizeof(why), "upstream connection %s before the response ended%s%s",
             err ? "reset" : "closed", err ? ": " : "", err ? strerror(err) : "");
    fail(u, 502, MESH_RF_UC, why, retryable);
}

int mesh_h1_up_on_read(struct mesh_upconn *u, ssize_t n)
{
    int err = n < 0 ? (int)-n : 0;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
        return MESH_OK;
    if (!u->stream) {
        /* idle: a close, or bytes nobody asked for; either way the connection is done */
        mesh_upconn_close(u);
        return MESH_OK;
    }
    process(u);
    if (n <= 0 && !u->dead && !u->tunnel)
        on_eof(u, err);
    return MESH_OK;
}

void mesh_h1_up_on_written(struct mesh_upconn *u)
{
    struct mesh_stream *s = u->stream;
    if (s && s->req_paused)
        s->dops->resume_read(s);
}

/* ---- Request path (mesh_up_ops) ---- */

static struct mesh_upconn *up_of(struct mesh_stream *s)
{
    return s->up;
}

static void u_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    struct mesh_upconn *u = up_of(s);
    if (u->req_chunked)
        mesh_h1_write_chunk(u->out, data);
    else
        evbuffer_add_buffer(u->out, data);
    mesh_upconn_flush(u);
}

static void u_send_end(struct mesh_stream *s)
{
    struct mesh_upconn *u = up_of(s);
    if (u->req_chunked)
        mesh_h1_write_last_chunk(u->out, &s->req.trailers);
    u->body_sent_end = true;
    mesh_upconn_flush(u);
}

static void u_detach(struct mesh_stream *s)
{
    struct mesh_upconn *u = up_of(s);
    if (!u || u->stream != s)
        return;
    u->stream = NULL;
    bool reusable = u->resp_complete && u->body_sent_end && !u->tunnel &&
                    (u->plain ? u->plain_keep_alive : http_should_keep_alive(&u->parser)) &&
                    evbuffer_get_length(u->in) == 0;
    mesh_upconn_release(u, reusable);
}

static void u_resume_read(struct mesh_stream *s)
{
    struct mesh_upconn *u = up_of(s);
    s->resp_paused = false;
    mesh_upconn_set_reading(u, true);
    if (evbuffer_get_length(u->in) > 0)
        event_active(u->rev, EV_READ, 0);
}

static bool u_congested(struct mesh_stream *s)
{
    return evbuffer_get_length(up_of(s)->out) >= MESH_BUF_HIGH;
}

static const struct mesh_up_ops h1_up_ops = {
    .send_data = u_send_data,
    .send_end = u_send_end,
    .detach = u_detach,
    .resume_read = u_resume_read,
    .congested = u_congested,
};

void mesh_h1_up_attach(struct mesh_upconn *u, struct mesh_stream *s)
{
    u->stream = s;
    reset_parser(u);
    u->body_sent_end = false;
    evbuffer_drain(u->tmp, evbuffer_get_length(u->tmp));
    mesh_upconn_set_reading(u, true);
    if (s->is_connect) {
        u->body_sent_end = true;
        mesh_proxy_upstream_ready(s, u, &h1_up_ops);
        return;
    }
    /* an upgrade has no body: what follows is the tunnel's, if the upstream switches */
    bool no_body = s->is_upgrade ||
                   (s->req_end && s->req_bytes == 0 && s->req.content_length <= 0 && !s->req.chunked);
    u->req_chunked = !no_body && s->req.content_length < 0;
    mesh_h1_write_request_head(u->out, &s->req, u->req_chunked);
    mesh_upconn_flush(u);
    mesh_proxy_upstream_ready(s, u, &h1_up_ops);
}
