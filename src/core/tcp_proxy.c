/*
 * TCP and TLS routes (docs/snapshot.md, "tcp_routes[]"): a connection on a
 * listener with tcp_routes is matched by its destination and, for routes with
 * an SNI condition, by the server name of its TLS ClientHello (read, never
 * terminated), then forwarded as bytes to an endpoint of the route's cluster.
 *
 * The routes are tried in order. At accept the walk stops at the first route
 * that matches, or at the first route with an SNI condition whose other
 * conditions hold: the connection then waits (bounded in bytes and time) for
 * its ClientHello, and the walk resumes there knowing the name (or knowing
 * there is none). Every byte read while waiting stays in c->in: it goes to the
 * upstream unchanged, or to the HTTP path when no route takes the connection.
 *
 * The upstream side is a plain non-blocking socket owned here: a TCP
 * connection needs none of the pool machinery of upstream.c (pending request
 * queues, keep-alive reuse, HTTP/2 sessions), and is never shared. Bytes from
 * the upstream are read straight into c->out; bytes from the client are moved
 * (not copied) from c->in to <out>. Each direction pauses its reader above
 * MESH_BUF_HIGH and resumes below MESH_BUF_LOW, and ends with its own FIN
 * (half-close); the connection closes when both have ended and been flushed,
 * on an error or reset of either side, or after idle_timeout_ms without a byte.
 */
#include "core/common.h"
#include "core/tcp_proxy.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/lb.h"
#include "core/log.h"
#include "core/tls_sni.h"

enum l4_state {
    L4_SNIFF = 0,          /* waiting for the ClientHello */
    L4_CONNECTING,         /* route chosen, upstream connect in flight */
    L4_PROXY,              /* bytes flow both ways */
};

struct mesh_l4_conn {
    struct mesh_conn *c;                 /* the downstream connection (owner of this) */
    struct mesh_snapshot *snap;          /* reference: routes, clusters and endpoints live in it */
    const struct mesh_listener_cfg *lc;
    enum l4_state state;
    size_t next_route;                   /* the walk resumes here once the SNI is known */
    struct mesh_sni_reader sni;
    size_t sni_need;                     /* c->in length worth reading the ClientHello again */
    const struct mesh_tcp_route *route;
    const struct mesh_cluster *cluster;
    const struct mesh_endpoint *ep;
    bool lb_owed;                        /* mesh_lb_done_tcp() not yet called */
    /* "unmatched" passthrough: the original destination as an endpoint of this connection
     * (not interned by the load balancer: unknown destinations are unbounded) */
    struct mesh_endpoint own_ep;
    char own_addr[INET6_ADDRSTRLEN], own_key[INET6_ADDRSTRLEN + 8];
    /* upstream side */
    int fd;
    struct event *rev, *wev, *timer;     /* <timer>: ClientHello, connect, then idle timeout */
    struct evbuffer *out;                /* towards the upstream */
    struct evbuffer *in;                 /* from the upstream, moved whole to the client's out */
    struct mesh_io_op rop, wop;          /* reads into <in>, writes from <out>, once <fd> is open */
    bool up_reading;
    bool up_eof;                         /* the upstream sent FIN */
    bool down_eof;                       /* the client sent FIN */
    bool up_shut_pending, up_shut_done;  /* FIN towards the upstream once <out> is flushed */
    bool counted_active;
    struct mesh_lazy_timer idle_t;       /* the route's idle timeout, on <timer> once proxying */
};

/* ---- Matching ---- */

static uint64_t next_rand(struct mesh_worker *w)
{
    uint64_t x = w->rand_state; /* xorshift64*: a traffic split, not a secret */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rand_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static bool cidr_has(const struct mesh_cidr *n, const uint8_t *a, sa_family_t fam)
{
    if (n->family != fam)
        return false;
    unsigned bits = n->prefix_len;
    size_t full = bits / 8;
    if (memcmp(n->addr, a, full) != 0)
        return false;
    unsigned rest = bits % 8;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == n->addr[full];
}

/* The destination as bytes and family; an IPv4-mapped IPv6 address ("::" listeners) is IPv4. */
static bool dst_of(const struct sockaddr_storage *dst, socklen_t dst_len, const uint8_t **addr,
                   sa_family_t *fam, uint16_t *port)
{
    if (dst_len == 0)
        return false;
    if (dst->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)dst;
        *addr = (const uint8_t *)&s->sin_addr;
        *fam = AF_INET;
        *port = ntohs(s->sin_port);
        return true;
    }
    if (dst->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)dst;
        *addr = (const uint8_t *)&s->sin6_addr;
        *fam = AF_INET6;
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
            *addr += 12;
            *fam = AF_INET;
        }
        *port = ntohs(s->sin6_port);
        return true;
    }
    return false;
}

