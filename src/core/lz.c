/* Compression of kept documents (lz.h): zlib's compress2/uncompress. */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/lz.h"

unsigned char *mesh_lz_compress(const void *src, size_t n, size_t *out_len)
{
    uLongf cap = compressBound((uLong)n);
    unsigned char *out = malloc(cap ? cap : 1);
    if (!out)
        return NULL;
    if (compress2(out, &cap, src, (uLong)n, Z_BEST_SPEED) != Z_OK) {
        free(out);
        return NULL;
    }
    /* a smaller block: the copy kept is what counts, not this buffer */
    unsigned char *shrunk = realloc(out, cap ? cap : 1);
    *out_len = cap;
    return shrunk ? shrunk : out;
}

bool mesh_lz_decompress(const unsigned char *src, size_t len, void *dst, size_t n)
{
    /* one byte more than expected, to see a stream that is longer than <n> */
    unsigned char *buf = malloc(n + 1);
    if (!buf)
        return false;
    uLongf got = (uLongf)n + 1;
    int rc = uncompress(buf, &got, src, (uLong)len);
    bool ok = rc == Z_OK && got == n;
    if (ok && n)
        memcpy(dst, buf, n);
    free(buf);
    return ok;
}
