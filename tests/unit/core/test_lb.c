/*
 * Load balancers, outlier detection and the cluster loader fields they read
 * (src/core/lb.c, outlier.c, lb_hash.c, snapshot_cluster.c). Snapshots are
 * parsed from JSON; a fake worker and stream drive mesh_lb_pick/mesh_lb_done
 * directly, with the lb's test clock for ejections and slow start.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "../leakcheck.h"
#include "core/lb-int.h"
#include "core/lb_hash.h"
#include "core/snapshot.h"

#define LB_TEST(name)                                                                              \
    static void name##_body(void);                                                                 \
    Test(lb, name)                                                                                 \
    {                                                                                              \
        name##_body();                                                                             \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void name##_body(void)

static struct mesh_err err;
static char errbuf[16384];

/* A snapshot with one cluster "c": <cluster_extra> are more fields, <eps> its endpoints. */
static struct mesh_snapshot *parse_cluster(const char *cluster_extra, const char *eps)
{
    char *doc;
    int n = asprintf(&doc,
                     "{\"version\": \"v1\", \"listeners\": [{\"name\": \"l\", \"address\": "
                     "\"127.0.0.1\", \"port\": 0, \"route_config\": \"rc\"}],"
                     " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": "
                     "\"vh\", \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
                     " \"route\": {\"cluster\": \"c\"}}]}]}],"
                     " \"clusters\": [{\"name\": \"c\"%s%s, \"endpoints\": [%s]}]}",
                     *cluster_extra ? ", " : "", cluster_extra, eps);
    cr_assert(n > 0);
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    free(doc);
    return s;
}

static bool has_error(const char *path, const char *msg)
{
    for (size_t i = 0; i < err.count; i++)
        if (strcmp(err.e[i].path, path) == 0 && strstr(err.e[i].msg, msg))
            return true;
    return false;
}

#define EXPECT_ERROR(path, msg)                                                                    \
    cr_expect(has_error(path, msg), "expected \"%s: %s\" in:\n%s", path, msg, errbuf)

/* "n" endpoints 10.0.<i/250>.<i%250+1>:80 with weights from <w> (NULL: 1), priorities from <p>. */
static char *endpoints(size_t n, const unsigned *w, const unsigned *p)
{
    size_t cap = n * 120 + 16, len = 0;
    char *b = mesh_xcalloc(1, cap);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"address\": \"10.0.%zu.%zu\", \"port\": 80, \"weight\": %u,"
                                " \"priority\": %u}",
                                i ? "," : "", i / 250, i % 250 + 1, w ? w[i] : 1, p ? p[i] : 0);
    return b;
}

struct fx {
    struct mesh_lb_shared *sh;
    struct mesh_worker w;
    struct mesh_conn conn;
    struct mesh_stream s;
    struct mesh_route route;
    struct mesh_route_policy policy;
    struct mesh_retry_policy retry;
    struct mesh_snapshot *snap;
};

static void fx_init(struct fx *f, struct mesh_snapshot *snap)
{
    cr_assert_not_null(snap, "%s", errbuf);
    memset(f, 0, sizeof(*f));
    f->sh = mesh_lb_shared_new();
    mesh_lb_shared_set_clock(f->sh, 1000000);
    f->w.lb = mesh_lb_worker_new(f->sh, &f->w, 42);
    f->w.snap = snap;
    f->snap = snap;
    mesh_lb_worker_snapshot(f->w.lb, snap);
    f->s.w = &f->w;
    f->s.conn = &f->conn;
    f->s.snap = snap;
    f->s.cluster = &snap->clusters[0];
    f->s.arena = mesh_arena_new(4096, 0);
    strcpy(f->conn.peer_ip, "192.0.2.7");
}

static void fx_reset_stream(struct fx *f)
{
    mesh_arena_reset(f->s.arena);
    memset(&f->s.req, 0, sizeof(f->s.req));
    memset(&f->s.resp_add, 0, sizeof(f->s.resp_add));
    f->s.n_tried = 0;
    f->s.endpoint = NULL;
}

static void fx_free(struct fx *f)
{
    mesh_lb_worker_free(f->w.lb);
    mesh_lb_shared_free(f->sh);
    mesh_arena_free(f->s.arena);
    mesh_snapshot_unref(f->snap);
}

static const struct mesh_cluster *CL(struct fx *f)
{
    return &f->snap->clusters[0];
}

/* One request: pick, then done with <status>. Returns the endpoint index. */
static size_t req(struct fx *f, int status)
{
    const struct mesh_endpoint *ep = mesh_lb_pick(&f->s, CL(f));
    cr_assert_not_null(ep);
    f->s.endpoint = ep;
    mesh_lb_done(&f->s, status, 0);
    f->s.endpoint = NULL;
    return (size_t)(ep - CL(f)->endpoints);
}

static void count_picks(struct fx *f, size_t n, size_t *counts)
{
    for (size_t i = 0; i < n; i++)
        counts[req(f, 200)]++;
}

static void set_clock(struct fx *f, uint64_t ms)
{
    mesh_lb_shared_set_clock(f->sh, ms);
}

/* ---- Loader ---- */