static bool dst_matches(const struct mesh_tcp_route *r, const struct sockaddr_storage *dst,
                        socklen_t dst_len)
{
    if (!r->dst_port && !r->n_dst_addrs)
        return true;
    const uint8_t *addr;
    sa_family_t fam;
    uint16_t port;
    if (!dst_of(dst, dst_len, &addr, &fam, &port))
        return false;
    if (r->dst_port && r->dst_port != port)
        return false;
    if (!r->n_dst_addrs)
        return true;
    for (size_t i = 0; i < r->n_dst_addrs; i++)
        if (cidr_has(&r->dst_addrs[i], addr, fam))
            return true;
    return false;
}

/* "*.example.com" takes every name that ends in ".example.com" (one label or more before). */
static bool sni_matches(const struct mesh_tcp_route *r, const char *sni)
{
    if (!sni)
        return false;
    size_t n = strlen(sni);
    for (size_t i = 0; i < r->n_sni; i++) {
        const char *pat = r->sni[i];
        if (pat[0] == '*') {
            size_t k = strlen(pat) - 1; /* ".example.com" */
            if (n > k && memcmp(sni + n - k, pat + 1, k) == 0)
                return true;
        } else if (strcmp(pat, sni) == 0) {
            return true;
        }
    }
    return false;
}

const struct mesh_tcp_route *mesh_l4_walk(const struct mesh_listener_l4 *l4,
                                          const struct sockaddr_storage *dst, socklen_t dst_len,
                                          size_t *next, bool sni_known, const char *sni,
                                          bool *wait)
{
    *wait = false;
    for (size_t i = *next; i < l4->n_routes; i++) {
        const struct mesh_tcp_route *r = &l4->routes[i];
        if (!dst_matches(r, dst, dst_len))
            continue;
        if (!r->n_sni)
            return r;
        if (!sni_known) {
            *next = i;
            *wait = true;
            return NULL;
        }
        if (sni_matches(r, sni))
            return r;
    }
    *next = l4->n_routes;
    return NULL;
}

/* ---- The proxy's own addresses: a passthrough there would loop ---- */

static bool addr_unspecified(const uint8_t *a, sa_family_t fam)
{
    size_t n = fam == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++)
        if (a[i])
            return false;
    return true;
}

static bool addr_loopback(const uint8_t *a, sa_family_t fam)
{
    static const uint8_t v6[16] = {[15] = 1};
    return fam == AF_INET ? a[0] == 127 : memcmp(a, v6, 16) == 0;
}

/* Does <sa> (a listener's address; port 0 = ephemeral, never compared) take <addr>:<port>? */
static bool listener_takes(const struct sockaddr_storage *sa, socklen_t salen, const uint8_t *addr,
                           sa_family_t fam, uint16_t port)
{
    const uint8_t *la;
    sa_family_t lfam;
    uint16_t lport;
    if (!dst_of(sa, salen, &la, &lfam, &lport) || lport == 0 || lport != port)
        return false;
    if (addr_unspecified(la, lfam)) /* 0.0.0.0 / :: take loopback (and more we cannot know) */
        return addr_loopback(addr, fam);
    return lfam == fam && memcmp(la, addr, fam == AF_INET ? 4 : 16) == 0;
}

bool mesh_l4_dst_is_self(const struct mesh_conn *c, const struct mesh_snapshot *snap)
{
    const uint8_t *addr;
    sa_family_t fam;
    uint16_t port;
    if (!dst_of(&c->dst, c->dst_len, &addr, &fam, &port))
        return true; /* no destination at all: nowhere to pass it to */
    /* not redirected: the destination is the socket's own address */
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    const uint8_t *la;
    sa_family_t lfam;
    uint16_t lport;
    if (getsockname(c->fd, (struct sockaddr *)&local, &len) == 0 &&
        dst_of(&local, len, &la, &lfam, &lport) && lport == port && lfam == fam &&
        memcmp(la, addr, fam == AF_INET ? 4 : 16) == 0)
        return true;
    /* redirected to another of our listeners (or the admin) */
    for (size_t i = 0; snap && i < snap->n_listeners; i++)
        if (listener_takes(&snap->listeners[i].sa, snap->listeners[i].salen, addr, fam, port))
            return true;
    return snap && snap->admin_address &&
           listener_takes(&snap->admin_sa, snap->admin_salen, addr, fam, port);
}

