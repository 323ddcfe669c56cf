/*
 * Downstream HTTP/2 (h2c, prior knowledge) on nghttp2. nghttp2 enforces the
 * protocol's own rules (uppercase names, connection-specific headers, content
 * length vs DATA) as stream or connection errors; we add limits and mapping.
 * Flow control is manual: a DATA frame's bytes are acknowledged only once the
 * upstream side took them, so a slow upstream slows the client.
 */
#include "core/common.h"
#include <string.h>
#include <strings.h>
#include "core/log.h"
#include "core/mem.h"
#include "core/proxy-int.h"

#define LIT(s) s, sizeof(s) - 1

static const struct mesh_down_ops h2_ops;

/* Serializes what the session has to send into c->out, up to MESH_BUF_HIGH, and queues
 * the write; closes a connection that nghttp2 is done with. */
static void h2_emit(struct mesh_conn *c)
{
    if (c->dead || !c->h2 || c->h2_in_cb)
        return;
    while (evbuffer_get_length(c->out) < MESH_BUF_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            mesh_log_debug("h2 send: %s", nghttp2_strerror((int)n));
            mesh_conn_close(c);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(c->out, data, (size_t)n);
    }
    mesh_conn_flush(c);
    if (!c->dead && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
        evbuffer_get_length(c->out) == 0)
        mesh_conn_close(c);
    else if (!c->dead && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        c->closing = true;
}

static void h2_fill(struct mesh_io_op *op)
{
    h2_emit(MESH_CONTAINER_OF(op, struct mesh_conn, wop));
}

/*
 * Sending is deferred to the end of the turn (mesh_io_want_fill): a proxied response's
 * head, body and end arrive as three calls, and serializing at each made three frames
 * (HEADERS, DATA, an empty DATA with END_STREAM) and three passes through nghttp2. Once
 * a turn, the body and its end leave in one DATA frame, every stream's frames of the
 * turn in one pass.
 */
static void h2_send(struct mesh_conn *c)
{
    if (!c->dead && c->h2)
        mesh_io_want_fill(c->w->io, &c->wop);
}

static struct mesh_stream *stream_of(struct mesh_conn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->h2, id);
}

/* ---- Receiving ---- */

