/*
 * Prints the HTTP/2 frames a fuzz target's client received (MESH_HARNESS_SHOW=1), one
 * line each, header blocks decoded: to read what meshd answered an input, which a
 * fuzzer's crash check cannot judge. Frames cut across reads are joined.
 */
#ifndef MESH_TESTS_FUZZ_H2_SHOW_H
#define MESH_TESTS_FUZZ_H2_SHOW_H

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct h2_show {
    nghttp2_hd_inflater *hd;
    uint8_t buf[1 << 17];
    size_t len;
};

static inline void h2_show_block(struct h2_show *sh, const uint8_t *p, size_t n, int final)
{
    while (sh->hd) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t k = nghttp2_hd_inflate_hd2(sh->hd, &nv, &fl, p, n, final);
        if (k < 0) {
            fprintf(stderr, "    (HPACK error %zd)\n", k);
            nghttp2_hd_inflate_del(sh->hd);
            sh->hd = NULL;
            return;
        }
        p += k;
        n -= (size_t)k;
        if (fl & NGHTTP2_HD_INFLATE_EMIT)
            fprintf(stderr, "    %.*s: %.*s\n", (int)nv.namelen, nv.name, (int)nv.valuelen,
                    nv.value);
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(sh->hd);
            return;
        }
        if (k == 0 && n == 0)
            return;
    }
}

/* Takes <n> more bytes (the server preface's 24 never come: this is the server side). */
static inline void h2_show_feed(struct h2_show *sh, const uint8_t *in, size_t n)
{
    static const char *const names[] = {"DATA",   "HEADERS", "PRIORITY", "RST_STREAM",
                                        "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION"};
    if (!sh->hd && nghttp2_hd_inflate_new(&sh->hd) != 0)
        return;
    n = n < sizeof(sh->buf) - sh->len ? n : sizeof(sh->buf) - sh->len;
    memcpy(sh->buf + sh->len, in, n);
    sh->len += n;
    size_t off = 0;
    while (sh->len - off >= 9) {
        const uint8_t *f = sh->buf + off;
        size_t flen = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (sh->len - off < 9 + flen)
            break;
        uint8_t type = f[3], flags = f[4];
        uint32_t id = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) &
                      0x7fffffffu;
        const uint8_t *p = f + 9;
        fprintf(stderr, "%s stream %u flags 0x%02x length %zu\n",
                type < 10 ? names[type] : "?", id, flags, flen);
        if (type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION) {
            size_t pad = 0, skip = 0;
            if (type == NGHTTP2_HEADERS && (flags & NGHTTP2_FLAG_PADDED) && flen)
                pad = p[0], skip = 1;
            if (type == NGHTTP2_HEADERS && (flags & NGHTTP2_FLAG_PRIORITY))
                skip += 5;
            if (skip + pad <= flen)
                h2_show_block(sh, p + skip, flen - skip - pad,
                              (flags & NGHTTP2_FLAG_END_HEADERS) != 0);
        } else if (type == NGHTTP2_DATA) {
            fprintf(stderr, "    \"%.*s\"\n", (int)(flen < 80 ? flen : 80), (const char *)p);
        } else if ((type == NGHTTP2_RST_STREAM && flen == 4) ||
                   (type == NGHTTP2_GOAWAY && flen >= 8)) {
            const uint8_t *c = type == NGHTTP2_GOAWAY ? p + 4 : p;
            uint32_t code = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
            fprintf(stderr, "    %s\n", nghttp2_http2_strerror(code));
        }
        off += 9 + flen;
    }
    memmove(sh->buf, sh->buf + off, sh->len - off);
    sh->len -= off;
}

static inline void h2_show_end(struct h2_show *sh)
{
    if (sh->hd)
        nghttp2_hd_inflate_del(sh->hd);
    sh->hd = NULL;
    sh->len = 0;
}

#endif /* MESH_TESTS_FUZZ_H2_SHOW_H */