bool mesh_l4_http_port(const struct mesh_unmatched *u, uint16_t port)
{
    size_t lo = 0, hi = u->n_http_ports;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->http_ports[mid] == port)
            return true;
        if (u->http_ports[mid] < port)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void mesh_l4_dst_str(const struct mesh_conn *c, char *buf, size_t size)
{
    const uint8_t *addr;
    sa_family_t fam;
    uint16_t port;
    char a[INET6_ADDRSTRLEN];
    if (!dst_of(&c->dst, c->dst_len, &addr, &fam, &port) || !inet_ntop(fam, addr, a, sizeof(a))) {
        snprintf(buf, size, "(unknown)");
        return;
    }
    snprintf(buf, size, fam == AF_INET6 ? "[%s]:%u" : "%s:%u", a, (unsigned)port);
}

/* ---- Lifetime ---- */

static void up_on_read(evutil_socket_t fd, short what, void *arg);
static void up_on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static struct mesh_l4_conn *l4_new(struct mesh_conn *c, const struct mesh_listener_cfg *lc)
{
    struct mesh_l4_conn *l = mesh_xcalloc(1, sizeof(*l));
    l->c = c;
    l->snap = mesh_snapshot_ref(c->w->snap);
    l->lc = lc;
    l->fd = -1;
    l->timer = evtimer_new(c->w->base, on_timer, l);
    mesh_sni_reader_init(&l->sni);
    c->l4 = l;
    c->proto = MESH_CONN_L4;
    mesh_conn_idle_disarm(c); /* the L4 timer takes over */
    return l;
}

/* Forgets the upstream side's queued I/O (at close: the batch must not touch it). */
void mesh_l4_cancel_io(struct mesh_conn *c)
{
    struct mesh_l4_conn *l = c->l4;
    if (l && l->fd >= 0) { /* the ops are set up with the socket */
        mesh_io_cancel(c->w->io, &l->rop);
        mesh_io_cancel(c->w->io, &l->wop);
    }
}

void mesh_l4_free(struct mesh_conn *c)
{
    struct mesh_l4_conn *l = c->l4;
    if (!l)
        return;
    struct mesh_worker *w = c->w;
    if (l->lb_owed)
        mesh_lb_done_tcp(w, l->cluster, l->ep, false);
    if (l->rev)
        event_free(l->rev);
    if (l->wev)
        event_free(l->wev);
    event_free(l->timer);
    mesh_l4_cancel_io(c);
    if (l->out)
        evbuffer_free(l->out);
    if (l->in)
        evbuffer_free(l->in);
    if (l->fd >= 0)
        close(l->fd);
    if (l->counted_active)
        MESH_STAT_DEC(&w->stats, upstream_cx_active);
    mesh_snapshot_unref(l->snap);
    free(l);
    c->l4 = NULL;
}

static void arm_timer(struct mesh_l4_conn *l, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
}

static enum mesh_l4_verdict unmatched_tcp(struct mesh_conn *c, const struct mesh_listener_cfg *lc,
                                          int self);

/* A worker warns about refused passthrough loops at most this often (passthrough_loop counts
 * every one): a client that keeps dialling the listener must not fill the log. */
#define L4_LOOP_WARN_MS 10000

bool mesh_l4_loop_warn(struct mesh_worker *w)
{
    MESH_STAT_INC(&w->stats, passthrough_loop);
    uint64_t now = mesh_worker_now_ms(w);
    if (now < w->loop_warn_ms)
        return false;
    w->loop_warn_ms = now + L4_LOOP_WARN_MS;
    return true;
}