LB_TEST(loader_reads_every_field)
{
    struct mesh_snapshot *s = parse_cluster(
        "\"lb_policy\": \"maglev\", \"hash_policy\": {\"cookie\": {\"name\": \"sticky\", "
        "\"ttl_ms\": 60000, \"path\": \"/\"}}, \"maglev_table_size\": 251, \"slow_start_ms\": 5000,"
        " \"max_requests\": 7, \"max_retries\": 3, \"tcp_keepalive\": {\"time_s\": 30, "
        "\"interval_s\": 5, \"probes\": 3}, \"outlier_detection\": {\"consecutive_5xx\": 2, "
        "\"consecutive_gateway_errors\": 4, \"interval_ms\": 100, \"base_ejection_time_ms\": 1000,"
        " \"max_ejection_percent\": 50, \"min_health_percent\": 20}",
        "{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 3, \"priority\": 1, "
        "\"locality\": \"eu/a/1\"}, {\"address\": \"10.0.0.2\", \"port\": 80}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_cluster *c = &s->clusters[0];
    cr_expect_eq(c->lb_policy, MESH_LBP_MAGLEV);
    cr_expect_eq(c->hash.kind, MESH_HASH_COOKIE);
    cr_expect_str_eq(c->hash.name, "sticky");
    cr_expect(c->hash.cookie_generate);
    cr_expect_eq(c->hash.cookie_ttl_ms, 60000);
    cr_expect_str_eq(c->hash.cookie_path, "/");
    cr_expect_eq(c->maglev_table_size, 251);
    cr_expect_eq(c->slow_start_ms, 5000);
    cr_expect_eq(c->max_requests, 7);
    cr_expect_eq(c->max_retries, 3);
    cr_expect(c->keepalive.enabled);
    cr_expect_eq(c->keepalive.probes, 3);
    cr_expect(c->outlier.enabled);
    cr_expect_eq(c->outlier.consecutive_5xx, 2);
    cr_expect_eq(c->outlier.consecutive_gateway, 4);
    cr_expect_eq(c->outlier.max_ejection_percent, 50);
    cr_expect_eq(c->outlier.min_health_percent, 20);
    cr_expect_eq(c->endpoints[0].priority, 1);
    cr_expect_str_eq(c->endpoints[0].locality, "eu/a/1");
    /* two levels, most preferred first, each with its own table */
    cr_assert_eq(c->n_levels, 2);
    cr_expect_eq(c->levels[0].priority, 0);
    cr_expect_eq(c->levels[0].eps[0], 1);
    cr_expect_not_null(c->levels[1].maglev);
    cr_expect_not(c->equal_weights);
    mesh_snapshot_unref(s);

    s = parse_cluster("", "{\"address\": \"10.0.0.1\", \"port\": 80}");
    cr_assert_not_null(s, "%s", errbuf);
    c = &s->clusters[0];
    cr_expect_eq(c->lb_policy, MESH_LBP_ROUND_ROBIN);
    cr_expect_eq(c->max_requests, UINT32_MAX);
    cr_expect_not(c->outlier.enabled);
    cr_expect_not(c->keepalive.enabled);
    mesh_snapshot_unref(s);
}

LB_TEST(loader_outlier_defaults)
{
    struct mesh_snapshot *s = parse_cluster("\"outlier_detection\": {}", "");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_outlier_cfg *od = &s->clusters[0].outlier;
    cr_expect(od->enabled);
    cr_expect_eq(od->consecutive_5xx, 5);
    cr_expect_eq(od->consecutive_gateway, 0);
    cr_expect_eq(od->interval_ms, 10000);
    cr_expect_eq(od->base_ejection_ms, 30000);
    cr_expect_eq(od->max_ejection_percent, 10);
    cr_expect_eq(od->min_health_percent, 0);
    mesh_snapshot_unref(s);
}

LB_TEST(loader_errors_name_path_and_reason)
{
#define EP "{\"address\": \"10.0.0.1\", \"port\": 80}"
    static const struct {
        const char *extra, *eps, *path, *msg;
    } cases[] = {
        {"\"lb_policy\": \"fastest\"", EP,
         "clusters[0].lb_policy", "must be \"round_robin\""},
        {"\"hash_policy\": {\"header\": \"x\"}", EP,
         "clusters[0].hash_policy", "only with lb_policy"},
        {"\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"header\": \"x\", \"source_ip\": true}",
         EP,
         "clusters[0].hash_policy", "exactly one of"},
        {"\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"hedaer\": \"x\"}", EP,
         "clusters[0].hash_policy.hedaer", "unknown field"},
        {"\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"cookie\": {}}", EP,
         "clusters[0].hash_policy.cookie.name", "is required"},
        {"\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"cookie\": {\"name\": \"a;b\"}}", EP,
         "clusters[0].hash_policy.cookie.name", "cookie name"},
        {"\"lb_policy\": \"ring_hash\", \"ring_size\": 0", EP,
         "clusters[0].ring_size", "between"},
        {"\"lb_policy\": \"maglev\", \"maglev_table_size\": 1000", EP,
         "clusters[0].maglev_table_size", "prime"},
        {"\"maglev_table_size\": 7", EP,
         "clusters[0].maglev_table_size", "only with lb_policy \"maglev\""},
        {"\"lb_policy\": \"maglev\", \"maglev_table_size\": 2",
         EP ", {\"address\": \"10.0.0.2\", \"port\": 80}",
         "clusters[0].maglev_table_size", "larger than the number of endpoints"},
        {"\"outlier_detection\": {\"max_ejection_percent\": 101}", EP,
         "clusters[0].outlier_detection.max_ejection_percent", "between 0 and 100"},
        {"\"outlier_detection\": {\"interval_ms\": 0}", EP,
         "clusters[0].outlier_detection.interval_ms", "between"},
        {"\"outlier_detection\": {\"consecutive_500\": 1}", EP,
         "clusters[0].outlier_detection.consecutive_500", "unknown field"},
        {"\"tcp_keepalive\": {\"probes\": 200}", EP,
         "clusters[0].tcp_keepalive.probes", "between 1 and 127"},
        {"\"lb_policy\": \"passthrough\"", EP,
         "clusters[0].endpoints", "must be empty"},
        {"\"max_requests\": 0", EP,
         "clusters[0].max_requests", "between 1"},
        {"", "{\"address\": \"10.0.0.1\", \"port\": 80, \"priority\": -1}",
         "clusters[0].endpoints[0].priority", "between"},
        {"", "{\"address\": \"10.0.0.1\", \"port\": 80, \"locality\": 3}",
         "clusters[0].endpoints[0].locality", "string"},
    };
#undef EP
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mesh_snapshot *s = parse_cluster(cases[i].extra, cases[i].eps);
        cr_expect_null(s, "cases[%zu] (%s) was accepted", i, cases[i].extra);
        if (s)
            mesh_snapshot_unref(s);
        EXPECT_ERROR(cases[i].path, cases[i].msg);
    }
}

