/*
 * The TLS ClientHello reader (src/core/tls_sni.c): real ClientHellos from
 * openssl s_client (sni_hellos.h), whole, byte by byte, re-fragmented across
 * records, truncated, oversized, without SNI, with several names, and every
 * length field lying about what follows.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/tls_sni.h"
#include "../leakcheck.h"
#include "sni_hellos.h"

#define SNI_TEST(name)                                                                             \
    static void name##_body(void);                                                                 \
    Test(sni, name)                                                                                \
    {                                                                                              \
        name##_body();                                                                             \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void name##_body(void)

static char name[MESH_SNI_NAME_MAX + 1];

/* One call with everything. */
static enum mesh_sni_status read_all(const uint8_t *b, size_t n)
{
    struct mesh_sni_reader r;
    mesh_sni_reader_init(&r);
    size_t need = 0;
    name[0] = '\0';
    return mesh_sni_read(&r, b, n, &need, name, sizeof(name));
}

/*
 * The bytes arrive <step> at a time; the reader is called like tcp_proxy.c calls it:
 * only once the buffer reaches what it asked for. Checks that it never asks for more
 * than the input holds when the input is complete.
 */
static enum mesh_sni_status read_in_steps(const uint8_t *b, size_t n, size_t step, size_t *calls)
{
    struct mesh_sni_reader r;
    mesh_sni_reader_init(&r);
    size_t need = 0, len = 0;
    *calls = 0;
    name[0] = '\0';
    for (;;) {
        len = MESH_MIN(n, len + step);
        if (len < need && len < n)
            continue;
        (*calls)++;
        enum mesh_sni_status st = mesh_sni_read(&r, b, len, &need, name, sizeof(name));
        if (st != MESH_SNI_MORE)
            return st;
        cr_assert_gt(need, len, "MORE must ask for more than it has (need %zu, len %zu)", need, len);
        if (len == n)
            return st;
    }
}

/* ---- Building ClientHellos ---- */

