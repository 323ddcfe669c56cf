/*
 * The DNS proxy (src/core/dns.c) and its message reader/writer (dns_wire.c):
 * names with compression (good, looping, forward, into the header), every
 * truncation of a real answer, oversized names and lying counts; then a real
 * server on an event base, with a table built here and a fake upstream
 * resolver on a UDP socket and a TCP listener of the test (same port), queried
 * over UDP and TCP: a TCP query must go upstream over TCP.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/dns.h"
#include "core/log.h"
#include "core/status.h"
#include "../leakcheck.h"

/* ---- the reader ------------------------------------------------------------------ */

/* dig's answer to "www.example.com A": two records, the second name compressed twice */
static const uint8_t answer[] = {
    0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    /* 12: www.example.com A IN */
    3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
    0x00, 0x01, 0x00, 0x01,
    /* 33: www.example.com CNAME cdn.example.com (cdn + pointer to "example.com" at 16) */
    0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x06,
    3, 'c', 'd', 'n', 0xc0, 0x10,
    /* 51: cdn.example.com (pointer to 45) A 192.0.2.7 */
    0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04,
    192, 0, 2, 7,
};

LEAK_TEST(dns_wire, parses_a_real_answer)
{
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(answer, sizeof(answer), &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.id, 0x1234);
    cr_assert_eq(h.flags, 0x8180);
    cr_assert_eq(h.qdcount, 1);
    cr_assert_eq(h.ancount, 2);
    cr_assert_str_eq(q.name, "www.example.com");
    cr_assert_eq(q.name_len, 15);
    cr_assert_eq(q.type, MESH_DNS_TYPE_A);
    cr_assert_eq(q.klass, MESH_DNS_CLASS_IN);
    cr_assert_eq(q.end, 33);
    /* the compressed names read back whole; the offset moves past the pointer only */
    char name[MESH_DNS_NAME_MAX + 1];
    size_t off = 51;
    cr_assert_eq(mesh_dns_read_name(answer, sizeof(answer), &off, name, sizeof(name)),
                 MESH_DNS_OK);
    cr_assert_str_eq(name, "cdn.example.com");
    cr_assert_eq(off, 53);
    off = 45;
    cr_assert_eq(mesh_dns_read_name(answer, sizeof(answer), &off, name, sizeof(name)),
                 MESH_DNS_OK);
    cr_assert_str_eq(name, "cdn.example.com");
    cr_assert_eq(off, 51);
}

/* Every prefix of a valid message is refused, and never read past its end (ASan). */
LEAK_TEST(dns_wire, every_truncation_fails)
{
    for (size_t n = 0; n < sizeof(answer); n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, answer, n);
        struct mesh_dns_header h;
        struct mesh_dns_question q;
        enum mesh_dns_status st = mesh_dns_parse(copy, n, &h, &q);
        cr_assert(st == MESH_DNS_ESHORT || st == MESH_DNS_ECOUNT, "length %zu: %s", n,
                  mesh_dns_strerror(st));
        free(copy);
    }
}

static enum mesh_dns_status parse_bytes(const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n);
    memcpy(copy, b, n);
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    enum mesh_dns_status st = mesh_dns_parse(copy, n, &h, &q);
    free(copy);
    return st;
}

#define HDR(qd, an) 0, 1, 0, 0, 0, (qd), 0, (an), 0, 0, 0, 0

LEAK_TEST(dns_wire, compression_loops_are_refused)
{
    /* a pointer to itself */
    const uint8_t self[] = {HDR(1, 0), 0xc0, 12, 0, 1, 0, 1};
    cr_assert_eq(parse_bytes(self, sizeof(self)), MESH_DNS_EPTR);
    /* a pointer forward */
    const uint8_t fwd[] = {HDR(1, 0), 0xc0, 14, 0, 1, 0, 1, 0};
    cr_assert_eq(parse_bytes(fwd, sizeof(fwd)), MESH_DNS_EPTR);
    /* into the header */
    const uint8_t hdr[] = {HDR(1, 0), 0xc0, 2, 0, 1, 0, 1};
    cr_assert_eq(parse_bytes(hdr, sizeof(hdr)), MESH_DNS_EPTR);
    /* two names pointing at each other: the second's target is "before" it, but the
     * first points forward to the second -> every jump must go further back */
    const uint8_t pingpong[] = {HDR(1, 1),
                                1, 'a', 0xc0, 22, 0, 1, 0, 1,       /* 12: a + ptr 22 */
                                0, 0,                               /* 20: padding */
                                1, 'b', 0xc0, 12,                   /* 22: b + ptr 12 */
                                0, 1, 0, 1, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(parse_bytes(pingpong, sizeof(pingpong)), MESH_DNS_EPTR);
    /* a name in the answer that jumps back to the question, which jumps to itself */
    size_t off = 12;
    cr_assert_eq(mesh_dns_read_name(self, sizeof(self), &off, NULL, 0), MESH_DNS_EPTR);
    /* a chain of 100 pointers, each one step back, ending at a real name: allowed */
    uint8_t chain[12 + 3 + 200 + 4];
    memset(chain, 0, sizeof(chain));
    chain[5] = 1;
    chain[12] = 1;
    chain[13] = 'x';
    chain[14] = 0;
    for (size_t i = 0; i < 100; i++) {
        size_t at = 15 + 2 * i, target = i ? at - 2 : 12;
        chain[at] = (uint8_t)(0xc0 | target >> 8);
        chain[at + 1] = (uint8_t)target;
    }
    off = 15 + 2 * 99;
    char name[MESH_DNS_NAME_MAX + 1];
    cr_assert_eq(mesh_dns_read_name(chain, sizeof(chain), &off, name, sizeof(name)),
                 MESH_DNS_OK);
    cr_assert_str_eq(name, "x");
}

LEAK_TEST(dns_wire, names_longer_than_255_are_refused)
{
    /* 4 labels of 63 = 256 bytes with their lengths, + the root = 257 */
    uint8_t m[12 + 4 * 64 + 1 + 4];
    memset(m, 0, sizeof(m));
    m[5] = 1;
    for (int i = 0; i < 4; i++) {
        m[12 + i * 64] = 63;
        memset(m + 12 + i * 64 + 1, 'a', 63);
    }
    cr_assert_eq(parse_bytes(m, sizeof(m)), MESH_DNS_ELONG);
    /* 3 x 63 + 61 = 253 characters: the longest legal name */
    m[12 + 3 * 64] = 61;
    m[12 + 3 * 64 + 62] = 0;
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(m, 12 + 3 * 64 + 63 + 4, &h, &q), MESH_DNS_OK);
    cr_assert_eq(q.name_len, 253);
    /* a label type 0x40 (extended) or 0x80 (reserved) */
    const uint8_t ext[] = {HDR(1, 0), 0x41, 'a', 0, 0, 1, 0, 1};
    cr_assert_eq(parse_bytes(ext, sizeof(ext)), MESH_DNS_ELABEL);
    const uint8_t rsv[] = {HDR(1, 0), 0x81, 'a', 0, 0, 1, 0, 1};
    cr_assert_eq(parse_bytes(rsv, sizeof(rsv)), MESH_DNS_ELABEL);
}