/* The loop guard: passing <c> through (cluster <cluster>) would reach this proxy. Closes it. */
static void loop_refused(struct mesh_conn *c, const char *cluster)
{
    bool warn = mesh_l4_loop_warn(c->w);
    if (warn || mesh_log_enabled(MESH_LOG_DEBUG)) {
        char dst[INET6_ADDRSTRLEN + 8];
        mesh_l4_dst_str(c, dst, sizeof(dst));
        mesh_log(warn ? MESH_LOG_WARN : MESH_LOG_DEBUG,
                 "tcp %s -> %s: no original destination (the connection was not redirected to "
                 "this proxy): passing it through (cluster %s) would loop back to the proxy; "
                 "closing%s",
                 c->peer_ip, dst, cluster,
                 warn ? " (warned at most every 10 s per worker; passthrough_loop counts all)" : "");
    }
    mesh_conn_close(c);
}

/*
 * With "unmatched", a connection no TCP route takes is HTTP when its original
 * destination port is one of http_ports, or when it was not redirected at all
 * (the client addressed the listener itself, as applications on loopback do).
 * Everything else is TCP towards an unknown destination.
 */
static bool unmatched_is_http(const struct mesh_conn *c, const struct mesh_unmatched *u,
                              int *self)
{
    uint16_t port = 0;
    const uint8_t *addr;
    sa_family_t fam;
    if (dst_of(&c->dst, c->dst_len, &addr, &fam, &port) && mesh_l4_http_port(u, port))
        return true;
    *self = mesh_l4_dst_is_self(c, c->w->snap);
    return *self;
}

/*
 * No route takes the connection: HTTP when the listener has a route config
 * (with "unmatched": only on its HTTP ports), else close, or the listener's
 * "unmatched" action.
 */
static enum mesh_l4_verdict no_route(struct mesh_conn *c, const struct mesh_listener_cfg *lc)
{
    const struct mesh_unmatched *u = &lc->l4->unmatched;
    int self = -1; /* mesh_l4_dst_is_self() (a getsockname), once; -1: not asked */
    if (lc->route_config && (u->action == MESH_UNMATCHED_NONE || unmatched_is_http(c, u, &self))) {
        mesh_l4_free(c);
        c->proto = MESH_CONN_SNIFF;
        mesh_conn_idle_arm(c);
        return MESH_L4_HTTP;
    }
    if (u->action != MESH_UNMATCHED_NONE)
        return unmatched_tcp(c, lc, self);
    MESH_STAT_INC(&c->w->stats, tcp_cx_no_route);
    mesh_log_debug("listener %s: no tcp route for the connection from %s: closing", lc->name,
                   c->peer_ip);
    mesh_conn_close(c);
    return MESH_L4_TAKEN;
}

/* ---- Upstream I/O ---- */

/* A byte went either way: the idle timeout starts again (lazily: no timer heap work). */
static void touch(struct mesh_l4_conn *l)
{
    if (l->route->idle_timeout_ms)
        mesh_lazy_timer_arm(l->c->w, &l->idle_t, l->timer, l->route->idle_timeout_ms);
}

static void up_set_reading(struct mesh_l4_conn *l, bool on)
{
    if (l->up_reading == on || l->state != L4_PROXY)
        return;
    l->up_reading = on;
    if (!on) {
        event_del(l->rev);
        return;
    }
    event_add(l->rev, NULL);
    if (!l->up_eof) /* edge-triggered: look now (mesh_io_probe) */
        mesh_io_probe(l->c->w->io, &l->rop, MESH_READ_SIZE);
}

/* Writes go into this turn's batch, like mesh_conn_flush(). */
static void up_flush(struct mesh_l4_conn *l)
{
    if (l->state != L4_PROXY || l->c->dead)
        return;
    mesh_io_queue(l->c->w->io, &l->wop, 0);
}

/* Both directions ended and the FIN towards the upstream left: close once c->out is out. */
static void maybe_done(struct mesh_l4_conn *l)
{
    struct mesh_conn *c = l->c;
    if (l->down_eof && l->up_eof && l->up_shut_done && !c->dead) {
        c->closing = true;
        mesh_conn_flush(c);
    }
}

static void down_to_up(struct mesh_l4_conn *l)
{
    struct mesh_conn *c = l->c;
    if (evbuffer_get_length(c->in) == 0)
        return;
    touch(l);
    evbuffer_add_buffer(l->out, c->in);
    up_flush(l);
    if (evbuffer_get_length(l->out) >= MESH_BUF_HIGH)
        mesh_conn_set_reading(c, false);
}

