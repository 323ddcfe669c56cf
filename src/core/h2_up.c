/* Upstream HTTP/2: many streams multiplexed on one connection per endpoint and worker. */
#include "core/common.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "core/mem.h"
#include "core/proxy-int.h"

#define LIT(s) s, sizeof(s) - 1

static const struct mesh_up_ops h2_up_ops;

static void h2u_emit(struct mesh_upconn *u)
{
    if (u->dead || !u->h2 || u->h2_in_cb)
        return;
    while (evbuffer_get_length(u->out) < MESH_BUF_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(u->h2, &data);
        if (n <= 0)
            break;
        evbuffer_add(u->out, data, (size_t)n);
    }
    mesh_upconn_flush(u);
}

static void h2u_fill(struct mesh_io_op *op)
{
    h2u_emit(MESH_CONTAINER_OF(op, struct mesh_upconn, wop));
}

/* Once a turn, at its end, like the downstream side (h2_down.c h2_send). */
static void h2u_send(struct mesh_upconn *u)
{
    if (!u->dead && u->h2)
        mesh_io_want_fill(u->pool->w->io, &u->wop);
}

/* Fails every attached stream and closes the connection. */
static void fail_all(struct mesh_upconn *u, const char *why)
{
    struct mesh_list *pos, *tmp;
    mesh_upconn_close(u);
    mesh_list_foreach_safe(pos, tmp, &u->h2_streams)
    {
        struct mesh_stream *s = mesh_list_entry(pos, struct mesh_stream, up_link);
        mesh_list_remove(&s->up_link);
        nghttp2_session_set_stream_user_data(u->h2, s->up_h2_id, NULL);
        mesh_proxy_upstream_error(s, 502, MESH_RF_UC, why, false);
    }
}

static struct mesh_stream *stream_of(struct mesh_upconn *u, int32_t id)
{
    return nghttp2_session_get_stream_user_data(u->h2, id);
}

/*
 * A tunnel's last bytes (RFC 8441 upstream) outlive its stream: both sides have ended,
 * and what the client sent last still waits for the upstream's flow-control window.
 * The connection keeps them and frames them, then END_STREAM, as its window allows; a
 * reset (the old way) lost them while the client saw a clean end. Owned by the
 * connection: freed when their stream closes or the connection goes.
 */
struct h2u_tail {
    struct mesh_list link; /* in u->h2_tails */
    int32_t id;
    struct evbuffer *buf;
    struct event *timer;   /* the stream idle timeout: a window that never opens */
    struct mesh_upconn *u;
};

static struct h2u_tail *tail_of(struct mesh_upconn *u, int32_t id)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &u->h2_tails)
    {
        struct h2u_tail *k = mesh_list_entry(pos, struct h2u_tail, link);
        if (k->id == id)
            return k;
    }
    return NULL;
}

static void tail_free(struct mesh_upconn *u, struct h2u_tail *k)
{
    struct mesh_worker *w = u->pool->w;
    mesh_list_remove(&k->link);
    evbuffer_free(k->buf);
    event_free(k->timer);
    free(k);
    w->n_tails--;
    mesh_worker_conn_gone(w); /* a drain may have waited for it */
}

/* ---- Response ---- */

/* A tail's window stayed shut for the stream idle timeout: its stream is reset and the
 * bytes go, as a stream's would (a tail held them for as long as the connection). */