struct buf {
    uint8_t b[80 * 1024];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    cr_assert_leq(b->n + n, sizeof(b->b));
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put8(struct buf *b, unsigned v) { uint8_t x = (uint8_t)v; put(b, &x, 1); }
static void put16(struct buf *b, unsigned v) { put8(b, v >> 8); put8(b, v); }
static void put24(struct buf *b, unsigned v) { put8(b, v >> 16); put16(b, v); }

/* A ClientHello body: TLS 1.2 version, zero random, no session id, one suite, null compression,
 * then <ext> (the extensions' contents, after the 2-byte block length) when <ext_len> >= 0. */
static void hello_body(struct buf *m, const uint8_t *ext, long ext_len)
{
    static const uint8_t random[32];
    put16(m, 0x0303);
    put(m, random, sizeof(random));
    put8(m, 0);
    put16(m, 2);
    put16(m, 0x1301);
    put8(m, 1);
    put8(m, 0);
    if (ext_len >= 0) {
        put16(m, (unsigned)ext_len);
        put(m, ext, (size_t)ext_len);
    }
}

/* The handshake message <msg> (type + length + body) in records of at most <frag> bytes. */
static void records(struct buf *out, const uint8_t *msg, size_t n, size_t frag)
{
    out->n = 0;
    for (size_t off = 0; off < n; off += frag) {
        size_t k = MESH_MIN(frag, n - off);
        put8(out, 22);
        put16(out, 0x0301);
        put16(out, (unsigned)k);
        put(out, msg + off, k);
    }
}

/* A whole ClientHello record (or records) with the extensions <ext>. */
static void hello(struct buf *out, const uint8_t *ext, long ext_len, size_t frag)
{
    static struct buf body, msg;
    body.n = msg.n = 0;
    hello_body(&body, ext, ext_len);
    put8(&msg, 1);
    put24(&msg, (unsigned)body.n);
    put(&msg, body.b, body.n);
    records(out, msg.b, msg.n, frag);
}

/* server_name extension with the given host names (name_type 0 each). */
static void sni_ext(struct buf *e, const char *const *names, size_t n)
{
    size_t list = 0;
    for (size_t i = 0; i < n; i++)
        list += 3 + strlen(names[i]);
    put16(e, 0);
    put16(e, (unsigned)(list + 2));
    put16(e, (unsigned)list);
    for (size_t i = 0; i < n; i++) {
        put8(e, 0);
        put16(e, (unsigned)strlen(names[i]));
        put(e, names[i], strlen(names[i]));
    }
}

/* The handshake message of a one-record capture, for re-fragmenting. */
static const uint8_t *msg_of(const uint8_t *rec, size_t n, size_t *len)
{
    cr_assert_gt(n, 5);
    *len = n - 5;
    return rec + 5;
}

/* ---- Real ClientHellos ---- */

SNI_TEST(real_hellos_whole)
{
    cr_expect_eq(read_all(hello_tls13_sni, sizeof(hello_tls13_sni)), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "a.example.com");
    cr_expect_eq(read_all(hello_tls13_alpn, sizeof(hello_tls13_alpn)), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "a.example.com");
    cr_expect_eq(read_all(hello_tls12_sni_upper, sizeof(hello_tls12_sni_upper)), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "b.example.com", "the name is lowercased");
    cr_expect_eq(read_all(hello_tls13_nosni, sizeof(hello_tls13_nosni)), MESH_SNI_ABSENT);
}

SNI_TEST(real_hello_byte_by_byte_and_in_reads)
{
    static const size_t steps[] = {1, 2, 3, 5, 7, 64, 100, 1000};
    for (size_t i = 0; i < MESH_ARRAY_LEN(steps); i++) {
        size_t calls;
        enum mesh_sni_status st =
            read_in_steps(hello_tls13_sni, sizeof(hello_tls13_sni), steps[i], &calls);
        cr_expect_eq(st, MESH_SNI_FOUND, "step %zu: %s", steps[i], mesh_sni_status_str(st));
        cr_expect_str_eq(name, "a.example.com");
        /* one record: the reader asks for its header, then its whole length */
        cr_expect_leq(calls, 3, "step %zu: %zu calls", steps[i], calls);
    }
}

SNI_TEST(real_hello_fragmented_across_records)
{
    size_t n;
    const uint8_t *msg = msg_of(hello_tls13_alpn, sizeof(hello_tls13_alpn), &n);
    static struct buf out;
    /* 1, 2, 3 split the 4-byte handshake header itself across records */
    static const size_t frags[] = {1, 2, 3, 4, 5, 17, 100, 255};
    for (size_t i = 0; i < MESH_ARRAY_LEN(frags); i++) {
        records(&out, msg, n, frags[i]);
        cr_expect_eq(read_all(out.b, out.n), MESH_SNI_FOUND, "records of %zu", frags[i]);
        cr_expect_str_eq(name, "a.example.com");
        size_t calls;
        cr_expect_eq(read_in_steps(out.b, out.n, 13, &calls), MESH_SNI_FOUND,
                     "records of %zu in reads of 13", frags[i]);
        cr_expect_str_eq(name, "a.example.com");
    }
    records(&out, msg, n, 1);
    size_t calls;
    cr_expect_eq(read_in_steps(out.b, out.n, 1, &calls), MESH_SNI_FOUND);
    /* one byte at a time, one-byte records: each record header is walked once */
    cr_expect_leq(calls, 2 * n + 2, "%zu calls for %zu records", calls, n);
}

SNI_TEST(truncated_hello_asks_for_more)
{
    for (size_t n = 0; n < sizeof(hello_tls13_sni); n++) {
        enum mesh_sni_status st = read_all(hello_tls13_sni, n);
        cr_expect_eq(st, MESH_SNI_MORE, "prefix of %zu: %s", n, mesh_sni_status_str(st));
    }
    size_t n;
    const uint8_t *msg = msg_of(hello_tls13_sni, sizeof(hello_tls13_sni), &n);
    static struct buf out;
    records(&out, msg, n, 50);
    for (size_t k = 0; k < out.n; k++)
        cr_expect_eq(read_all(out.b, k), MESH_SNI_MORE, "fragmented prefix of %zu", k);
}

SNI_TEST(bytes_after_the_hello_are_ignored)
{
    static struct buf b;
    b.n = 0;
    put(&b, hello_tls13_sni, sizeof(hello_tls13_sni));
    put(&b, "\x17\x03\x03\x00\x05hello", 10); /* early data record after it */
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "a.example.com");
}

