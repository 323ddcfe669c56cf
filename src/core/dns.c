/*
 * The DNS proxy: one UDP socket and one TCP listener on the same port, on the
 * main event base. Mesh names are answered at once from the table; anything
 * else goes to the upstream resolver over the client's protocol: UDP queries
 * over one connected UDP socket, TCP ones over a TCP connection of their own
 * (one upstream connection per client connection, opened at its first
 * forwarded query), so a TCP client never gets an answer truncated for UDP.
 * Each forwarded query gets a fresh random id, and the answer is relayed when
 * its id and question match and it came the way the query went. Forwarded
 * queries live in a fixed table of slots (bounded; beyond it: SERVFAIL),
 * hashed by upstream id, and in a FIFO by deadline: all share one timeout, so
 * one timer serves them all.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/dns.h"
#include "core/list.h"
#include "core/log.h"
#include "core/status.h"

#define HASH_BUCKETS 256            /* upstream id -> slot; chains stay short (<= max/256) */
#define NIL UINT32_MAX
#define UDP_BURST 64                /* datagrams read per readiness, then others get a turn */
#define TCP_MAX_PENDING 32          /* forwarded queries of one TCP connection at a time */
#define TCP_IDLE_S 30
#define TCP_MAX_OUTPUT (256 * 1024) /* a client that stops reading is closed */
#define QWIRE_MAX 259               /* a question on the wire: name (255) + type + class */

struct tcp_conn {
    struct mesh_dns *d;
    struct bufferevent *bev;        /* NULL once closed; freed when <pending> reaches 0 */
    struct bufferevent *up;         /* to the upstream over TCP, or NULL (opened on demand) */
    unsigned pending;
    bool eof;                       /* the client is done sending: close once answered */
    struct tcp_conn *prev, *next;   /* every connection, for mesh_dns_stop() */
};

union client_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct slot {
    bool used;
    uint16_t up_id, client_id;
    uint16_t qtype, qclass;
    uint64_t qhash;                 /* of the lower-cased question name */
    uint16_t qlen;                  /* the question as sent, at qwire + index * QWIRE_MAX */
    struct tcp_conn *conn;          /* NULL: a UDP client at <client> (sent over UDP); else
                                     * a TCP client, sent on conn->up */
    union client_addr client;
    socklen_t client_len;
    uint64_t deadline_ms;
    uint32_t hnext;                 /* hash chain */
    uint32_t prev, next;            /* FIFO by deadline, or the free list (next) */
};

struct mesh_dns {
    struct event_base *base;
    struct mesh_dns_config cfg;
    int udp_fd, up_fd;
    struct event *udp_ev, *up_ev, *timer;
    struct evconnlistener *listener;
    uint16_t port;
    struct slot *slots;
    uint8_t *qwire;                 /* questions of the slots, for their SERVFAIL */
    uint32_t buckets[HASH_BUCKETS];
    uint32_t free_head, fifo_head, fifo_tail, inflight;
    struct tcp_conn *conns;
    unsigned n_conns;
    struct mesh_dns_stats st;
    uint8_t buf[MESH_DNS_MSG_MAX + 2]; /* one message at a time: the loop is single-threaded */
};

void mesh_dns_config_init(struct mesh_dns_config *c)
{
    memset(c, 0, sizeof(*c));
    struct sockaddr_in *in = (struct sockaddr_in *)&c->listen;
    in->sin_family = AF_INET;
    in->sin_port = htons(15053);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->listen_len = sizeof(*in);
    c->ttl = 30;
    c->timeout_ms = 5000;
    c->max_inflight = 1024;
    c->max_tcp_conns = 128;
}