LEAK_TEST(dns_wire, wrong_counts_are_refused)
{
    const uint8_t q[] = {HDR(1, 0), 1, 'a', 0, 0, 1, 0, 1};
    cr_assert_eq(parse_bytes(q, sizeof(q)), MESH_DNS_OK);
    /* more questions than there are */
    uint8_t two[sizeof(q)];
    memcpy(two, q, sizeof(q));
    two[5] = 2;
    cr_assert_eq(parse_bytes(two, sizeof(two)), MESH_DNS_ECOUNT);
    /* counts that could never fit: refused before walking */
    uint8_t huge[sizeof(q)];
    memcpy(huge, q, sizeof(q));
    huge[6] = huge[7] = 0xff;
    cr_assert_eq(parse_bytes(huge, sizeof(huge)), MESH_DNS_ECOUNT);
    /* bytes left over */
    const uint8_t trail[] = {HDR(1, 0), 1, 'a', 0, 0, 1, 0, 1, 0xde, 0xad};
    cr_assert_eq(parse_bytes(trail, sizeof(trail)), MESH_DNS_ECOUNT);
    /* a record whose rdlength runs past the end */
    const uint8_t rd[] = {HDR(0, 1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1, 2, 3};
    cr_assert_eq(parse_bytes(rd, sizeof(rd)), MESH_DNS_ESHORT);
    /* shorter than a header */
    cr_assert_eq(parse_bytes(q, 11), MESH_DNS_ESHORT);
}

LEAK_TEST(dns_wire, unprintable_names_are_flagged_not_refused)
{
    const uint8_t m[] = {HDR(1, 0), 3, 'a', '.', 'b', 0, 0, 1, 0, 1};
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(m, sizeof(m), &h, &q), MESH_DNS_OK);
    cr_assert(q.binary);
    cr_assert_eq(q.type, 1);
    cr_assert_eq(q.end, sizeof(m));
}

