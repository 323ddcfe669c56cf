/* Retry decisions (retry.c) and the loader of route.retry / route.mirrors (snapshot_retry.c). */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "../leakcheck.h"
#include "core/retry.h"
#include "core/snapshot.h"

/* ---- retry.c ---- */

static struct mesh_retry_policy policy(uint32_t on)
{
    return (struct mesh_retry_policy){.attempts = 2, .retry_on = on, .backoff_base_ms = 25,
                                      .backoff_max_ms = 250, .other_host = true};
}

Test(retry, status_conditions)
{
    struct mesh_retry_policy p = policy(MESH_RETRY_5XX);
    cr_expect(mesh_retry_on_response(&p, 500, -1));
    cr_expect(mesh_retry_on_response(&p, 599, -1));
    cr_expect_not(mesh_retry_on_response(&p, 409, -1));
    cr_expect_not(mesh_retry_on_response(&p, 200, -1));
    p = policy(MESH_RETRY_GATEWAY_ERROR);
    cr_expect(mesh_retry_on_response(&p, 502, -1));
    cr_expect(mesh_retry_on_response(&p, 503, -1));
    cr_expect(mesh_retry_on_response(&p, 504, -1));
    cr_expect_not(mesh_retry_on_response(&p, 500, -1));
    p = policy(MESH_RETRY_RETRIABLE_4XX);
    cr_expect(mesh_retry_on_response(&p, 409, -1));
    cr_expect_not(mesh_retry_on_response(&p, 404, -1));
    cr_expect_not(mesh_retry_on_response(&p, 503, -1));
}

Test(retry, listed_status_codes_only)
{
    uint16_t codes[] = {418, 503};
    struct mesh_retry_policy p = policy(MESH_RETRY_STATUS_CODES);
    p.status_codes = codes;
    p.n_status_codes = 2;
    cr_expect(mesh_retry_on_response(&p, 418, -1));
    cr_expect(mesh_retry_on_response(&p, 503, -1));
    cr_expect_not(mesh_retry_on_response(&p, 500, -1));
    cr_expect_not(mesh_retry_on_response(&p, 502, -1));
    /* the codes mean nothing without the condition */
    p.retry_on = MESH_RETRY_5XX;
    cr_expect_not(mesh_retry_on_response(&p, 418, -1));
}

Test(retry, grpc_statuses)
{
    struct mesh_retry_policy p = policy(MESH_RETRY_GRPC_UNAVAILABLE | MESH_RETRY_GRPC_CANCELLED);
    cr_expect(mesh_retry_on_response(&p, 200, 14));
    cr_expect(mesh_retry_on_response(&p, 200, 1));
    cr_expect_not(mesh_retry_on_response(&p, 200, 13));
    cr_expect_not(mesh_retry_on_response(&p, 200, 0));
    cr_expect_not(mesh_retry_on_response(&p, 200, -1));
    p = policy(MESH_RETRY_GRPC_INTERNAL | MESH_RETRY_GRPC_DEADLINE_EXCEEDED |
               MESH_RETRY_GRPC_RESOURCE_EXHAUSTED);
    cr_expect(mesh_retry_on_response(&p, 200, 13));
    cr_expect(mesh_retry_on_response(&p, 200, 4));
    cr_expect(mesh_retry_on_response(&p, 200, 8));
    cr_expect_not(mesh_retry_on_response(&p, 200, 14));
    cr_expect_eq(mesh_retry_grpc_status("14", 2), 14);
    cr_expect_eq(mesh_retry_grpc_status("0", 1), 0);
    cr_expect_eq(mesh_retry_grpc_status("", 0), -1);
    cr_expect_eq(mesh_retry_grpc_status("1x", 2), -1);
    cr_expect_eq(mesh_retry_grpc_status("140", 3), -1);
}