/* Refuses the request once its head is complete (the first reason stands). */
static void reject(struct mesh_stream *s, int status, const char *why)
{
    if (!s->reject_status) {
        s->reject_status = status;
        s->reject_why = why;
    }
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct mesh_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->draining) {
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct mesh_stream *s = mesh_stream_new(c, &h2_ops);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->h2_id = f->hd.stream_id;
    mesh_list_insert_tail(&c->h2_streams, &s->down_link);
    mesh_list_init(&s->up_link);
    nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, s);
    c->h2_hdr_stream = s;
    mesh_conn_idle_disarm(c);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct mesh_conn *c = ud;
    struct mesh_stream *s = c->h2_hdr_stream;
    if (!s || s->h2_id != f->hd.stream_id)
        s = stream_of(c, f->hd.stream_id);
    if (!s)
        return 0;
    struct mesh_msg *m = &s->req;
    if (s->state != MESH_SS_HEADERS) { /* trailers */
        if (mesh_http_trailer_forbidden((const char *)name, nlen)) {
            /* nghttp2 refuses only connection-specific ones: host or authorization would
             * reach an HTTP/1.1 backend, which may merge trailers into the head */
            nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_PROTOCOL_ERROR);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        if (m->trailers.n >= MESH_MAX_HEADERS ||
            mesh_headers_add_copy(s->arena, &m->trailers, (const char *)name, nlen,
                                  (const char *)value, vlen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    const char *v = mesh_arena_strndup(s->arena, (const char *)value, vlen);
    if (!v)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nlen && name[0] == ':') {
        if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
            m->method = v;
            m->method_len = (uint32_t)vlen;
        } else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
            m->path = v;
            m->path_len = (uint32_t)vlen;
        } else if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
            m->authority = v;
            m->authority_len = (uint32_t)vlen;
        } else if (nlen == 7 && memcmp(name, ":scheme", 7) == 0) {
            m->scheme = v;
        } else if (nlen == 9 && memcmp(name, ":protocol", 9) == 0) {
            /* RFC 8441 (nghttp2 took it only because we announced it, and only with
             * CONNECT, :scheme and :path): upstream it is the HTTP/1.1 Upgrade token.
             * Only websocket: anything else would reach an HTTP/1.1 server as an Upgrade
             * meshd cannot vouch for, h2c above all, a tunnel past routing and checks
             * (h2c smuggling, refused over HTTP/1.1 too, h1_down.c) */
            s->is_ext_connect = true;
            if (vlen != 9 || strncasecmp(v, "websocket", 9) != 0)
                reject(s, 501, "extended CONNECT supports :protocol websocket only");
            else if (mesh_headers_add(s->arena, &m->hdrs, "upgrade", 7, v, vlen))
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
    }
    if (nlen == 4 && memcmp(name, "host", 4) == 0) {
        if (!m->authority) {
            m->authority = v;
            m->authority_len = (uint32_t)vlen;
        }
        return 0;
    }
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        m->content_length = 0;
        for (size_t i = 0; i < vlen; i++)
            m->content_length = m->content_length * 10 + (v[i] - '0'); /* nghttp2 checked digits */
        return 0;
    }
    if (nlen == 6 && memcmp(name, "cookie", 6) == 0) {
        /* HTTP/2 may split cookies; HTTP/1.1 needs one header (RFC 9113 8.2.3) */
        struct mesh_header *ck = mesh_headers_get(&m->hdrs, LIT("cookie"));
        if (ck) {
            char *j = mesh_arena_alloc(s->arena, ck->value_len + 2 + vlen + 1);
            if (!j)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            memcpy(j, ck->value, ck->value_len);
            memcpy(j + ck->value_len, "; ", 2);
            memcpy(j + ck->value_len + 2, v, vlen);
            ck->value = j;
            ck->value_len += (uint32_t)(2 + vlen);
            return 0;
        }
    }
    if (m->hdrs.n >= MESH_MAX_HEADERS) {
        reject(s, 431, "too many header fields"); /* answered with the head, as HTTP/1.1 */
        return 0;
    }
    const char *n = mesh_arena_strndup(s->arena, (const char *)name, nlen);
    if (!n || mesh_headers_add(s->arena, &m->hdrs, n, nlen, v, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct mesh_conn *c = ud;
    struct mesh_stream *s = f->hd.stream_id ? stream_of(c, f->hd.stream_id) : NULL;
    if (!s)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (s->state == MESH_SS_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            s->req.http_minor = 1;
            if (!s->req.scheme)
                s->req.scheme = "http";
            if (!s->req.authority) {
                s->req.authority = "";
            }
            /* what HTTP/1.1 refuses, HTTP/2 does too: an unknown (or lowercase) method, a
             * userinfo or other bytes no host has in :authority or Host (nghttp2 takes "@") */
            if (!mesh_http_method_known(s->req.method, s->req.method_len))
                reject(s, 400, "invalid method");
            if (!mesh_http_authority_ok(s->req.authority, s->req.authority_len))
                reject(s, 400, "invalid :authority or host");
            s->is_head = s->req.method_len == 4 && memcmp(s->req.method, "HEAD", 4) == 0;
            s->is_connect = s->req.method_len == 7 && memcmp(s->req.method, "CONNECT", 7) == 0;
            if (s->is_ext_connect) {
                /* the HTTP/1.1 way to ask for the same (RFC 8441 5): GET with Upgrade and
                 * no body; the stream's DATA waits for the 101 (proxy.c) */
                s->is_connect = false;
                s->is_upgrade = true;
                s->req.method = "GET";
                s->req.method_len = 3;
                s->req.content_length = -1; /* no framing: h1_up.c sends no body */
            }
            s->req_end = end;
            s->state = MESH_SS_ROUTED; /* leaves the head phase; the proxy sets the real state */
            if (s->reject_status) {
                MESH_STAT_INC(&c->w->stats, downstream_rq_rejected);
                mesh_proxy_local_reply(s, s->reject_status, MESH_RF_DPE, s->reject_why);
                break;
            }
            mesh_proxy_request_headers(s, end);
        } else if (end) {
            s->req_end = true;
            mesh_proxy_request_end(s);
        }
        break;
    case NGHTTP2_DATA:
        if (end) {
            s->req_end = true;
            mesh_proxy_request_end(s);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct mesh_conn *c = ud;
    struct mesh_stream *s = stream_of(c, id);
    if (!s) {
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    evbuffer_add(c->h2_tmp, data, len);
    if (mesh_proxy_request_data(s, c->h2_tmp)) {
        s->down_unconsumed += len;
        s->req_paused = true;
    } else {
        nghttp2_session_consume(h2, id, len);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct mesh_conn *c = ud;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    struct mesh_stream *s = stream_of(c, f->hd.stream_id);
    /* the response is complete while the client still sends: stop it (RFC 9113 8.1).
     * Not a tunnel: after the upstream's FIN the client's bytes still go (a half-close).
     * A CONNECT answered otherwise (a 503, a 405) is an answered request like any. */
    if (s && !s->req_end && s->state != MESH_SS_TUNNEL)
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static void stream_gone(struct mesh_conn *c, struct mesh_stream *s)
{
    if (c->h2_hdr_stream == s)
        c->h2_hdr_stream = NULL;
    /* DATA received but not acknowledged (its consumer paused it) still holds the
     * connection's window: with automatic window updates off, bytes never consumed are
     * lost to every other stream of the connection (nghttpx consumes them here too) */
    if (s->down_unconsumed && !c->dead) {
        nghttp2_session_consume_connection(c->h2, s->down_unconsumed);
        s->down_unconsumed = 0;
    }
    mesh_list_remove(&s->down_link);
    if (s->resp_end)
        mesh_proxy_stream_done(s);
    else
        mesh_proxy_downstream_abort(s);
    mesh_stream_free(s);
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *ud)
{
    struct mesh_conn *c = ud;
    struct mesh_stream *s = stream_of(c, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    stream_gone(c, s);
    if (mesh_list_empty(&c->h2_streams))
        mesh_conn_idle_arm(c);
    return 0;
}

/* ---- Sending ---- */

static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct mesh_stream *s = src->ptr;
    size_t avail = s->resp_buf ? evbuffer_get_length(s->resp_buf) : 0;
    if (avail == 0 && !s->resp_end) {
        s->h2_data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    if (n)
        evbuffer_remove(s->resp_buf, buf, n);
    if (s->resp_end && n == avail) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->resp.trailers.n) {
            nghttp2_nv nva[MESH_MAX_HEADERS];
            size_t k = 0;
            for (uint32_t i = 0; i < s->resp.trailers.n && k < MESH_MAX_HEADERS; i++) {
                struct mesh_header *t = &s->resp.trailers.v[i];
                char *lname = mesh_arena_strndup(s->arena, t->name, t->name_len);
                if (!lname)
                    continue;
                for (uint32_t j = 0; j < t->name_len; j++)
                    lname[j] = (char)(lname[j] >= 'A' && lname[j] <= 'Z' ? lname[j] + 32 : lname[j]);
                nva[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)t->value, t->name_len,
                                        t->value_len, NGHTTP2_NV_FLAG_NONE};
            }
            if (nghttp2_submit_trailer(h2, id, nva, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    if (s->resp_paused && s->uops && evbuffer_get_length(s->resp_buf) < MESH_BUF_LOW) {
        s->resp_paused = false;
        s->uops->resume_read(s);
    }
    return (ssize_t)n;
}

static bool skip_response_header(const struct mesh_header *h)
{
    /* connection-specific fields are not allowed in HTTP/2 (RFC 9113 8.2.2) */
    return mesh_header_is(h, LIT("connection")) || mesh_header_is(h, LIT("keep-alive")) ||
           mesh_header_is(h, LIT("proxy-connection")) || mesh_header_is(h, LIT("transfer-encoding")) ||
           mesh_header_is(h, LIT("upgrade"));
}

static void d_send_headers(struct mesh_stream *s, bool end)
{
    struct mesh_conn *c = s->conn;
    if (c->dead)
        return;
    char status[4];
    int st = s->resp.status;
    status[0] = (char)('0' + st / 100 % 10);
    status[1] = (char)('0' + st / 10 % 10);
    status[2] = (char)('0' + st % 10);
    status[3] = '\0';
    nghttp2_nv nva[MESH_MAX_HEADERS + 3];
    size_t k = 0;
    nva[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (uint32_t i = 0; i < s->resp.hdrs.n && k < MESH_MAX_HEADERS + 1; i++) {
        struct mesh_header *h = &s->resp.hdrs.v[i];
        if (skip_response_header(h))
            continue;
        char *lname = mesh_arena_strndup(s->arena, h->name, h->name_len);
        if (!lname)
            continue;
        for (uint32_t j = 0; j < h->name_len; j++)
            lname[j] = (char)(lname[j] >= 'A' && lname[j] <= 'Z' ? lname[j] + 32 : lname[j]);
        nva[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)h->value, h->name_len, h->value_len,
                                NGHTTP2_NV_FLAG_NONE};
    }
    char cl[24];
    if (st >= 200 && s->resp.content_length >= 0 && st != 204 && st != 304) {
        size_t n = mesh_u64_dec(cl, (uint64_t)s->resp.content_length);
        nva[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, n,
                                NGHTTP2_NV_FLAG_NONE};
    }
    if (st < 200) {
        nghttp2_submit_headers(c->h2, NGHTTP2_FLAG_NONE, s->h2_id, NULL, nva, k, NULL);
        h2_send(c);
        return;
    }
    s->resp_headers_sent = true;
    if (end || s->is_head) {
        nghttp2_submit_response(c->h2, s->h2_id, nva, k, NULL);
        s->resp_end = true; /* HEAD: the stream ends with the headers whatever follows */
    } else {
        nghttp2_data_provider dp = {.source.ptr = s, .read_callback = data_read};
        if (!s->resp_buf)
            s->resp_buf = evbuffer_new();
        nghttp2_submit_response(c->h2, s->h2_id, nva, k, &dp);
    }
    h2_send(c);
}

static void d_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    struct mesh_conn *c = s->conn;
    if (s->is_head || c->dead || !s->resp_buf) {
        evbuffer_drain(data, evbuffer_get_length(data));
        return;
    }
    evbuffer_add_buffer(s->resp_buf, data);
    if (s->h2_data_deferred) {
        s->h2_data_deferred = false;
        nghttp2_session_resume_data(c->h2, s->h2_id);
    }
    h2_send(c);
}

static void d_send_end(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    s->resp_end = true;
    if (c->dead)
        return;
    if (s->h2_data_deferred) {
        s->h2_data_deferred = false;
        nghttp2_session_resume_data(c->h2, s->h2_id);
    }
    h2_send(c);
}

static void d_reset(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    if (c->dead)
        return;
    /* a tunnel's TCP connection broke or timed out (RFC 9113 8.5) */
    uint32_t code = s->is_connect || s->is_ext_connect ? NGHTTP2_CONNECT_ERROR
                                                       : NGHTTP2_INTERNAL_ERROR;
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->h2_id, code);
    h2_send(c);
}

static void d_resume_read(struct mesh_stream *s)
{
    struct mesh_conn *c = s->conn;
    s->req_paused = false;
    if (c->dead)
        return;
    if (s->down_unconsumed) {
        nghttp2_session_consume(c->h2, s->h2_id, s->down_unconsumed);
        s->down_unconsumed = 0;
    }
    h2_send(c);
}

static bool d_congested(struct mesh_stream *s)
{
    return (s->resp_buf && evbuffer_get_length(s->resp_buf) >= MESH_BUF_HIGH) ||
           evbuffer_get_length(s->conn->out) >= MESH_BUF_HIGH;
}

/* CONNECT (RFC 9113 8.5): the 200 says the TCP connection is up, and the stream's DATA
 * frames carry its bytes from now on (tunnel.c). An extended CONNECT (RFC 8441) comes
 * here with the upstream's 101: its fields go with the 200 (Sec-WebSocket-Protocol,
 * -Extensions), not Upgrade (connection-specific in HTTP/2) nor Sec-WebSocket-Accept,
 * which answers the key meshd made up (RFC 8441 5). An upstream extended CONNECT's 2xx
 * comes here too; its stream then carries the bytes as this one does. */
static void d_start_tunnel(struct mesh_stream *s)
{
    s->resp.status = 200;
    if (s->is_ext_connect)
        mesh_headers_del(&s->resp.hdrs, LIT("sec-websocket-accept"));
    else
        s->resp.hdrs.n = 0;
    s->resp.content_length = -1;
    d_send_headers(s, false);
    if (s->up_ext_connect)
        mesh_proxy_tunnel_ready(s, s->uops); /* HTTP/2 both ways: stream to stream */
    else
        mesh_tunnel_start_stream(s);
}

static const struct mesh_down_ops h2_ops = {
    .send_headers = d_send_headers,
    .send_data = d_send_data,
    .send_end = d_send_end,
    .reset = d_reset,
    .resume_read = d_resume_read,
    .congested = d_congested,
    .start_tunnel = d_start_tunnel,
};

/* ---- Connection ---- */

int mesh_h2_down_init(struct mesh_conn *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb))
        return MESH_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_server_new3(&c->h2, cb, c, opt, mesh_mem_nghttp2());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv)
        return MESH_ENOMEM;
    mesh_list_init(&c->h2_streams);
    c->h2_tmp = evbuffer_new();
    c->wop.fill = h2_fill;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 256},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 256 * 1024},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MESH_MAX_HEADER_BYTES},
        /* RFC 9218: no RFC 7540 dependency tree (nghttp2 keeps one per stream otherwise,
         * and closed streams in it); nghttpx says the same */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        /* RFC 8441: websockets over HTTP/2 streams */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, MESH_ARRAY_LEN(iv));
    /* a bigger connection window so many streams can upload at once */
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 4 * 1024 * 1024);
    return MESH_OK;
}