static void on_tail_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct h2u_tail *k = arg;
    struct mesh_upconn *u = k->u;
    int32_t id = k->id;
    tail_free(u, k);
    if (!u->dead && u->h2) {
        nghttp2_submit_rst_stream(u->h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        h2u_send(u);
    }
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct mesh_upconn *u = ud;
    struct mesh_stream *s = stream_of(u, f->hd.stream_id);
    if (!s)
        return 0;
    /* nghttp2 files every HEADERS after the first as NGHTTP2_HCAT_HEADERS: after a 1xx
     * that is the next head, after the final head it is trailers */
    if (f->headers.cat == NGHTTP2_HCAT_HEADERS && s->up_resp_final) {
        if (s->resp.trailers.n >= MESH_MAX_HEADERS ||
            mesh_headers_add_copy(s->arena, &s->resp.trailers, (const char *)name, nlen,
                                  (const char *)value, vlen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vlen; i++)
            st = st * 10 + (value[i] - '0');
        s->resp.status = st;
        s->resp.hdrs.n = 0;
        return 0;
    }
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        int64_t v = 0;
        for (size_t i = 0; i < vlen; i++)
            v = v * 10 + (value[i] - '0');
        s->resp.content_length = v;
        return 0;
    }
    if (s->resp.hdrs.n >= MESH_MAX_HEADERS ||
        mesh_headers_add_copy(s->arena, &s->resp.hdrs, (const char *)name, nlen,
                              (const char *)value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct mesh_upconn *u = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        u->goaway = true;
        return 0;
    }
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        /* whether an Upgrade may come this way (upstream.c): the endpoint says it here */
        u->h2_settings_seen = true;
        u->pool->ext_connect = mesh_h2_up_takes_ext_connect(u) ? MESH_EXT_CONNECT_YES
                                                               : MESH_EXT_CONNECT_NO;
        if (!mesh_list_empty(&u->pool->pending)) /* an extended CONNECT may wait for them */
            event_active(u->pool->dispatch, EV_TIMEOUT, 0);
        return 0;
    }
    struct mesh_stream *s = f->hd.stream_id ? stream_of(u, f->hd.stream_id) : NULL;
    if (!s)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS) {
        bool head = f->headers.cat == NGHTTP2_HCAT_RESPONSE ||
                    (f->headers.cat == NGHTTP2_HCAT_HEADERS && !s->up_resp_final);
        if (head && s->resp.status < 200) {
            mesh_proxy_response_headers(s, false); /* interim */
            return 0;
        }
        if (head) {
            s->up_resp_final = true;
            s->up_resp_complete = end;
            mesh_proxy_response_headers(s, end);
            return 0;
        }
        if (end) {
            s->up_resp_complete = true;
            mesh_proxy_response_end(s);
        }
    } else if (f->hd.type == NGHTTP2_DATA && end) {
        s->up_resp_complete = true;
        mesh_proxy_response_end(s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct mesh_upconn *u = ud;
    struct mesh_stream *s = stream_of(u, id);
    if (!s) {
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    evbuffer_add(u->tmp, data, len);
    if (mesh_proxy_response_data(s, u->tmp) && stream_of(u, id) == s) {
        s->up_unconsumed += len;
        s->resp_paused = true;
    } else {
        nghttp2_session_consume(h2, id, len);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    struct mesh_upconn *u = ud;
    struct mesh_stream *s = stream_of(u, id);
    if (u->h2_active)
        u->h2_active--;
    if (!s && !mesh_list_empty(&u->h2_tails)) {
        struct h2u_tail *k = tail_of(u, id);
        if (k)
            tail_free(u, k);
    }
    if (s) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        mesh_list_remove(&s->up_link);
        s->up = NULL;
        s->uops = NULL;
        /* a tunnel's upstream that reset after its END_STREAM takes no more of the
         * client's bytes: the client must hear of it (RFC 9113 8.5), not write into
         * nothing */
        bool cut = s->up_ext_connect && s->state == MESH_SS_TUNNEL && !s->up_req_framed;
        if (s->up_resp_complete && cut && err == NGHTTP2_NO_ERROR) {
            /* its side over, and no more wanted (RFC 9113 8.1): an end, not a failure
             * (Go's server says it so when its handler returns) */
            mesh_proxy_tunnel_upstream_done(s);
        } else if (!s->up_resp_complete || cut) {
            char why[160];
            snprintf(why, sizeof(why), "upstream reset the stream: %s",
                     nghttp2_http2_strerror(err));
            s->up_refused = err == NGHTTP2_REFUSED_STREAM; /* the refused-stream retry condition */
            mesh_proxy_upstream_error(s, 502, MESH_RF_UC, why, err == NGHTTP2_REFUSED_STREAM);
        }
    }
    if (!u->dead && !mesh_list_empty(&u->pool->pending))
        event_active(u->pool->dispatch, EV_TIMEOUT, 0);
    return 0;
}

/* ---- Request ---- */

static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    /* the stream's user data, not src->ptr: a stream detached (and freed) before its body
     * was framed has none, and nghttp2 resets the stream */
    struct mesh_stream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (!s) {
        struct h2u_tail *k = tail_of(ud, id);
        if (!k)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        int n = evbuffer_remove(k->buf, buf, length);
        if (!evbuffer_get_length(k->buf))
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return n > 0 ? n : 0;
    }
    size_t avail = s->req_buf ? evbuffer_get_length(s->req_buf) : 0;
    /* an extended CONNECT's bytes wait for its 2xx: a refusal must not carry them */
    if (s->up_ext_connect && s->state != MESH_SS_TUNNEL)
        avail = 0;
    if (!avail && !s->up_req_end) {
        s->h2_up_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = MESH_MIN(avail, length);
    if (n)
        evbuffer_remove(s->req_buf, buf, n);
    if (s->up_req_end && n == avail) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        s->up_req_framed = true;
        if (s->req.trailers.n) {
            nghttp2_nv nva[MESH_MAX_HEADERS];
            size_t k = 0;
            for (uint32_t i = 0; i < s->req.trailers.n; i++) {
                struct mesh_header *t = &s->req.trailers.v[i];
                char *ln = mesh_arena_strndup(s->arena, t->name, t->name_len);
                if (!ln)
                    continue;
                for (uint32_t j = 0; j < t->name_len; j++)
                    ln[j] = (char)(ln[j] >= 'A' && ln[j] <= 'Z' ? ln[j] + 32 : ln[j]);
                nva[k++] = (nghttp2_nv){(uint8_t *)ln, (uint8_t *)t->value, t->name_len,
                                        t->value_len, NGHTTP2_NV_FLAG_NONE};
            }
            if (nghttp2_submit_trailer(h2, id, nva, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    if (s->req_paused && s->req_buf && evbuffer_get_length(s->req_buf) < MESH_BUF_LOW)
        s->dops->resume_read(s);
    return (ssize_t)n;
}

static bool skip_request_header(const struct mesh_stream *s, const struct mesh_header *h)
{
    return mesh_header_is(h, LIT("host")) || mesh_header_is(h, LIT("connection")) ||
           mesh_header_is(h, LIT("keep-alive")) || mesh_header_is(h, LIT("proxy-connection")) ||
           mesh_header_is(h, LIT("transfer-encoding")) || mesh_header_is(h, LIT("upgrade")) ||
           mesh_header_is(h, LIT("te")) ||
           /* RFC 8441 5: no Sec-WebSocket-Key over HTTP/2 (the client's is answered by
            * meshd, h1_down.c; an HTTP/2 client sent none) */
           (s->up_ext_connect && mesh_header_is(h, LIT("sec-websocket-key")));
}

void mesh_h2_up_attach(struct mesh_upconn *u, struct mesh_stream *s)
{
    nghttp2_nv nva[MESH_MAX_HEADERS + 8];
    size_t k = 0;
#define NV(n, nl, v, vl) (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE}
    if (s->up_ext_connect) {
        /* a WebSocket (RFC 8441 4): CONNECT with :protocol, whether the client asked with
         * an HTTP/1.1 Upgrade or an extended CONNECT of its own; upstream.c attaches one
         * only to a connection whose SETTINGS allow it (h2_with_capacity) */
        nva[k++] = NV(":method", 7, "CONNECT", 7);
        nva[k++] = NV(":protocol", 9, "websocket", 9);
    } else {
        nva[k++] = NV(":method", 7, s->req.method, s->req.method_len);
    }
    nva[k++] = NV(":scheme", 7, "http", 4);
    nva[k++] = NV(":authority", 10, s->req.authority, s->req.authority_len);
    nva[k++] = NV(":path", 5, s->req.path ? s->req.path : "/", s->req.path ? s->req.path_len : 1);
    bool te_trailers = false;
    for (uint32_t i = 0; i < s->req.hdrs.n && k < MESH_MAX_HEADERS + 6; i++) {
        struct mesh_header *h = &s->req.hdrs.v[i];
        if (skip_request_header(s, h))
            continue;
        char *ln = mesh_arena_strndup(s->arena, h->name, h->name_len);
        if (!ln)
            continue;
        for (uint32_t j = 0; j < h->name_len; j++)
            ln[j] = (char)(ln[j] >= 'A' && ln[j] <= 'Z' ? ln[j] + 32 : ln[j]);
        nva[k++] = NV(ln, h->name_len, h->value, h->value_len);
    }
    /* gRPC needs "te: trailers"; it is the one TE value HTTP/2 allows */
    struct mesh_header *ct = mesh_headers_get(&s->req.hdrs, LIT("content-type"));
    if (ct && ct->value_len >= 16 && memcmp(ct->value, "application/grpc", 16) == 0)
        te_trailers = true;
    if (te_trailers)
        nva[k++] = NV("te", 2, "trailers", 8);
    char cl[24];
    if (s->req.content_length >= 0 && !s->up_ext_connect) {
        size_t n = mesh_u64_dec(cl, (uint64_t)s->req.content_length);
        nva[k++] = NV("content-length", 14, cl, (size_t)n);
    }
#undef NV
    /* a tunnel's stream stays open for its bytes (an Upgrade's head ended the request) */
    bool no_body = !s->up_ext_connect && s->req_end && s->req_bytes == 0 &&
                   (!s->req_buf || !evbuffer_get_length(s->req_buf));
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = data_read};
    s->up_req_end = false;
    s->up_resp_complete = false;
    s->up_resp_final = false;
    s->h2_up_deferred = false;
    s->up_unconsumed = 0;
    if (!s->req_buf)
        s->req_buf = evbuffer_new();
    int32_t id = nghttp2_submit_request(u->h2, NULL, nva, k, no_body ? NULL : &dp, s);
    if (id < 0) {
        mesh_proxy_upstream_error(s, 502, MESH_RF_UC, "cannot open an upstream HTTP/2 stream", false);
        return;
    }
    s->up_h2_id = id;
    s->up_req_framed = no_body;
    if (no_body)
        s->up_req_end = true;
    u->h2_active++;
    mesh_list_insert_tail(&u->h2_streams, &s->up_link);
    h2u_send(u);
    mesh_proxy_upstream_ready(s, u, &h2_up_ops);
}

static void u_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    struct mesh_upconn *u = s->up;
    if (data != s->req_buf)
        evbuffer_add_buffer(s->req_buf, data);
    if (s->h2_up_deferred) {
        s->h2_up_deferred = false;
        nghttp2_session_resume_data(u->h2, s->up_h2_id);
    }
    h2u_send(u);
}

static void u_send_end(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    if (s->up_req_end)
        return;
    s->up_req_end = true;
    if (s->h2_up_deferred) {
        s->h2_up_deferred = false;
        nghttp2_session_resume_data(u->h2, s->up_h2_id);
    }
    h2u_send(u);
}

/*
 * A tunnel over both ways whose last bytes are not all framed: what the window allows goes
 * now, the rest stays with the connection (struct h2u_tail), bounded by the stream idle
 * timeout. True when the stream's upstream side now lives on as a tail.
 */
static bool keep_tail(struct mesh_upconn *u, struct mesh_stream *s)
{
    if (!s->up_ext_connect || !s->up_req_end || !s->up_resp_complete || s->up_req_framed)
        return false;
    h2u_emit(u);
    if (s->up_req_framed || stream_of(u, s->up_h2_id) != s)
        return false; /* all went (or the stream closed as it did) */
    struct h2u_tail *k = mesh_xcalloc(1, sizeof(*k));
    k->id = s->up_h2_id;
    k->u = u;
    k->buf = evbuffer_new();
    if (s->req_buf)
        evbuffer_add_buffer(k->buf, s->req_buf);
    k->timer = evtimer_new(u->pool->w->base, on_tail_timeout, k);
    uint32_t ms = s->snap->timeouts.stream_idle_ms;
    if (ms) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(k->timer, &tv);
    }
    mesh_list_insert_tail(&u->h2_tails, &k->link);
    u->pool->w->n_tails++;
    nghttp2_session_set_stream_user_data(u->h2, s->up_h2_id, NULL);
    if (s->h2_up_deferred)
        nghttp2_session_resume_data(u->h2, s->up_h2_id);
    h2u_send(u);
    return true;
}

static void u_detach(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    if (!u)
        return;
    mesh_list_remove(&s->up_link);
    if (!u->dead && u->h2) {
        if (keep_tail(u, s)) {
            s->up = NULL;
            return;
        }
        nghttp2_session_set_stream_user_data(u->h2, s->up_h2_id, NULL);
        /* the request's end submitted is not enough: its DATA is framed at the end of the
         * turn, from buffers that go with the stream */
        if (!s->up_resp_complete || !s->up_req_framed)
            nghttp2_submit_rst_stream(u->h2, NGHTTP2_FLAG_NONE, s->up_h2_id, NGHTTP2_CANCEL);
        h2u_send(u);
    }
    s->up = NULL;
}

static void u_resume_read(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    s->resp_paused = false;
    if (!u || u->dead)
        return;
    if (s->up_unconsumed) {
        nghttp2_session_consume(u->h2, s->up_h2_id, s->up_unconsumed);
        s->up_unconsumed = 0;
    }
    h2u_send(u);
}

static bool u_congested(struct mesh_stream *s)
{
    return (s->req_buf && evbuffer_get_length(s->req_buf) >= MESH_BUF_HIGH);
}

static const struct mesh_up_ops h2_up_ops = {
    .send_data = u_send_data,
    .send_end = u_send_end,
    .detach = u_detach,
    .resume_read = u_resume_read,
    .congested = u_congested,
};

/* ---- Connection ---- */

int mesh_h2_up_init(struct mesh_upconn *u)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb))
        return MESH_ENOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_client_new3(&u->h2, cb, u, opt, mesh_mem_nghttp2());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv)
        return MESH_ENOMEM;
    mesh_list_init(&u->h2_streams);
    mesh_list_init(&u->h2_tails);
    u->wop.fill = h2u_fill;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 256 * 1024},
    };
    nghttp2_submit_settings(u->h2, NGHTTP2_FLAG_NONE, iv, MESH_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(u->h2, NGHTTP2_FLAG_NONE, 0, 4 * 1024 * 1024);
    h2u_send(u);
    return MESH_OK;
}