Test(retry, failure_conditions)
{
    struct mesh_retry_policy p = policy(MESH_RETRY_CONNECT_FAILURE);
    cr_expect(mesh_retry_on_failure(&p, MESH_TRY_CONNECT_FAILURE));
    cr_expect_not(mesh_retry_on_failure(&p, MESH_TRY_RESET));
    cr_expect_not(mesh_retry_on_failure(&p, MESH_TRY_REFUSED_STREAM));
    cr_expect_not(mesh_retry_on_failure(&p, MESH_TRY_TIMEOUT));
    p = policy(MESH_RETRY_REFUSED_STREAM);
    cr_expect(mesh_retry_on_failure(&p, MESH_TRY_REFUSED_STREAM));
    cr_expect_not(mesh_retry_on_failure(&p, MESH_TRY_CONNECT_FAILURE));
    /* 5xx, gateway-error and reset cover every failure without a response */
    uint32_t broad[] = {MESH_RETRY_5XX, MESH_RETRY_GATEWAY_ERROR, MESH_RETRY_RESET};
    for (size_t i = 0; i < MESH_ARRAY_LEN(broad); i++) {
        p = policy(broad[i]);
        cr_expect(mesh_retry_on_failure(&p, MESH_TRY_CONNECT_FAILURE));
        cr_expect(mesh_retry_on_failure(&p, MESH_TRY_RESET));
        cr_expect(mesh_retry_on_failure(&p, MESH_TRY_REFUSED_STREAM));
        cr_expect(mesh_retry_on_failure(&p, MESH_TRY_TIMEOUT));
    }
    /* no attempts, no policy: never */
    p = policy(MESH_RETRY_5XX);
    p.attempts = 0;
    cr_expect_not(mesh_retry_on_failure(&p, MESH_TRY_RESET));
    cr_expect_not(mesh_retry_on_response(&p, 503, -1));
    cr_expect_not(mesh_retry_on_failure(NULL, MESH_TRY_RESET));
}

Test(retry, backoff_is_full_jitter_within_the_cap)
{
    struct mesh_retry_policy p = policy(MESH_RETRY_5XX);
    /* the ceiling doubles from the base and stops at the max */
    cr_expect_eq(mesh_retry_backoff_ms(&p, 1, UINT64_MAX - (UINT64_MAX % 26) - 1), 25);
    uint32_t max1 = 0, max3 = 0, max9 = 0, min1 = UINT32_MAX;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t b1 = mesh_retry_backoff_ms(&p, 1, x), b3 = mesh_retry_backoff_ms(&p, 3, x);
        uint32_t b9 = mesh_retry_backoff_ms(&p, 9, x);
        max1 = MESH_MAX(max1, b1), min1 = MESH_MIN(min1, b1);
        max3 = MESH_MAX(max3, b3), max9 = MESH_MAX(max9, b9);
    }
    cr_expect_eq(min1, 0);
    cr_expect_eq(max1, 25);
    cr_expect_eq(max3, 100);
    cr_expect_eq(max9, 250);
    p.backoff_base_ms = 0;
    p.backoff_max_ms = 0;
    cr_expect_eq(mesh_retry_backoff_ms(&p, 5, 12345), 0);
}

/* ---- snapshot_retry.c, through mesh_snapshot_parse ---- */

static struct mesh_err err;
static char errbuf[16384];

static struct mesh_snapshot *parse_route(const char *route_extra)
{
    char doc[4096];
    snprintf(doc, sizeof(doc),
             "{\"version\": \"v1\","
             " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
             "                  \"route_config\": \"rc\"}],"
             " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"vh\","
             "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
             "     \"route\": {\"cluster\": \"c\"%s}}]}]}],"
             " \"clusters\": [{\"name\": \"c\", \"endpoints\": [{\"address\": \"127.0.0.1\","
             "   \"port\": 1}]}, {\"name\": \"m\"}]}",
             route_extra);
    mesh_err_init(&err, NULL);
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    return s;
}

static bool has_error(const char *path, const char *msg)
{
    for (size_t i = 0; i < err.count; i++)
        if (strcmp(err.e[i].path, path) == 0 && strstr(err.e[i].msg, msg))
            return true;
    return false;
}

#define ROUTE "route_configs[0].virtual_hosts[0].routes[0].route"
#define EXPECT_ERROR(path, msg)                                                                    \
    cr_expect(has_error(path, msg), "expected \"%s: %s\" in:\n%s", path, msg, errbuf)

static const struct mesh_route_policy *policy_of(struct mesh_snapshot *s)
{
    return s->route_configs[0].vhosts[0].routes[0].policy;
}