LEAK_TEST(dns_wire, builds_queries_and_answers)
{
    uint8_t m[512];
    size_t n = mesh_dns_build_query(m, sizeof(m), 0xbeef, "Reviews.default.", MESH_DNS_TYPE_A,
                                    true);
    const uint8_t want[] = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                            7, 'R', 'e', 'v', 'i', 'e', 'w', 's',
                            7, 'd', 'e', 'f', 'a', 'u', 'l', 't', 0, 0, 1, 0, 1};
    cr_assert_eq(n, sizeof(want));
    cr_assert_arr_eq(m, want, n);
    cr_assert_eq(mesh_dns_build_query(m, sizeof(m), 1, "a..b", 1, true), 0);
    cr_assert_eq(mesh_dns_build_query(m, sizeof(m), 1, "a..", 1, true), 0);
    cr_assert_eq(mesh_dns_build_query(m, 20, 1, "reviews.default", 1, true), 0);
    n = mesh_dns_build_query(m, sizeof(m), 0xbeef, "Reviews.default", MESH_DNS_TYPE_A, true);
    cr_assert_eq(n, sizeof(want));

    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(m, n, &h, &q), MESH_DNS_OK);
    struct in_addr vips[2];
    inet_pton(AF_INET, "240.240.0.1", &vips[0]);
    inet_pton(AF_INET, "240.240.0.2", &vips[1]);
    uint8_t a[512];
    size_t an = mesh_dns_build_answer(a, sizeof(a), m, &h, &q, vips, 4, 2, 30);
    const uint8_t head[] = {0xbe, 0xef, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0};
    cr_assert_arr_eq(a, head, sizeof(head));
    cr_assert_arr_eq(a + 12, m + 12, n - 12, "the question as sent, case kept");
    const uint8_t rr1[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 240, 240, 0, 1};
    cr_assert_arr_eq(a + n, rr1, sizeof(rr1));
    cr_assert_eq(an, n + 2 * 16);
    /* what we write, we read */
    struct mesh_dns_header h2;
    cr_assert_eq(mesh_dns_parse(a, an, &h2, NULL), MESH_DNS_OK);
    cr_assert_eq(h2.ancount, 2);
    /* only what fits: one record in n + 16 bytes */
    cr_assert_eq(a[2] & (MESH_DNS_TC >> 8), 0, "all of them fit: not truncated");
    an = mesh_dns_build_answer(a, n + 20, m, &h, &q, vips, 4, 2, 30);
    cr_assert_eq(an, n + 16);
    cr_assert_eq(a[7], 1);
    cr_assert_eq(a[2] & (MESH_DNS_TC >> 8), MESH_DNS_TC >> 8, "one left out: TC set");
    /* errors */
    an = mesh_dns_build_error(a, sizeof(a), m, &h, &q, MESH_DNS_SERVFAIL);
    cr_assert_eq(an, n);
    cr_assert_eq(a[3] & 0xf, MESH_DNS_SERVFAIL);
    cr_assert_eq(a[2] & 0x80, 0x80);
    an = mesh_dns_build_error(a, sizeof(a), m, &h, NULL, MESH_DNS_FORMERR);
    cr_assert_eq(an, 12);
    cr_assert_eq(a[5], 0);
}

/* ---- the server -------------------------------------------------------------------- */

struct entry {
    const char *name;
    struct in_addr v4[2];
    size_t n_v4;
    struct in6_addr v6[1];
    size_t n_v6;
};

static struct entry table[3];

static bool test_lookup(void *arg, const char *name, size_t len, struct mesh_dns_addrs *out)
{
    int *calls = arg;
    (*calls)++;
    for (size_t i = 0; i < MESH_ARRAY_LEN(table); i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0) {
            out->v4 = table[i].v4;
            out->n_v4 = table[i].n_v4;
            out->v6 = table[i].v6;
            out->n_v6 = table[i].n_v6;
            return true;
        }
    }
    return false;
}

/* UP_TRUNCATE: over UDP an empty answer with TC set (too big for UDP), over TCP the real
 * one. UP_TCP_CLOSE: TCP connections are closed when a query arrives (UDP answers).
 * UP_TCP_RUNT: over TCP a frame shorter than a DNS header. */
enum upstream_mode {
    UP_ANSWER, UP_SILENT, UP_WRONG_QUESTION, UP_TRUNCATE, UP_TCP_CLOSE, UP_TCP_RUNT
};

struct fake_conn {
    struct bufferevent *bev;
    struct fake_conn *next;
};

struct fixture {
    struct event_base *base;
    struct mesh_dns *dns;
    int up_fd;                   /* the fake upstream resolver, UDP */
    struct event *up_ev;
    struct evconnlistener *up_listener; /* ... and TCP on the same port */
    struct fake_conn *up_conns;
    enum upstream_mode mode;
    int up_queries, up_tcp_queries, up_tcp_accepted, up_tcp_eof;
    uint16_t up_last_id;
    int lookups;
    struct sockaddr_in server;
};

static struct fixture fx;

/* The fake resolver's answer to <b> (<n> bytes) into <out>; 0 for none. */
static size_t fake_answer(const uint8_t *b, size_t n, bool tcp, uint8_t *out, size_t cap)
{
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(b, n, &h, &q), MESH_DNS_OK, "forwarded as received");
    fx.up_last_id = h.id;
    if (fx.mode == UP_SILENT)
        return 0;
    size_t on;
    if (fx.mode == UP_WRONG_QUESTION) {
        on = mesh_dns_build_query(out, cap, h.id, "evil.example", q.type, true);
        out[2] |= 0x80;
    } else if (fx.mode == UP_TRUNCATE && !tcp) {
        on = mesh_dns_build_answer(out, cap, b, &h, &q, NULL, 4, 0, 300);
        out[2] |= 0x02; /* TC */
        out[2] &= (uint8_t)~0x04;
    } else {
        struct in_addr a;
        inet_pton(AF_INET, "192.0.2.1", &a);
        on = mesh_dns_build_answer(out, cap, b, &h, &q, &a, 4, 1, 300);
        out[2] &= (uint8_t)~0x04; /* not authoritative: a recursive answer */
    }
    return on;
}

/* The fake resolver over UDP: answers A 192.0.2.1 to any question (or misbehaves). */
static void on_fake_upstream(evutil_socket_t fd, short what, void *arg)
{
    uint8_t b[4096];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
    if (n <= 0)
        return;
    fx.up_queries++;
    uint8_t out[512];
    size_t on = fake_answer(b, (size_t)n, false, out, sizeof(out));
    if (on)
        sendto(fd, out, on, 0, (struct sockaddr *)&from, fl);
}

static void fake_conn_close(struct fake_conn *fc)
{
    struct fake_conn **pp = &fx.up_conns;
    while (*pp != fc)
        pp = &(*pp)->next;
    *pp = fc->next;
    bufferevent_free(fc->bev);
    free(fc);
}

