/*
 * Upstream connection pools: one pool per endpoint per worker (no locks),
 * idle HTTP/1.1 keep-alive connections reused LIFO-free (FIFO by list order),
 * HTTP/2 connections shared by many streams, and a bounded queue of streams
 * waiting for a connection. Overflow of that queue is the 503 UO answer.
 */
#include "core/common.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/lb.h"
#include "core/log.h"
#include "core/proxy-int.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static void dispatch_cb(evutil_socket_t fd, short what, void *arg);

static struct mesh_pool *pool_get(struct mesh_worker *w, const struct mesh_endpoint *ep,
                                  enum mesh_upstream_proto proto)
{
    if (!w->pool_tab) {
        w->pool_tab_size = 64;
        w->pool_tab = mesh_xcalloc(w->pool_tab_size, sizeof(*w->pool_tab));
    }
    size_t i = (hash_str(ep->key) ^ (uint64_t)proto) & (w->pool_tab_size - 1);
    for (struct mesh_pool *p = w->pool_tab[i]; p; p = p->hnext)
        if (p->proto == proto && strcmp(p->key, ep->key) == 0)
            return p;
    struct mesh_pool *p = mesh_xcalloc(1, sizeof(*p));
    p->key = mesh_xstrdup(ep->key);
    p->sa = ep->sa;
    p->salen = ep->salen;
    p->proto = proto;
    p->w = w;
    mesh_list_init(&p->idle);
    mesh_list_init(&p->all);
    mesh_list_init(&p->pending);
    p->dispatch = event_new(w->base, -1, 0, dispatch_cb, p);
    p->hnext = w->pool_tab[i];
    w->pool_tab[i] = p;
    w->n_pools++;
    return p;
}

/* Limits follow the newest snapshot that used the pool. */
static struct mesh_pool *pool_lookup(struct mesh_worker *w, const struct mesh_endpoint *ep,
                                     const struct mesh_cluster *cl, enum mesh_upstream_proto proto)
{
    struct mesh_pool *p = pool_get(w, ep, proto);
    p->max_conns = cl->max_connections;
    p->max_pending = cl->max_pending_requests;
    p->max_reqs_per_conn = cl->max_requests_per_connection;
    p->connect_timeout_ms = cl->connect_timeout_ms;
    p->idle_timeout_ms = cl->idle_timeout_ms;
    p->keepalive = cl->keepalive;
    return p;
}

/* ---- Connections ---- */

static void up_teardown(struct mesh_upconn *u)
{
    /* no I/O is queued here: mesh_upconn_close() and mesh_pools_free() cancelled it (the
     * pool may be gone by now, at shutdown) */
    if (u->proto == MESH_PROTO_HTTP2 && u->h2)
        mesh_h2_up_on_close(u);
    event_free(u->rev);
    event_free(u->wev);
    event_free(u->timer);
    evbuffer_free(u->in);
    evbuffer_free(u->out);
    evbuffer_free(u->tmp);
    if (u->fd >= 0)
        close(u->fd);
    free(u);
}

void mesh_upconn_close(struct mesh_upconn *u)
{
    if (u->dead)
        return;
    struct mesh_pool *p = u->pool;
    u->dead = true;
    u->state = MESH_UP_CLOSED;
    mesh_io_cancel(p->w->io, &u->rop);
    mesh_io_cancel(p->w->io, &u->wop);
    if (u->in_idle) {
        mesh_list_remove(&u->idle_link);
        u->in_idle = false;
    }
    mesh_list_remove(&u->link);
    p->n_conns--;
    MESH_STAT_DEC(&p->w->stats, upstream_cx_active);
    event_del(u->rev);
    event_del(u->wev);
    event_del(u->timer);
    /* freed on the next loop turn: callers up the stack may still hold <u> */
    event_active(u->timer, EV_TIMEOUT, 0);
    if (!mesh_list_empty(&p->pending))
        event_active(p->dispatch, EV_TIMEOUT, 0);
}