LEAK_TEST(retry_snapshot, full_policy)
{
    struct mesh_snapshot *s = parse_route(
        ", \"retry\": {\"attempts\": 3, \"per_try_timeout_ms\": 250,"
        " \"retry_on\": [\"5xx\", \"connect-failure\", \"retriable-status-codes\", \"unavailable\"],"
        " \"retriable_status_codes\": [409, 418], \"backoff_base_ms\": 10, \"other_host\": false}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_retry_policy *rp = policy_of(s)->retry;
    cr_assert_not_null(rp);
    cr_expect_eq(rp->attempts, 3);
    cr_expect_eq(rp->per_try_timeout_ms, 250);
    cr_expect_eq(rp->retry_on, MESH_RETRY_5XX | MESH_RETRY_CONNECT_FAILURE |
                                   MESH_RETRY_STATUS_CODES | MESH_RETRY_GRPC_UNAVAILABLE);
    cr_assert_eq(rp->n_status_codes, 2);
    cr_expect_eq(rp->status_codes[0], 409);
    cr_expect_eq(rp->status_codes[1], 418);
    cr_expect_eq(rp->backoff_base_ms, 10);
    cr_expect_eq(rp->backoff_max_ms, 100, "default max is 10 x base");
    cr_expect_not(rp->other_host);
    mesh_snapshot_unref(s);
}

LEAK_TEST(retry_snapshot, defaults)
{
    struct mesh_snapshot *s = parse_route(", \"retry\": {}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_retry_policy *rp = policy_of(s)->retry;
    cr_assert_not_null(rp);
    cr_expect_eq(rp->attempts, 0);
    cr_expect_eq(rp->per_try_timeout_ms, 0);
    cr_expect_eq(rp->retry_on, 0);
    cr_expect_eq(rp->backoff_base_ms, 25);
    cr_expect_eq(rp->backoff_max_ms, 250);
    cr_expect(rp->other_host);
    mesh_snapshot_unref(s);
}

LEAK_TEST(retry_snapshot, bad_fields_named_by_path)
{
    struct mesh_snapshot *s = parse_route(
        ", \"retry\": {\"attempts\": 101, \"retry_on\": [\"5xx\", \"sometimes\", 7],"
        " \"retriable_status_codes\": [99, \"x\"], \"backoff_base_ms\": 100,"
        " \"backoff_max_ms\": 50, \"tries\": 1}");
    cr_expect_null(s);
    EXPECT_ERROR(ROUTE ".retry.attempts", "between 0 and 100");
    EXPECT_ERROR(ROUTE ".retry.retry_on[1]", "unknown retry condition 'sometimes'");
    EXPECT_ERROR(ROUTE ".retry.retry_on[2]", "must be a string");
    EXPECT_ERROR(ROUTE ".retry.retriable_status_codes", "retriable-status-codes");
    EXPECT_ERROR(ROUTE ".retry.retriable_status_codes[0]", "between 100 and 599");
    EXPECT_ERROR(ROUTE ".retry.retriable_status_codes[1]", "between 100 and 599");
    EXPECT_ERROR(ROUTE ".retry.backoff_max_ms", "not be less than backoff_base_ms");
    EXPECT_ERROR(ROUTE ".retry.tries", "unknown field");
    mesh_snapshot_unref(s);
    s = parse_route(", \"retry\": [1]");
    cr_expect_null(s);
    EXPECT_ERROR(ROUTE ".retry", "must be an object");
    mesh_snapshot_unref(s);
}

LEAK_TEST(retry_snapshot, mirrors)
{
    struct mesh_snapshot *s =
        parse_route(", \"mirrors\": [{\"cluster\": \"m\"}, {\"cluster\": \"c\", \"percent\": 12.5}]");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route_policy *pol = policy_of(s);
    cr_assert_not_null(pol);
    cr_assert_eq(pol->n_mirrors, 2);
    cr_expect_str_eq(pol->mirrors[0].cluster->name, "m");
    cr_expect_eq(pol->mirrors[0].percent, 1000000);
    cr_expect_str_eq(pol->mirrors[1].cluster->name, "c");
    cr_expect_eq(pol->mirrors[1].percent, 125000);
    mesh_snapshot_unref(s);
}

LEAK_TEST(retry_snapshot, bad_mirrors)
{
    struct mesh_snapshot *s = parse_route(
        ", \"mirrors\": [{\"cluster\": \"nope\"}, {\"percent\": 101, \"cluster\": \"m\"},"
        " {}, 3, {\"cluster\": \"m\", \"host\": \"x\"}]");
    cr_expect_null(s);
    EXPECT_ERROR(ROUTE ".mirrors[0].cluster", "no cluster named 'nope'");
    EXPECT_ERROR(ROUTE ".mirrors[1].percent", "between");
    EXPECT_ERROR(ROUTE ".mirrors[2].cluster", "");
    EXPECT_ERROR(ROUTE ".mirrors[3]", "must be an object");
    EXPECT_ERROR(ROUTE ".mirrors[4].host", "unknown field");
    mesh_snapshot_unref(s);
    s = parse_route(", \"mirrors\": {\"cluster\": \"m\"}");
    cr_expect_null(s);
    EXPECT_ERROR(ROUTE ".mirrors", "must be an array");
    mesh_snapshot_unref(s);
}
