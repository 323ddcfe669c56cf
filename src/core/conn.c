/* Downstream connections: accept, socket I/O, protocol sniffing, idle timer, close. */
#include "core/common.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/log.h"
#include "core/proxy-int.h"
#include "core/tcp_proxy.h"

/* linux/netfilter_ipv4.h and ip6_tables.h clash with netinet/in.h: the values are ABI */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

static void conn_free(struct mesh_conn *c)
{
    struct mesh_worker *w = c->w;
    mesh_list_remove(&c->link); /* its I/O was cancelled by mesh_conn_close() */
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->idle);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    if (c->h1_body)
        evbuffer_free(c->h1_body);
    if (c->h1_ck.trailer)
        evbuffer_free(c->h1_ck.trailer);
    if (c->fd >= 0) {
        /*
         * Input left unread makes close() send a reset, which can also destroy what we
         * wrote last (an error reply): drop what has already arrived, a bounded amount,
         * so that the peer sees a clean end of stream.
         */
        char sink[4096];
        for (int i = 0; i < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
        close(c->fd);
    }
    free(c);
    w->n_conns--;
    MESH_STAT_DEC(&w->stats, downstream_cx_active);
    mesh_worker_conn_gone(w);
}

/*
 * Closing is always deferred to the next loop turn: a close can be asked from
 * deep inside the other side's callbacks (an upstream write error, a reset),
 * and everything up that call chain may still hold the conn or its streams.
 * Until the teardown runs, the conn is "dead": no I/O, writes are dropped.
 */
void mesh_conn_close(struct mesh_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    mesh_io_cancel(c->w->io, &c->rop);
    mesh_io_cancel(c->w->io, &c->wop);
    if (c->proto == MESH_CONN_L4)
        mesh_l4_cancel_io(c);
    event_del(c->rev);
    event_del(c->wev);
    event_del(c->idle);
    event_active(c->idle, EV_TIMEOUT, 0);
}

static void teardown(struct mesh_conn *c)
{
    switch (c->proto) {
    case MESH_CONN_H1: mesh_h1_down_close(c); break;
    case MESH_CONN_H2: mesh_h2_down_close(c); break;
    case MESH_CONN_TUNNEL: mesh_tunnel_down_closed(c); break;
    case MESH_CONN_L4: mesh_l4_free(c); break;
    default: break;
    }
    conn_free(c);
}

void mesh_conn_set_reading(struct mesh_conn *c, bool on)
{
    if (c->dead || c->reading == on)
        return;
    c->reading = on;
    if (!on) {
        event_del(c->rev);
        return;
    }
    event_add(c->rev, NULL);
    if (!c->eof) /* edge-triggered: look now (mesh_io_probe) */
        mesh_io_probe(c->w->io, &c->rop, MESH_READ_SIZE);
}

void mesh_conn_idle_arm(struct mesh_conn *c)
{
    uint32_t ms = c->w->snap ? c->w->snap->timeouts.idle_ms : 300000;
    if (c->dead || !ms)
        return;
    mesh_lazy_timer_arm(c->w, &c->idle_t, c->idle, ms);
}

void mesh_conn_idle_disarm(struct mesh_conn *c)
{
    c->idle_t.on = false; /* lazily: the timer, if it fires, finds the connection busy */
}

static void on_written(struct mesh_conn *c)
{
    switch (c->proto) {
    case MESH_CONN_H1: mesh_h1_down_on_written(c); break;
    case MESH_CONN_H2: mesh_h2_down_on_written(c); break;
    case MESH_CONN_TUNNEL: mesh_tunnel_on_down_written(c); break;
    case MESH_CONN_L4: mesh_l4_on_down_written(c); break;
    default: break;
    }
}

/*
 * What waits in <out>, once a codec that frames late (HTTP/2 frames at the end of the
 * turn, mesh_io_want_fill) has framed what it holds: a decision that the connection has
 * nothing left to send must not miss an answer finished in this round. 0 once dead.
 */
static size_t out_pending(struct mesh_conn *c)
{
    mesh_io_fill_now(&c->wop);
    return c->dead ? 0 : evbuffer_get_length(c->out);
}

