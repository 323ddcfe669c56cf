/* The push stream's framing parser and the reconnect backoff (src/roles/push_frame.h). */
#include "core/common.h"
#include <jansson.h>
#include <string.h>
#include <criterion/criterion.h>
#include "roles/push_frame.h"
#include "../leakcheck.h"

static const char snap1[] = "{\"version\":\"a1\",\"listeners\":[]}";

/* A header and body as the control plane writes them. */
static char *encode_snapshot(const char *body, size_t *len)
{
    json_t *h = json_pack("{s:s, s:i, s:s}", "type", "snapshot", "id", 3, "version", "a1");
    char *out = mesh_push_frame_encode(h, body, strlen(body), len);
    json_decref(h);
    return out;
}

LEAK_TEST(push_frame, round_trip)
{
    size_t len;
    char *buf = encode_snapshot(snap1, &len);
    cr_assert_eq(len, strlen(buf));
    cr_assert(strstr(buf, "\"length\":") != NULL);
    struct mesh_push_parser p;
    mesh_push_parser_init(&p);
    mesh_push_parser_feed(&p, buf, len);
    json_t *ping = json_pack("{s:s}", "type", "ping");
    size_t plen;
    char *pbuf = mesh_push_frame_encode(ping, NULL, 0, &plen);
    json_decref(ping);
    cr_assert_str_eq(pbuf, "{\"type\":\"ping\"}\n");
    mesh_push_parser_feed(&p, pbuf, plen);

    struct mesh_push_frame f;
    char why[256];
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 1);
    cr_assert_str_eq(f.type, "snapshot");
    cr_assert_eq(f.body_len, strlen(snap1));
    cr_assert_str_eq(f.body, snap1);
    cr_assert_eq(json_integer_value(json_object_get(f.header, "id")), 3);
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 1);
    cr_assert_str_eq(f.type, "ping");
    cr_assert_null(f.body);
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 0);
    mesh_push_parser_free(&p);
    free(buf);
    free(pbuf);
}

/* Bytes arrive in any split, down to one at a time: every frame comes out once, intact. */
LEAK_TEST(push_frame, byte_by_byte)
{
    size_t len;
    char *buf = encode_snapshot(snap1, &len);
    struct mesh_push_parser p;
    mesh_push_parser_init(&p);
    int frames = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < len; i++) {
            mesh_push_parser_feed(&p, buf + i, 1);
            struct mesh_push_frame f;
            char why[256];
            int rc = mesh_push_parser_next(&p, &f, why, sizeof(why));
            cr_assert_neq(rc, -1, "%s", why);
            if (rc == 1) {
                cr_assert_eq(i, len - 1, "a frame came out before its last byte");
                cr_assert_str_eq(f.body, snap1);
                frames++;
            }
        }
    }
    cr_assert_eq(frames, 3);
    /* the buffer is compacted: a long stream does not grow it without bound */
    cr_assert_leq(p.cap, 4 * len + 64);
    mesh_push_parser_free(&p);
    free(buf);
}

static void expect_error(const char *input, const char *reason)
{
    struct mesh_push_parser p;
    mesh_push_parser_init(&p);
    mesh_push_parser_feed(&p, input, strlen(input));
    struct mesh_push_frame f;
    char why[256] = "";
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), -1, "accepted: %s", input);
    cr_assert(strstr(why, reason) != NULL, "for %s: got \"%s\", want \"%s\"", input, why, reason);
    /* a failed stream stays failed */
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), -1);
    mesh_push_parser_free(&p);
}