/* ... over TCP: the same, length-prefixed. */
static void on_fake_tcp_read(struct bufferevent *bev, void *arg)
{
    struct fake_conn *fc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t lp[2], b[4096];
        if (evbuffer_copyout(in, lp, 2) < 2)
            return;
        size_t len = (size_t)lp[0] << 8 | lp[1];
        cr_assert_leq(len, sizeof(b));
        if (evbuffer_get_length(in) < len + 2)
            return;
        evbuffer_drain(in, 2);
        evbuffer_remove(in, b, len);
        fx.up_tcp_queries++;
        if (fx.mode == UP_TCP_CLOSE) {
            fake_conn_close(fc);
            return;
        }
        if (fx.mode == UP_TCP_RUNT) {
            const uint8_t runt[] = {0, 4, 0xde, 0xad, 0xbe, 0xef};
            bufferevent_write(bev, runt, sizeof(runt));
            continue;
        }
        uint8_t out[514];
        size_t on = fake_answer(b, len, true, out + 2, sizeof(out) - 2);
        if (on) {
            out[0] = (uint8_t)(on >> 8);
            out[1] = (uint8_t)on;
            bufferevent_write(bev, out, on + 2);
        }
    }
}

static void on_fake_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_EOF)
        fx.up_tcp_eof++;
    fake_conn_close(arg);
}

static void on_fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct fake_conn *fc = calloc(1, sizeof(*fc));
    fc->bev = bufferevent_socket_new(fx.base, fd, BEV_OPT_CLOSE_ON_FREE);
    fc->next = fx.up_conns;
    fx.up_conns = fc;
    fx.up_tcp_accepted++;
    bufferevent_setcb(fc->bev, on_fake_tcp_read, NULL, on_fake_tcp_event, fc);
    bufferevent_enable(fc->bev, EV_READ | EV_WRITE);
}

static void setup(unsigned timeout_ms, unsigned max_inflight)
{
    memset(&fx, 0, sizeof(fx));
    mesh_log_set_level(MESH_LOG_WARN);
    table[0] = (struct entry){.name = "reviews.default.svc.cluster.local", .n_v4 = 1};
    inet_pton(AF_INET, "240.240.0.7", &table[0].v4[0]);
    table[1] = (struct entry){.name = "db.example.internal", .n_v4 = 2, .n_v6 = 1};
    inet_pton(AF_INET, "240.240.0.8", &table[1].v4[0]);
    inet_pton(AF_INET, "240.240.0.9", &table[1].v4[1]);
    inet_pton(AF_INET6, "fd00::8", &table[1].v6[0]);
    table[2] = (struct entry){.name = "v6only.default.svc.cluster.local", .n_v6 = 1};
    inet_pton(AF_INET6, "fd00::9", &table[2].v6[0]);

    fx.base = event_base_new();
    struct sockaddr_in up;
    socklen_t ul;
    /* UDP on a free port, then TCP on the same one (taken by chance: another port) */
    for (int tries = 0; !fx.up_listener; tries++) {
        cr_assert_lt(tries, 20, "a port free for both UDP and TCP");
        if (tries)
            close(fx.up_fd);
        fx.up_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        up = (struct sockaddr_in){.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        ul = sizeof(up);
        cr_assert_eq(bind(fx.up_fd, (struct sockaddr *)&up, ul), 0);
        cr_assert_eq(getsockname(fx.up_fd, (struct sockaddr *)&up, &ul), 0);
        fx.up_listener = evconnlistener_new_bind(fx.base, on_fake_accept, NULL,
                                                 LEV_OPT_CLOSE_ON_FREE, 16,
                                                 (struct sockaddr *)&up, (int)ul);
    }
    fx.up_ev = event_new(fx.base, fx.up_fd, EV_READ | EV_PERSIST, on_fake_upstream, NULL);
    event_add(fx.up_ev, NULL);

    struct mesh_dns_config c;
    mesh_dns_config_init(&c);
    ((struct sockaddr_in *)&c.listen)->sin_port = 0;
    memcpy(&c.upstream, &up, sizeof(up));
    c.upstream_len = sizeof(up);
    c.lookup = test_lookup;
    c.lookup_arg = &fx.lookups;
    c.n_search = 3;
    strcpy(c.search[0], "default.svc.cluster.local");
    strcpy(c.search[1], "svc.cluster.local");
    strcpy(c.search[2], "cluster.local");
    c.timeout_ms = timeout_ms;
    c.max_inflight = max_inflight;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    fx.dns = mesh_dns_start(fx.base, &c, &err);
    cr_assert_not_null(fx.dns);
    cr_assert_neq(mesh_dns_port(fx.dns), 0);
    fx.server = (struct sockaddr_in){.sin_family = AF_INET,
                                     .sin_port = htons(mesh_dns_port(fx.dns)),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static void teardown(void)
{
    mesh_dns_stop(fx.dns);
    while (fx.up_conns)
        fake_conn_close(fx.up_conns);
    if (fx.up_listener)
        evconnlistener_free(fx.up_listener);
    event_free(fx.up_ev);
    close(fx.up_fd);
    event_base_free(fx.base);
}

static int udp_client(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&fx.server, sizeof(fx.server)), 0);
    return fd;
}

/* Runs the loop until <fd> has <want> bytes (TCP) or a datagram (want == 0); 10 s bound. */
static ssize_t await(int fd, uint8_t *buf, size_t cap, size_t want)
{
    size_t have = 0;
    for (int i = 0; i < 2000; i++) {
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, buf + have, cap - have, MSG_DONTWAIT);
        if (n > 0) {
            if (!want)
                return n;
            have += (size_t)n;
            if (have >= want)
                return (ssize_t)have;
        }
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = fx.up_fd, .events = POLLIN}};
        poll(p, 2, 5);
    }
    return -1;
}