/* The batch wrote what it could of <out> (io_batch.h). */
static void on_up_write_done(struct mesh_io_op *op, ssize_t res)
{
    struct mesh_l4_conn *l = MESH_CONTAINER_OF(op, struct mesh_l4_conn, wop);
    struct mesh_conn *c = l->c;
    if (c->dead)
        return;
    if (res < 0 && res != -EAGAIN && res != -EINTR) {
        mesh_log_debug("tcp upstream %s write: %s", l->ep->key, strerror((int)-res));
        mesh_conn_close(c);
        return;
    }
    size_t before = op->before, left = evbuffer_get_length(l->out);
    if (left) {
        if (!op->queued) /* it would block: wait until the socket takes more */
            event_add(l->wev, NULL);
    } else {
        event_del(l->wev);
        if (l->up_shut_pending && !l->up_shut_done) {
            l->up_shut_done = true;
            shutdown(l->fd, SHUT_WR);
            maybe_done(l);
        }
    }
    if (before >= MESH_BUF_LOW && left < MESH_BUF_LOW && !l->down_eof)
        mesh_conn_set_reading(c, true);
}

static void connected(struct mesh_l4_conn *l)
{
    struct mesh_conn *c = l->c;
    l->state = L4_PROXY;
    event_del(l->wev);
    evtimer_del(l->timer);
    if (l->lb_owed) {
        l->lb_owed = false;
        mesh_lb_done_tcp(c->w, l->cluster, l->ep, true);
    }
    mesh_log_debug("tcp %s -> %s (cluster %s): connected", c->peer_ip, l->ep->key,
                   l->cluster->name);
    touch(l); /* the connect timeout was deleted above: the idle timeout takes <timer> */
    up_set_reading(l, true);
    if (!l->down_eof)
        mesh_conn_set_reading(c, true);
    down_to_up(l);
    if (l->down_eof)
        l->up_shut_pending = true;
    up_flush(l);
}

static void connect_failed(struct mesh_l4_conn *l, int err)
{
    struct mesh_worker *w = l->c->w;
    MESH_STAT_INC(&w->stats, upstream_cx_connect_fail);
    if (!err)
        MESH_STAT_INC(&w->stats, upstream_cx_connect_timeout);
    mesh_log_debug("tcp %s -> %s (cluster %s): connect %s", l->c->peer_ip, l->ep->key,
                   l->cluster->name, err ? strerror(err) : "timed out");
    if (l->lb_owed) {
        l->lb_owed = false;
        mesh_lb_done_tcp(w, l->cluster, l->ep, false);
    }
    mesh_conn_close(l->c);
}

static void up_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_l4_conn *l = arg;
    (void)fd;
    (void)what;
    if (l->c->dead)
        return;
    if (l->state == L4_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            connect_failed(l, err);
            return;
        }
        connected(l);
        return;
    }
    up_flush(l); /* writable: the batch writes what waits */
}

static void up_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_l4_conn *l = arg;
    (void)fd;
    mesh_io_note_hup(&l->rop, what);
    if (!l->c->dead && !l->up_eof)
        mesh_io_queue(l->c->w->io, &l->rop, MESH_READ_SIZE);
}

/*
 * The batch read into <in>. Its chains move to the client's output buffer (no copy):
 * the read cannot go straight there, since the client's write op sends from that
 * buffer and two ops on one buffer cannot share a round.
 */
static void on_up_read_done(struct mesh_io_op *op, ssize_t res)
{
    struct mesh_l4_conn *l = MESH_CONTAINER_OF(op, struct mesh_l4_conn, rop);
    struct mesh_conn *c = l->c;
    if (c->dead || l->up_eof)
        return;
    if (res > 0) {
        touch(l);
        evbuffer_add_buffer(c->out, l->in);
        mesh_conn_flush(c);
        if (evbuffer_get_length(c->out) >= MESH_BUF_HIGH)
            up_set_reading(l, false);
        /* edge-triggered (mesh_io_reread): a read that filled its room goes on */
        else if (mesh_io_reread(op) && l->up_reading)
            mesh_io_queue(c->w->io, op, MESH_READ_SIZE);
        return;
    }
    if (res == -EAGAIN || res == -EINTR)
        return;
    if (res < 0) {
        mesh_log_debug("tcp upstream %s read: %s", l->ep->key, strerror((int)-res));
        mesh_conn_close(c);
        return;
    }
    /* FIN from the upstream: the client gets what is buffered, then a FIN */
    l->up_eof = true;
    up_set_reading(l, false);
    c->shut_wr_pending = true;
    mesh_conn_flush(c);
    maybe_done(l);
}

