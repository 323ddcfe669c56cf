/* HTTP/1.1 helpers (src/core/http1.c): the strict head parsers, header lists,
 * hop-by-hop stripping and head serialisation. */
#include "core/common.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include "core/arena.h"
#include "core/proxy-int.h"
#include "../leakcheck.h"

#define LIT(s) s, sizeof(s) - 1

static struct mesh_h1_head parsed; /* large: off the test's stack */

static int check(const char *head, const char **why)
{
    *why = NULL;
    return mesh_h1_parse_request_head(head, strlen(head), &parsed, why);
}

#define GOOD(head)                                                                           \
    do {                                                                                     \
        const char *w_;                                                                      \
        cr_expect_eq(check(head, &w_), 0, "%s: refused (%s)", #head, w_ ? w_ : "");          \
    } while (0)

#define BAD(head, status, reason)                                                            \
    do {                                                                                     \
        const char *w_;                                                                      \
        cr_expect_eq(check(head, &w_), status, "%s: expected %d", #head, status);            \
        cr_expect(w_ && strstr(w_, reason), "%s: reason \"%s\", expected \"%s\"", #head,     \
                  w_ ? w_ : "(none)", reason);                                               \
    } while (0)

Test(http1, valid_heads)
{
    GOOD("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    GOOD("GET /a?b=c HTTP/1.0\r\n\r\n");
    GOOD("POST http://a.example/x HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
    GOOD("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
    GOOD("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    GOOD("GET / HTTP/1.1\r\nX-Tab:\tvalue with\ttabs\r\n\r\n");
    GOOD("GET / HTTP/1.1\r\nEmpty:\r\n\r\n");
}

Test(http1, bad_request_lines)
{
    BAD("GET / HTTP/1.1", 400, "incomplete request line");
    BAD("GET / HTTP/1.1\n\r\n", 400, "CRLF");
    BAD("G(T / HTTP/1.1\r\n\r\n", 400, "invalid method");
    BAD(" GET / HTTP/1.1\r\n\r\n", 400, "invalid method");
    BAD("GET  / HTTP/1.1\r\n\r\n", 400, "invalid request target");
    BAD("GET //evil HTTP/1.1\r\n\r\n", 400, "origin or absolute form");
    BAD("GET ftp://a/ HTTP/1.1\r\n\r\n", 400, "origin or absolute form");
    BAD("GET * HTTP/1.1\r\n\r\n", 400, "only valid for OPTIONS");
    BAD("CONNECT /x HTTP/1.1\r\n\r\n", 400, "authority-form");
    BAD("CONNECT a.example HTTP/1.1\r\n\r\n", 400, "authority-form");
    BAD("GET / HTTP/2.0\r\n\r\n", 400, "unsupported HTTP version");
    BAD("GET / HTTP/1.10\r\n\r\n", 400, "invalid HTTP version");
    BAD("GET / http/1.1\r\n\r\n", 400, "invalid HTTP version");
    /* a token, but not a method http-parser knows (the set meshd has always taken) */
    BAD("FOO / HTTP/1.1\r\n\r\n", 400, "invalid method");
    BAD("get / HTTP/1.1\r\n\r\n", 400, "invalid method");
}

/* The fields come out as spans into the head, values without the OWS around them. */
Test(http1, request_spans)
{
    const char *head = "PATCH /p?q HTTP/1.0\r\nHost: a.example\r\nX-Pad: \t v w \t\r\n"
                       "Empty:\r\nCase-Kept: V\r\n\r\n";
    const char *why;
    cr_assert_eq(check(head, &why), 0);
    cr_expect(parsed.method == head && parsed.method_len == 5);
    cr_expect(parsed.target == head + 6 && parsed.target_len == 4);
    cr_expect_eq(parsed.minor, 0);
    cr_expect_eq(parsed.len, strlen(head));
    cr_assert_eq(parsed.nfields, 4);
    static const char *const names[] = {"Host", "X-Pad", "Empty", "Case-Kept"};
    static const char *const values[] = {"a.example", "v w", "", "V"};
    for (int i = 0; i < 4; i++) {
        const struct mesh_h1_field *f = &parsed.field[i];
        cr_expect(f->name_len == strlen(names[i]) && memcmp(f->name, names[i], f->name_len) == 0,
                  "field %d name", i);
        cr_expect(f->value_len == strlen(values[i]) &&
                      memcmp(f->value, values[i], f->value_len) == 0,
                  "field %d value \"%.*s\"", i, (int)f->value_len, f->value);
        cr_expect(f->name >= head && f->value >= head && f->value <= head + strlen(head));
    }
}

/*
 * Values are scanned 16 bytes at a time: a refused byte must be found at
 * every offset, in the first block, a later one and the byte-wise tail.
 */
Test(http1, value_scan_every_offset)
{
    char head[256];
    for (int at = 0; at < 70; at++) {
        static const unsigned char refused[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f, '\n'};
        for (size_t k = 0; k < sizeof(refused); k++) {
            int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nX: ");
            memset(head + n, 'v', 70);
            head[n + at] = (char)refused[k];
            memcpy(head + n + 70, "\r\n\r\n", 5);
            const char *why = NULL;
            int st = mesh_h1_parse_request_head(head, (size_t)n + 74, &parsed, &why);
            cr_expect_eq(st, 400, "byte 0x%02x at %d: accepted", refused[k], at);
        }
        /* and every byte a value may hold passes, whatever its offset */
        int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nX: ");
        memset(head + n, 'v', 70);
        head[n + at] = (char)(at % 2 || at == 0 ? 0x80 + at : '\t'); /* HTAB inside */
        head[n + 69] = (char)0xff;
        memcpy(head + n + 70, "\r\n\r\n", 5);
        const char *why = NULL;
        cr_expect_eq(mesh_h1_parse_request_head(head, (size_t)n + 74, &parsed, &why), 0,
                     "obs-text or HTAB at %d refused: %s", at, why ? why : "");
        cr_expect_eq(parsed.field[0].value_len, 70);
    }
}

/*
 * Names are scanned 16 bytes at a time for letters, digits and dashes: every byte value
 * at every offset of a long name must get the table's answer, in the first block, a
 * later one and the byte-wise tail.
 */
Test(http1, name_scan_every_offset)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char head[256];
    for (int at = 0; at < 40; at++) {
        for (int c = 0; c < 256; c++) {
            if (c == ':')
                continue;
            int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
            memset(head + n, 'n', 40);
            head[n + at] = (char)c;
            memcpy(head + n + 40, ": v\r\n\r\n", 7);
            const char *why = NULL;
            int st = mesh_h1_parse_request_head(head, (size_t)n + 47, &parsed, &why);
            bool token = c && strchr(tchars, c) != NULL;
            if (token) {
                cr_assert_eq(st, 0, "token byte 0x%02x at %d refused: %s", c, at, why ? why : "");
                cr_assert_eq(parsed.field[0].name_len, 40);
            } else {
                cr_assert_eq(st, 400, "byte 0x%02x at %d of a name accepted", c, at);
            }
        }
    }
}

/* A response head in its plain shape is parsed; anything else is left to http-parser (0). */
Test(http1, response_heads)
{
    static struct mesh_h1_head h;
    const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer:  x \r\n\r\nhello";
    size_t n = mesh_h1_parse_response_head(r, strlen(r), &h);
    cr_expect_eq(n, strlen(r) - 5, "the head's length, the body not included");
    cr_expect_eq(h.status, 200);
    cr_expect_eq(h.minor, 1);
    cr_assert_eq(h.nfields, 2);
    cr_expect(h.field[1].value_len == 1 && h.field[1].value[0] == 'x');
    const char *r0 = "HTTP/1.0 404\r\n\r\n";
    cr_expect_eq(mesh_h1_parse_response_head(r0, strlen(r0), &h), strlen(r0));
    cr_expect(h.status == 404 && h.minor == 0 && h.nfields == 0);
    static const char *const other[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", /* not all there yet */
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",      /* obs-fold */
        "HTTP/1.1 200 OK\nX: a\n\n",                   /* bare LF */
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < MESH_ARRAY_LEN(other); i++)
        cr_expect_eq(mesh_h1_parse_response_head(other[i], strlen(other[i]), &h), 0, "%s",
                     other[i]);
}

Test(http1, bad_header_lines)
{
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace between header name and colon");
    BAD("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "obs-fold");
    BAD("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare LF");
    BAD("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare CR");
    BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "CRLF");
    BAD("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400, "control character");
    BAD("GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "empty header name");
    BAD("GET / HTTP/1.1\r\nX(y): a\r\n\r\n", 400, "invalid character in header name");
    BAD("GET / HTTP/1.1\r\nHost: a\r\n", 400, "incomplete header section");
}

Test(http1, nul_in_value)
{
    static const char head[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    const char *why = NULL;
    cr_expect_eq(mesh_h1_parse_request_head(head, sizeof(head) - 1, &parsed, &why), 400);
    cr_expect_str_eq(why, "NUL in header value");
}

LEAK_TEST(http1, limits)
{
    /* the request line: 414 past MESH_MAX_REQUEST_LINE */
    size_t n = MESH_MAX_REQUEST_LINE + 64;
    char *head = malloc(n + 32);
    memcpy(head, "GET /", 5);
    memset(head + 5, 'a', n);
    strcpy(head + 5 + n, " HTTP/1.1\r\n\r\n");
    const char *why;
    cr_expect_eq(check(head, &why), 414);
    free(head);
    /* more than MESH_MAX_HEADERS fields: 431 */
    size_t cap = 32 + (MESH_MAX_HEADERS + 1) * 8;
    head = malloc(cap);
    size_t off = (size_t)sprintf(head, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= MESH_MAX_HEADERS; i++)
        off += (size_t)sprintf(head + off, "X: %02d\r\n", i % 100);
    strcpy(head + off, "\r\n");
    cr_expect_eq(check(head, &why), 431);
    cr_expect_str_eq(why, "too many header fields");
    free(head);
}

Test(http1, u64_dec)
{
    char b[24];
    size_t n = mesh_u64_dec(b, 0);
    cr_expect(n == 1 && memcmp(b, "0", 1) == 0);
    n = mesh_u64_dec(b, 19);
    cr_expect(n == 2 && memcmp(b, "19", 2) == 0);
    n = mesh_u64_dec(b, 1234567890);
    cr_expect(n == 10 && memcmp(b, "1234567890", 10) == 0);
    n = mesh_u64_dec(b, UINT64_MAX);
    cr_expect(n == 20 && memcmp(b, "18446744073709551615", 20) == 0);
}

Test(http1, token_lists)
{
    cr_expect(mesh_token_list_has(LIT("keep-alive, Upgrade"), LIT("upgrade")));
    cr_expect(mesh_token_list_has(LIT("close"), LIT("close")));
    cr_expect_not(mesh_token_list_has(LIT("closed"), LIT("close")));
    cr_expect_not(mesh_token_list_has(LIT("x-close"), LIT("close")));
    cr_expect(mesh_token_list_has(LIT(" a ,\tb , c"), LIT("b")));
    cr_expect_not(mesh_token_list_has(LIT(""), LIT("close")));
}

static struct evbuffer *out;
static struct mesh_arena *arena;
static void setup(void)
{
    out = evbuffer_new();
    arena = mesh_arena_new(4096, 0);
}
static void teardown(void)
{
    evbuffer_free(out);
    mesh_arena_free(arena);
}

static char *drain(void)
{
    size_t n = evbuffer_get_length(out);
    char *s = mesh_arena_alloc(arena, n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    return s;
}

LEAK_TEST(http1, strip_hop_by_hop)
{
    setup();
    struct mesh_headers h = {0};
    mesh_headers_add(arena, &h, LIT("Host"), LIT("a"));
    mesh_headers_add(arena, &h, LIT("Connection"), LIT("keep-alive, X-Secret"));
    mesh_headers_add(arena, &h, LIT("Keep-Alive"), LIT("timeout=5"));
    mesh_headers_add(arena, &h, LIT("X-Secret"), LIT("1"));
    mesh_headers_add(arena, &h, LIT("Transfer-Encoding"), LIT("chunked"));
    mesh_headers_add(arena, &h, LIT("Upgrade"), LIT("websocket"));
    mesh_headers_add(arena, &h, LIT("X-Keep"), LIT("2"));
    mesh_headers_strip_hop(&h, false);
    cr_assert_eq(h.n, 2);
    cr_expect(mesh_headers_get(&h, LIT("host")) != NULL);
    cr_expect(mesh_headers_get(&h, LIT("x-keep")) != NULL);
    /* the common "Connection: keep-alive" takes the short way: the same result */
    struct mesh_headers k = {0};
    mesh_headers_add(arena, &k, LIT("Date"), LIT("d"));
    mesh_headers_add(arena, &k, LIT("connection"), LIT("Keep-Alive"));
    mesh_headers_add(arena, &k, LIT("keep-alive"), LIT("timeout=5"));
    mesh_headers_add(arena, &k, LIT("Server"), LIT("s"));
    mesh_headers_strip_hop(&k, false);
    cr_assert_eq(k.n, 2);
    cr_expect(mesh_header_is(&k.v[0], LIT("date")) && mesh_header_is(&k.v[1], LIT("server")));
    teardown();
}

LEAK_TEST(http1, request_head_keeps_case)
{
    setup();
    struct mesh_msg m = {.method = "POST", .method_len = 4, .path = "/x?y", .path_len = 4,
                         .authority = "svc:8080", .authority_len = 8, .content_length = 1234};
    mesh_headers_add(arena, &m.hdrs, LIT("X-MiXeD-Case"), LIT("v"));
    mesh_h1_write_request_head(out, &m, false);
    cr_expect_str_eq(drain(), "POST /x?y HTTP/1.1\r\nHost: svc:8080\r\nX-MiXeD-Case: v\r\n"
                              "Content-Length: 1234\r\n\r\n");
    m.content_length = -1;
    mesh_h1_write_request_head(out, &m, true);
    cr_expect_str_eq(drain(), "POST /x?y HTTP/1.1\r\nHost: svc:8080\r\nX-MiXeD-Case: v\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n");
    teardown();
}

/* Heads are sized before they are copied (one reservation): the longest pieces fit. */
LEAK_TEST(http1, heads_at_their_longest)
{
    setup();
    static char big[60000];
    memset(big, 'v', sizeof(big));
    struct mesh_msg m = {.status = 404, .content_length = INT64_MAX};
    mesh_headers_add(arena, &m.hdrs, LIT("X-Big"), big, sizeof(big));
    mesh_headers_add(arena, &m.hdrs, LIT("X-Empty"), "", 0);
    mesh_h1_write_response_head(out, &m, 0, false, false);
    size_t len = evbuffer_get_length(out);
    char *s = drain();
    static const char tail[] = "\r\nX-Empty: \r\nContent-Length: 9223372036854775807\r\n"
                               "Connection: keep-alive\r\n\r\n";
    static const char head[] = "HTTP/1.1 404 Not Found\r\nX-Big: ";
    cr_expect(strncmp(s, head, sizeof(head) - 1) == 0, "%.40s", s);
    cr_expect_eq(len, sizeof(head) - 1 + sizeof(big) + sizeof(tail) - 1);
    cr_expect_str_eq(s + len - (sizeof(tail) - 1), tail);
    struct mesh_msg q = {.method = "CONNECT", .method_len = 7, .authority = "h:443",
                         .authority_len = 5, .content_length = INT64_MAX};
    mesh_headers_add(arena, &q.hdrs, LIT("Host"), LIT("h:443"));
    mesh_h1_write_request_head(out, &q, false);
    cr_expect_str_eq(drain(), "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"
                              "Content-Length: 9223372036854775807\r\n\r\n");
    struct mesh_headers t = {0};
    mesh_headers_add(arena, &t, LIT("grpc-status"), LIT("0"));
    mesh_h1_write_last_chunk(out, &t);
    cr_expect_str_eq(drain(), "0\r\ngrpc-status: 0\r\n\r\n");
    mesh_h1_write_last_chunk(out, NULL);
    cr_expect_str_eq(drain(), "0\r\n\r\n");
    teardown();
}

LEAK_TEST(http1, response_head)
{
    setup();
    struct mesh_msg m = {.status = 404, .content_length = 0};
    mesh_headers_add(arena, &m.hdrs, LIT("Server"), LIT("t"));
    mesh_h1_write_response_head(out, &m, 1, false, false);
    char *s = drain();
    cr_expect(strncmp(s, "HTTP/1.1 404 Not Found\r\nServer: t\r\n", 35) == 0, "%s", s);
    cr_expect(strstr(s, "Content-Length: 0\r\n") != NULL, "%s", s);
    m.status = 204;
    m.content_length = -1;
    mesh_h1_write_response_head(out, &m, 0, false, true);
    s = drain();
    /* to an HTTP/1.0 client too: the version is the server's (RFC 9110 6.2) */
    cr_expect(strncmp(s, "HTTP/1.1 204 No Content\r\n", 25) == 0, "%s", s);
    cr_expect(strstr(s, "Content-Length") == NULL, "%s", s);
    cr_expect(strstr(s, "onnection: close\r\n") != NULL, "%s", s);
    teardown();
}

/* A kept head is a copy in the arena with every span moved onto it; the input may go. */
LEAK_TEST(http1, kept_head_outlives_its_input)
{
    setup();
    char *in = strdup("GET /k HTTP/1.1\r\nHost: a\r\nX-V:  v1 \r\n\r\nrest-of-the-buffer");
    const char *why;
    cr_assert_eq(mesh_h1_parse_request_head(in, strlen(in), &parsed, &why), 0);
    cr_assert_eq(parsed.len, strlen(in) - 18);
    const char *copy = mesh_h1_head_keep(&parsed, arena);
    cr_assert_not_null(copy);
    memset(in, 'x', strlen(in));
    free(in);
    cr_expect(parsed.method == copy && memcmp(parsed.method, "GET", 3) == 0);
    cr_expect(parsed.target_len == 2 && memcmp(parsed.target, "/k", 2) == 0);
    cr_assert_eq(parsed.nfields, 2);
    cr_expect(parsed.field[1].name_len == 3 && memcmp(parsed.field[1].name, "X-V", 3) == 0);
    cr_expect(parsed.field[1].value_len == 2 && memcmp(parsed.field[1].value, "v1", 2) == 0);
    cr_expect(parsed.field[1].value > copy && parsed.field[1].value < copy + parsed.len);
    teardown();
}

/* ---- chunked request bodies (h1_chunked.c) ---- */

/*
 * Decodes <in> fed <step> bytes at a time (0: all at once). Returns the status (0 when
 * the body ended well); the data in <data>, the trailers in <tr>.
 */
static int chunked(const char *in, size_t step, char *data, size_t cap, struct mesh_headers *tr,
                   struct mesh_arena *a, const char **why)
{
    struct mesh_h1_chunked ck = {0};
    mesh_h1_chunked_reset(&ck);
    struct evbuffer *body = evbuffer_new();
    size_t n = strlen(in), off = 0;
    int st = 0;
    *why = NULL;
    while (off < n && !st && !mesh_h1_chunked_done(&ck)) {
        size_t k = step && n - off > step ? step : n - off;
        off += mesh_h1_chunked_feed(&ck, in + off, k, body, &st, why);
    }
    if (!st)
        st = mesh_h1_chunked_done(&ck) ? mesh_h1_chunked_trailers(&ck, a, tr, why) : -1;
    size_t dl = evbuffer_get_length(body);
    cr_assert_lt(dl, cap);
    evbuffer_remove(body, data, dl);
    data[dl] = '\0';
    evbuffer_free(body);
    if (ck.trailer)
        evbuffer_free(ck.trailer);
    return st;
}

LEAK_TEST(http1, chunked_bodies_decode_whatever_the_reads)
{
    static const char body[] = "5;name=\"v\"\r\nhello\r\n7\r\n, world\r\nA\r\n0123456789\r\n"
                               "0;last\r\nX-Checksum: abc\r\nX-Two: 2\r\n\r\n";
    for (size_t step = 0; step <= 7; step++) {
        struct mesh_arena *a = mesh_arena_new(4096, 0);
        struct mesh_headers tr = {0};
        char data[256];
        const char *why;
        int st = chunked(body, step, data, sizeof(data), &tr, a, &why);
        cr_expect_eq(st, 0, "step %zu: %s", step, why ? why : "");
        cr_expect_str_eq(data, "hello, world0123456789", "step %zu", step);
        cr_expect_eq(tr.n, 2u, "step %zu", step);
        if (tr.n == 2) {
            cr_expect(tr.v[0].name_len == 10 && memcmp(tr.v[0].name, "X-Checksum", 10) == 0);
            cr_expect(tr.v[1].value_len == 1 && tr.v[1].value[0] == '2');
        }
        mesh_arena_free(a);
    }
    /* what follows the body (the next pipelined request) is not taken */
    struct mesh_h1_chunked ck = {0};
    struct evbuffer *b = evbuffer_new();
    static const char two[] = "0\r\n\r\nGET / HTTP/1.1\r\n";
    int st;
    const char *why;
    cr_expect_eq(mesh_h1_chunked_feed(&ck, two, sizeof(two) - 1, b, &st, &why), 5u);
    cr_expect(mesh_h1_chunked_done(&ck) && st == 0);
    evbuffer_free(b);
    if (ck.trailer)
        evbuffer_free(ck.trailer);
}

LEAK_TEST(http1, chunked_bodies_refused)
{
    static const struct {
        const char *in;
        int status;
    } bad[] = {
        {"zz\r\nhello\r\n0\r\n\r\n", 400},               /* not hex */
        {"+5\r\nhello\r\n0\r\n\r\n", 400},               /* a sign */
        {"0x5\r\nhello\r\n0\r\n\r\n", 400},              /* a prefix */
        {"5 \r\nhello\r\n0\r\n\r\n", 400},               /* a space */
        {"1000000000000000\r\n", 400},                   /* 16 digits */
        {"5\nhello\r\n0\r\n\r\n", 400},                  /* bare LF after the size */
        {"5\rXhello\r\n0\r\n\r\n", 400},                 /* CR then not LF */
        {"5\r\nhelloXY0\r\n\r\n", 400},                  /* data not ended by CRLF */
        {"5\r\nhello\n0\r\n\r\n", 400},                  /* data ended by a bare LF */
        {"5;a\nb\r\nhello\r\n0\r\n\r\n", 400},           /* bare LF in an extension */
        {"5;a\x01\r\nhello\r\n0\r\n\r\n", 400},          /* a control byte in one */
        {"0\r\n\n", 400},                                /* the end by a bare LF */
        {"0\r\nX-A: 1\n\r\n", 400},                      /* a trailer ended by a bare LF */
        {"0\r\nX-A: 1\rX\r\n\r\n", 400},                 /* a bare CR in one */
        {"0\r\nX Y: 1\r\n\r\n", 400},                    /* a space in a trailer's name */
        {"0\r\nX-A: 1\r\n b\r\n\r\n", 400},              /* obs-fold */
        {"0\r\nHost: evil\r\n\r\n", 400},                /* a field that may not trail */
        {"0\r\ncontent-length: 1\r\n\r\n", 400},
        {"0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"0\r\nAuthorization: x\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct mesh_arena *a = mesh_arena_new(4096, 0);
            struct mesh_headers tr = {0};
            char data[256];
            const char *why = NULL;
            int st = chunked(bad[i].in, step, data, sizeof(data), &tr, a, &why);
            cr_expect_eq(st, bad[i].status, "\"%s\" (step %zu): %d %s", bad[i].in, step, st,
                         why ? why : "");
            cr_expect(st <= 0 || why, "a reason");
            mesh_arena_free(a);
        }
    }
    /* a trailer section past MESH_MAX_HEADER_BYTES: 431 */
    size_t big = MESH_MAX_HEADER_BYTES + 100;
    char *in = malloc(big + 32);
    memcpy(in, "0\r\nX-Big: ", 10);
    memset(in + 10, 'x', big);
    memcpy(in + 10 + big, "\r\n\r\n", 5);
    struct mesh_arena *a = mesh_arena_new(4096, 0);
    struct mesh_headers tr = {0};
    static char data[256];
    const char *why;
    cr_expect_eq(chunked(in, 0, data, sizeof(data), &tr, a, &why), 431);
    mesh_arena_free(a);
    free(in);
}
