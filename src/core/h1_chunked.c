/*
 * Strict decoding of a chunked request body (RFC 9112 7.1); see struct mesh_h1_chunked.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *
 * One byte at a time through the framing, whole spans of data: the state survives any
 * split of the input across reads.
 */
#include "core/common.h"
#include <string.h>
#include <strings.h>
#include "core/proxy-int.h"

enum {
    CK_SIZE = 0,     /* the chunk size's first digit */
    CK_SIZE_MORE,    /* more digits, ';' or CR */
    CK_EXT,          /* a chunk extension, up to CR */
    CK_SIZE_LF,      /* the LF of the size line */
    CK_DATA,
    CK_DATA_CR,      /* the CRLF after a chunk's data */
    CK_DATA_LF,
    CK_TRAILER,      /* the trailer section, up to its empty line */
    CK_DONE,
};

/* Trailer line states (tstate). */
enum { TL_START = 0, TL_LINE, TL_LINE_CR, TL_END_CR };

/* 15 hex digits: sizes up to 2^60, far past any body, and no overflow to check */
#define CK_MAX_DIGITS 15
/* an extension nobody reads may not make the size line endless */
#define CK_MAX_EXT 4096

void mesh_h1_chunked_reset(struct mesh_h1_chunked *ck)
{
    struct evbuffer *t = ck->trailer;
    memset(ck, 0, sizeof(*ck));
    if (t) {
        evbuffer_drain(t, evbuffer_get_length(t));
        ck->trailer = t; /* kept for the next body on this connection */
    }
}