static void connect_to(struct mesh_l4_conn *l);

/* <ep> (a passthrough, valid until the load balancer's next pick) copied into <l>. */
static const struct mesh_endpoint *own_copy(struct mesh_l4_conn *l, const struct mesh_endpoint *ep)
{
    l->own_ep = *ep;
    snprintf(l->own_addr, sizeof(l->own_addr), "%s", ep->address);
    snprintf(l->own_key, sizeof(l->own_key), "%s", ep->key);
    l->own_ep.address = l->own_addr;
    l->own_ep.key = l->own_key;
    return &l->own_ep;
}

/* Opens the upstream connection for the route <r> (chosen at accept or after the ClientHello). */
static void start_route(struct mesh_l4_conn *l, const struct mesh_tcp_route *r)
{
    struct mesh_conn *c = l->c;
    struct mesh_worker *w = c->w;
    l->route = r;
    l->state = L4_CONNECTING;
    evtimer_del(l->timer);
    MESH_STAT_INC(&w->stats, tcp_cx_total);
    if (r->n_sni)
        MESH_STAT_INC(&w->stats, tcp_cx_sni);
    const struct mesh_cluster *cl = r->cluster;
    if (r->n_weighted) {
        uint32_t x = (uint32_t)(next_rand(w) >> 32) % r->total_weight;
        cl = r->weighted[r->n_weighted - 1].cluster;
        for (size_t i = 0; i < r->n_weighted; i++) {
            if (x < r->weighted[i].weight) {
                cl = r->weighted[i].cluster;
                break;
            }
            x -= r->weighted[i].weight;
        }
    }
    l->cluster = cl = mesh_snapshot_cluster(l->snap, cl);
    if (cl->lb_policy == MESH_LBP_PASSTHROUGH && mesh_l4_dst_is_self(c, l->snap)) {
        loop_refused(c, cl->name);
        return;
    }
    const struct mesh_endpoint *ep = mesh_lb_pick_tcp(w, cl, c);
    if (!ep) {
        MESH_STAT_INC(&w->stats, upstream_rq_no_healthy);
        mesh_log_debug("tcp %s: cluster %s has no healthy endpoint: closing", c->peer_ip, cl->name);
        mesh_conn_close(c);
        return;
    }
    /* a passthrough endpoint is the load balancer's until its next pick: ours from here */
    l->ep = cl->lb_policy == MESH_LBP_PASSTHROUGH ? own_copy(l, ep) : ep;
    l->lb_owed = true;
    connect_to(l);
}

/* The upstream connection to l->ep (of l->cluster). */
static void connect_to(struct mesh_l4_conn *l)
{
    struct mesh_conn *c = l->c;
    struct mesh_worker *w = c->w;
    const struct mesh_cluster *cl = l->cluster;
    const struct mesh_endpoint *ep = l->ep;
    l->out = evbuffer_new();
    l->in = evbuffer_new();
    int fd = socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || !l->out || !l->in) {
        if (fd >= 0)
            close(fd);
        connect_failed(l, errno ? errno : ENOMEM);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    l->fd = fd;
    mesh_io_op_init(&l->rop, fd, l->in, false, on_up_read_done);
    mesh_io_op_init(&l->wop, fd, l->out, true, on_up_write_done);
    l->rev = event_new(w->base, fd, EV_READ | EV_PERSIST | EV_ET | EV_CLOSED, up_on_read, l);
    l->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST | EV_ET, up_on_write, l);
    MESH_STAT_INC(&w->stats, upstream_cx_total);
    MESH_STAT_INC(&w->stats, upstream_cx_active);
    l->counted_active = true;
    /* a refused connect reports on the write event like an asynchronous one */
    if (connect(fd, (const struct sockaddr *)&ep->sa, ep->salen) < 0 && errno != EINPROGRESS) {
        int err = errno;
        connect_failed(l, err);
        return;
    }
    event_add(l->wev, NULL);
    arm_timer(l, cl->connect_timeout_ms ? cl->connect_timeout_ms : 1000);
    /* hold the client's bytes (bounded) until the upstream is there */
    if (evbuffer_get_length(c->in) >= MESH_BUF_HIGH)
        mesh_conn_set_reading(c, false);
}

