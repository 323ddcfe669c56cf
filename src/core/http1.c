/* HTTP/1.1 helpers shared by both sides: header lists, strict head validation, serialisation. */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "core/proxy-int.h"

/* ---- Header lists ---- */

int mesh_headers_add(struct mesh_arena *a, struct mesh_headers *h, const char *name, size_t nlen,
                     const char *value, size_t vlen)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        struct mesh_header *v = mesh_arena_alloc(a, cap * sizeof(*v));
        if (!v)
            return MESH_ELIMIT;
        if (h->n)
            memcpy(v, h->v, h->n * sizeof(*v));
        h->v = v;
        h->cap = cap;
    }
    struct mesh_header *hd = &h->v[h->n++];
    hd->name = name;
    hd->name_len = (uint32_t)nlen;
    hd->value = value;
    hd->value_len = (uint32_t)vlen;
    return MESH_OK;
}

int mesh_headers_add_copy(struct mesh_arena *a, struct mesh_headers *h, const char *name,
                          size_t nlen, const char *value, size_t vlen)
{
    char *n = mesh_arena_strndup(a, name, nlen);
    char *v = mesh_arena_strndup(a, value, vlen);
    if (!n || !v)
        return MESH_ELIMIT;
    return mesh_headers_add(a, h, n, nlen, v, vlen);
}

int mesh_h1_append_piece(struct mesh_arena *a, char **dst, size_t *dlen, const char *at,
                         size_t len)
{
    if (*dlen + len > MESH_MAX_HEADER_BYTES)
        return -1;
    char *n = mesh_arena_alloc(a, *dlen + len + 1);
    if (!n)
        return -1;
    if (*dlen)
        memcpy(n, *dst, *dlen);
    memcpy(n + *dlen, at, len);
    *dst = n;
    *dlen += len;
    return 0;
}

const char *mesh_h1_trim_ows(const char *v, size_t *len)
{
    size_t n = *len;
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return v;
}

bool mesh_header_is(const struct mesh_header *hd, const char *name, size_t nlen)
{
    return hd->name_len == nlen && strncasecmp(hd->name, name, nlen) == 0;
}

struct mesh_header *mesh_headers_get(const struct mesh_headers *h, const char *name, size_t nlen)
{
    for (uint32_t i = 0; i < h->n; i++)
        if (mesh_header_is(&h->v[i], name, nlen))
            return &h->v[i];
    return NULL;
}

void mesh_headers_del(struct mesh_headers *h, const char *name, size_t nlen)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < h->n; i++)
        if (!mesh_header_is(&h->v[i], name, nlen))
            h->v[j++] = h->v[i];
    h->n = j;
}

bool mesh_token_list_has(const char *v, size_t len, const char *tok, size_t tlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tlen && strncasecmp(v + s, tok, tlen) == 0)
            return true;
    }
    return false;
}

#define LIT(s) s, sizeof(s) - 1

static bool is_hop(const struct mesh_header *hd, bool keep_upgrade)
{
    switch (hd->name_len) {
    case 2: return mesh_header_is(hd, LIT("te"));
    case 7: return !keep_upgrade && mesh_header_is(hd, LIT("upgrade"));
    case 10: return (!keep_upgrade && mesh_header_is(hd, LIT("connection"))) ||
                    mesh_header_is(hd, LIT("keep-alive"));
    case 16: return mesh_header_is(hd, LIT("proxy-connection"));
    case 17: return mesh_header_is(hd, LIT("transfer-encoding"));
    case 19: return mesh_header_is(hd, LIT("proxy-authenticate"));
    default: return false;
    }
}

void mesh_headers_strip_hop(struct mesh_headers *h, bool keep_upgrade)
{
    /* Headers named by Connection are hop-by-hop too (RFC 9110 7.6.1). */
    const struct mesh_header *conn = mesh_headers_get(h, LIT("connection"));
    /* "keep-alive", what most peers send, names only a header that goes anyway */
    if (conn && conn->value_len == 10 && strncasecmp(conn->value, "keep-alive", 10) == 0)
        conn = NULL;
    uint32_t j = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct mesh_header *hd = &h->v[i];
        if (is_hop(hd, keep_upgrade))
            continue;
        if (conn && hd != conn && !mesh_header_is(hd, LIT("upgrade")) &&
            mesh_token_list_has(conn->value, conn->value_len, hd->name, hd->name_len))
            continue;
        h->v[j++] = *hd;
    }
    h->n = j;
}

