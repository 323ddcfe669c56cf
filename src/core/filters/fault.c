/*
 * Fault injection (docs/snapshot.md, "fault"): a share of the requests waits
 * (the chain pauses on a timer) and a share is answered with an error, the
 * delay first. Both draws happen when the request arrives.
 *
 * The timer lives in the stream arena; an arena deferral deletes it when the
 * stream goes away, so a client that leaves during the delay (connection
 * closed, HTTP/2 reset) leaves no timer behind.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/snapshot-int.h"

#define LIT(s) s, sizeof(s) - 1

static const char *const fault_fields[] = {"delay", "abort", NULL};
static const char *const delay_fields[] = {"fixed_delay_ms", "percent", NULL};
static const char *const abort_fields[] = {"http_status", "grpc_status", "percent", NULL};

static const void *parse_fault(struct mesh_snap_ctx *c, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, fault_fields);
    struct mesh_fault_cfg *cfg = mesh_snap_zalloc(c, 1, sizeof(*cfg));
    cfg->grpc_status = -1;
    char p[MESH_SNAP_PATH_MAX];
    json_t *d = mesh_snap_get_object(c, v, path, "delay", false, p);
    if (d) {
        mesh_snap_check_fields(c, d, p, delay_fields);
        cfg->has_delay = true;
        if (mesh_snap_member(c, d, p, "fixed_delay_ms", true))
            mesh_snap_get_duration(c, d, p, "fixed_delay_ms", &cfg->delay_ms);
        cfg->delay_percent = 1000000;
        mesh_snap_get_percent(c, d, p, "percent", &cfg->delay_percent);
    }
    json_t *a = mesh_snap_get_object(c, v, path, "abort", false, p);
    if (a) {
        mesh_snap_check_fields(c, a, p, abort_fields);
        cfg->has_abort = true;
        bool http = json_object_get(a, "http_status") != NULL;
        bool grpc = json_object_get(a, "grpc_status") != NULL;
        if (http == grpc) {
            mesh_snap_fail(c, p, "must have exactly one of \"http_status\" or \"grpc_status\"");
        } else if (http) {
            uint32_t st = 0;
            if (mesh_snap_get_uint(c, a, p, "http_status", true, 200, 599, &st))
                cfg->http_status = (int)st;
        } else {
            uint32_t g = 0;
            if (mesh_snap_get_uint(c, a, p, "grpc_status", true, 0, 16, &g))
                cfg->grpc_status = (int)g;
        }
        cfg->abort_percent = 1000000;
        mesh_snap_get_percent(c, a, p, "percent", &cfg->abort_percent);
    }
    if (!d && !a && json_is_object(v))
        mesh_snap_fail(c, path, "must have at least one of \"delay\" or \"abort\"");
    return cfg;
}

/* xorshift64* on the worker's state: fault draws need a fair coin, not secrecy. */
static bool chance(struct mesh_worker *w, uint32_t millionths)
{
    if (millionths >= 1000000)
        return true;
    if (millionths == 0)
        return false;
    uint64_t x = w->rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rand_state = x;
    return ((x * 0x2545F4914F6CDD1DULL) >> 32) % 1000000u < millionths;
}

static void send_abort(struct mesh_stream *s, const struct mesh_fault_cfg *cfg)
{
    static const char body[] = "fault filter abort\n";
    MESH_STAT_INC(&s->w->stats, fault_aborts_injected);
    mesh_filter_reply_begin(s);
    if (cfg->grpc_status >= 0) {
        /* a trailers-only gRPC answer: the status rides in the head */
        char buf[4];
        int n = snprintf(buf, sizeof(buf), "%d", cfg->grpc_status);
        mesh_headers_add(s->arena, &s->resp.hdrs, LIT("content-type"), LIT("application/grpc"));
        mesh_headers_add_copy(s->arena, &s->resp.hdrs, LIT("grpc-status"), buf, (size_t)n);
        mesh_headers_add(s->arena, &s->resp.hdrs, LIT("grpc-message"), LIT("fault filter abort"));
        mesh_filter_reply(s, 200, NULL, 0);
        return;
    }
    if (cfg->http_status == 204 || cfg->http_status == 304) {
        mesh_filter_reply(s, cfg->http_status, NULL, 0); /* statuses without a body */
        return;
    }
    mesh_headers_add(s->arena, &s->resp.hdrs, LIT("content-type"), LIT("text/plain"));
    mesh_filter_reply(s, cfg->http_status, body, sizeof(body) - 1);
}

/* A delayed request: its timer (in the stream arena) and what to do when it fires. */
struct fault_delay {
    struct mesh_stream *s;
    const struct mesh_fault_cfg *cfg;
    bool abort;                    /* the abort draw came out too: answer after the delay */
    struct event *ev;              /* in the stream arena */
};

static void cancel_delay(void *arg)
{
    struct fault_delay *d = arg;
    event_del(d->ev); /* a no-op when it fired already */
}

static void on_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct fault_delay *d = arg;
    if (d->abort) {
        send_abort(d->s, d->cfg);
        return;
    }
    mesh_filter_resume(d->s); /* <s> may be gone after this */
}

static enum mesh_filter_status on_request(struct mesh_stream *s, const void *cfgv)
{
    const struct mesh_fault_cfg *cfg = cfgv;
    bool delay = cfg->has_delay && chance(s->w, cfg->delay_percent);
    bool abort = cfg->has_abort && chance(s->w, cfg->abort_percent);
    if (delay) {
        struct fault_delay *d = mesh_arena_calloc(s->arena, 1, sizeof(*d));
        struct event *ev = d ? mesh_arena_alloc(s->arena, event_get_struct_event_size()) : NULL;
        if (!ev || evtimer_assign(ev, s->w->base, on_delay_done, d) != 0) {
            mesh_proxy_local_reply(s, 500, 0, "fault delay: stream memory exhausted");
            return MESH_FILTER_STOP;
        }
        d->s = s;
        d->cfg = cfg;
        d->abort = abort;
        d->ev = ev;
        /* registered before the timer is armed: the stream can never outlive it armed */
        if (mesh_arena_defer(s->arena, cancel_delay, d) != 0) {
            mesh_proxy_local_reply(s, 500, 0, "fault delay: stream memory exhausted");
            return MESH_FILTER_STOP;
        }
        struct timeval tv = {(time_t)(cfg->delay_ms / 1000), (suseconds_t)(cfg->delay_ms % 1000) * 1000};
        evtimer_add(ev, &tv);
        MESH_STAT_INC(&s->w->stats, fault_delays_injected);
        return MESH_FILTER_PAUSE;
    }
    if (abort) {
        send_abort(s, cfg);
        return MESH_FILTER_STOP;
    }
    return MESH_FILTER_CONTINUE;
}

const struct mesh_filter_type mesh_filter_fault = {
    .name = "fault",
    .parse = parse_fault,
    .on_request = on_request,
};