/* ---- Unknown destinations ("unmatched") ---- */

/* The original destination as this connection's own endpoint. */
static bool own_endpoint(struct mesh_l4_conn *l)
{
    const struct sockaddr_storage *d = &l->c->dst;
    const void *a;
    uint16_t port;
    if (d->ss_family == AF_INET) {
        a = &((const struct sockaddr_in *)d)->sin_addr;
        port = ntohs(((const struct sockaddr_in *)d)->sin_port);
    } else if (d->ss_family == AF_INET6) {
        a = &((const struct sockaddr_in6 *)d)->sin6_addr;
        port = ntohs(((const struct sockaddr_in6 *)d)->sin6_port);
    } else {
        return false;
    }
    if (!l->c->dst_len || !inet_ntop(d->ss_family, a, l->own_addr, sizeof(l->own_addr)))
        return false;
    struct mesh_endpoint *ep = &l->own_ep;
    memset(ep, 0, sizeof(*ep));
    ep->sa = *d;
    ep->salen = l->c->dst_len;
    ep->port = port;
    ep->weight = 1;
    snprintf(l->own_key, sizeof(l->own_key), d->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
             l->own_addr, (unsigned)port);
    ep->address = l->own_addr;
    ep->key = l->own_key;
    return true;
}

/* No route, no HTTP: the listener's "unmatched" action (Istio's outboundTrafficPolicy). */
/* <self>: mesh_l4_dst_is_self() if no_route() asked it already, else -1. */
static enum mesh_l4_verdict unmatched_tcp(struct mesh_conn *c, const struct mesh_listener_cfg *lc,
                                          int self)
{
    const struct mesh_unmatched *u = &lc->l4->unmatched;
    struct mesh_worker *w = c->w;
    char dst[INET6_ADDRSTRLEN + 8] = "";
    if (mesh_log_enabled(MESH_LOG_DEBUG))
        mesh_l4_dst_str(c, dst, sizeof(dst));
    if (u->action == MESH_UNMATCHED_REFUSE) {
        MESH_STAT_INC(&w->stats, blackhole_cx_total);
        mesh_log_debug("listener %s: %s -> %s: the destination is not in the mesh registry "
                       "(REGISTRY_ONLY): closing",
                       lc->name, c->peer_ip, dst);
        mesh_conn_close(c);
        return MESH_L4_TAKEN;
    }
    if (self < 0 ? mesh_l4_dst_is_self(c, w->snap) : self) {
        loop_refused(c, u->cluster ? u->cluster->name : "-");
        return MESH_L4_TAKEN;
    }
    struct mesh_l4_conn *l = c->l4 ? c->l4 : l4_new(c, lc);
    if (!own_endpoint(l)) {
        mesh_conn_close(c);
        return MESH_L4_TAKEN;
    }
    MESH_STAT_INC(&w->stats, passthrough_cx_total);
    l->route = &u->tcp;
    l->cluster = mesh_snapshot_cluster(l->snap, u->cluster);
    l->ep = &l->own_ep;
    l->state = L4_CONNECTING;
    evtimer_del(l->timer);
    mesh_log_debug("listener %s: %s -> %s: not in the mesh registry: passthrough (ALLOW_ANY)",
                   lc->name, c->peer_ip, dst);
    connect_to(l);
    return MESH_L4_TAKEN;
}

/* ---- The ClientHello ---- */

/*
 * The walk resumes after the ClientHello, or without one (<sni> NULL): not TLS,
 * malformed, too big, no server_name, or the client was too slow.
 */
static enum mesh_l4_verdict resume(struct mesh_l4_conn *l, const char *sni)
{
    struct mesh_conn *c = l->c;
    bool wait;
    const struct mesh_tcp_route *r =
        mesh_l4_walk(l->lc->l4, &c->dst, c->dst_len, &l->next_route, true, sni, &wait);
    if (!r)
        return no_route(c, l->lc);
    mesh_log_debug("tcp %s: sni \"%s\" takes tcp_routes[%zu]", c->peer_ip, sni ? sni : "",
                   (size_t)(r - l->lc->l4->routes));
    start_route(l, r);
    return MESH_L4_TAKEN;
}