void mesh_upconn_set_reading(struct mesh_upconn *u, bool on)
{
    if (u->dead || u->reading == on)
        return;
    u->reading = on;
    if (!on) {
        event_del(u->rev);
        return;
    }
    event_add(u->rev, NULL);
    mesh_io_probe(u->pool->w->io, &u->rop, MESH_READ_SIZE); /* edge-triggered: look now */
}

static void on_up_written(struct mesh_upconn *u)
{
    if (u->tunnel)
        mesh_tunnel_on_up_written(u);
    else if (u->proto == MESH_PROTO_HTTP2)
        mesh_h2_up_on_written(u);
    else
        mesh_h1_up_on_written(u);
}

/* The batch wrote what it could of <out> (io_batch.h). */
static void on_up_write_done(struct mesh_io_op *op, ssize_t res)
{
    struct mesh_upconn *u = MESH_CONTAINER_OF(op, struct mesh_upconn, wop);
    if (u->dead)
        return;
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        /* a write error shows up as EOF/error on the read side too: let it report */
        mesh_log_debug("upstream %s write: %s", u->pool->key, strerror((int)-res));
        evbuffer_drain(u->out, evbuffer_get_length(u->out));
        event_active(u->rev, EV_READ, 0);
    }
    size_t left = evbuffer_get_length(u->out);
    if (left) {
        if (!op->queued) /* it would block: wait until the socket takes more */
            event_add(u->wev, NULL);
    } else {
        event_del(u->wev);
        if (u->shut_wr_pending) {
            u->shut_wr_pending = false;
            shutdown(u->fd, SHUT_WR);
        }
        if (u->tunnel_finishing) {
            mesh_upconn_close(u); /* a tunnel's last bytes are out (tunnel.c up_finish) */
            return;
        }
    }
    if (op->before >= MESH_BUF_LOW && left < MESH_BUF_LOW)
        on_up_written(u);
}

/* Deferred to the end of the loop turn, like mesh_conn_flush(). */
void mesh_upconn_flush(struct mesh_upconn *u)
{
    if (u->dead || u->state == MESH_UP_CONNECTING)
        return;
    mesh_io_queue(u->pool->w->io, &u->wop, 0);
}

static void fail_pending(struct mesh_pool *p, const char *why, bool all)
{
    while (!mesh_list_empty(&p->pending)) {
        struct mesh_stream *s = mesh_list_entry(p->pending.next, struct mesh_stream, pending_link);
        mesh_list_remove(&s->pending_link);
        s->pending_pool = NULL;
        p->n_pending--;
        MESH_STAT_INC(&p->w->stats, upstream_cx_connect_fail);
        mesh_proxy_upstream_error(s, 503, MESH_RF_UF, why, false);
        if (!all)
            break;
    }
}

static void attach(struct mesh_upconn *u, struct mesh_stream *s)
{
    MESH_STAT_INC(&u->pool->w->stats, upstream_rq_total);
    if (u->requests > 0)
        MESH_STAT_INC(&u->pool->w->stats, upstream_cx_reused);
    u->requests++;
    if (u->proto == MESH_PROTO_HTTP2)
        mesh_h2_up_attach(u, s);
    else
        mesh_h1_up_attach(u, s);
}

static struct mesh_stream *pop_pending(struct mesh_pool *p)
{
    if (mesh_list_empty(&p->pending))
        return NULL;
    struct mesh_stream *s = mesh_list_entry(p->pending.next, struct mesh_stream, pending_link);
    mesh_list_remove(&s->pending_link);
    s->pending_pool = NULL;
    p->n_pending--;
    return s;
}

static void take_idle(struct mesh_upconn *u)
{
    if (u->in_idle) {
        mesh_list_remove(&u->idle_link);
        u->in_idle = false;
        u->idle_t.on = false; /* lazily: the timer, if it fires, finds the connection busy */
    }
}