bool mesh_h1_chunked_done(const struct mesh_h1_chunked *ck)
{
    return ck->state == CK_DONE;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t fail(int *status, const char **why, int st, const char *reason, size_t used)
{
    *status = st;
    *why = reason;
    return used;
}

/* The trailer section's bytes, one at a time: its lines end in CRLF, it ends with an
 * empty one. Returns 0, 1 at its end, or -1 with <why>. */
static int trailer_byte(struct mesh_h1_chunked *ck, unsigned char c, const char **why)
{
    switch (ck->tstate) {
    case TL_START:
        if (c == '\r') {
            ck->tstate = TL_END_CR;
            return 0;
        }
        if (c == '\n')
            return *why = "trailer lines must end with CRLF", -1;
        ck->tstate = TL_LINE;
        return 0;
    case TL_LINE:
        if (c == '\r')
            ck->tstate = TL_LINE_CR;
        else if (c == '\n')
            return *why = "bare LF in a trailer", -1;
        return 0;
    case TL_LINE_CR:
        if (c != '\n')
            return *why = "bare CR in a trailer", -1;
        ck->tstate = TL_START;
        return 0;
    default: /* TL_END_CR */
        if (c != '\n')
            return *why = "the trailer section must end with CRLF", -1;
        return 1;
    }
}

size_t mesh_h1_chunked_feed(struct mesh_h1_chunked *ck, const char *p, size_t n,
                            struct evbuffer *body, int *status, const char **why)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    *status = 0;
    while (i < n && ck->state != CK_DONE) {
        unsigned char c = s[i];
        int h;
        switch (ck->state) {
        case CK_SIZE:
            if ((h = hexval(c)) < 0)
                return fail(status, why, 400, "invalid chunk size", i);
            ck->left = (uint64_t)h;
            ck->digits = 1;
            ck->ext_len = 0;
            ck->state = CK_SIZE_MORE;
            i++;
            break;
        case CK_SIZE_MORE:
            if ((h = hexval(c)) >= 0) {
                if (++ck->digits > CK_MAX_DIGITS)
                    return fail(status, why, 400, "chunk size too large", i);
                ck->left = ck->left << 4 | (uint64_t)h;
            } else if (c == ';') {
                ck->state = CK_EXT;
            } else if (c == '\r') {
                ck->state = CK_SIZE_LF;
            } else {
                return fail(status, why, 400, "invalid chunk size", i);
            }
            i++;
            break;
        case CK_EXT:
            /* what an extension holds is not ours to read, but no line break hides in it */
            if (c == '\r')
                ck->state = CK_SIZE_LF;
            else if (c == '\n')
                return fail(status, why, 400, "bare LF in a chunk extension", i);
            else if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(status, why, 400, "control character in a chunk extension", i);
            else if (++ck->ext_len > CK_MAX_EXT)
                return fail(status, why, 400, "chunk extension too long", i);
            i++;
            break;
        case CK_SIZE_LF:
            if (c != '\n')
                return fail(status, why, 400, "chunk size line must end with CRLF", i);
            ck->state = ck->left ? CK_DATA : CK_TRAILER;
            ck->tstate = TL_START;
            i++;
            break;
        case CK_DATA: {
            size_t k = n - i;
            if ((uint64_t)k > ck->left)
                k = (size_t)ck->left;
            evbuffer_add(body, s + i, k);
            ck->left -= k;
            i += k;
            if (!ck->left)
                ck->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR: /* then CK_DATA_LF */
        case CK_DATA_LF:
            if (c != (ck->state == CK_DATA_CR ? '\r' : '\n'))
                return fail(status, why, 400, "chunk data must end with CRLF", i);
            ck->state = ck->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
            i++;
            break;
        case CK_TRAILER: {
            /* checked byte by byte, kept a span at a time */
            size_t j = i;
            int r = 0;
            while (j < n && r == 0) {
                if ((r = trailer_byte(ck, s[j], why)) < 0)
                    return fail(status, why, 400, *why, j);
                j++;
            }
            if (!ck->trailer && !(ck->trailer = evbuffer_new()))
                return fail(status, why, 503, "out of memory", i);
            if (evbuffer_get_length(ck->trailer) + (j - i) > MESH_MAX_HEADER_BYTES)
                return fail(status, why, 431, "trailer section too large", i);
            evbuffer_add(ck->trailer, s + i, j - i);
            if (r > 0)
                ck->state = CK_DONE;
            i = j;
            break;
        }
        default:
            break;
        }
    }
    return i;
}

/*
 * Fields that may not come as trailers: they frame, route or authenticate a request,
 * or are meshd's own word about it (RFC 9110 6.5.1). A backend that merged trailers
 * into the header section would take them as if they had been checked.
 */
bool mesh_http_trailer_forbidden(const char *name, size_t len)
{
#define N(s) {s, sizeof(s) - 1}
    static const struct {
        const char *name;
        size_t len;
    } names[] = {
        N("content-length"), N("transfer-encoding"), N("host"), N("connection"),
        N("keep-alive"), N("proxy-connection"), N("te"), N("trailer"), N("upgrade"),
        N("expect"), N("authorization"), N("proxy-authorization"), N("cookie"),
        N("content-type"), N("content-encoding"), N("content-range"), N("x-forwarded-for"),
        N("x-forwarded-proto"), N("x-request-id"), N("forwarded"),
    };
#undef N
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++)
        if (names[i].len == len && strncasecmp(names[i].name, name, len) == 0)
            return true;
    return false;
}

int mesh_h1_chunked_trailers(struct mesh_h1_chunked *ck, struct mesh_arena *a,
                             struct mesh_headers *out, const char **why)
{
    size_t len = ck->trailer ? evbuffer_get_length(ck->trailer) : 0;
    if (len <= 2)
        return 0; /* the empty line alone: no trailer */
    const char *p = (const char *)evbuffer_pullup(ck->trailer, -1);
    struct mesh_h1_head h;
    int st = mesh_h1_parse_fields(p, len, &h, why);
    if (st)
        return st;
    for (unsigned i = 0; i < h.nfields; i++) {
        const struct mesh_h1_field *f = &h.field[i];
        if (mesh_http_trailer_forbidden(f->name, f->name_len))
            return *why = "a field that may not be a trailer (RFC 9110 6.5.1)", 400;
        if (mesh_headers_add_copy(a, out, f->name, f->name_len, f->value, f->value_len))
            return *why = "trailer section too large", 431;
    }
    return 0;
}