/* ---- Round robin, random, least request ---- */

LB_TEST(round_robin_equal_weights_is_exact)
{
    char *e = endpoints(3, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("", e));
    free(e);
    size_t c[3] = {0};
    count_picks(&f, 300, c);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(c[i], 100, "endpoint %d: %zu", i, c[i]);
    fx_free(&f);
}

LB_TEST(round_robin_weighted_is_smooth_and_exact)
{
    unsigned w[3] = {1, 2, 7};
    char *e = endpoints(3, w, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("", e));
    free(e);
    size_t c[3] = {0};
    count_picks(&f, 1000, c);
    cr_expect(labs((long)c[0] - 100) <= 2 && labs((long)c[1] - 200) <= 2 && labs((long)c[2] - 700) <= 2,
              "%zu %zu %zu", c[0], c[1], c[2]);
    /* smooth: the light endpoint is never starved for long (EDF, not 7-in-a-row blocks) */
    size_t last = 0, worst_gap = 0;
    for (size_t i = 1; i <= 100; i++)
        if (req(&f, 200) == 0) {
            worst_gap = MESH_MAX(worst_gap, i - last);
            last = i;
        }
    cr_expect_leq(worst_gap, 12, "gap %zu", worst_gap);
    fx_free(&f);
}

/* Level 0 of the fixture cluster's view, as the worker picks from it (white box). */
static struct lb_view_level *level0(struct fx *f)
{
    struct lb_cl *lc = mesh_lb_bind_cluster(f->w.lb, f->snap, CL(f));
    cr_assert_not_null(lc);
    return &lc->lv[0];
}

LB_TEST(round_robin_schedule_and_heap_agree_per_period)
{
    /* GCD 2: a period of 42 picks, short enough (<= 8 per endpoint) to precompute */
    unsigned w[8] = {2, 4, 6, 10, 14, 20, 20, 8};
    char *e = endpoints(8, w, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("", e));
    free(e);
    req(&f, 200); /* builds the view */
    struct lb_view_level *v = level0(&f);
    cr_assert_eq(v->sched_len, 42);
    /* any 42 consecutive picks hold each endpoint exactly w / 2 times */
    for (int period = 0; period < 3; period++) {
        size_t c[8] = {0};
        count_picks(&f, 42, c);
        for (int i = 0; i < 8; i++)
            cr_expect_eq(c[i], w[i] / 2, "period %d, endpoint %d: %zu", period, i, c[i]);
    }
    /* the heap alone (what serves without a schedule): the same counts, give or take
     * one for its random start, over 100 periods */
    v->sched_len = 0;
    size_t c[8] = {0};
    count_picks(&f, 4200, c);
    for (int i = 0; i < 8; i++)
        cr_expect(labs((long)c[i] - 100 * (long)w[i] / 2) <= 1, "heap, endpoint %d: %zu", i, c[i]);
    fx_free(&f);

    /* a period of 1001 for 2 endpoints is too long: the heap serves, as exactly */
    unsigned w2[2] = {1, 1000};
    e = endpoints(2, w2, NULL);
    fx_init(&f, parse_cluster("", e));
    free(e);
    size_t c2[2] = {0};
    count_picks(&f, 3003, c2);
    cr_expect_eq(level0(&f)->sched_len, 0);
    cr_expect(labs((long)c2[0] - 3) <= 1 && labs((long)c2[1] - 3000) <= 1, "%zu %zu", c2[0], c2[1]);
    fx_free(&f);
}

LB_TEST(round_robin_schedule_waits_for_slow_start)
{
    const char *extra = "\"slow_start_ms\": 10000";
    unsigned w[2] = {1, 3};
    char *e1 = endpoints(1, w, NULL), *e2 = endpoints(2, w, NULL);
    struct fx f;
    fx_init(&f, parse_cluster(extra, e1));
    struct mesh_snapshot *s2 = parse_cluster(extra, e2);
    free(e1);
    free(e2);
    cr_assert_not_null(s2);
    /* 10.0.0.2 (weight 3) appears in a reload: it warms up for 10 s */
    set_clock(&f, 2000000);
    mesh_lb_worker_snapshot(f.w.lb, s2);
    mesh_snapshot_unref(f.snap);
    f.snap = f.w.snap = f.s.snap = s2;
    f.s.cluster = CL(&f);
    size_t c[2] = {0};
    count_picks(&f, 1000, c);
    cr_expect_eq(level0(&f)->sched_len, 0, "weights change while warming: the heap picks");
    cr_expect_lt(c[1], 500, "warming at 10%%: %zu", c[1]);
    /* once it is warm, the next pick precomputes the schedule: exactly 1:3 */
    set_clock(&f, 2000000 + 10000);
    req(&f, 200);
    cr_expect_eq(level0(&f)->sched_len, 4);
    size_t d[2] = {0};
    count_picks(&f, 400, d);
    cr_expect(d[0] == 100 && d[1] == 300, "%zu %zu", d[0], d[1]);
    fx_free(&f);
}