/*
 * Every length field made to end exactly where the truncated input ends: the reader
 * sees "complete" messages cut at every point and must reject them without reading
 * past the end (AddressSanitizer watches the heap copy).
 */
SNI_TEST(lying_lengths_never_overread)
{
    size_t n;
    const uint8_t *msg = msg_of(hello_tls13_alpn, sizeof(hello_tls13_alpn), &n);
    for (size_t cut = 4; cut <= n; cut++) {
        uint8_t *b = malloc(5 + cut);
        cr_assert_not_null(b);
        memcpy(b, hello_tls13_alpn, 5);
        memcpy(b + 5, msg, cut);
        b[3] = (uint8_t)(cut >> 8);
        b[4] = (uint8_t)cut;
        size_t body = cut - 4;
        b[6] = (uint8_t)(body >> 16);
        b[7] = (uint8_t)(body >> 8);
        b[8] = (uint8_t)body;
        enum mesh_sni_status st = read_all(b, 5 + cut);
        if (cut == n)
            cr_expect_eq(st, MESH_SNI_FOUND);
        else
            cr_expect(st == MESH_SNI_INVALID || st == MESH_SNI_ABSENT,
                      "cut at %zu: %s", cut, mesh_sni_status_str(st));
        free(b);
    }
}

/* ---- Built ClientHellos ---- */

SNI_TEST(no_extensions_and_no_sni)
{
    static struct buf b, e;
    hello(&b, NULL, -1, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_ABSENT, "no extension block at all");
    e.n = 0;
    put16(&e, 16); /* ALPN only */
    put16(&e, 5);
    put16(&e, 3);
    put8(&e, 2);
    put(&e, "h2", 2);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_ABSENT);
}

SNI_TEST(one_name_found)
{
    static struct buf b, e;
    const char *names[] = {"Api.Example.com"};
    e.n = 0;
    sni_ext(&e, names, 1);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "api.example.com");
}

SNI_TEST(several_names_are_refused)
{
    static struct buf b, e;
    const char *names[] = {"a.example.com", "b.example.com"};
    e.n = 0;
    sni_ext(&e, names, 2);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "two host names in one list");
    /* two server_name extensions */
    e.n = 0;
    sni_ext(&e, names, 1);
    sni_ext(&e, names + 1, 1);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "server_name twice");
}

SNI_TEST(bad_names_are_refused)
{
    static const char *const bad[] = {"a b.com", "a..com", ".a.com", "a.com.", "a.com\x01",
                                      "caf\xc3\xa9.com", "*.a.com", "a/b"};
    static struct buf b, e;
    for (size_t i = 0; i < MESH_ARRAY_LEN(bad); i++) {
        e.n = 0;
        sni_ext(&e, &bad[i], 1);
        hello(&b, e.b, (long)e.n, 16384);
        cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "name %s", bad[i]);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    for (size_t i = 60; i < sizeof(longname); i += 61)
        longname[i] = '.';
    longname[256] = '\0'; /* 256 bytes: one more than a HostName may have */
    const char *p = longname;
    e.n = 0;
    sni_ext(&e, &p, 1);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "256-byte name");
    longname[255] = '\0';
    longname[254] = 'z';
    e.n = 0;
    sni_ext(&e, &p, 1);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_FOUND, "255-byte name");
    cr_expect_eq(strlen(name), 255);
}