bool mesh_h2_up_takes_ext_connect(struct mesh_upconn *u)
{
    return u->h2 &&
           nghttp2_session_get_remote_settings(u->h2, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL);
}

bool mesh_h2_up_has_capacity(struct mesh_upconn *u)
{
    if (!u->h2 || u->goaway || u->dead)
        return false;
    uint32_t max = nghttp2_session_get_remote_settings(u->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return u->h2_active < MESH_MIN(max, 1000u) && nghttp2_session_check_request_allowed(u->h2);
}

int mesh_h2_up_on_read(struct mesh_upconn *u, ssize_t n)
{
    int err = n < 0 ? (int)-n : 0;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
        return MESH_OK;
    u->h2_in_cb++;
    while (evbuffer_get_length(u->in) > 0 && !u->dead) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(u->in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t r = nghttp2_session_mem_recv(u->h2, v.iov_base, v.iov_len);
        if (r < 0) {
            u->h2_in_cb--;
            char why[160];
            snprintf(why, sizeof(why), "upstream HTTP/2 error: %s", nghttp2_strerror((int)r));
            fail_all(u, why);
            return MESH_EPROTO;
        }
        evbuffer_drain(u->in, (size_t)r);
    }
    u->h2_in_cb--;
    if (u->dead)
        return MESH_OK;
    if (n <= 0) {
        fail_all(u, err ? "upstream connection reset" : "upstream connection closed");
        return MESH_OK;
    }
    h2u_send(u);
    if (u->goaway && u->h2_active == 0)
        mesh_upconn_close(u);
    return MESH_OK;
}

void mesh_h2_up_on_written(struct mesh_upconn *u)
{
    h2u_send(u);
}

void mesh_h2_up_on_close(struct mesh_upconn *u)
{
    nghttp2_session_del(u->h2);
    u->h2 = NULL;
    while (!mesh_list_empty(&u->h2_tails))
        tail_free(u, mesh_list_entry(u->h2_tails.next, struct h2u_tail, link));
}