const char *mesh_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

const char *mesh_response_flags_str(unsigned flags, char *buf, size_t size)
{
    static const char *const names[] = {"UF", "UH", "UO", "UT", "UC", "NR", "DC", "SI", "DPE", "UPE"};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++) {
        if (!(flags & (1u << i)))
            continue;
        int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= size - off)
            break;
        off += (size_t)n;
    }
    if (!off)
        snprintf(buf, size, "-");
    return buf;
}

/* ---- Strict head parsing ---- */

/* RFC 9110 tchar */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* The methods http-parser knows: the set meshd has always accepted. */
static const struct {
    const char *name;
    uint8_t len;
} methods[] = {
#define MESH_METHOD(num, name, string) {#string, sizeof(#string) - 1},
    HTTP_METHOD_MAP(MESH_METHOD)
#undef MESH_METHOD
};

static bool known_method(const unsigned char *m, size_t len)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(methods); i++)
        if (methods[i].len == len && memcmp(methods[i].name, m, len) == 0)
            return true;
    return false;
}

bool mesh_http_method_known(const char *m, size_t len)
{
    return known_method((const unsigned char *)m, len);
}

/* uri-host [ ":" port ] (RFC 3986 3.2.2): reg-name characters (unreserved, sub-delims,
 * pct-encoded), an IP literal's brackets and the port's colon */
static const bool authority_char[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
    ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true, ['!'] = true, ['$'] = true,
    ['&'] = true, ['\''] = true, ['('] = true, [')'] = true, ['*'] = true, ['+'] = true,
    [','] = true, [';'] = true, ['='] = true, ['%'] = true, [':'] = true, ['['] = true,
    [']'] = true,
};

bool mesh_http_authority_ok(const char *v, size_t len)
{
    /* no userinfo ("@"), no path, query or space */
    for (size_t i = 0; i < len; i++)
        if (!authority_char[(unsigned char)v[i]])
            return false;
    return true;
}

static int bad(const char **why, const char *msg, int status)
{
    *why = msg;
    return status;
}

static bool is_vchar_target(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

/* field-value and reason-phrase bytes: HTAB, SP, VCHAR, obs-text */
static const uint8_t value_byte[256] = {
    ['\t'] = 1, [0x20 ... 0x7e] = 1, [0x80 ... 0xff] = 1,
};

/* The first byte at or after <c> that cannot be in a field value (CR, at the latest), or <end>. */
static const unsigned char *value_end(const unsigned char *c, const unsigned char *end)
{
#ifdef __SSE2__
    /* values are most of a head's bytes: 16 at a time while none is below SP or DEL */
    const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (end - c >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)c);
        __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, del),
                                      _mm_cmpeq_epi8(_mm_max_epu8(v, sp), v));
        unsigned mask = (unsigned)_mm_movemask_epi8(ok);
        if (mask != 0xffff) {
            c += __builtin_ctz(~mask);
            break;
        }
        c += 16;
    }
#endif
    while (c < end && value_byte[*c])
        c++;
    return c;
}

/*
 * The first byte at or after <n> that is not a token character (the colon, at the
 * latest), or <end>. Names are letters, digits and dashes 16 at a time; any other token
 * character (rare: "_", ".", "!") goes byte by byte through the table.
 */
static const unsigned char *name_end(const unsigned char *n, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i lo_a = _mm_set1_epi8('a'), lo_0 = _mm_set1_epi8('0'), dash = _mm_set1_epi8('-');
    const __m128i case_bit = _mm_set1_epi8(0x20), m1 = _mm_set1_epi8(-1);
    while (end - n >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)n);
        /* x - 'a' in 0..25 and x - '0' in 0..9, as signed bytes (>= 0x80 is negative) */
        __m128i al = _mm_sub_epi8(_mm_or_si128(v, case_bit), lo_a);
        __m128i dg = _mm_sub_epi8(v, lo_0);
        __m128i ok = _mm_or_si128(
            _mm_and_si128(_mm_cmpgt_epi8(al, m1), _mm_cmplt_epi8(al, _mm_set1_epi8(26))),
            _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(dg, m1), _mm_cmplt_epi8(dg, _mm_set1_epi8(10))),
                         _mm_cmpeq_epi8(v, dash)));
        unsigned mask = (unsigned)_mm_movemask_epi8(ok);
        if (mask != 0xffff) {
            n += __builtin_ctz(~mask);
            break;
        }
        n += 16;
    }