int mesh_dns_read_resolv_conf(struct mesh_dns_config *c, const char *path, struct mesh_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        mesh_err_add(err, 0, 0, NULL, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    bool have_ns = c->upstream_len != 0, set_search = c->n_search == 0;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *key = strtok_r(line, " \t\r\n", &save);
        if (!key || key[0] == '#' || key[0] == ';')
            continue;
        if (strcmp(key, "nameserver") == 0 && !have_ns) {
            char *v = strtok_r(NULL, " \t\r\n", &save);
            struct sockaddr_in *in = (struct sockaddr_in *)&c->upstream;
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->upstream;
            memset(&c->upstream, 0, sizeof(c->upstream));
            if (v && inet_pton(AF_INET, v, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(53);
                c->upstream_len = sizeof(*in);
                have_ns = true;
            } else if (v && inet_pton(AF_INET6, v, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(53);
                c->upstream_len = sizeof(*in6);
                have_ns = true;
            }
        } else if (strcmp(key, "search") == 0 && set_search) {
            c->n_search = 0;
            char *v = strtok_r(NULL, " \t\r\n", &save);
            for (; v && c->n_search < MESH_DNS_MAX_SEARCH; v = strtok_r(NULL, " \t\r\n", &save)) {
                size_t n = strlen(v);
                while (n && v[n - 1] == '.')
                    v[--n] = '\0';
                if (n == 0 || n > MESH_DNS_NAME_MAX)
                    continue;
                for (size_t i = 0; i < n; i++)
                    c->search[c->n_search][i] = (char)tolower((unsigned char)v[i]);
                c->search[c->n_search][n] = '\0';
                c->n_search++;
            }
        }
    }
    fclose(f);
    if (!have_ns) {
        mesh_err_add(err, 0, 0, NULL, "%s: no usable \"nameserver\" line", path);
        return -1;
    }
    return 0;
}

/* ---- the table --------------------------------------------------------------------- */

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the lower-cased name */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)tolower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* The name, then the name with each search suffix, as the pod's resolver would try them. */
static bool lookup(struct mesh_dns *d, const struct mesh_dns_question *q,
                   struct mesh_dns_addrs *out)
{
    char name[2 * MESH_DNS_NAME_MAX + 2];
    size_t n = q->name_len;
    if (q->binary || n == 0 || !d->cfg.lookup)
        return false;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)q->name[i]);
    name[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (d->cfg.lookup(d->cfg.lookup_arg, name, n, out))
        return true;
    for (size_t i = 0; i < d->cfg.n_search; i++) {
        size_t sn = strlen(d->cfg.search[i]);
        if (n + 1 + sn > MESH_DNS_NAME_MAX)
            continue;
        name[n] = '.';
        memcpy(name + n + 1, d->cfg.search[i], sn + 1);
        memset(out, 0, sizeof(*out));
        if (d->cfg.lookup(d->cfg.lookup_arg, name, n + 1 + sn, out))
            return true;
    }
    return false;
}

/* ---- replies ----------------------------------------------------------------------- */