static void connected(struct mesh_upconn *u)
{
    struct mesh_pool *p = u->pool;
    u->state = MESH_UP_READY;
    p->n_connecting--;
    event_del(u->timer);
    /* no read yet (mesh_upconn_set_reading would probe): registering the edge-triggered
     * event reports whatever the upstream already sent */
    u->reading = true;
    event_add(u->rev, NULL);
    if (u->proto == MESH_PROTO_HTTP2) {
        if (mesh_h2_up_init(u) != MESH_OK) {
            fail_pending(p, "upstream HTTP/2 session failed", true);
            mesh_upconn_close(u);
            return;
        }
        event_active(p->dispatch, EV_TIMEOUT, 0);
        return;
    }
    struct mesh_stream *s = pop_pending(p);
    if (s)
        attach(u, s);
    else
        mesh_upconn_release(u, true);
}

static void connect_failed(struct mesh_upconn *u, const char *what, int err)
{
    struct mesh_pool *p = u->pool;
    char why[200];
    snprintf(why, sizeof(why), "upstream connect error (%s): %s: %s", what, p->key,
             err ? strerror(err) : "timed out");
    mesh_log_debug("%s", why);
    if (!err)
        MESH_STAT_INC(&p->w->stats, upstream_cx_connect_timeout);
    p->n_connecting--;
    mesh_upconn_close(u);
    /* HTTP/2 streams all waited for this one connection; HTTP/1.1 only the first */
    bool others = p->n_connecting > 0;
    fail_pending(p, why, p->proto == MESH_PROTO_HTTP2 && !others);
}

static void on_up_read(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_upconn *u = arg;
    mesh_io_note_hup(&u->rop, what);
    if (!u->dead)
        mesh_io_queue(u->pool->w->io, &u->rop, MESH_READ_SIZE);
}

/* The batch read into <in> (io_batch.h): the codec takes it from there. */
static void on_up_read_done(struct mesh_io_op *op, ssize_t res)
{
    struct mesh_upconn *u = MESH_CONTAINER_OF(op, struct mesh_upconn, rop);
    if (u->dead)
        return;
    if (u->tunnel)
        mesh_tunnel_on_up_read(u, res);
    else if (u->proto == MESH_PROTO_HTTP2)
        mesh_h2_up_on_read(u, res);
    else
        mesh_h1_up_on_read(u, res);
    /* edge-triggered (mesh_io_reread): a read that filled its room goes on */
    if (mesh_io_reread(op) && !u->dead && u->reading)
        mesh_io_queue(u->pool->w->io, op, MESH_READ_SIZE);
}

static void on_up_write(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_upconn *u = arg;
    if (u->dead)
        return;
    if (u->state == MESH_UP_CONNECTING) {
        int err = u->connect_err;
        socklen_t len = sizeof(err);
        if (!err && getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            connect_failed(u, "connection failure", err);
            return;
        }
        event_del(u->wev);
        connected(u);
        if (u->dead)
            return;
    }
    mesh_upconn_flush(u); /* writable: the batch writes what waits */
}

static void on_up_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_upconn *u = arg;
    if (u->dead) {
        up_teardown(u);
        return;
    }
    if (u->state == MESH_UP_CONNECTING) {
        connect_failed(u, "connect timeout", 0);
        return;
    }
    if (u->tunnel_finishing) {
        mesh_upconn_close(u); /* a tunnel's last bytes did not go in time */
        return;
    }
    /* idle timeout of a pooled connection */
    if (u->in_idle && mesh_lazy_timer_due(u->pool->w, &u->idle_t, u->timer))
        mesh_upconn_close(u);
}

/* cluster tcp_keepalive; a field left at 0 keeps the kernel's default */
static void set_keepalive(int fd, const struct mesh_tcp_keepalive *k)
{
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    int v;
    if ((v = (int)k->time_s))
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
    if ((v = (int)k->interval_s))
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
    if ((v = (int)k->probes))
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
}