#endif
    while (n < end && tchar[*n])
        n++;
    return n;
}

/*
 * Header lines from <l> up to and including the empty line: each name a
 * token right before its colon, each value without OWS around it, every
 * line ending in CRLF. Fills h->field; 0, or a status with <why>.
 */
static int parse_fields(const unsigned char *l, const unsigned char *end, struct mesh_h1_head *h,
                        const char **why)
{
    h->nfields = 0;
    for (;;) {
        if (l >= end)
            return bad(why, "incomplete header section", 400);
        if (*l == '\r') {
            if (l + 1 < end && l[1] == '\n') {
                h->len = (size_t)(l + 2 - h->start);
                return 0;
            }
            return bad(why, "bare CR in header section", 400);
        }
        if (*l == '\n')
            return bad(why, "header lines must end with CRLF", 400);
        if (*l == ' ' || *l == '\t')
            return bad(why, "obs-fold (a header line starting with whitespace) is not allowed", 400);
        if (h->nfields == MESH_MAX_HEADERS)
            return bad(why, "too many header fields", 431);
        const unsigned char *n = name_end(l, end);
        if (n >= end)
            return bad(why, "incomplete header section", 400);
        if (*n != ':') {
            if (*n == ' ' || *n == '\t')
                return bad(why, "whitespace between header name and colon", 400);
            return bad(why, "invalid character in header name", 400);
        }
        if (n == l)
            return bad(why, "empty header name", 400);
        const unsigned char *v = n + 1;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        const unsigned char *c = value_end(v, end);
        if (c >= end)
            return bad(why, "incomplete header section", 400);
        if (*c != '\r') {
            if (*c == '\n')
                return bad(why, "bare LF in header value", 400);
            if (*c == 0)
                return bad(why, "NUL in header value", 400);
            return bad(why, "control character in header value", 400);
        }
        if (c + 1 >= end || c[1] != '\n')
            return bad(why, "bare CR in header value", 400);
        const unsigned char *ve = c;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        struct mesh_h1_field *f = &h->field[h->nfields++];
        f->name = (const char *)l;
        f->name_len = (uint32_t)(n - l);
        f->value = (const char *)v;
        f->value_len = (uint32_t)(ve - v);
        l = c + 2;
    }
}

int mesh_h1_parse_fields(const char *p, size_t len, struct mesh_h1_head *h, const char **why)
{
    h->start = (const unsigned char *)p;
    return parse_fields((const unsigned char *)p, (const unsigned char *)p + len, h, why);
}

int mesh_h1_parse_request_head(const char *p, size_t len, struct mesh_h1_head *h, const char **why)
{
    const unsigned char *s = (const unsigned char *)p, *end = s + len;
    const unsigned char *lf = memchr(s, '\n', len);
    if (!lf)
        return bad(why, "incomplete request line", 400);
    if ((size_t)(lf - s) > MESH_MAX_REQUEST_LINE)
        return bad(why, "request line too long", 414);
    if (lf == s || lf[-1] != '\r')
        return bad(why, "request line must end with CRLF", 400);
    const unsigned char *le = lf - 1; /* at CR */

    /* method */
    const unsigned char *q = s;
    while (q < le && tchar[*q])
        q++;
    if (q == s || q >= le || *q != ' ')
        return bad(why, "invalid method", 400);
    size_t mlen = (size_t)(q - s);
    if (!known_method(s, mlen))
        return bad(why, "invalid method", 400);
    bool connect = mlen == 7 && memcmp(s, "CONNECT", 7) == 0;
    bool options = mlen == 7 && memcmp(s, "OPTIONS", 7) == 0;
    /* target */
    const unsigned char *t = ++q;
    while (q < le && is_vchar_target(*q))
        q++;
    if (q == t || q >= le || *q != ' ')
        return bad(why, "invalid request target", 400);
    size_t tlen = (size_t)(q - t);
    if (connect) {
        /* authority form: host:port, nothing else */
        if (*t == '/' || !memchr(t, ':', tlen) || memchr(t, '/', tlen))
            return bad(why, "CONNECT needs an authority-form target (host:port)", 400);
    } else if (*t == '/') {
        if (tlen > 1 && t[1] == '/')
            return bad(why, "request target must be origin or absolute form", 400);
    } else if (tlen == 1 && *t == '*') {
        if (!options)
            return bad(why, "asterisk-form target is only valid for OPTIONS", 400);
    } else if (!((tlen > 7 && strncasecmp((const char *)t, "http://", 7) == 0) ||
                 (tlen > 8 && strncasecmp((const char *)t, "https://", 8) == 0))) {
        return bad(why, "request target must be origin or absolute form", 400);
    }
    /* version */
    const unsigned char *v = ++q;
    size_t vlen = (size_t)(le - v);
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return bad(why, "invalid HTTP version", 400);
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return bad(why, "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)", 400);

    h->method = (const char *)s;
    h->method_len = (uint32_t)mlen;
    h->target = (const char *)t;
    h->target_len = (uint32_t)tlen;
    h->minor = (uint8_t)(v[7] - '0');
    h->status = 0;
    h->start = s;
    return parse_fields(lf + 1, end, h, why);
}