/* Spins the loop for about <ms> without expecting anything. */
static void spin(int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 5);
    }
}

/* Spins the loop until *<count> reaches <want>, at most about 2 s; false if it never did. */
static bool spin_until(const int *count, int want)
{
    for (int i = 0; i < 2000 && *count < want; i++) {
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 1);
    }
    return *count >= want;
}

static struct mesh_dns_stats stats(void)
{
    struct mesh_dns_stats st;
    mesh_dns_get_stats(fx.dns, &st);
    return st;
}

static size_t ask_udp(int fd, const char *name, uint16_t type, uint16_t id, uint8_t *resp,
                      size_t cap)
{
    uint8_t q[512];
    size_t qn = mesh_dns_build_query(q, sizeof(q), id, name, type, true);
    cr_assert_eq(send(fd, q, qn, 0), (ssize_t)qn);
    ssize_t n = await(fd, resp, cap, 0);
    cr_assert_gt(n, 0, "no answer for %s", name);
    return (size_t)n;
}

/* The first answer record's rdata (A or AAAA) as text, "" when there is none. */
static void first_addr(const uint8_t *m, size_t n, char *out, size_t size)
{
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(m, n, &h, &q), MESH_DNS_OK);
    out[0] = '\0';
    if (!h.ancount)
        return;
    size_t off = q.end;
    cr_assert_eq(mesh_dns_read_name(m, n, &off, NULL, 0), MESH_DNS_OK);
    uint16_t type = (uint16_t)(m[off] << 8 | m[off + 1]);
    uint16_t rdlen = (uint16_t)(m[off + 8] << 8 | m[off + 9]);
    inet_ntop(type == MESH_DNS_TYPE_A ? AF_INET : AF_INET6, m + off + 10, out, (socklen_t)size);
    cr_assert_eq(rdlen, type == MESH_DNS_TYPE_A ? 4 : 16);
}

LEAK_TEST(dns_server, answers_mesh_names_from_the_table)
{
    setup(5000, 16);
    int fd = udp_client();
    uint8_t r[4096];
    char addr[64];
    size_t n = ask_udp(fd, "Reviews.Default.svc.cluster.local", MESH_DNS_TYPE_A, 0x4242, r,
                       sizeof(r));
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(r, n, &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.id, 0x4242);
    cr_assert(h.flags & MESH_DNS_QR);
    cr_assert(h.flags & MESH_DNS_AA);
    cr_assert_eq(h.flags & 0xf, MESH_DNS_NOERROR);
    cr_assert_str_eq(q.name, "Reviews.Default.svc.cluster.local", "case kept (0x20)");
    cr_assert_eq(h.ancount, 1);
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "240.240.0.7");
    /* TTL 30 */
    size_t ttl_at = q.end + 2 + 4;
    cr_assert_eq(r[ttl_at] << 24 | r[ttl_at + 1] << 16 | r[ttl_at + 2] << 8 | r[ttl_at + 3], 30);

    /* short name and name.ns through the search suffixes */
    n = ask_udp(fd, "reviews", MESH_DNS_TYPE_A, 2, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "240.240.0.7");
    n = ask_udp(fd, "reviews.default", MESH_DNS_TYPE_A, 3, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "240.240.0.7");
    /* a ServiceEntry host with two addresses, and its AAAA */
    n = ask_udp(fd, "db.example.internal.", MESH_DNS_TYPE_A, 4, r, sizeof(r));
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert_eq(h.ancount, 2);
    n = ask_udp(fd, "db.example.internal", MESH_DNS_TYPE_AAAA, 5, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "fd00::8");
    /* AAAA of a name with only IPv4: NOERROR and no answer (NODATA), not forwarded */
    n = ask_udp(fd, "reviews", MESH_DNS_TYPE_AAAA, 6, r, sizeof(r));
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert_eq(h.flags & 0xf, MESH_DNS_NOERROR);
    cr_assert_eq(h.ancount, 0);
    n = ask_udp(fd, "v6only", MESH_DNS_TYPE_AAAA, 7, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "fd00::9");
    cr_assert_eq(fx.up_queries, 0, "mesh names never reach the upstream");
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.answered, 7);
    cr_assert_eq(st.nodata, 1);
    close(fd);
    teardown();
}

LEAK_TEST(dns_server, forwards_other_names)
{
    setup(5000, 16);
    int fd = udp_client();
    uint8_t r[4096];
    char addr[64];
    size_t n = ask_udp(fd, "www.example.com", MESH_DNS_TYPE_A, 0x7777, r, sizeof(r));
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(r, n, &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.id, 0x7777, "the client's id, whatever went upstream");
    cr_assert_eq(h.flags & MESH_DNS_AA, 0, "the upstream's answer, relayed as is");
    cr_assert_str_eq(q.name, "www.example.com");
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "192.0.2.1");
    cr_assert_eq(fx.up_queries, 1);
    /* other types for mesh names go upstream too */
    n = ask_udp(fd, "reviews.default.svc.cluster.local", 16 /* TXT */, 9, r, sizeof(r));
    cr_assert_eq(fx.up_queries, 2);
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.forwarded, 2);
    cr_assert_eq(st.relayed, 2);
    close(fd);
    teardown();
}

