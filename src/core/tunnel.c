/*
 * Byte tunnels after CONNECT (200) or an Upgrade (101): bytes flow both ways, with
 * backpressure. Over HTTP/1.1 the whole client connection becomes the tunnel; over HTTP/2
 * one CONNECT stream does (RFC 9113 8.5), its DATA frames carrying the bytes, and the
 * connection's other streams go on.
 */
#include "core/common.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include "core/log.h"
#include "core/proxy-int.h"

/*
 * A tunnel is a stream: no byte either way for the stream idle timeout ends it, as it
 * ends an HTTP/2 CONNECT stream (proxy.c) and as Envoy ends an upgraded stream. Without
 * it, a peer gone without a FIN held both sockets for as long as the other side did.
 */
static void tunnel_touch(struct mesh_conn *c)
{
    uint32_t ms = c->w->snap ? c->w->snap->timeouts.stream_idle_ms : 0;
    if (ms)
        mesh_lazy_timer_arm(c->w, &c->idle_t, c->idle, ms);
}

static void down_to_up(struct mesh_conn *c, struct mesh_upconn *u)
{
    tunnel_touch(c);
    if (c->tunnel_log)
        c->tunnel_log->req_bytes += evbuffer_get_length(c->in);
    evbuffer_add_buffer(u->out, c->in);
    mesh_upconn_flush(u);
    if (evbuffer_get_length(u->out) >= MESH_BUF_HIGH)
        mesh_conn_set_reading(c, false);
}

static void up_to_down(struct mesh_upconn *u, struct mesh_conn *c)
{
    tunnel_touch(c);
    if (c->tunnel_log)
        c->tunnel_log->resp_bytes += evbuffer_get_length(u->in);
    evbuffer_add_buffer(c->out, u->in);
    mesh_conn_flush(c);
    if (evbuffer_get_length(c->out) >= MESH_BUF_HIGH)
        mesh_upconn_set_reading(u, false);
}

/*
 * Both directions ended cleanly: the upstream connection, its peer gone, closes once the
 * client's last bytes and FIN are out (upstream.c on_up_write_done), bounded by the
 * cluster's idle timeout when it has one; closing at once cancelled that write.
 */
static void up_finish(struct mesh_upconn *u)
{
    uint32_t ms = u->pool->idle_timeout_ms;
    u->tunnel_down = NULL;
    u->tunnel_stream = NULL;
    if (!evbuffer_get_length(u->out) && !u->shut_wr_pending) {
        mesh_upconn_close(u);
        return;
    }
    u->tunnel_finishing = true;
    if (ms) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        event_add(u->timer, &tv);
    }
    mesh_upconn_flush(u);
}

void mesh_tunnel_start(struct mesh_conn *c, struct mesh_upconn *u)
{
    c->tunnel_up = u;
    u->tunnel = true;
    u->tunnel_down = c;
    u->stream = NULL;
    tunnel_touch(c);
    mesh_conn_set_reading(c, true);
    mesh_upconn_set_reading(u, true);
    if (evbuffer_get_length(c->in))
        down_to_up(c, u);
    if (evbuffer_get_length(u->in))
        up_to_down(u, c);
    else
        mesh_conn_flush(c);
}

static void h1_stream_down_read(struct mesh_conn *c, struct mesh_stream *s);

void mesh_tunnel_on_down_read(struct mesh_conn *c)
{
    if (c->tunnel_stream) {
        h1_stream_down_read(c, c->tunnel_stream);
        return;
    }
    struct mesh_upconn *u = c->tunnel_up;
    if (u && !u->dead)
        down_to_up(c, u);
}

static void stream_on_up_read(struct mesh_upconn *u, ssize_t n);