LB_TEST(random_is_weighted)
{
    unsigned w[2] = {1, 3};
    char *e = endpoints(2, w, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"random\"", e));
    free(e);
    size_t c[2] = {0};
    count_picks(&f, 20000, c);
    double share = (double)c[1] / 20000;
    cr_expect(fabs(share - 0.75) < 0.02, "share %f", share);
    fx_free(&f);
}

LB_TEST(least_request_prefers_idle)
{
    char *e = endpoints(2, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"least_request\"", e));
    free(e);
    /* keep 5 requests in flight on endpoint 0 */
    const struct mesh_endpoint *held[5];
    size_t nh = 0;
    while (nh < 5) {
        const struct mesh_endpoint *ep = mesh_lb_pick(&f.s, CL(&f));
        if (ep == &CL(&f)->endpoints[0]) {
            held[nh++] = ep;
        } else {
            f.s.endpoint = ep;
            mesh_lb_done(&f.s, 200, 0);
        }
    }
    size_t c[2] = {0};
    count_picks(&f, 4000, c);
    /* P2C: endpoint 0 wins only when both samples are it (1/4) */
    double idle = (double)c[1] / 4000;
    cr_expect(idle > 0.70 && idle < 0.80, "idle share %f", idle);
    for (size_t i = 0; i < nh; i++) {
        f.s.endpoint = held[i];
        mesh_lb_done(&f.s, 200, 0);
    }
    struct mesh_lb_ep_info ei;
    mesh_lb_endpoint_info(f.sh, CL(&f), &CL(&f)->endpoints[0], &ei);
    cr_expect_eq(ei.active, 0);
    /* no load: weights decide */
    unsigned w[2] = {1, 4};
    fx_free(&f);
    e = endpoints(2, w, NULL);
    fx_init(&f, parse_cluster("\"lb_policy\": \"least_request\"", e));
    free(e);
    memset(c, 0, sizeof(c));
    count_picks(&f, 10000, c);
    double heavy = (double)c[1] / 10000;
    cr_expect(heavy > 0.75, "heavy share %f", heavy);
    fx_free(&f);
}

/* ---- Hashing ---- */

static void set_header(struct fx *f, const char *name, const char *value)
{
    mesh_headers_add_copy(f->s.arena, &f->s.req.hdrs, name, strlen(name), value, strlen(value));
}

static size_t hash_pick(struct fx *f, const char *hdr, const char *value)
{
    fx_reset_stream(f);
    set_header(f, hdr, value);
    return req(f, 200);
}

static void hash_spread_and_stability(const char *policy)
{
    char *e = endpoints(10, NULL, NULL);
    char extra[200];
    snprintf(extra, sizeof(extra), "\"lb_policy\": \"%s\", \"hash_policy\": {\"header\": \"X-User\"}",
             policy);
    struct fx f;
    fx_init(&f, parse_cluster(extra, e));
    free(e);
    enum { K = 5000 };
    static size_t before[K];
    size_t c[10] = {0};
    for (size_t k = 0; k < K; k++) {
        char v[32];
        snprintf(v, sizeof(v), "user-%zu", k);
        before[k] = hash_pick(&f, "x-user", v);
        c[before[k]]++;
        cr_assert_eq(hash_pick(&f, "x-user", v), before[k]); /* sticky */
    }
    for (int i = 0; i < 10; i++)
        cr_expect(c[i] > K / 10 / 2 && c[i] < K / 10 * 2, "%s: endpoint %d has %zu keys", policy, i,
                  c[i]);
    /* remove endpoint 9: its keys move, the others' (almost all) stay */
    fx_free(&f);
    e = endpoints(9, NULL, NULL);
    fx_init(&f, parse_cluster(extra, e));
    free(e);
    size_t stay = 0, kept = 0;
    for (size_t k = 0; k < K; k++) {
        if (before[k] == 9)
            continue;
        char v[32];
        snprintf(v, sizeof(v), "user-%zu", k);
        kept++;
        stay += hash_pick(&f, "x-user", v) == before[k];
    }
    cr_expect((double)stay / kept > 0.85, "%s: only %zu of %zu keys stayed", policy, stay, kept);
    fx_free(&f);
}

LB_TEST(ring_hash_spreads_sticks_and_moves_little)
{
    hash_spread_and_stability("ring_hash");
}

LB_TEST(maglev_spreads_sticks_and_moves_little)
{
    hash_spread_and_stability("maglev");
}

LB_TEST(maglev_weights)
{
    unsigned w[2] = {1, 3};
    char *e = endpoints(2, w, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"maglev\", \"maglev_table_size\": 10007", e));
    free(e);
    size_t c[2] = {0};
    for (uint32_t i = 0; i < 10007; i++)
        c[CL(&f)->levels[0].maglev[i]]++;
    double share = (double)c[1] / 10007;
    cr_expect(fabs(share - 0.75) < 0.01, "share %f", share);
    fx_free(&f);
}