const char *mesh_h1_head_keep(struct mesh_h1_head *h, struct mesh_arena *a)
{
    char *copy = mesh_arena_alloc(a, h->len);
    if (!copy)
        return NULL;
    memcpy(copy, h->start, h->len);
    const char *from = (const char *)h->start;
    if (h->method) {
        h->method = copy + (h->method - from);
        h->target = copy + (h->target - from);
    }
    for (unsigned i = 0; i < h->nfields; i++) {
        h->field[i].name = copy + (h->field[i].name - from);
        h->field[i].value = copy + (h->field[i].value - from);
    }
    h->start = (const unsigned char *)copy;
    return copy;
}

size_t mesh_h1_parse_response_head(const char *p, size_t len, struct mesh_h1_head *h)
{
    const unsigned char *s = (const unsigned char *)p, *end = s + len;
    if (len < 14 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return 0;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        status = status * 10 + (s[i] - '0');
    }
    const unsigned char *q = s + 12;
    if (*q == ' ') {
        q++;
        q = value_end(q, end);
    }
    if (q + 1 >= end || q[0] != '\r' || q[1] != '\n')
        return 0;
    const char *why;
    h->start = s;
    if (parse_fields(q + 2, end, h, &why))
        return 0;
    h->method = h->target = NULL;
    h->method_len = h->target_len = 0;
    h->minor = (uint8_t)(s[7] - '0');
    h->status = status;
    return h->len;
}

/* ---- Serialisation ---- */