static struct mesh_upconn *up_connect(struct mesh_pool *p)
{
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (p->keepalive.enabled)
        set_keepalive(fd, &p->keepalive);
    struct mesh_upconn *u = mesh_xcalloc(1, sizeof(*u));
    u->pool = p;
    u->fd = fd;
    u->proto = p->proto;
    u->state = MESH_UP_CONNECTING;
    u->in = evbuffer_new();
    u->out = evbuffer_new();
    u->tmp = evbuffer_new();
    u->rev = event_new(p->w->base, fd, EV_READ | EV_PERSIST | EV_ET | EV_CLOSED, on_up_read, u);
    u->wev = event_new(p->w->base, fd, EV_WRITE | EV_PERSIST | EV_ET, on_up_write, u);
    u->timer = evtimer_new(p->w->base, on_up_timer, u);
    mesh_io_op_init(&u->rop, fd, u->in, false, on_up_read_done);
    mesh_io_op_init(&u->wop, fd, u->out, true, on_up_write_done);
    mesh_list_init(&u->idle_link);
    mesh_list_insert_tail(&p->all, &u->link);
    p->n_conns++;
    p->n_connecting++;
    MESH_STAT_INC(&p->w->stats, upstream_cx_total);
    MESH_STAT_INC(&p->w->stats, upstream_cx_active);
    int rv = connect(fd, (const struct sockaddr *)&p->sa, p->salen);
    if (rv < 0 && errno != EINPROGRESS)
        u->connect_err = errno; /* reported on the next turn, like an asynchronous failure */
    event_add(u->wev, NULL);
    uint32_t ms = p->connect_timeout_ms ? p->connect_timeout_ms : 1000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(u->timer, &tv);
    return u;
}

/* ---- Streams meet connections ---- */

static void enqueue(struct mesh_pool *p, struct mesh_stream *s)
{
    MESH_STAT_INC(&p->w->stats, upstream_rq_pending_total);
    mesh_list_insert_tail(&p->pending, &s->pending_link);
    s->pending_pool = p;
    p->n_pending++;
}

void mesh_upstream_cancel_pending(struct mesh_stream *s)
{
    struct mesh_pool *p = s->pending_pool;
    if (!p)
        return;
    mesh_list_remove(&s->pending_link);
    s->pending_pool = NULL;
    p->n_pending--;
}

/*
 * An HTTP/2 connection that takes <s> now; *connecting: one may soon (it is connecting,
 * or, for an extended CONNECT, its SETTINGS have not come: RFC 8441 3 allows :protocol
 * only on a connection whose peer announced it, whatever an earlier one said).
 */
static struct mesh_upconn *h2_with_capacity(struct mesh_pool *p, const struct mesh_stream *s,
                                            bool *connecting)
{
    struct mesh_list *pos, *tmp;
    *connecting = false;
    mesh_list_foreach_safe(pos, tmp, &p->all)
    {
        struct mesh_upconn *u = mesh_list_entry(pos, struct mesh_upconn, link);
        if (u->state == MESH_UP_CONNECTING)
            *connecting = true;
        else if (u->state != MESH_UP_READY || !mesh_h2_up_has_capacity(u))
            continue;
        else if (!s->up_ext_connect)
            return u;
        else if (!u->h2_settings_seen)
            *connecting = true;
        else if (mesh_h2_up_takes_ext_connect(u))
            return u;
    }
    return NULL;
}

static void start_on_pool(struct mesh_stream *s, struct mesh_pool *p);

/* An extended CONNECT the HTTP/2 pool cannot place (dispatch_cb): the Upgrade goes over
 * HTTP/1.1 after all. */
static void start_as_http1(struct mesh_stream *s)
{
    s->up_ext_connect = false;
    start_on_pool(s, pool_lookup(s->w, s->endpoint, s->cluster, MESH_PROTO_HTTP1));
}

/*
 * An Upgrade an extended CONNECT can carry (RFC 8441): "websocket" alone (h2_down.c lets
 * only it through), and from an HTTP/1.1 client a Sec-WebSocket-Key of 16 bytes in base64
 * (RFC 6455 4.1), since meshd answers it itself (h1_down.c): without one it would send a
 * 101 the client must refuse. Such a request goes over HTTP/1.1 for the server to judge.
 */