void mesh_tunnel_on_up_read(struct mesh_upconn *u, ssize_t n)
{
    if (u->tunnel_stream) {
        stream_on_up_read(u, n);
        return;
    }
    struct mesh_conn *c = u->tunnel_down;
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return;
    if (c && !c->dead && evbuffer_get_length(u->in))
        up_to_down(u, c);
    if (n > 0)
        return;
    if (n == 0 && c && !c->dead && !c->eof && !u->tunnel_eof) {
        /* the upstream's FIN: a FIN to the client once what it sent is out, and the
         * client's bytes still go until its own (a TCP half-close) */
        u->tunnel_eof = true;
        mesh_upconn_set_reading(u, false);
        c->shut_wr_pending = true;
        mesh_conn_flush(c);
        return;
    }
    /* the upstream is done both ways, or broke: the client gets what is buffered, then
     * the close */
    if (n == 0)
        up_finish(u); /* the client's last bytes may still wait in <out> */
    else {
        u->tunnel_down = NULL;
        mesh_upconn_close(u);
    }
    if (c && !c->dead) {
        c->tunnel_up = NULL;
        c->closing = true;
        mesh_conn_flush(c);
    }
}

void mesh_tunnel_on_down_written(struct mesh_conn *c)
{
    struct mesh_stream *s = c->tunnel_stream;
    if (s) {
        if (s->resp_paused && s->uops && evbuffer_get_length(c->out) < MESH_BUF_LOW)
            s->uops->resume_read(s); /* the upstream stream's window opens again */
        return;
    }
    struct mesh_upconn *u = c->tunnel_up;
    if (u && !u->dead && !u->tunnel_eof)
        mesh_upconn_set_reading(u, true);
}

void mesh_tunnel_on_up_written(struct mesh_upconn *u)
{
    struct mesh_stream *s = u->tunnel_stream;
    if (s) {
        if (s->req_paused)
            s->dops->resume_read(s); /* the client's window opens again */
        return;
    }
    struct mesh_conn *c = u->tunnel_down;
    if (c && !c->dead)
        mesh_conn_set_reading(c, true);
}

/* The client side ended (EOF or teardown): half-close towards the upstream. */
void mesh_tunnel_down_closed(struct mesh_conn *c)
{
    struct mesh_upconn *u = c->tunnel_up;
    struct mesh_stream *ts = c->tunnel_stream;
    if (ts && !c->dead) {
        /* the client's FIN: END_STREAM upstream after its last bytes (a half-close) */
        mesh_conn_set_reading(c, false);
        if (!ts->req_end)
            mesh_proxy_request_end(ts);
        if (c->tunnel_stream == ts && ts->resp_end) {
            c->closing = true; /* both ways over: close once the last bytes are out */
            mesh_conn_flush(c);
        }
        return;
    }
    if (ts) {
        c->tunnel_stream = NULL;
        if ((!ts->resp_end || !ts->req_sent_end) && ts->state != MESH_SS_LOCAL)
            ts->flags |= MESH_RF_DC; /* cut short by the client's side, not by meshd's reset */
    }
    if (c->dead && c->tunnel_log) {
        /* the tunnel's end: its one access-log line, with what went through it */
        mesh_proxy_stream_done(c->tunnel_log);
        mesh_stream_free(c->tunnel_log);
        c->tunnel_log = NULL;
    }
    if (!u)
        return;
    if (c->dead) {
        /* teardown: the conn is going away for good */
        c->tunnel_up = NULL;
        u->tunnel_down = NULL;
        mesh_upconn_close(u);
        return;
    }
    mesh_conn_set_reading(c, false);
    if (u->dead)
        return;
    u->shut_wr_pending = true;
    if (!u->tunnel_eof) {
        mesh_upconn_flush(u); /* the upstream may still answer: the tunnel waits for it */
        return;
    }
    /* the upstream's FIN came first: both directions are done */
    c->tunnel_up = NULL;
    up_finish(u);
    c->closing = true;
    mesh_conn_flush(c);
}

/* ---- HTTP/2 CONNECT: one stream <-> one upstream connection ---- */

/* The stream's upstream side while it is a tunnel (struct mesh_up_ops): what the client
 * sends goes out as it is, no HTTP framing. */
static void t_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    struct mesh_upconn *u = s->up;
    evbuffer_add_buffer(u->out, data);
    mesh_upconn_flush(u);
}

/* The client's END_STREAM: a FIN once what it sent is out (a TCP half-close). */
static void t_send_end(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    u->shut_wr_pending = true;
    mesh_upconn_flush(u);
}

/* The stream goes (both sides ended, a reset, the connection closed): so does the tunnel,
 * after a clean end once the client's last bytes are out (up_finish). */