LEAK_TEST(dns_server, timeout_and_wrong_answers_give_servfail)
{
    setup(200, 16);
    fx.mode = UP_WRONG_QUESTION;
    int fd = udp_client();
    uint8_t r[4096];
    size_t n = ask_udp(fd, "www.example.com", MESH_DNS_TYPE_A, 0x1111, r, sizeof(r));
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(r, n, &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.id, 0x1111);
    cr_assert_eq(h.flags & 0xf, MESH_DNS_SERVFAIL);
    cr_assert_str_eq(q.name, "www.example.com", "SERVFAIL carries the question");
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.dropped_answers, 1, "the answer to another question was dropped");
    cr_assert_eq(st.timeouts, 1);
    fx.mode = UP_SILENT;
    n = ask_udp(fd, "silent.example.com", MESH_DNS_TYPE_A, 0x2222, r, sizeof(r));
    cr_assert_eq(mesh_dns_parse(r, n, &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.flags & 0xf, MESH_DNS_SERVFAIL);
    close(fd);
    teardown();
}

/* The in-flight table is bounded: the query beyond it gets SERVFAIL at once. */
LEAK_TEST(dns_server, bounded_inflight)
{
    setup(60000, 2);
    fx.mode = UP_SILENT;
    int fd = udp_client();
    uint8_t q[512], r[512];
    for (uint16_t id = 1; id <= 2; id++) {
        size_t qn = mesh_dns_build_query(q, sizeof(q), id, "slow.example.com", 1, true);
        send(fd, q, qn, 0);
    }
    cr_assert(spin_until(&fx.up_queries, 2));
    cr_assert_eq(fx.up_queries, 2);
    size_t n = ask_udp(fd, "third.example.com", MESH_DNS_TYPE_A, 3, r, sizeof(r));
    struct mesh_dns_header h;
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert_eq(h.id, 3);
    cr_assert_eq(h.flags & 0xf, MESH_DNS_SERVFAIL);
    cr_assert_eq(fx.up_queries, 2, "never sent upstream");
    /* mesh names are still answered while the table is full */
    n = ask_udp(fd, "reviews", MESH_DNS_TYPE_A, 4, r, sizeof(r));
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert_eq(h.ancount, 1);
    close(fd);
    teardown(); /* two queries still in flight: freed without answers */
}

LEAK_TEST(dns_server, malformed_queries)
{
    setup(5000, 16);
    int fd = udp_client();
    uint8_t r[512];
    /* two questions: FORMERR without a question */
    uint8_t m[512];
    size_t n = mesh_dns_build_query(m, sizeof(m), 0x99, "reviews", 1, true);
    m[5] = 2;
    send(fd, m, n, 0);
    ssize_t rn = await(fd, r, sizeof(r), 0);
    cr_assert_eq(rn, 12);
    cr_assert_eq(r[0] << 8 | r[1], 0x99);
    cr_assert_eq(r[3] & 0xf, MESH_DNS_FORMERR);
    /* a compression loop */
    const uint8_t loop[] = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    send(fd, loop, sizeof(loop), 0);
    rn = await(fd, r, sizeof(r), 0);
    cr_assert_eq(rn, 12);
    cr_assert_eq(r[3] & 0xf, MESH_DNS_FORMERR);
    /* an opcode other than QUERY */
    n = mesh_dns_build_query(m, sizeof(m), 0x55, "reviews", 1, true);
    m[2] |= 2 << 3; /* STATUS */
    send(fd, m, n, 0);
    rn = await(fd, r, sizeof(r), 0);
    cr_assert_gt(rn, 12);
    cr_assert_eq(r[3] & 0xf, MESH_DNS_NOTIMP);
    /* a response (QR set) and a runt get nothing: no loops between proxies */
    n = mesh_dns_build_query(m, sizeof(m), 0x56, "reviews", 1, true);
    m[2] |= 0x80;
    send(fd, m, n, 0);
    send(fd, m, 5, 0);
    spin(100);
    cr_assert_eq(recv(fd, r, sizeof(r), MSG_DONTWAIT), -1);
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.malformed, 4);
    close(fd);
    teardown();
}

static int tcp_client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&fx.server, sizeof(fx.server)), 0);
    return fd;
}

static void tcp_send_query(int fd, const char *name, uint16_t id)
{
    uint8_t q[514];
    size_t qn = mesh_dns_build_query(q + 2, sizeof(q) - 2, id, name, MESH_DNS_TYPE_A, true);
    q[0] = (uint8_t)(qn >> 8);
    q[1] = (uint8_t)qn;
    cr_assert_eq(send(fd, q, qn + 2, 0), (ssize_t)qn + 2);
}

/* Reads one length-prefixed answer; returns its length (message at buf). */
static size_t tcp_answer(int fd, uint8_t *buf, size_t cap)
{
    uint8_t lp[2];
    cr_assert_eq(await(fd, lp, 2, 2), 2);
    size_t len = (size_t)lp[0] << 8 | lp[1];
    cr_assert_leq(len, cap);
    cr_assert_eq(await(fd, buf, len, len), (ssize_t)len);
    return len;
}