SNI_TEST(malformed_extensions_are_refused)
{
    static struct buf b, e;
    /* name_type 1 */
    e.n = 0;
    put16(&e, 0);
    put16(&e, 8);
    put16(&e, 6);
    put8(&e, 1);
    put16(&e, 3);
    put(&e, "a.b", 3);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "name_type 1");
    /* empty server_name (the server's acknowledgement form, not a client's) */
    e.n = 0;
    put16(&e, 0);
    put16(&e, 0);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "empty server_name");
    /* list length shorter than the extension */
    e.n = 0;
    put16(&e, 0);
    put16(&e, 9);
    put16(&e, 6);
    put8(&e, 0);
    put16(&e, 3);
    put(&e, "a.bX", 4);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "trailing byte in server_name");
    /* an extension running past the block */
    e.n = 0;
    put16(&e, 16);
    put16(&e, 50);
    put16(&e, 3);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "extension longer than the block");
    /* half an extension header */
    e.n = 0;
    put8(&e, 0);
    hello(&b, e.b, (long)e.n, 16384);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "one stray byte");
}

SNI_TEST(not_tls)
{
    cr_expect_eq(read_all((const uint8_t *)"G", 1), MESH_SNI_NOT_TLS, "decided on one byte");
    cr_expect_eq(read_all((const uint8_t *)"GET / HTTP/1.1\r\n", 16), MESH_SNI_NOT_TLS);
    cr_expect_eq(read_all((const uint8_t *)"\x16\x02", 2), MESH_SNI_NOT_TLS, "SSL 2 style");
    cr_expect_eq(read_all((const uint8_t *)"\x16", 1), MESH_SNI_MORE);
    cr_expect_eq(read_all((const uint8_t *)"\x16\x03", 2), MESH_SNI_MORE);
    /* a TLS record that is not a ClientHello */
    cr_expect_eq(read_all((const uint8_t *)"\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9),
                 MESH_SNI_INVALID, "a ServerHello");
    cr_expect_eq(read_all((const uint8_t *)"\x16\x03\x01\x00\x00", 5), MESH_SNI_INVALID,
                 "an empty record");
    /* an alert record in the middle of a fragmented hello */
    static struct buf b;
    size_t n;
    const uint8_t *msg = msg_of(hello_tls13_sni, sizeof(hello_tls13_sni), &n);
    records(&b, msg, 10, 10);
    put(&b, "\x15\x03\x03\x00\x02\x02\x28", 7);
    cr_expect_eq(read_all(b.b, b.n), MESH_SNI_INVALID, "alert between fragments");
}

SNI_TEST(oversized_input_is_bounded)
{
    /* a record longer than TLS allows */
    cr_expect_eq(read_all((const uint8_t *)"\x16\x03\x01\x40\x01", 5), MESH_SNI_INVALID);
    /* a ClientHello that claims 1 MiB: refused on its header, nothing buffered for it */
    cr_expect_eq(read_all((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x10\x00\x00", 9),
                 MESH_SNI_TOO_BIG);
    /* a real 30000-byte ClientHello (big padding extension) across two records */
    static struct buf b, e;
    e.n = 0;
    const char *names[] = {"big.example.com"};
    sni_ext(&e, names, 1);
    put16(&e, 21);
    put16(&e, 30000);
    static const uint8_t zeros[30000];
    put(&e, zeros, sizeof(zeros));
    hello(&b, e.b, (long)e.n, 16384);
    size_t calls;
    cr_expect_eq(read_in_steps(b.b, b.n, 1000, &calls), MESH_SNI_TOO_BIG);
    /* a 12000-byte one in 1000-byte records fits */
    e.n = 0;
    sni_ext(&e, names, 1);
    put16(&e, 21);
    put16(&e, 12000);
    put(&e, zeros, 12000);
    hello(&b, e.b, (long)e.n, 1000);
    cr_expect_leq(b.n, MESH_SNI_MAX_INPUT);
    cr_expect_eq(read_in_steps(b.b, b.n, 1000, &calls), MESH_SNI_FOUND);
    cr_expect_str_eq(name, "big.example.com");
    /* the same hello in 1-byte records needs 5x the bytes: over the budget */
    hello(&b, e.b, (long)e.n, 1);
    cr_expect_eq(read_in_steps(b.b, b.n, 4096, &calls), MESH_SNI_TOO_BIG);
}