/* The batch wrote what it could of <out> (io_batch.h). */
static void on_write_done(struct mesh_io_op *op, ssize_t res)
{
    struct mesh_conn *c = MESH_CONTAINER_OF(op, struct mesh_conn, wop);
    if (c->dead)
        return;
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        mesh_log_debug("downstream write: %s", strerror((int)-res));
        mesh_conn_close(c);
        return;
    }
    size_t left = evbuffer_get_length(c->out);
    if (!left && c->closing) { /* about to close: only if nothing waits to be framed */
        left = out_pending(c);
        if (c->dead)
            return;
    }
    if (left) {
        if (!op->queued) /* it would block: wait until the socket takes more */
            event_add(c->wev, NULL);
    } else {
        event_del(c->wev);
        if (c->shut_wr_pending) {
            c->shut_wr_pending = false;
            shutdown(c->fd, SHUT_WR);
        }
        if (c->closing && c->linger && !c->lingering) {
            /* closing with unread input would send RST and may destroy our reply in
             * flight: send FIN, then read and drop for a moment (nginx lingering close) */
            c->lingering = true;
            shutdown(c->fd, SHUT_WR);
            evbuffer_drain(c->in, evbuffer_get_length(c->in));
            mesh_conn_set_reading(c, true);
            struct timeval tv = {2, 0};
            event_add(c->idle, &tv);
            return;
        }
        if (c->closing && !c->lingering) {
            mesh_conn_close(c);
            return;
        }
    }
    if (op->before >= MESH_BUF_LOW && left < MESH_BUF_LOW)
        on_written(c);
}

/*
 * Writes are deferred to the end of the current loop turn: a response's head,
 * body and end, produced by several calls, leave in one sendmsg, and every
 * connection's writes of the turn in one io_uring_enter (io_batch.h).
 */
void mesh_conn_flush(struct mesh_conn *c)
{
    if (!c->dead)
        mesh_io_queue(c->w->io, &c->wop, 0);
}

void mesh_conn_close_after_flush(struct mesh_conn *c, bool linger)
{
    if (c->dead)
        return;
    mesh_conn_set_reading(c, false);
    c->closing = true;
    c->linger = c->linger || linger;
    mesh_conn_idle_arm(c);
    mesh_conn_flush(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    mesh_conn_flush(arg);
}

static int sniff(struct mesh_conn *c)
{
    size_t n = evbuffer_get_length(c->in);
    if (n == 0)
        return MESH_EAGAIN; /* woken with nothing read (a close before any byte) */
    size_t k = MESH_MIN(n, H2_PREFACE_LEN);
    unsigned char *p = evbuffer_pullup(c->in, (ev_ssize_t)k);
    if (memcmp(p, h2_preface, k) != 0) {
        c->proto = MESH_CONN_H1;
        MESH_STAT_INC(&c->w->stats, downstream_cx_http1);
        return mesh_h1_down_init(c);
    }
    if (k < H2_PREFACE_LEN)
        return MESH_EAGAIN; /* need the whole preface to decide */
    c->proto = MESH_CONN_H2;
    MESH_STAT_INC(&c->w->stats, downstream_cx_http2);
    return mesh_h2_down_init(c);
}

static void process_input(struct mesh_conn *c)
{
    /* tcp_routes: the bytes may be a ClientHello, or turn out to be HTTP (kept in c->in) */
    if (c->proto == MESH_CONN_L4 && mesh_l4_on_down_read(c) != MESH_L4_HTTP)
        return;
    if (c->proto == MESH_CONN_SNIFF) {
        int rv = sniff(c);
        if (rv == MESH_EAGAIN)
            return;
        if (rv != MESH_OK) {
            mesh_conn_close(c);
            return;
        }
    }
    switch (c->proto) {
    case MESH_CONN_H1: mesh_h1_down_on_read(c); break;
    case MESH_CONN_H2: mesh_h2_down_on_read(c); break;
    case MESH_CONN_TUNNEL: mesh_tunnel_on_down_read(c); break;
    default: break;
    }
}

/* The client sent FIN (or its connection broke: <reset>) and its bytes were processed. */
static void after_eof(struct mesh_conn *c, bool reset)
{
    /* the peer is gone: codecs answer what they can, then the connection closes */
    event_del(c->rev);
    c->reading = false;
    if (c->proto == MESH_CONN_L4) {
        if (reset) {
            mesh_conn_close(c);
            return;
        }
        /* a half-close: the proxy goes on the other way (or routes what the client sent) */
        if (mesh_l4_on_down_eof(c) != MESH_L4_HTTP)
            return;
        process_input(c); /* the bytes read while waiting for a ClientHello are HTTP */
        if (c->dead)
            return;
    }
    if (c->proto == MESH_CONN_TUNNEL) {
        mesh_tunnel_down_closed(c);
        return;
    }
    if (c->proto == MESH_CONN_H1 && c->h1_stream && c->h1_stream->req_end) {
        c->h1_stream->close_after = true; /* half-close: answer, then close */
        return;
    }
    size_t waiting = reset ? 0 : out_pending(c);
    if (c->dead)
        return;
    if (waiting) {
        /* an answer finished in this same turn waits in <out> (its upstream's read came
         * before this EOF in the round): it goes out, then the connection closes */
        mesh_conn_close_after_flush(c, false);
    } else
        mesh_conn_close(c);
}

void mesh_conn_serve_http(struct mesh_conn *c)
{
    if (c->dead)
        return;
    if (evbuffer_get_length(c->in))
        process_input(c);
    if (!c->dead && c->eof)
        after_eof(c, false);
}

/* What a read gave (<n> bytes, 0 at end of stream, -errno), then the codec's turn. */
static void after_read(struct mesh_conn *c, ssize_t n)
{
    bool reset = false;
    if (n == 0) {
        c->eof = true;
    } else if (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK && n != -EINTR) {
        mesh_log_debug("downstream read: %s", strerror((int)-n));
        c->eof = true;
        reset = true;
    }
    process_input(c);
    if (!c->dead && c->eof)
        after_eof(c, reset);
}

static void on_read_done(struct mesh_io_op *op, ssize_t n)
{
    struct mesh_conn *c = MESH_CONTAINER_OF(op, struct mesh_conn, rop);
    if (c->dead)
        return;
    if (c->lingering) {
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        c->linger_bytes += n > 0 ? (size_t)n : 0;
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR) || c->linger_bytes > (1u << 20))
            mesh_conn_close(c);
    } else {
        after_read(c, n);
    }
    /* edge-triggered (mesh_io_reread): a read that filled its room goes on */
    if (mesh_io_reread(op) && !c->dead && (c->lingering || (c->reading && !c->eof)))
        mesh_io_queue(c->w->io, op, MESH_READ_SIZE);
}