static void t_detach(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    if (!u)
        return;
    if (s->state == MESH_SS_DONE && s->req_end) {
        up_finish(u);
        return;
    }
    u->tunnel_stream = NULL;
    mesh_upconn_close(u);
}

static void t_resume_read(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    s->resp_paused = false;
    if (!u->tunnel_eof)
        mesh_upconn_set_reading(u, true);
}

static bool t_congested(struct mesh_stream *s)
{
    return evbuffer_get_length(s->up->out) >= MESH_BUF_HIGH;
}

static const struct mesh_up_ops stream_tunnel_ops = {
    .send_data = t_send_data,
    .send_end = t_send_end,
    .detach = t_detach,
    .resume_read = t_resume_read,
    .congested = t_congested,
};

static void up_to_stream(struct mesh_upconn *u, struct mesh_stream *s)
{
    if (mesh_proxy_response_data(s, u->in)) { /* the client's side is full: wait for it */
        s->resp_paused = true;
        mesh_upconn_set_reading(u, false);
    }
}

static void stream_on_up_read(struct mesh_upconn *u, ssize_t n)
{
    struct mesh_stream *s = u->tunnel_stream;
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return;
    if (evbuffer_get_length(u->in))
        up_to_stream(u, s);
    if (n > 0 || u->tunnel_stream != s)
        return;
    if (n == 0 && !u->tunnel_eof) {
        /* the upstream's FIN: END_STREAM after what it sent. The client may go on
         * sending until its own END_STREAM (RFC 9113 8.5), so the connection stays. */
        u->tunnel_eof = true;
        mesh_upconn_set_reading(u, false);
        s->dops->send_end(s);
        return;
    }
    /* a reset, or a read after the FIN (a write failed, upstream.c): RST_STREAM with
     * CONNECT_ERROR. The codec already sent the 200, so this resets the stream. */
    mesh_log_debug("tunnel to %s: %s", u->pool->key, n < 0 ? strerror((int)-n) : "write failed");
    mesh_proxy_local_reply(s, 502, MESH_RF_UC, "upstream connection reset");
}

void mesh_tunnel_start_stream(struct mesh_stream *s)
{
    struct mesh_upconn *u = s->up;
    u->tunnel = true;
    u->tunnel_stream = s;
    u->stream = NULL; /* the HTTP/1.1 codec lets go: its ops are not the stream's any more */
    mesh_proxy_tunnel_ready(s, &stream_tunnel_ops);
    /* bytes that came with the 101 (an extended CONNECT's) were read already: the
     * socket's edge that brought them is gone */
    if (s->up == u && s->uops == &stream_tunnel_ops && evbuffer_get_length(u->in))
        up_to_stream(u, s);
}

/* ---- HTTP/1.1 Upgrade over an upstream HTTP/2 extended CONNECT: connection <-> stream ---- */

static void h1_stream_down_read(struct mesh_conn *c, struct mesh_stream *s)
{
    if (!evbuffer_get_length(c->in))
        return;
    if (s->req_end || !s->uops) { /* the upstream side is gone: nothing more goes */
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        return;
    }
    if (mesh_proxy_request_data(s, c->in)) { /* resumed by the codec (h1_down d_resume_read) */
        s->req_paused = true;
        mesh_conn_set_reading(c, false);
    }
}

void mesh_tunnel_start_h1_stream(struct mesh_conn *c, struct mesh_stream *s)
{
    c->tunnel_stream = s;
    c->tunnel_log = s; /* owned: its access-log line and its end come with the connection's */
    c->proto = MESH_CONN_TUNNEL;
    mesh_proxy_tunnel_ready(s, s->uops);
    if (c->dead || c->tunnel_stream != s)
        return;
    mesh_conn_set_reading(c, true);
    h1_stream_down_read(c, s); /* bytes the client sent behind its head */
    mesh_conn_flush(c);
}

void mesh_tunnel_h1_stream_end(struct mesh_conn *c)
{
    struct mesh_stream *s = c->tunnel_stream;
    if (s && s->req_end)
        c->closing = true; /* the client's FIN came first: both ways are over */
    else
        c->shut_wr_pending = true;
    mesh_conn_flush(c);
}