LB_TEST(hash_by_query_source_ip_and_missing_key)
{
    char *e = endpoints(8, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"query_param\": \"u\"}", e));
    size_t first = 0;
    bool moved = false;
    for (int i = 0; i < 20; i++) {
        fx_reset_stream(&f);
        f.s.req.path = i % 2 ? "/a?x=1&u=alice&y" : "/b?u=alice";
        f.s.req.path_len = (uint32_t)strlen(f.s.req.path);
        size_t got = req(&f, 200);
        if (i == 0)
            first = got;
        cr_expect_eq(got, first);
    }
    /* no key: random, so it moves */
    for (int i = 0; i < 50 && !moved; i++) {
        fx_reset_stream(&f);
        f.s.req.path = "/nokey";
        f.s.req.path_len = 6;
        moved = req(&f, 200) != first;
    }
    cr_expect(moved);
    fx_free(&f);
    fx_init(&f, parse_cluster("\"lb_policy\": \"maglev\", \"hash_policy\": {\"source_ip\": true}", e));
    free(e);
    fx_reset_stream(&f);
    first = req(&f, 200);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(req(&f, 200), first);
    fx_free(&f);
}

LB_TEST(cookie_generated_then_sticks)
{
    char *e = endpoints(8, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"cookie\": "
                              "{\"name\": \"sid\", \"ttl_ms\": 1500, \"path\": \"/app\"}}", e));
    free(e);
    for (int round = 0; round < 10; round++) {
        fx_reset_stream(&f);
        size_t first = req(&f, 200);
        cr_assert_eq(f.s.resp_add.n, 1);
        const struct mesh_header *h = &f.s.resp_add.v[0];
        cr_expect_str_eq(h->name, "set-cookie");
        char val[64] = {0};
        cr_assert(sscanf(h->value, "sid=%16[0-9a-f]; Max-Age=2; Path=/app", val) == 1, "%s", h->value);
        cr_expect(strstr(h->value, "; Max-Age=2; Path=/app") != NULL, "%s", h->value);
        char cookie[100];
        snprintf(cookie, sizeof(cookie), "a=b; sid=%s; c=d", val);
        for (int i = 0; i < 5; i++) {
            cr_expect_eq(hash_pick(&f, "cookie", cookie), first);
            cr_expect_eq(f.s.resp_add.n, 0); /* the request had one: none set */
        }
    }
    cr_expect_eq(f.w.stats.v[MESH_STAT_lb_cookie_generated], 10);
    fx_free(&f);
}

/* ---- Priorities, slow start ---- */

/* Ejects endpoint <idx> with consecutive 5xx (threshold 1 in these clusters). */
static void eject(struct fx *f, size_t idx)
{
    f->s.endpoint = &CL(f)->endpoints[idx];
    mesh_lb_done(&f->s, 500, 0);
    f->s.endpoint = NULL;
}

LB_TEST(priorities_spill_over_with_overprovisioning)
{
    unsigned p[4] = {0, 0, 1, 1};
    char *e = endpoints(4, NULL, p);
    struct fx f;
    fx_init(&f, parse_cluster("\"outlier_detection\": {\"consecutive_5xx\": 1, "
                              "\"max_ejection_percent\": 100}", e));
    free(e);
    size_t c[4] = {0};
    count_picks(&f, 1000, c);
    cr_expect_eq(c[0] + c[1], 1000, "priority 1 got traffic while priority 0 was healthy");
    /* one of two healthy: 50% x 1.4 = 70% stays, 30% spills */
    eject(&f, 0);
    memset(c, 0, sizeof(c));
    count_picks(&f, 10000, c);
    cr_expect_eq(c[0], 0);
    double spill = (double)(c[2] + c[3]) / 10000;
    cr_expect(fabs(spill - 0.30) < 0.03, "spill %f", spill);
    eject(&f, 1);
    memset(c, 0, sizeof(c));
    count_picks(&f, 1000, c);
    cr_expect_eq(c[2] + c[3], 1000);
    /* every level gone: no endpoint */
    eject(&f, 2);
    eject(&f, 3);
    cr_expect_null(mesh_lb_pick(&f.s, CL(&f)));
    fx_free(&f);
}

static void slow_start_case(const char *policy)
{
    char extra[200];
    snprintf(extra, sizeof(extra), "\"lb_policy\": \"%s\", \"slow_start_ms\": 10000", policy);
    char *e1 = endpoints(1, NULL, NULL), *e2 = endpoints(2, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster(extra, e1));
    /* endpoint 10.0.0.2 appears in a reload at t0 */
    struct mesh_snapshot *s2 = parse_cluster(extra, e2);
    cr_assert_not_null(s2);
    uint64_t t0 = 2000000;
    set_clock(&f, t0);
    mesh_lb_worker_snapshot(f.w.lb, s2);
    mesh_snapshot_unref(f.snap);
    f.snap = s2;
    f.w.snap = s2;
    f.s.snap = s2;
    f.s.cluster = &s2->clusters[0];
    double expect[3] = {0.1 / 1.1, 0.5 / 1.5, 0.5};
    for (int step = 0; step < 3; step++) {
        set_clock(&f, t0 + (uint64_t)step * 5000);
        size_t c[2] = {0};
        count_picks(&f, 20000, c);
        double share = (double)c[1] / 20000;
        cr_expect(fabs(share - expect[step]) < 0.03, "%s at %d ms: new endpoint share %f, want %f",
                  policy, step * 5000, share, expect[step]);
    }
    free(e1);
    free(e2);
    fx_free(&f);
}