/* Runs the loop until the server closes <fd> (recv returns 0); 10 s bound. */
static bool closed_by_peer(int fd)
{
    for (int i = 0; i < 2000; i++) {
        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        uint8_t b[64];
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        poll(NULL, 0, 5);
    }
    return false;
}

LEAK_TEST(dns_server, tcp)
{
    setup(5000, 16);
    int fd = tcp_client();
    /* two queries in one write: a mesh name and a forwarded one */
    tcp_send_query(fd, "reviews", 1);
    tcp_send_query(fd, "www.example.com", 2);
    uint8_t r[4096];
    char addr[64];
    bool seen[3] = {false};
    for (int i = 0; i < 2; i++) {
        size_t n = tcp_answer(fd, r, sizeof(r));
        uint16_t id = (uint16_t)(r[0] << 8 | r[1]);
        cr_assert(id == 1 || id == 2);
        seen[id] = true;
        first_addr(r, n, addr, sizeof(addr));
        cr_assert_str_eq(addr, id == 1 ? "240.240.0.7" : "192.0.2.1");
    }
    cr_assert(seen[1] && seen[2]);
    /* a client that half-closes after its query still gets the answer */
    fx.mode = UP_ANSWER;
    tcp_send_query(fd, "late.example.com", 3);
    shutdown(fd, SHUT_WR);
    size_t n = tcp_answer(fd, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "192.0.2.1");
    close(fd);
    /* a zero length frame closes the connection */
    fd = tcp_client();
    const uint8_t zero[2] = {0, 0};
    send(fd, zero, 2, 0);
    cr_assert(closed_by_peer(fd));
    close(fd);
    /* the forwarded queries went upstream over TCP, both on one connection */
    cr_assert_eq(fx.up_queries, 0, "nothing over UDP");
    cr_assert_eq(fx.up_tcp_queries, 2);
    cr_assert_eq(fx.up_tcp_accepted, 1);
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.forwarded_tcp, 2);
    cr_assert_eq(st.upstream_tcp_conns, 1);
    cr_assert_eq(st.relayed, 2);
    teardown();
}

/* An answer too big for UDP: the UDP client gets the truncated one (TC set, it retries over
 * TCP, as a resolver library does); the TCP client gets the whole answer, fetched over TCP. */
LEAK_TEST(dns_server, tcp_client_never_gets_a_truncated_udp_answer)
{
    setup(5000, 16);
    fx.mode = UP_TRUNCATE;
    int ufd = udp_client();
    uint8_t r[4096];
    char addr[64];
    size_t n = ask_udp(ufd, "big.example.com", MESH_DNS_TYPE_A, 0x0101, r, sizeof(r));
    struct mesh_dns_header h;
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert(h.flags & MESH_DNS_TC, "over UDP: the truncated answer, as the resolver sent it");
    cr_assert_eq(h.ancount, 0);
    int fd = tcp_client();
    tcp_send_query(fd, "big.example.com", 0x0202);
    n = tcp_answer(fd, r, sizeof(r));
    cr_assert_eq(mesh_dns_parse(r, n, &h, NULL), MESH_DNS_OK);
    cr_assert_eq(h.id, 0x0202);
    cr_assert_eq(h.flags & MESH_DNS_TC, 0, "over TCP: never the truncated answer");
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "192.0.2.1");
    cr_assert_eq(fx.up_queries, 1, "UDP asked once");
    cr_assert_eq(fx.up_tcp_queries, 1, "TCP asked over TCP");
    close(fd);
    close(ufd);
    teardown();
}

/* Asks <name> over the TCP connection <fd> and checks the answer: id <id>, then SERVFAIL
 * (<addr> NULL) or the first address <addr>. */
static void expect_tcp(int fd, const char *name, uint16_t id, const char *addr)
{
    uint8_t r[4096];
    char got[64];
    tcp_send_query(fd, name, id);
    size_t n = tcp_answer(fd, r, sizeof(r)); /* await bounds it to 10 s */
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    cr_assert_eq(mesh_dns_parse(r, n, &h, &q), MESH_DNS_OK);
    cr_assert_eq(h.id, id);
    cr_assert_str_eq(q.name, name);
    if (!addr) {
        cr_assert_eq(h.flags & 0xf, MESH_DNS_SERVFAIL, "%s (%u): SERVFAIL", name, id);
        return;
    }
    first_addr(r, n, got, sizeof(got));
    cr_assert_str_eq(got, addr);
}

/* The upstream closes the TCP connection without answering, or sends a frame too short for
 * a message: SERVFAIL at once (well before the 60 s timeout), and the next query opens a
 * new connection. */
LEAK_TEST(dns_server, tcp_upstream_closes)
{
    setup(60000, 16);
    int fd = tcp_client();
    fx.mode = UP_TCP_CLOSE;
    expect_tcp(fd, "www.example.com", 7, NULL);
    fx.mode = UP_ANSWER;
    expect_tcp(fd, "www.example.com", 8, "192.0.2.1");
    cr_assert_eq(fx.up_tcp_accepted, 2);
    fx.mode = UP_TCP_RUNT;
    expect_tcp(fd, "www.example.com", 9, NULL);
    fx.mode = UP_ANSWER;
    expect_tcp(fd, "www.example.com", 10, "192.0.2.1");
    cr_assert_eq(fx.up_tcp_accepted, 3);
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.upstream_tcp_conns, 3);
    cr_assert_eq(st.timeouts, 0);
    close(fd);
    teardown();
}