static enum mesh_l4_verdict read_hello(struct mesh_l4_conn *l, bool final)
{
    struct mesh_conn *c = l->c;
    size_t len = evbuffer_get_length(c->in);
    if (len < l->sni_need && !final)
        return MESH_L4_TAKEN;
    size_t n = MESH_MIN(len, (size_t)MESH_SNI_MAX_INPUT);
    const uint8_t *p = n ? evbuffer_pullup(c->in, (ev_ssize_t)n) : (const uint8_t *)"";
    char name[MESH_SNI_NAME_MAX + 1];
    size_t need = 0;
    enum mesh_sni_status st = mesh_sni_read(&l->sni, p, n, &need, name, sizeof(name));
    if (st == MESH_SNI_MORE && !final) {
        l->sni_need = need;
        return MESH_L4_TAKEN;
    }
    if (st != MESH_SNI_FOUND)
        mesh_log_debug("tcp %s: ClientHello %s", c->peer_ip, mesh_sni_status_str(st));
    return resume(l, st == MESH_SNI_FOUND ? name : NULL);
}

/* ---- Timer: ClientHello, connect, idle ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_l4_conn *l = arg;
    struct mesh_conn *c = l->c;
    (void)fd;
    (void)what;
    if (c->dead)
        return;
    switch (l->state) {
    case L4_SNIFF:
        mesh_log_debug("tcp %s: no ClientHello within %u ms", c->peer_ip, MESH_L4_HELLO_TIMEOUT_MS);
        if (read_hello(l, true) == MESH_L4_HTTP)
            mesh_conn_serve_http(c);
        return;
    case L4_CONNECTING:
        connect_failed(l, 0);
        return;
    case L4_PROXY:
        if (!mesh_lazy_timer_due(c->w, &l->idle_t, l->timer))
            return; /* a byte moved since: re-armed for the rest */
        mesh_log_debug("tcp %s -> %s: idle for %u ms: closing", c->peer_ip, l->ep->key,
                       l->route->idle_timeout_ms);
        MESH_STAT_INC(&c->w->stats, downstream_cx_idle_timeout);
        mesh_conn_close(c);
        return;
    }
}

/* ---- Entry points from conn.c ---- */

enum mesh_l4_verdict mesh_l4_accept(struct mesh_conn *c, const struct mesh_listener_cfg *lc)
{
    size_t next = 0;
    bool wait;
    const struct mesh_tcp_route *r = mesh_l4_walk(lc->l4, &c->dst, c->dst_len, &next, false, NULL, &wait);
    if (!r && !wait)
        return no_route(c, lc);
    struct mesh_l4_conn *l = l4_new(c, lc);
    if (r) {
        start_route(l, r);
        return MESH_L4_TAKEN;
    }
    l->next_route = next;
    l->state = L4_SNIFF;
    arm_timer(l, MESH_L4_HELLO_TIMEOUT_MS);
    return MESH_L4_TAKEN;
}

enum mesh_l4_verdict mesh_l4_on_down_read(struct mesh_conn *c)
{
    struct mesh_l4_conn *l = c->l4;
    if (!l)
        return MESH_L4_TAKEN;
    switch (l->state) {
    case L4_SNIFF:
        return read_hello(l, false);
    case L4_CONNECTING:
        if (evbuffer_get_length(c->in) >= MESH_BUF_HIGH)
            mesh_conn_set_reading(c, false);
        return MESH_L4_TAKEN;
    case L4_PROXY:
        down_to_up(l);
        return MESH_L4_TAKEN;
    }
    return MESH_L4_TAKEN;
}

enum mesh_l4_verdict mesh_l4_on_down_eof(struct mesh_conn *c)
{
    struct mesh_l4_conn *l = c->l4;
    if (!l)
        return MESH_L4_TAKEN;
    if (l->state == L4_SNIFF) {
        /* the client is done sending: route on what it sent */
        enum mesh_l4_verdict v = read_hello(l, true);
        if (v == MESH_L4_HTTP || c->dead)
            return v;
    }
    l->down_eof = true;
    mesh_conn_set_reading(c, false);
    if (l->state == L4_PROXY) {
        down_to_up(l);
        l->up_shut_pending = true;
        up_flush(l);
    }
    return MESH_L4_TAKEN;
}

void mesh_l4_on_down_written(struct mesh_conn *c)
{
    struct mesh_l4_conn *l = c->l4;
    if (l && !l->up_eof)
        up_set_reading(l, true);
}