LB_TEST(slow_start_ramps_linearly)
{
    slow_start_case("round_robin");
    slow_start_case("random");
}

/* ---- Outlier detection ---- */

LB_TEST(outlier_ejects_returns_and_grows)
{
    char *e = endpoints(4, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"outlier_detection\": {\"consecutive_5xx\": 3, \"interval_ms\": 100,"
                              " \"base_ejection_time_ms\": 1000, \"max_ejection_percent\": 50}", e));
    free(e);
    uint64_t t = 1000000;
    /* 2 errors, a success, 2 errors: not consecutive */
    eject(&f, 0);
    eject(&f, 0);
    f.s.endpoint = &CL(&f)->endpoints[0];
    mesh_lb_done(&f.s, 404, 0);
    mesh_lb_done(&f.s, 0, MESH_RF_DC); /* client gone: says nothing */
    eject(&f, 0);
    eject(&f, 0);
    struct mesh_lb_ep_info ei;
    mesh_lb_endpoint_info(f.sh, CL(&f), &CL(&f)->endpoints[0], &ei);
    cr_expect_not(ei.ejected);
    /* a connect failure is the third in a row */
    f.s.endpoint = &CL(&f)->endpoints[0];
    mesh_lb_done(&f.s, 0, MESH_RF_UF);
    mesh_lb_endpoint_info(f.sh, CL(&f), &CL(&f)->endpoints[0], &ei);
    cr_expect(ei.ejected);
    cr_expect_eq(ei.ejected_for_ms, 1000);
    cr_expect_eq(f.w.stats.v[MESH_STAT_outlier_ejections_total], 1);
    cr_expect_eq(f.w.stats.v[MESH_STAT_outlier_ejections_consecutive_5xx], 1);
    size_t c[4] = {0};
    count_picks(&f, 300, c);
    cr_expect_eq(c[0], 0);
    /* back after base x 1 (at the first review after it) */
    set_clock(&f, t + 999);
    count_picks(&f, 30, c);
    cr_expect_eq(c[0], 0);
    set_clock(&f, t + 1100);
    memset(c, 0, sizeof(c));
    count_picks(&f, 300, c);
    cr_expect_eq(c[0], 75);
    /* second ejection soon after: twice as long */
    for (int i = 0; i < 3; i++)
        eject(&f, 0);
    mesh_lb_endpoint_info(f.sh, CL(&f), &CL(&f)->endpoints[0], &ei);
    cr_expect(ei.ejected);
    cr_expect_eq(ei.ejected_for_ms, 2000);
    cr_expect_eq(ei.total_ejections, 2);
    fx_free(&f);
}

LB_TEST(outlier_max_ejection_percent_and_gateway_errors)
{
    char *e = endpoints(4, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"outlier_detection\": {\"consecutive_5xx\": 0, "
                              "\"consecutive_gateway_errors\": 2, \"max_ejection_percent\": 25}", e));
    free(e);
    f.s.endpoint = &CL(&f)->endpoints[0];
    mesh_lb_done(&f.s, 500, 0); /* not a gateway error */
    mesh_lb_done(&f.s, 500, 0);
    struct mesh_lb_ep_info ei;
    mesh_lb_endpoint_info(f.sh, CL(&f), f.s.endpoint, &ei);
    cr_expect_not(ei.ejected);
    mesh_lb_done(&f.s, 502, 0);
    mesh_lb_done(&f.s, 0, MESH_RF_UC);
    mesh_lb_endpoint_info(f.sh, CL(&f), f.s.endpoint, &ei);
    cr_expect(ei.ejected);
    cr_expect_eq(f.w.stats.v[MESH_STAT_outlier_ejections_consecutive_gateway], 1);
    /* 25% of 4: one at a time */
    f.s.endpoint = &CL(&f)->endpoints[1];
    mesh_lb_done(&f.s, 503, 0);
    mesh_lb_done(&f.s, 504, 0);
    mesh_lb_endpoint_info(f.sh, CL(&f), f.s.endpoint, &ei);
    cr_expect_not(ei.ejected);
    cr_expect_eq(f.w.stats.v[MESH_STAT_outlier_ejections_overflow], 1);
    struct mesh_lb_cluster_info ci;
    mesh_lb_cluster_info(f.sh, CL(&f), &ci);
    cr_expect_eq(ci.n_ejected, 1);
    fx_free(&f);
}

LB_TEST(outlier_min_health_panics)
{
    char *e = endpoints(2, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"outlier_detection\": {\"consecutive_5xx\": 1, "
                              "\"max_ejection_percent\": 100, \"min_health_percent\": 60}", e));
    free(e);
    eject(&f, 0); /* 50% healthy < 60%: ejections ignored */
    size_t c[2] = {0};
    count_picks(&f, 100, c);
    cr_expect_eq(c[0], 50);
    fx_free(&f);
}