static bool ext_connect_fits(const struct mesh_stream *s)
{
    const struct mesh_header *h = mesh_headers_get(&s->req.hdrs, "upgrade", 7);
    if (!h || h->value_len != 9 || strncasecmp(h->value, "websocket", 9) != 0)
        return false;
    const struct mesh_header *key = mesh_headers_get(&s->req.hdrs, "sec-websocket-key", 17);
    return s->is_ext_connect || (key && key->value_len == MESH_WS_KEY_LEN);
}

void mesh_upstream_start(struct mesh_stream *s)
{
    struct mesh_worker *w = s->w;
    const struct mesh_endpoint *ep = NULL;
    switch (mesh_lb_pick_ex(s, s->cluster, &ep)) {
    case MESH_LB_OK:
        break;
    case MESH_LB_OVERFLOW:
        MESH_STAT_INC(&w->stats, upstream_rq_overflow);
        mesh_proxy_local_reply(s, 503, MESH_RF_UO, "upstream overflow: too many requests to the cluster");
        return;
    case MESH_LB_NO_HEALTHY:
    default:
        MESH_STAT_INC(&w->stats, upstream_rq_no_healthy);
        mesh_proxy_local_reply(s, 503, MESH_RF_UH, "no healthy upstream");
        return;
    }
    s->endpoint = ep;
    s->lb_picked = true;
    if (s->n_tried < MESH_ARRAY_LEN(s->tried))
        s->tried[s->n_tried++] = ep;
    s->attempts++;
    /*
     * A CONNECT needs an HTTP/1.1 connection whatever protocol the cluster speaks: meshd
     * ends it itself, so its connection carries raw bytes. A WebSocket Upgrade goes over
     * the cluster's HTTP/2 as an extended CONNECT (RFC 8441) once the endpoint's SETTINGS
     * said it takes one (a sidecar's do); until a connection to it has told, and for an
     * endpoint that does not, it takes an HTTP/1.1 connection, the one place HTTP/1.1 has
     * an Upgrade. Over HTTP/2 without RFC 8441 the Upgrade lost its header, so a
     * WebSocket failed between two sidecars (their hop is HTTP/2).
     */
    s->up_ext_connect = false;
    enum mesh_upstream_proto proto = s->cluster->protocol;
    if (s->is_connect)
        proto = MESH_PROTO_HTTP1;
    else if (s->is_upgrade) {
        s->up_ext_connect = proto == MESH_PROTO_HTTP2 && ext_connect_fits(s) &&
                            pool_get(w, ep, MESH_PROTO_HTTP2)->ext_connect == MESH_EXT_CONNECT_YES;
        if (!s->up_ext_connect)
            proto = MESH_PROTO_HTTP1;
    }
    start_on_pool(s, pool_lookup(w, ep, s->cluster, proto));
}

/* Attaches <s> to a connection of <p>, or queues it for one (opening it if it may). */
static void start_on_pool(struct mesh_stream *s, struct mesh_pool *p)
{
    struct mesh_worker *w = s->w;
    if (p->proto == MESH_PROTO_HTTP2) {
        bool connecting;
        struct mesh_upconn *u = h2_with_capacity(p, s, &connecting);
        if (u) {
            attach(u, s);
            return;
        }
        if (p->n_pending >= p->max_pending) {
            MESH_STAT_INC(&w->stats, upstream_rq_overflow);
            mesh_proxy_local_reply(s, 503, MESH_RF_UO, "upstream overflow: too many pending requests");
            return;
        }
        enqueue(p, s);
        if (!connecting && p->n_conns < p->max_conns && !up_connect(p))
            fail_pending(p, "upstream connect error: cannot create socket", true);
        return;
    }
    if (!s->is_connect && !mesh_list_empty(&p->idle)) {
        struct mesh_upconn *u = mesh_list_entry(p->idle.next, struct mesh_upconn, idle_link);
        take_idle(u);
        attach(u, s);
        return;
    }
    if (p->n_conns >= p->max_conns) {
        MESH_STAT_INC(&w->stats, upstream_cx_overflow);
        if (p->n_pending >= p->max_pending) {
            MESH_STAT_INC(&w->stats, upstream_rq_overflow);
            mesh_proxy_local_reply(s, 503, MESH_RF_UO, "upstream overflow: connection pool full");
            return;
        }
        enqueue(p, s);
        return;
    }
    enqueue(p, s);
    if (!up_connect(p))
        fail_pending(p, "upstream connect error: cannot create socket", false);
}

