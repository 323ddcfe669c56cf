#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/lz.h"
#include "../leakcheck.h"

/* Compresses <n> bytes of <src>, decompresses them back and compares; returns the compressed size. */
static size_t round_trip(const void *src, size_t n)
{
    size_t clen = 0;
    unsigned char *c = mesh_lz_compress(src, n, &clen);
    cr_assert_not_null(c);
    cr_assert_leq(clen, n + n / 255 + 16);
    unsigned char *d = malloc(n + 1);
    cr_assert_not_null(d);
    cr_assert(mesh_lz_decompress(c, clen, d, n), "size %zu", n);
    cr_assert_eq(memcmp(d, src, n), 0, "size %zu", n);
    /* the stream names its own length: a buffer one byte longer or shorter is refused */
    if (n)
        cr_expect_not(mesh_lz_decompress(c, clen, d, n - 1));
    cr_expect_not(mesh_lz_decompress(c, clen, d, n + 1));
    free(d);
    free(c);
    return clen;
}

LEAK_TEST(lz, empty_and_tiny_inputs)
{
    round_trip("", 0);
    round_trip("a", 1);
    round_trip("abc", 3);
    round_trip("abcd", 4);
    round_trip("abcdabcd", 8);
}

LEAK_TEST(lz, runs_shrink)
{
    char buf[5000];
    memset(buf, 'x', sizeof(buf));
    size_t c = round_trip(buf, sizeof(buf));
    cr_expect_lt(c, 64u, "a run of 5000 bytes takes %zu", c);
}

LEAK_TEST(lz, repetitive_json_shrinks_and_random_bytes_survive)
{
    size_t cap = 1 << 20, n = 0;
    char *doc = malloc(cap);
    cr_assert_not_null(doc);
    for (int i = 0; n + 200 < cap; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "{\"name\":\"outbound|80||svc%d.ns%d.svc.cluster.local\","
                              "\"endpoints\":[{\"address\":\"10.1.%d.%d\",\"port\":8080}]},",
                              i, i % 10, (i / 256) % 256, i % 256);
    size_t c = round_trip(doc, n);
    cr_expect_lt(c * 5, n, "%zu bytes of JSON take %zu", n, c);
    /* random bytes (stored, not compressed), and matches near and beyond deflate's window */
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < cap; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        doc[i] = (char)x;
    }
    round_trip(doc, 300);
    round_trip(doc, cap);
    memcpy(doc + 70000, doc, 1000); /* beyond the 32 KiB window */
    memcpy(doc + 1000, doc, 600);   /* a long match */
    round_trip(doc, cap);
    free(doc);
}

LEAK_TEST(lz, corrupt_streams_are_refused)
{
    const char *text = "hello hello hello hello, world";
    size_t n = strlen(text), clen;
    unsigned char *c = mesh_lz_compress(text, n, &clen);
    cr_assert_not_null(c);
    char out[64];
    cr_expect_not(mesh_lz_decompress(c, 0, out, n));
    for (size_t cut = 1; cut < clen; cut++) /* every truncation */
        cr_expect_not(mesh_lz_decompress(c, cut, out, n), "cut at %zu", cut);
    /* not a zlib stream at all */
    unsigned char bad[] = {0x10, 'a', 0x05, 0x00, 0x00};
    cr_expect_not(mesh_lz_decompress(bad, sizeof(bad), out, sizeof(out)));
    /* every single-byte change either decodes to n bytes or is refused: never out of bounds */
    for (size_t i = 0; i < clen; i++)
        for (int b = 0; b < 256; b += 17) {
            unsigned char *m = malloc(clen);
            memcpy(m, c, clen);
            m[i] = (unsigned char)b;
            (void)mesh_lz_decompress(m, clen, out, n);
            free(m);
        }
    free(c);
}