/* No TCP at the upstream (connection refused): SERVFAIL at once; UDP still works. */
LEAK_TEST(dns_server, tcp_upstream_refuses)
{
    setup(60000, 16);
    evconnlistener_free(fx.up_listener);
    fx.up_listener = NULL;
    int fd = tcp_client();
    expect_tcp(fd, "www.example.com", 1, NULL);
    expect_tcp(fd, "www.example.com", 2, NULL); /* again: a refusal leaves nothing behind */
    int ufd = udp_client();
    uint8_t r[512];
    char addr[64];
    size_t n = ask_udp(ufd, "www.example.com", MESH_DNS_TYPE_A, 3, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "192.0.2.1");
    close(ufd);
    close(fd);
    teardown();
}

/* The client leaves with a query upstream (to the proxy, as a half-close: it waits for the
 * answer): the timeout answers, then the connection and its upstream one close, and the
 * query's slot is free again (the only slot here: the next query gets it). */
LEAK_TEST(dns_server, tcp_client_gone_before_the_answer)
{
    setup(200, 1);
    fx.mode = UP_SILENT;
    int fd = tcp_client();
    tcp_send_query(fd, "www.example.com", 1);
    cr_assert(spin_until(&fx.up_tcp_queries, 1));
    close(fd);
    cr_assert(spin_until(&fx.up_tcp_eof, 1), "the upstream connection closed with the client's");
    cr_assert_eq(fx.up_tcp_eof, 1);
    fx.mode = UP_ANSWER;
    int ufd = udp_client();
    uint8_t r[512];
    char addr[64];
    size_t n = ask_udp(ufd, "www.example.com", MESH_DNS_TYPE_A, 2, r, sizeof(r));
    first_addr(r, n, addr, sizeof(addr));
    cr_assert_str_eq(addr, "192.0.2.1", "the slot was free again");
    struct mesh_dns_stats st = stats();
    cr_assert_eq(st.timeouts, 1);
    close(ufd);
    teardown();
}

LEAK_TEST(dns_server, resolv_conf)
{
    char path[] = "/tmp/meshd-dns-resolv-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char text[] = "# generated\nsearch Default.svc.cluster.local. svc.cluster.local "
                        "cluster.local\nnameserver bogus\nnameserver 10.96.0.10\n"
                        "nameserver 10.96.0.11\noptions ndots:5\n";
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    struct mesh_dns_config c;
    mesh_dns_config_init(&c);
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    cr_assert_eq(mesh_dns_read_resolv_conf(&c, path, &err), 0);
    cr_assert_eq(c.n_search, 3);
    cr_assert_str_eq(c.search[0], "default.svc.cluster.local");
    const struct sockaddr_in *in = (const struct sockaddr_in *)&c.upstream;
    char a[32];
    inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
    cr_assert_str_eq(a, "10.96.0.10");
    cr_assert_eq(ntohs(in->sin_port), 53);
    /* an upstream given first (--dns-upstream) is kept; the search line still counts */
    FILE *f = fopen(path, "w");
    fputs("nameserver 10.96.0.12\nsearch x\n", f);
    fclose(f);
    mesh_dns_config_init(&c);
    ((struct sockaddr_in *)&c.upstream)->sin_family = AF_INET;
    ((struct sockaddr_in *)&c.upstream)->sin_port = htons(5353);
    inet_pton(AF_INET, "192.0.2.53", &((struct sockaddr_in *)&c.upstream)->sin_addr);
    c.upstream_len = sizeof(struct sockaddr_in);
    cr_assert_eq(mesh_dns_read_resolv_conf(&c, path, &err), 0);
    inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
    cr_assert_str_eq(a, "192.0.2.53");
    cr_assert_eq(ntohs(in->sin_port), 5353);
    cr_assert_eq(c.n_search, 1);
    cr_assert_str_eq(c.search[0], "x");
    /* no nameserver and none given: an error */
    f = fopen(path, "w");
    fputs("search x\n", f);
    fclose(f);
    mesh_dns_config_init(&c);
    cr_assert_eq(mesh_dns_read_resolv_conf(&c, path, &err), -1);
    cr_assert_eq(err.count, 1);
    unlink(path);
    cr_assert_eq(mesh_dns_read_resolv_conf(&c, path, &err), -1);
}

/* One slot per 16-bit upstream id: a table larger than the ids is refused at the start. */
LEAK_TEST(dns_server, max_inflight_bounded_by_the_ids)
{
    mesh_log_set_level(MESH_LOG_WARN);
    struct event_base *base = event_base_new();
    struct mesh_dns_config c;
    mesh_dns_config_init(&c);
    ((struct sockaddr_in *)&c.listen)->sin_port = 0;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    c.max_inflight = 65537;
    cr_assert_null(mesh_dns_start(base, &c, &err));
    cr_assert_eq(err.count, 1);
    c.max_inflight = 0;
    cr_assert_null(mesh_dns_start(base, &c, &err));
    event_base_free(base);
}