void mesh_upconn_release(struct mesh_upconn *u, bool reusable)
{
    struct mesh_pool *p = u->pool;
    u->stream = NULL;
    if (u->dead)
        return;
    if (!reusable || p->w->draining || (p->max_reqs_per_conn && u->requests >= p->max_reqs_per_conn)) {
        mesh_upconn_close(u);
        return;
    }
    if (u->proto == MESH_PROTO_HTTP2) {
        if (!mesh_list_empty(&p->pending))
            event_active(p->dispatch, EV_TIMEOUT, 0);
        return;
    }
    if (!u->in_idle) {
        mesh_list_insert_tail(&p->idle, &u->idle_link);
        u->in_idle = true;
    }
    if (p->idle_timeout_ms)
        mesh_lazy_timer_arm(p->w, &u->idle_t, u->timer, p->idle_timeout_ms);
    if (!mesh_list_empty(&p->pending))
        event_active(p->dispatch, EV_TIMEOUT, 0);
}

/* Runs outside any connection's callbacks: hands waiting streams to free connections. */
static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_pool *p = arg;
    while (!mesh_list_empty(&p->pending)) {
        if (p->proto == MESH_PROTO_HTTP2) {
            bool connecting;
            struct mesh_stream *first =
                mesh_list_entry(p->pending.next, struct mesh_stream, pending_link);
            struct mesh_upconn *u = h2_with_capacity(p, first, &connecting);
            /* an extended CONNECT with no connection to take it now or soon (the one it
             * waited on said no, or went before its SETTINGS, or is full): HTTP/1.1,
             * rather than a new connection that may go the same way, again and again */
            if (!u && first->up_ext_connect && !connecting) {
                start_as_http1(pop_pending(p));
                continue;
            }
            if (!u) {
                if (!connecting && p->n_conns < p->max_conns && !up_connect(p))
                    fail_pending(p, "upstream connect error: cannot create socket", true);
                return;
            }
            attach(u, pop_pending(p));
            continue;
        }
        if (!mesh_list_empty(&p->idle)) {
            struct mesh_upconn *u = mesh_list_entry(p->idle.next, struct mesh_upconn, idle_link);
            take_idle(u);
            attach(u, pop_pending(p));
            continue;
        }
        /* a connection closed: open another one for the first waiting stream */
        if (p->n_conns - p->n_connecting < p->max_conns && p->n_connecting < p->n_pending &&
            p->n_conns < p->max_conns) {
            if (!up_connect(p))
                fail_pending(p, "upstream connect error: cannot create socket", false);
            continue;
        }
        return;
    }
}

void mesh_pools_free(struct mesh_worker *w)
{
    for (size_t i = 0; i < w->pool_tab_size; i++) {
        struct mesh_pool *p = w->pool_tab[i];
        while (p) {
            struct mesh_pool *next = p->hnext;
            struct mesh_list *pos, *tmp;
            mesh_list_foreach_safe(pos, tmp, &p->all)
            {
                struct mesh_upconn *u = mesh_list_entry(pos, struct mesh_upconn, link);
                mesh_list_remove(&u->link);
                mesh_io_cancel(w->io, &u->rop); /* open: nothing cancelled its I/O yet */
                mesh_io_cancel(w->io, &u->wop);
                up_teardown(u);
            }
            event_free(p->dispatch);
            free((char *)p->key);
            free(p);
            p = next;
        }
    }
    free(w->pool_tab);
    w->pool_tab = NULL;
}