LB_TEST(outlier_state_survives_reload)
{
    char *e = endpoints(3, NULL, NULL);
    const char *od = "\"outlier_detection\": {\"consecutive_5xx\": 1, \"max_ejection_percent\": 100}";
    struct fx f;
    fx_init(&f, parse_cluster(od, e));
    eject(&f, 1);
    /* a new snapshot with the endpoints in another order, then more reloads push the old out */
    struct mesh_snapshot *s2 = parse_cluster(
        od, "{\"address\": \"10.0.0.2\", \"port\": 80}, {\"address\": \"10.0.0.9\", \"port\": 80}");
    cr_assert_not_null(s2, "%s", errbuf);
    for (int i = 0; i < LB_BINDS + 1; i++) {
        struct mesh_snapshot *x = i < LB_BINDS ? parse_cluster(od, e) : s2;
        mesh_lb_worker_snapshot(f.w.lb, x);
        if (i < LB_BINDS)
            mesh_snapshot_unref(x);
    }
    free(e);
    struct mesh_lb_ep_info ei;
    mesh_lb_endpoint_info(f.sh, &s2->clusters[0], &s2->clusters[0].endpoints[0], &ei);
    cr_expect(ei.ejected, "the ejection of 10.0.0.2 was lost in the reload");
    mesh_snapshot_unref(f.snap);
    f.snap = s2;
    f.w.snap = s2;
    f.s.snap = s2;
    f.s.cluster = &s2->clusters[0];
    size_t c[2] = {0};
    count_picks(&f, 50, c);
    cr_expect_eq(c[0], 0);
    fx_free(&f);
}

/* ---- Lazy bindings and old snapshots ---- */

/* Two clusters, "c" and "d", of two endpoints each. */
static struct mesh_snapshot *parse_two(void)
{
    const char *doc =
        "{\"version\": \"v1\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","
        " \"port\": 0, \"route_config\": \"rc\"}], \"route_configs\": [{\"name\": \"rc\","
        " \"virtual_hosts\": [{\"name\": \"vh\", \"domains\": [\"*\"], \"routes\": [{\"match\":"
        " {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"c\"}}]}]}], \"clusters\": ["
        "{\"name\": \"c\", \"endpoints\": [{\"address\": \"10.0.0.1\", \"port\": 80},"
        " {\"address\": \"10.0.0.2\", \"port\": 80}]},"
        "{\"name\": \"d\", \"endpoints\": [{\"address\": \"10.0.1.1\", \"port\": 80},"
        " {\"address\": \"10.0.1.2\", \"port\": 80}]}]}";
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    cr_assert_not_null(s, "%s", errbuf);
    return s;
}

static void mark_freed(void *arg)
{
    *(bool *)arg = true;
}

LB_TEST(clusters_bind_on_first_use_and_keep_their_state)
{
    struct fx f;
    fx_init(&f, parse_two());
    struct mesh_snapshot *s1 = f.snap;
    /* a worker bound to a snapshot holds no state for a cluster that saw no request */
    cr_expect_null(mesh_lb_cluster_find(f.sh, "c"));
    cr_expect_null(mesh_lb_cluster_find(f.sh, "d"));
    struct mesh_lb_cluster_info ci;
    mesh_lb_cluster_info(f.sh, &s1->clusters[1], &ci);
    cr_expect_eq(ci.rq_active, 0);
    const struct mesh_endpoint *ep = mesh_lb_pick(&f.s, &s1->clusters[0]); /* stays in flight */
    cr_assert_not_null(ep);
    cr_expect_not_null(mesh_lb_cluster_find(f.sh, "c"));
    cr_expect_null(mesh_lb_cluster_find(f.sh, "d"));

    /* a reload binds "c" at once (it has state), "d" still not */
    struct mesh_snapshot *s2 = parse_two();
    mesh_lb_worker_snapshot(f.w.lb, s2);
    f.w.snap = s2;
    f.snap = s2; /* fx_free drops s2; the test drops s1 below */
    bool s1_freed = false;
    cr_assert_eq(mesh_arena_defer(s1->arena, mark_freed, &s1_freed), 0);
    mesh_lb_cluster_info(f.sh, &s2->clusters[0], &ci);
    cr_expect_eq(ci.rq_active, 1, "the request in flight under the old snapshot counts");
    cr_expect_null(mesh_lb_cluster_find(f.sh, "d"));

    /* the old snapshot is still held (the stream): the sweep keeps its binding */
    mesh_lb_worker_sweep(f.w.lb);
    cr_expect_not(s1_freed);
    f.s.endpoint = ep;
    mesh_lb_done(&f.s, 200, 0);
    mesh_lb_cluster_info(f.sh, &s2->clusters[0], &ci);
    cr_expect_eq(ci.rq_active, 0);

    /* its last holder gone, the sweep frees it at once (not LB_BINDS reloads later) */
    mesh_snapshot_unref(s1);
    cr_expect_not(s1_freed);
    mesh_lb_worker_sweep(f.w.lb);
    cr_expect(s1_freed, "the binding kept the old snapshot alive");
    /* and the state of "c" lives on in the new binding */
    cr_expect_not_null(mesh_lb_cluster_find(f.sh, "c"));
    f.s.snap = s2;
    f.s.endpoint = NULL;
    f.s.cluster = &s2->clusters[1];
    cr_assert_not_null(mesh_lb_pick(&f.s, &s2->clusters[1]));
    cr_expect_not_null(mesh_lb_cluster_find(f.sh, "d"));
    fx_free(&f);
}

/* ---- Retries, limits, passthrough ---- */