/* printf showed as ~18% of a request's user-space instructions: format by hand */
size_t mesh_u64_dec(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/*
 * Heads are written with one reservation: sized first, then copied into place. An
 * evbuffer_add per piece (a reserve and commit per header line) cost ~2,000 instructions
 * a head, more than parsing it.
 */
#define CL_LINE_MAX (sizeof("Content-Length: ") - 1 + 20 + 2)

static size_t headers_size(const struct mesh_headers *h)
{
    size_t n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += h->v[i].name_len + h->v[i].value_len + 4;
    return n;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_headers(char *p, const struct mesh_headers *h)
{
    for (uint32_t i = 0; i < h->n; i++) {
        const struct mesh_header *hd = &h->v[i];
        p = put(p, hd->name, hd->name_len);
        *p++ = ':';
        *p++ = ' ';
        p = put(p, hd->value, hd->value_len);
        *p++ = '\r';
        *p++ = '\n';
    }
    return p;
}

static char *put_content_length(char *p, int64_t len)
{
    p = put(p, LIT("Content-Length: "));
    p += mesh_u64_dec(p, (uint64_t)len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* <n> contiguous bytes at the end of <out>, or NULL (no memory: the head is lost, as an
 * evbuffer_add failing would have lost it). */
static char *head_reserve(struct evbuffer *out, size_t n, struct evbuffer_iovec *iov)
{
    if (n > (size_t)EV_SSIZE_MAX || evbuffer_reserve_space(out, (ev_ssize_t)n, iov, 1) < 1)
        return NULL;
    return iov->iov_base;
}

static void head_commit(struct evbuffer *out, struct evbuffer_iovec *iov, const char *end)
{
    iov->iov_len = (size_t)(end - (const char *)iov->iov_base);
    evbuffer_commit_space(out, iov, 1);
}

void mesh_h1_write_request_head(struct evbuffer *out, const struct mesh_msg *m, bool chunked)
{
    const char *target = m->path ? m->path : m->authority;
    size_t target_len = m->path ? m->path_len : m->authority_len;
    bool host = m->authority && !mesh_headers_get(&m->hdrs, LIT("host"));
    size_t n = m->method_len + 1 + target_len + 11 + (host ? 6 + m->authority_len + 2 : 0) +
               headers_size(&m->hdrs) + MESH_MAX(sizeof("Transfer-Encoding: chunked\r\n") - 1, CL_LINE_MAX) + 2;
    struct evbuffer_iovec iov;
    char *p = head_reserve(out, n, &iov);
    if (!p)
        return;
    p = put(p, m->method, m->method_len);
    *p++ = ' ';
    p = put(p, target, target_len);
    p = put(p, LIT(" HTTP/1.1\r\n"));
    if (host) {
        p = put(p, LIT("Host: "));
        p = put(p, m->authority, m->authority_len);
        p = put(p, LIT("\r\n"));
    }
    p = put_headers(p, &m->hdrs);
    if (chunked)
        p = put(p, LIT("Transfer-Encoding: chunked\r\n"));
    else if (m->content_length >= 0)
        p = put_content_length(p, m->content_length);
    p = put(p, LIT("\r\n"));
    head_commit(out, &iov, p);
}

void mesh_h1_write_response_head(struct evbuffer *out, const struct mesh_msg *m, int minor,
                                 bool chunked, bool close)
{
    const char *reason = mesh_http_reason(m->status);
    size_t rlen = strlen(reason);
    int st = m->status;
    size_t n = 13 + rlen + 2 + headers_size(&m->hdrs) +
               MESH_MAX(sizeof("Transfer-Encoding: chunked\r\n") - 1, CL_LINE_MAX) +
               sizeof("Connection: keep-alive\r\n") - 1 + 2;
    struct evbuffer_iovec iov;
    char *p = head_reserve(out, n, &iov);
    if (!p)
        return;
    p = put(p, "HTTP/1.1 ", 9); /* our version, whatever the client's (RFC 9110 6.2) */
    *p++ = (char)('0' + st / 100 % 10);
    *p++ = (char)('0' + st / 10 % 10);
    *p++ = (char)('0' + st % 10);
    *p++ = ' ';
    p = put(p, reason, rlen);
    p = put(p, LIT("\r\n"));
    p = put_headers(p, &m->hdrs);
    if (m->status >= 200 && m->status != 204 && m->status != 304) {
        if (chunked)
            p = put(p, LIT("Transfer-Encoding: chunked\r\n"));
        else if (m->content_length >= 0)
            p = put_content_length(p, m->content_length);
    } else if (m->status == 304 && m->content_length >= 0) {
        p = put_content_length(p, m->content_length);
    }
    if (close)
        p = put(p, LIT("Connection: close\r\n"));
    else if (minor == 0)
        p = put(p, LIT("Connection: keep-alive\r\n"));
    p = put(p, LIT("\r\n"));
    head_commit(out, &iov, p);
}

void mesh_h1_write_chunk(struct evbuffer *out, struct evbuffer *data)
{
    size_t n = evbuffer_get_length(data);
    if (!n)
        return;
    char hex[24];
    size_t k = sizeof(hex);
    hex[--k] = '\n';
    hex[--k] = '\r';
    do {
        hex[--k] = "0123456789abcdef"[n & 15];
        n >>= 4;
    } while (n);
    evbuffer_add(out, hex + k, sizeof(hex) - k);
    evbuffer_add_buffer(out, data);
    evbuffer_add(out, "\r\n", 2);
}

void mesh_h1_write_last_chunk(struct evbuffer *out, const struct mesh_headers *trailers)
{
    size_t n = 3 + (trailers ? headers_size(trailers) : 0) + 2;
    struct evbuffer_iovec iov;
    char *p = head_reserve(out, n, &iov);
    if (!p)
        return;
    p = put(p, LIT("0\r\n"));
    if (trailers)
        p = put_headers(p, trailers);
    p = put(p, LIT("\r\n"));
    head_commit(out, &iov, p);
}