static void tcp_send(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
    if (!c->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t lp[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    evbuffer_add(out, lp, 2);
    evbuffer_add(out, msg, len);
}

static void reply(struct mesh_dns *d, struct tcp_conn *c, const union client_addr *to,
                  socklen_t tolen, const uint8_t *msg, size_t len)
{
    if (c) {
        tcp_send(c, msg, len);
        return;
    }
    /* UDP: a full socket buffer loses the answer; the client retries */
    if (sendto(d->udp_fd, msg, len, 0, &to->sa, tolen) < 0)
        mesh_log_debug("dns: sendto: %s", strerror(errno));
}

/* ---- forwarded queries ------------------------------------------------------------ */

static uint64_t now_ms(struct mesh_dns *d)
{
    struct timeval tv;
    event_base_gettimeofday_cached(d->base, &tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void arm_timer(struct mesh_dns *d)
{
    if (d->fifo_head == NIL) {
        evtimer_del(d->timer);
        return;
    }
    uint64_t now = now_ms(d), dl = d->slots[d->fifo_head].deadline_ms;
    uint64_t wait = dl > now ? dl - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
                         .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

static void conn_release(struct tcp_conn *c);

static void slot_free(struct mesh_dns *d, uint32_t i)
{
    struct slot *s = &d->slots[i];
    uint32_t *pp = &d->buckets[s->up_id % HASH_BUCKETS];
    while (*pp != i)
        pp = &d->slots[*pp].hnext;
    *pp = s->hnext;
    if (s->prev != NIL)
        d->slots[s->prev].next = s->next;
    else
        d->fifo_head = s->next;
    if (s->next != NIL)
        d->slots[s->next].prev = s->prev;
    else
        d->fifo_tail = s->prev;
    if (s->conn) {
        s->conn->pending--;
        conn_release(s->conn);
    }
    s->used = false;
    s->conn = NULL;
    s->next = d->free_head;
    d->free_head = i;
    d->inflight--;
}

static uint32_t slot_find(struct mesh_dns *d, uint16_t id)
{
    for (uint32_t i = d->buckets[id % HASH_BUCKETS]; i != NIL; i = d->slots[i].hnext)
        if (d->slots[i].up_id == id)
            return i;
    return NIL;
}

/* SERVFAIL with the question (resolvers drop answers whose question differs from theirs) */
static void servfail(struct mesh_dns *d, uint32_t i)
{
    struct slot *s = &d->slots[i];
    uint8_t msg[MESH_DNS_HEADER_LEN + QWIRE_MAX];
    memcpy(msg + MESH_DNS_HEADER_LEN, d->qwire + (size_t)i * QWIRE_MAX, s->qlen);
    struct mesh_dns_header h = {.id = s->client_id, .flags = MESH_DNS_RD};
    struct mesh_dns_question q = {.end = MESH_DNS_HEADER_LEN + s->qlen};
    size_t n = mesh_dns_build_error(msg, sizeof(msg), msg, &h, &q, MESH_DNS_SERVFAIL);
    d->st.servfail++;
    reply(d, s->conn, &s->client, s->client_len, msg, n);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_dns *d = arg;
    uint64_t now = now_ms(d);
    while (d->fifo_head != NIL && d->slots[d->fifo_head].deadline_ms <= now) {
        uint32_t i = d->fifo_head;
        d->st.timeouts++;
        servfail(d, i);
        slot_free(d, i);
    }
    arm_timer(d);
}

static bool up_tcp_open(struct tcp_conn *c);

/* Sends <msg> (<len> bytes, its id already the upstream one) the way the client came. */
static bool send_upstream(struct mesh_dns *d, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
    if (c) {
        if (!c->up && !up_tcp_open(c))
            return false;
        /* buffered until connected; TCP_MAX_PENDING bounds what a client can queue */
        uint8_t lp[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        struct evbuffer *out = bufferevent_get_output(c->up);
        return evbuffer_add(out, lp, 2) == 0 && evbuffer_add(out, msg, len) == 0;
    }
    ssize_t w = send(d->up_fd, msg, len, 0);
    if (w < 0 && errno == ECONNREFUSED) /* an ICMP error left by an earlier query: once more */
        w = send(d->up_fd, msg, len, 0);
    if (w != (ssize_t)len) {
        mesh_log_debug("dns: send upstream: %s", w < 0 ? strerror(errno) : "short");
        return false;
    }
    return true;
}

/* Sends the query upstream under a fresh id. Returns false when it cannot (then SERVFAIL). */
static bool forward(struct mesh_dns *d, struct tcp_conn *c, const union client_addr *from,
                    socklen_t fromlen, uint8_t *msg, size_t len, const struct mesh_dns_header *h,
                    const struct mesh_dns_question *q)
{
    if (d->up_fd < 0 || d->free_head == NIL || (c && c->pending >= TCP_MAX_PENDING))
        return false;
    uint16_t id;
    do
        evutil_secure_rng_get_bytes(&id, sizeof(id));
    while (slot_find(d, id) != NIL);
    uint16_t client_id = h->id;
    msg[0] = (uint8_t)(id >> 8);
    msg[1] = (uint8_t)id;
    bool sent = send_upstream(d, c, msg, len);
    msg[0] = (uint8_t)(client_id >> 8);
    msg[1] = (uint8_t)client_id;
    if (!sent)
        return false;
    uint32_t i = d->free_head;
    struct slot *s = &d->slots[i];
    d->free_head = s->next;
    *s = (struct slot){.used = true, .up_id = id, .client_id = client_id, .qtype = q->type,
                       .qclass = q->klass, .qhash = name_hash(q->name, q->name_len),
                       .conn = c, .deadline_ms = now_ms(d) + d->cfg.timeout_ms,
                       .prev = d->fifo_tail, .next = NIL,
                       .qlen = (uint16_t)(q->end - MESH_DNS_HEADER_LEN)};
    memcpy(d->qwire + (size_t)i * QWIRE_MAX, msg + MESH_DNS_HEADER_LEN, s->qlen);
    if (!c) {
        memcpy(&s->client, from, fromlen);
        s->client_len = fromlen;
    } else {
        c->pending++;
    }
    s->hnext = d->buckets[id % HASH_BUCKETS];
    d->buckets[id % HASH_BUCKETS] = i;
    if (d->fifo_tail != NIL)
        d->slots[d->fifo_tail].next = i;
    else
        d->fifo_head = i;
    d->fifo_tail = i;
    d->inflight++;
    d->st.forwarded++;
    if (c)
        d->st.forwarded_tcp++;
    if (!evtimer_pending(d->timer, NULL))
        arm_timer(d);
    return true;
}

/* An answer <msg> from the upstream, over UDP (<via> NULL) or on via->up: relayed to the
 * client of the query it answers, which must have been sent the same way. */
static void relay(struct mesh_dns *d, struct tcp_conn *via, uint8_t *msg, size_t len)
{
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    enum mesh_dns_status st = mesh_dns_parse(msg, len, &h, &q);
    uint32_t i = st == MESH_DNS_OK ? slot_find(d, h.id) : NIL;
    /* as a resolving client does: the id, the question and its type must all match */
    if (i == NIL || d->slots[i].conn != via || !(h.flags & MESH_DNS_QR) || h.qdcount != 1 ||
        d->slots[i].qtype != q.type || d->slots[i].qclass != q.klass ||
        d->slots[i].qhash != name_hash(q.name, q.name_len)) {
        d->st.dropped_answers++;
        mesh_log_debug("dns: dropped an upstream answer (%s)",
                       st ? mesh_dns_strerror(st) : "matches no query in flight");
        return;
    }
    struct slot *s = &d->slots[i];
    msg[0] = (uint8_t)(s->client_id >> 8);
    msg[1] = (uint8_t)s->client_id;
    reply(d, s->conn, &s->client, s->client_len, msg, len);
    d->st.relayed++;
    slot_free(d, i);
}

static void on_upstream(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_dns *d = arg;
    for (int burst = 0; burst < UDP_BURST; burst++) {
        ssize_t n = recv(fd, d->buf, sizeof(d->buf), 0);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error from a dead upstream: the timer answers */
        relay(d, NULL, d->buf, (size_t)n);
    }
}

/* ---- queries ----------------------------------------------------------------------- */

/* One query from a client (UDP: <from>; TCP: <c>). <msg> is ours to change. */
static void handle_query(struct mesh_dns *d, struct tcp_conn *c, const union client_addr *from,
                         socklen_t fromlen, uint8_t *msg, size_t len)
{
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    uint8_t out[512]; /* UDP without EDNS; errors */
    size_t n;
    d->st.queries++;
    enum mesh_dns_status st = mesh_dns_parse(msg, len, &h, &q);
    if (len < MESH_DNS_HEADER_LEN || (h.flags & MESH_DNS_QR)) {
        d->st.malformed++; /* not a query: answering could start a loop */
        return;
    }
    if (st != MESH_DNS_OK || h.qdcount != 1) {
        d->st.malformed++;
        n = mesh_dns_build_error(out, sizeof(out), msg, &h, NULL, MESH_DNS_FORMERR);
        reply(d, c, from, fromlen, out, n);
        return;
    }
    if ((h.flags >> 11 & 0xf) != 0) {
        n = mesh_dns_build_error(out, sizeof(out), msg, &h, &q, MESH_DNS_NOTIMP);
        reply(d, c, from, fromlen, out, n);
        return;
    }
    struct mesh_dns_addrs a;
    bool ours = (q.type == MESH_DNS_TYPE_A || q.type == MESH_DNS_TYPE_AAAA) &&
                q.klass == MESH_DNS_CLASS_IN && lookup(d, &q, &a);
    if (ours) {
        /* a mesh name without an address of this family: NOERROR, no answer (NODATA).
         * Over UDP what does not fit in 512 bytes is cut with TC set; over TCP the
         * answer holds every address (up to a DNS message's 64 KiB) */
        bool v4 = q.type == MESH_DNS_TYPE_A;
        size_t cap = c ? 0xffff : sizeof(out);
        uint8_t *buf = c ? malloc(cap) : out;
        if (!buf) {
            buf = out;
            cap = sizeof(out);
        }
        n = mesh_dns_build_answer(buf, cap, msg, &h, &q, v4 ? (const void *)a.v4 : a.v6,
                                  v4 ? 4 : 16, v4 ? a.n_v4 : a.n_v6, d->cfg.ttl);
        if ((v4 ? a.n_v4 : a.n_v6) == 0)
            d->st.nodata++;
        d->st.answered++;
        reply(d, c, from, fromlen, buf, n);
        if (buf != out)
            free(buf);
        return;
    }
    if (!forward(d, c, from, fromlen, msg, len, &h, &q)) {
        d->st.servfail++;
        n = mesh_dns_build_error(out, sizeof(out), msg, &h, &q, MESH_DNS_SERVFAIL);
        reply(d, c, from, fromlen, out, n);
    }
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_dns *d = arg;
    for (int burst = 0; burst < UDP_BURST; burst++) {
        union client_addr from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(fd, d->buf, sizeof(d->buf), 0, &from.sa, &fromlen);
        if (n < 0)
            return;
        handle_query(d, NULL, &from, fromlen, d->buf, (size_t)n);
    }
}

/* ---- TCP: two-byte length, then the message (RFC 1035 4.2.2) ---------------------- */

static void conn_release(struct tcp_conn *c)
{
    if (c->bev || c->up || c->pending)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->d->n_conns--;
    free(c);
}

/* Ends the forwarded queries of <c>: SERVFAIL to the client when <answer>. May free <c>
 * (when its socket is closed already). */
static void conn_fail_pending(struct tcp_conn *c, bool answer)
{
    struct mesh_dns *d = c->d;
    unsigned left = c->pending;
    for (uint32_t i = d->fifo_head; i != NIL && left;) {
        uint32_t next = d->slots[i].next;
        if (d->slots[i].conn == c) {
            left--;
            if (answer)
                servfail(d, i);
            slot_free(d, i); /* the last one may free c: <left> is ours */
        }
        i = next;
    }
}

/* Closes the sockets now. Queries still on their way upstream can get no answer any more:
 * their slots go too, and with the last one the struct. */
static void conn_close(struct tcp_conn *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->up) {
        bufferevent_free(c->up);
        c->up = NULL;
    }
    if (c->pending)
        conn_fail_pending(c, false); /* frees <c> with the last one */
    else
        conn_release(c);
}

/* The next message of <in>, two-byte length first (RFC 1035 4.2.2): its length once it is
 * whole (then moved to <buf>), -1 while it is not, -2 for a length shorter than a header. */
static long frame_take(struct evbuffer *in, uint8_t *buf)
{
    uint8_t lp[2];
    if (evbuffer_copyout(in, lp, 2) < 2)
        return -1;
    size_t len = (size_t)lp[0] << 8 | lp[1];
    if (len < MESH_DNS_HEADER_LEN)
        return -2;
    if (evbuffer_get_length(in) < len + 2)
        return -1;
    evbuffer_drain(in, 2);
    evbuffer_remove(in, buf, len);
    return (long)len;
}

/* ---- TCP towards the upstream ----------------------------------------------------- */

/* The upstream connection is over: what it still owed gets SERVFAIL now rather than after
 * the timeout; the next forwarded query opens a new connection. */
static void up_close(struct tcp_conn *c)
{
    bufferevent_free(c->up);
    c->up = NULL;
    conn_fail_pending(c, true); /* the client is still there (else no c->up): <c> stays */
}

static void on_up_read(struct bufferevent *bev, void *arg)
{
    struct tcp_conn *c = arg;
    struct mesh_dns *d = c->d;
    long len;
    while ((len = frame_take(bufferevent_get_input(bev), d->buf)) >= 0)
        relay(d, c, d->buf, (size_t)len); /* writes to the client: never frees <c> or c->up */
    if (len == -2) {
        d->st.dropped_answers++;
        up_close(c);
    }
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    struct tcp_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_ERROR)
        mesh_log_debug("dns: upstream tcp: %s",
                       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    up_close(c);
}

static bool up_tcp_open(struct tcp_conn *c)
{
    struct mesh_dns *d = c->d;
    c->up = bufferevent_socket_new(d->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->up)
        return false;
    /* callbacks after the connect: one that fails at once runs the event callback inside
     * it (a refusal is reported later, from the loop) */
    if (bufferevent_socket_connect(c->up, (struct sockaddr *)&d->cfg.upstream,
                                   (int)d->cfg.upstream_len) < 0) {
        mesh_log_debug("dns: upstream tcp connect: %s", strerror(errno));
        bufferevent_free(c->up);
        c->up = NULL;
        return false;
    }
    bufferevent_setcb(c->up, on_up_read, NULL, on_up_event, c);
    bufferevent_setwatermark(c->up, EV_READ, 0, MESH_DNS_MSG_MAX + 2);
    /* a connect that hangs, or an upstream that stopped reading, is over once the queries
     * it holds timed out: else the client's next queries pile up in its output */
    struct timeval wt = {.tv_sec = d->cfg.timeout_ms / 1000,
                         .tv_usec = (suseconds_t)(d->cfg.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->up, NULL, &wt);
    bufferevent_enable(c->up, EV_READ | EV_WRITE);
    d->st.upstream_tcp_conns++;
    return true;
}

static void on_tcp_read(struct bufferevent *bev, void *arg)
{
    struct tcp_conn *c = arg;
    struct mesh_dns *d = c->d;
    long len;
    while ((len = frame_take(bufferevent_get_input(bev), d->buf)) >= 0) {
        handle_query(d, c, NULL, 0, d->buf, (size_t)len);
        if (!c->bev)
            return;
    }
    if (len == -2) { /* a zero or short length */
        d->st.malformed++;
        conn_close(c);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(bev)) > TCP_MAX_OUTPUT)
        conn_close(c);
}

/* Output drained: a client that half-closed is done once nothing is pending. */
static void on_tcp_write(struct bufferevent *bev, void *arg)
{
    struct tcp_conn *c = arg;
    if (c->eof && !c->pending)
        conn_close(c);
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    struct tcp_conn *c = arg;
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
        (c->pending || evbuffer_get_length(bufferevent_get_output(bev)))) {
        c->eof = true;
        bufferevent_disable(bev, EV_READ);
        return;
    }
    /* an idle read timeout while answers are still coming is not idle; a write timeout is
     * a client that stopped reading (maybe after a half-close): it goes */
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->pending) {
        bufferevent_enable(bev, EV_READ);
        return;
    }
    conn_close(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct mesh_dns *d = arg;
    if (d->n_conns >= d->cfg.max_tcp_conns) {
        evutil_closesocket(fd);
        return;
    }
    struct bufferevent *bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    struct tcp_conn *c = mesh_xcalloc(1, sizeof(*c));
    c->d = d;
    c->bev = bev;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->n_conns++;
    d->st.tcp_conns++;
    struct timeval idle = {.tv_sec = TCP_IDLE_S};
    bufferevent_set_timeouts(bev, &idle, &idle);
    bufferevent_setwatermark(bev, EV_READ, 0, MESH_DNS_MSG_MAX + 2);
    bufferevent_setcb(bev, on_tcp_read, on_tcp_write, on_tcp_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* ---- start / stop ------------------------------------------------------------------ */

static int udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, size, "%s:%u", host, port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, size, "[%s]:%u", host, port);
    }
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

struct mesh_dns *mesh_dns_start(struct event_base *base, const struct mesh_dns_config *cfg,
                                struct mesh_err *err)
{
    char where[80];
    addr_text(&cfg->listen, where, sizeof(where));
    /* at most one slot per 16-bit upstream id: forward() draws ids until a free one */
    if (cfg->max_inflight == 0 || cfg->max_inflight > 65536) {
        mesh_err_add(err, 0, 0, "dns", "max_inflight must be 1 to 65536");
        return NULL;
    }
    struct mesh_dns *d = mesh_xcalloc(1, sizeof(*d));
    d->base = base;
    d->cfg = *cfg;
    d->udp_fd = d->up_fd = -1;
    d->slots = mesh_xcalloc(cfg->max_inflight, sizeof(*d->slots));
    /* calloc'd: pages a quiet proxy never touches cost no memory */
    d->qwire = mesh_xcalloc(cfg->max_inflight, QWIRE_MAX);
    for (uint32_t i = 0; i < cfg->max_inflight; i++)
        d->slots[i].next = i + 1 < cfg->max_inflight ? i + 1 : NIL;
    d->free_head = 0;
    d->fifo_head = d->fifo_tail = NIL;
    for (size_t i = 0; i < HASH_BUCKETS; i++)
        d->buckets[i] = NIL;

    /* UDP first, then TCP on the port UDP got. With port 0 that TCP port may be taken by
     * someone else: pick again (a few times) rather than fail. */
    struct sockaddr_storage bound;
    socklen_t blen;
    bool ephemeral = port_of(&cfg->listen) == 0;
    for (int attempt = 0;; attempt++) {
        bound = cfg->listen;
        blen = cfg->listen_len;
        d->udp_fd = udp_socket(bound.ss_family);
        if (d->udp_fd < 0 || bind(d->udp_fd, (struct sockaddr *)&bound, blen) < 0 ||
            getsockname(d->udp_fd, (struct sockaddr *)&bound, &blen) < 0) {
            mesh_err_add(err, 0, 0, "dns", "udp %s: %s", where, strerror(errno));
            goto fail;
        }
        d->listener = evconnlistener_new_bind(base, on_accept, d,
                                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                  LEV_OPT_CLOSE_ON_EXEC,
                                              128, (struct sockaddr *)&bound, (int)blen);
        if (d->listener)
            break;
        int e = errno;
        if (ephemeral && e == EADDRINUSE && attempt < 8) {
            close(d->udp_fd);
            d->udp_fd = -1;
            continue;
        }
        addr_text(&bound, where, sizeof(where));
        mesh_err_add(err, 0, 0, "dns", "tcp %s: %s", where, strerror(e));
        goto fail;
    }
    d->port = port_of(&bound);
    if (cfg->upstream_len) {
        d->up_fd = udp_socket(cfg->upstream.ss_family);
        if (d->up_fd < 0 ||
            connect(d->up_fd, (const struct sockaddr *)&cfg->upstream, cfg->upstream_len) < 0) {
            addr_text(&cfg->upstream, where, sizeof(where));
            mesh_err_add(err, 0, 0, "dns", "upstream %s: %s", where, strerror(errno));
            goto fail;
        }
        d->up_ev = event_new(base, d->up_fd, EV_READ | EV_PERSIST, on_upstream, d);
        event_add(d->up_ev, NULL);
    }
    d->udp_ev = event_new(base, d->udp_fd, EV_READ | EV_PERSIST, on_udp, d);
    event_add(d->udp_ev, NULL);
    d->timer = evtimer_new(base, on_timer, d);
    addr_text(&bound, where, sizeof(where));
    if (cfg->upstream_len) {
        char up[80];
        addr_text(&cfg->upstream, up, sizeof(up));
        mesh_log_info("dns proxy on %s (udp, tcp), other names to %s", where, up);
    } else {
        mesh_log_info("dns proxy on %s (udp, tcp), no upstream: other names get SERVFAIL",
                      where);
    }
    return d;
fail:
    mesh_dns_stop(d);
    return NULL;
}

void mesh_dns_stop(struct mesh_dns *d)
{
    if (!d)
        return;
    while (d->conns) {
        struct tcp_conn *c = d->conns;
        d->conns = c->next;
        if (c->bev)
            bufferevent_free(c->bev);
        if (c->up)
            bufferevent_free(c->up);
        free(c);
    }
    if (d->listener)
        evconnlistener_free(d->listener);
    if (d->udp_ev)
        event_free(d->udp_ev);
    if (d->up_ev)
        event_free(d->up_ev);
    if (d->timer)
        event_free(d->timer);
    if (d->udp_fd >= 0)
        close(d->udp_fd);
    if (d->up_fd >= 0)
        close(d->up_fd);
    free(d->slots);
    free(d->qwire);
    free(d);
}

uint16_t mesh_dns_port(const struct mesh_dns *d)
{
    return d->port;
}

void mesh_dns_get_stats(const struct mesh_dns *d, struct mesh_dns_stats *out)
{
    *out = d->st;
}