LB_TEST(retry_avoids_tried_endpoints)
{
    char *e = endpoints(3, NULL, NULL);
    const char *policies[] = {"\"lb_policy\": \"round_robin\"", "\"lb_policy\": \"least_request\"",
                              "\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"header\": \"k\"}",
                              "\"lb_policy\": \"maglev\", \"hash_policy\": {\"header\": \"k\"}"};
    for (size_t p = 0; p < MESH_ARRAY_LEN(policies); p++) {
        struct fx f;
        fx_init(&f, parse_cluster(policies[p], e));
        f.retry.other_host = true;
        f.policy.retry = &f.retry;
        f.route.policy = &f.policy;
        f.s.route = &f.route;
        for (int i = 0; i < 50; i++) {
            fx_reset_stream(&f);
            set_header(&f, "k", "same-key");
            size_t first = req(&f, 503);
            f.s.tried[f.s.n_tried++] = &CL(&f)->endpoints[first];
            size_t second = req(&f, 200);
            cr_expect_neq(first, second, "policy %zu", p);
        }
        fx_free(&f);
    }
    free(e);
}

LB_TEST(max_requests_and_max_retries)
{
    char *e = endpoints(2, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"max_requests\": 2, \"max_retries\": 1", e));
    free(e);
    const struct mesh_endpoint *a, *b, *x = NULL;
    cr_assert_eq(mesh_lb_pick_ex(&f.s, CL(&f), &a), MESH_LB_OK);
    cr_assert_eq(mesh_lb_pick_ex(&f.s, CL(&f), &b), MESH_LB_OK);
    cr_expect_eq(mesh_lb_pick_ex(&f.s, CL(&f), &x), MESH_LB_OVERFLOW);
    cr_expect_null(x);
    f.s.endpoint = a;
    mesh_lb_done(&f.s, 200, 0);
    cr_expect_eq(mesh_lb_pick_ex(&f.s, CL(&f), &x), MESH_LB_OK);
    f.s.endpoint = b;
    mesh_lb_done(&f.s, 200, 0);
    f.s.endpoint = x;
    mesh_lb_done(&f.s, 200, 0);
    struct mesh_lb_cluster_info ci;
    mesh_lb_cluster_info(f.sh, CL(&f), &ci);
    cr_expect_eq(ci.rq_active, 0);
    cr_expect(mesh_lb_retry_acquire(&f.w, CL(&f)));
    cr_expect_not(mesh_lb_retry_acquire(&f.w, CL(&f)));
    mesh_lb_retry_release(&f.w, CL(&f));
    cr_expect(mesh_lb_retry_acquire(&f.w, CL(&f)));
    mesh_lb_retry_release(&f.w, CL(&f));
    fx_free(&f);
}

LB_TEST(passthrough_uses_original_destination)
{
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"passthrough\"", ""));
    cr_expect_null(mesh_lb_pick(&f.s, CL(&f))); /* no destination known */
    struct sockaddr_in *in = (struct sockaddr_in *)&f.conn.dst;
    in->sin_family = AF_INET;
    in->sin_port = htons(4321);
    inet_pton(AF_INET, "127.0.0.5", &in->sin_addr);
    f.conn.dst_len = sizeof(*in);
    const struct mesh_endpoint *ep = mesh_lb_pick(&f.s, CL(&f));
    cr_assert_not_null(ep);
    cr_expect_str_eq(ep->key, "127.0.0.5:4321");
    cr_expect_eq(ep->port, 4321);
    f.s.endpoint = ep;
    mesh_lb_done(&f.s, 200, 0);
    const struct mesh_endpoint *t1 = mesh_lb_pick_tcp(&f.w, CL(&f), &f.conn);
    cr_assert_not_null(t1);
    cr_expect_str_eq(t1->key, "127.0.0.5:4321");
    cr_expect_str_eq(t1->address, "127.0.0.5");
    cr_expect_eq(t1->port, 4321);
    mesh_lb_done_tcp(&f.w, CL(&f), t1, true);
    /* TCP destinations are not kept: one slot per worker, each pick overwrites it */
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&f.conn.dst;
    memset(in6, 0, sizeof(*in6));
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(80);
    inet_pton(AF_INET6, "2001:db8::7", &in6->sin6_addr);
    f.conn.dst_len = sizeof(*in6);
    const struct mesh_endpoint *t2 = mesh_lb_pick_tcp(&f.w, CL(&f), &f.conn);
    cr_assert_not_null(t2);
    cr_expect_eq(t1, t2);
    cr_expect_str_eq(t2->key, "[2001:db8::7]:80");
    mesh_lb_done_tcp(&f.w, CL(&f), t2, false);
    f.conn.dst_len = 0;
    cr_expect_null(mesh_lb_pick_tcp(&f.w, CL(&f), &f.conn), "no destination known");
    struct mesh_lb_cluster_info ci;
    mesh_lb_cluster_info(f.sh, CL(&f), &ci);
    cr_expect_eq(ci.rq_active, 0, "every pick was matched by its done");
    fx_free(&f);
}

LB_TEST(tcp_pick_hashes_source)
{
    char *e = endpoints(5, NULL, NULL);
    struct fx f;
    fx_init(&f, parse_cluster("\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"source_ip\": true}", e));
    free(e);
    const struct mesh_endpoint *first = mesh_lb_pick_tcp(&f.w, CL(&f), &f.conn);
    cr_assert_not_null(first);
    mesh_lb_done_tcp(&f.w, CL(&f), first, true);
    for (int i = 0; i < 10; i++) {
        const struct mesh_endpoint *ep = mesh_lb_pick_tcp(&f.w, CL(&f), &f.conn);
        cr_expect_eq(ep, first);
        mesh_lb_done_tcp(&f.w, CL(&f), ep, true);
    }
    fx_free(&f);
}