LEAK_TEST(push_frame, bad_input)
{
    expect_error("not json\n", "not a JSON object");
    expect_error("[1,2]\n", "not a JSON object");
    expect_error("\n", "empty header line");
    expect_error("{\"id\":1}\n", "\"type\"");
    expect_error("{\"type\":\"snapshot\",\"length\":-1}\n", "\"length\"");
    expect_error("{\"type\":\"snapshot\",\"length\":\"5\"}\n", "\"length\"");
    expect_error("{\"type\":\"snapshot\",\"length\":999999999999}\n", "\"length\"");
    /* a body longer than announced: the byte after it is not the newline */
    expect_error("{\"type\":\"snapshot\",\"length\":2}\n{}}\n", "not followed by a newline");
    expect_error("{\"type\":\"a\",\"type\":\"b\"}\n", "not a JSON object");
}

LEAK_TEST(push_frame, header_limit)
{
    struct mesh_push_parser p;
    mesh_push_parser_init(&p);
    char *big = mesh_xmalloc(MESH_PUSH_MAX_HEADER + 10);
    memset(big, ' ', MESH_PUSH_MAX_HEADER + 10);
    mesh_push_parser_feed(&p, big, MESH_PUSH_MAX_HEADER + 10);
    struct mesh_push_frame f;
    char why[256];
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), -1);
    cr_assert(strstr(why, "64 KiB") != NULL);
    mesh_push_parser_free(&p);
    free(big);
}

/* A body that waits for its last bytes is not returned early, and an empty body is fine. */
LEAK_TEST(push_frame, partial_and_empty_body)
{
    struct mesh_push_parser p;
    mesh_push_parser_init(&p);
    const char *a = "{\"type\":\"snapshot\",\"length\":4}\nab";
    mesh_push_parser_feed(&p, a, strlen(a));
    struct mesh_push_frame f;
    char why[256];
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 0);
    mesh_push_parser_feed(&p, "cd\n{\"type\":\"x\",\"length\":0}\n\n", 28);
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 1);
    cr_assert_str_eq(f.body, "abcd");
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 1);
    cr_assert_str_eq(f.type, "x");
    cr_assert_eq(f.body_len, 0);
    cr_assert_str_eq(f.body, "");
    cr_assert_eq(mesh_push_parser_next(&p, &f, why, sizeof(why)), 0);
    mesh_push_parser_free(&p);
}

Test(push_frame, backoff_grows_caps_and_jitters)
{
    /* attempt 0: [100, 200] ms; each attempt doubles; capped at 10 s */
    cr_assert_eq(mesh_push_backoff_ms(0, 0), 100);
    cr_assert_eq(mesh_push_backoff_ms(0, 100), 200);
    cr_assert_eq(mesh_push_backoff_ms(0, 101), 100);
    cr_assert_eq(mesh_push_backoff_ms(1, 0), 200);
    cr_assert_eq(mesh_push_backoff_ms(3, 0), 800);
    for (unsigned a = 0; a < 40; a++) {
        uint32_t d = MESH_PUSH_BACKOFF_BASE_MS;
        for (unsigned i = 0; i < a && d < MESH_PUSH_BACKOFF_MAX_MS; i++)
            d *= 2;
        d = MESH_MIN(d, MESH_PUSH_BACKOFF_MAX_MS);
        for (uint32_t r = 0; r < 5000; r += 7) {
            uint32_t v = mesh_push_backoff_ms(a, r * 2654435761u);
            cr_assert(v >= d / 2 && v <= d, "attempt %u: %u not in [%u, %u]", a, v, d / 2, d);
        }
    }
    cr_assert_eq(mesh_push_backoff_ms(1000, UINT32_MAX - 1) <= MESH_PUSH_BACKOFF_MAX_MS, 1);
    /* the jitter spreads a fleet: 1000 draws at attempt 5 take many distinct values */
    int distinct = 0;
    static bool seen[20001];
    memset(seen, 0, sizeof(seen));
    for (uint32_t r = 0; r < 1000; r++) {
        uint32_t v = mesh_push_backoff_ms(5, r * 2654435761u);
        if (!seen[v]) {
            seen[v] = true;
            distinct++;
        }
    }
    cr_assert_gt(distinct, 500);
}