int mesh_h2_down_on_read(struct mesh_conn *c)
{
    c->h2_in_cb++;
    while (evbuffer_get_length(c->in) > 0 && !c->dead) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(c->in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        if (n < 0) {
            mesh_log_debug("h2 from %s: %s", c->peer_ip, nghttp2_strerror((int)n));
            c->h2_in_cb--;
            /* nghttp2 queued a GOAWAY for protocol errors: try to send it, then close */
            h2_emit(c);
            mesh_conn_close_after_flush(c, false);
            if (!evbuffer_get_length(c->out))
                mesh_conn_close(c);
            return MESH_EPROTO;
        }
        evbuffer_drain(c->in, (size_t)n);
    }
    c->h2_in_cb--;
    h2_send(c);
    return MESH_OK;
}

void mesh_h2_down_on_written(struct mesh_conn *c)
{
    h2_send(c);
}

void mesh_h2_down_close(struct mesh_conn *c)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &c->h2_streams)
    {
        struct mesh_stream *s = mesh_list_entry(pos, struct mesh_stream, down_link);
        nghttp2_session_set_stream_user_data(c->h2, s->h2_id, NULL);
        stream_gone(c, s);
    }
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->h2_tmp)
        evbuffer_free(c->h2_tmp);
    c->h2_tmp = NULL;
}

void mesh_h2_down_drain(struct mesh_conn *c)
{
    if (c->dead)
        return;
    c->draining = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_send(c);
}