/* Readable (or woken to parse what is buffered): the read goes into this turn's batch. */
static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_conn *c = arg;
    if (c->dead)
        return;
    mesh_io_note_hup(&c->rop, what);
    if (c->lingering || (c->reading && !c->eof))
        mesh_io_queue(c->w->io, &c->rop, MESH_READ_SIZE);
    else
        after_read(c, -EAGAIN);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_conn *c = arg;
    if (c->dead) {
        teardown(c);
        return;
    }
    if (c->lingering) {
        mesh_conn_close(c);
        return;
    }
    if (!mesh_lazy_timer_due(c->w, &c->idle_t, c->idle))
        return;
    MESH_STAT_INC(&c->w->stats, downstream_cx_idle_timeout);
    if (c->proto == MESH_CONN_H2 && !c->closing) /* closing: the client stopped reading */
        mesh_h2_down_drain(c);
    else
        mesh_conn_close(c);
}

void mesh_conn_drain(struct mesh_conn *c)
{
    if (c->dead || c->draining)
        return;
    c->draining = true;
    switch (c->proto) {
    case MESH_CONN_H1: mesh_h1_down_drain(c); break;
    case MESH_CONN_H2: mesh_h2_down_drain(c); break;
    case MESH_CONN_TUNNEL: break; /* tunnels end on their own or at the drain deadline */
    case MESH_CONN_L4: break;     /* TCP proxies too: the drain deadline closes them */
    default: mesh_conn_close(c); break;
    }
}

/*
 * Where the client meant to go: the original destination when iptables
 * redirected the connection (SO_ORIGINAL_DST), else the address it reached.
 * tcp_routes and passthrough clusters read it.
 */
static void conn_destination(struct mesh_conn *c)
{
    socklen_t len = sizeof(c->dst);
    c->dst_len = 0;
    if (getsockname(c->fd, (struct sockaddr *)&c->dst, &len) != 0)
        return;
    c->dst_len = len;
    struct sockaddr_storage od;
    socklen_t olen = sizeof(od);
    int rc = c->dst.ss_family == AF_INET6
                 ? getsockopt(c->fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &od, &olen)
                 : getsockopt(c->fd, SOL_IP, SO_ORIGINAL_DST, &od, &olen);
    if (rc == 0 && od.ss_family == c->dst.ss_family) {
        c->dst = od;
        c->dst_len = olen;
    }
}

void mesh_conn_accept(struct mesh_worker *w, int fd, size_t listener_idx,
                      const struct sockaddr *sa, socklen_t salen)
{
    struct mesh_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->fd = fd;
    c->listener_idx = listener_idx;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST | EV_ET | EV_CLOSED, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST | EV_ET, on_write, c);
    c->idle = evtimer_new(w->base, on_idle, c);
    mesh_io_op_init(&c->rop, fd, c->in, false, on_read_done);
    mesh_io_op_init(&c->wop, fd, c->out, true, on_write_done);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    conn_destination(c);
    mesh_list_insert_tail(&w->conns, &c->link);
    w->n_conns++;
    MESH_STAT_INC(&w->stats, downstream_cx_total);
    MESH_STAT_INC(&w->stats, downstream_cx_active);
    /* no read yet (mesh_conn_set_reading would probe): registering the edge-triggered
     * event reports what is already there, FIN included */
    c->reading = true;
    event_add(c->rev, NULL);
    mesh_conn_idle_arm(c);
    (void)salen;
    /* tcp_routes: decided before any byte is read; HTTP-only listeners skip this */
    const struct mesh_snapshot *snap = w->snap;
    if (snap && listener_idx < snap->n_listeners && snap->listeners[listener_idx].l4 != NULL)
        mesh_l4_accept(c, &snap->listeners[listener_idx]);
}
