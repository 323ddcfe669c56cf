/*
 * The engine's glue: a stream's request is routed here, handed to an upstream
 * connection, and its response handed back to the downstream codec. Neither
 * codec knows the other; both speak to this file.
 */
#include "core/common.h"
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <mbedtls/base64.h>
#include "core/log.h"
#include "core/proxy-int.h"
#include "core/filter.h"
#include "core/handler.h"
#include "core/lb.h"
#include "core/mirror.h"
#include "core/retry.h"
#include "core/router.h"
#include "core/tcp_proxy.h"

#define LIT(s) s, sizeof(s) - 1

uint64_t mesh_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Stream lifetime ---- */

static void stop_timer(struct mesh_stream *s);

/*
 * A stream's arena (its first 4 KiB chunk) is kept for the next stream: no malloc per
 * request. Up to MESH_STREAM_CACHE_MAX, because HTTP/2 keeps hundreds of streams in
 * flight: with a cache of 32, 500 streams missed on most requests (a 4 KiB malloc and
 * free each, ~900 instructions a request). What a burst leaves is given back, as
 * tcmalloc's thread caches scavenge: while more than MESH_STREAM_CACHE_KEEP are kept a
 * timer runs, and each period frees as many as no stream took during it (the cache's
 * low-water mark), the coldest first.
 */
static void arena_trim_arm(struct mesh_worker *w)
{
    uint32_t ms = w->arena_trim_ms ? w->arena_trim_ms : MESH_STREAM_CACHE_TRIM_MS;
    struct timeval tv = {ms / 1000, ms % 1000 * 1000};
    w->arena_cache_low = w->n_arena_cache;
    w->arena_trim_armed = evtimer_add(w->arena_trim, &tv) == 0;
}

static void arena_trim(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_worker *w = arg;
    size_t n = w->n_arena_cache;
    size_t drop = n > MESH_STREAM_CACHE_KEEP ? MESH_MIN(w->arena_cache_low, n - MESH_STREAM_CACHE_KEEP)
                                             : 0;
    for (size_t i = 0; i < drop; i++)
        mesh_arena_free(w->arena_cache[i]); /* the bottom of the stack: the least recently used */
    memmove(w->arena_cache, w->arena_cache + drop, (n - drop) * sizeof(w->arena_cache[0]));
    w->n_arena_cache = n - drop;
    w->arena_trim_armed = false;
    if (w->n_arena_cache > MESH_STREAM_CACHE_KEEP)
        arena_trim_arm(w);
}

struct mesh_arena *mesh_stream_arena_take(struct mesh_worker *w)
{
    if (!w->n_arena_cache)
        return mesh_arena_new(4096, MESH_STREAM_ARENA_BUDGET);
    struct mesh_arena *a = w->arena_cache[--w->n_arena_cache];
    if (w->n_arena_cache < w->arena_cache_low)
        w->arena_cache_low = w->n_arena_cache;
    return a;
}

void mesh_stream_arena_give(struct mesh_worker *w, struct mesh_arena *a)
{
    if (w->n_arena_cache == MESH_STREAM_CACHE_MAX) {
        mesh_arena_free(a);
        return;
    }
    mesh_arena_reset(a);
    w->arena_cache[w->n_arena_cache++] = a;
    if (w->n_arena_cache > MESH_STREAM_CACHE_KEEP && !w->arena_trim_armed) {
        if (!w->arena_trim)
            w->arena_trim = evtimer_new(w->base, arena_trim, w);
        if (w->arena_trim)
            arena_trim_arm(w);
    }
}

struct mesh_stream *mesh_stream_new(struct mesh_conn *c, const struct mesh_down_ops *dops)
{
    struct mesh_worker *w = c->w;
    struct mesh_arena *a = mesh_stream_arena_take(w);
    if (!a)
        return NULL;
    struct mesh_stream *s = mesh_arena_calloc(a, 1, sizeof(*s));
    if (!s) {
        mesh_arena_free(a);
        return NULL;
    }
    s->arena = a;
    s->w = c->w;
    s->conn = c;
    s->dops = dops;
    s->snap = mesh_snapshot_ref(mesh_worker_snapshot(c->w));
    s->req.content_length = -1;
    s->resp.content_length = -1;
    s->start_ns = mesh_worker_now_ns(c->w);
    mesh_list_init(&s->pending_link);
    mesh_list_init(&s->shadows);
    MESH_STAT_INC(&c->w->stats, downstream_rq_total);
    MESH_STAT_INC(&c->w->stats, downstream_rq_active);
    return s;
}

/* Ends the load balancer's view of the current try (exactly once per pick). */
static void lb_done(struct mesh_stream *s, int status, unsigned flags)
{
    if (s->lb_picked) {
        s->lb_picked = false;
        mesh_lb_done(s, status, flags);
    }
}

static void detach_upstream(struct mesh_stream *s)
{
    lb_done(s, 0, s->flags);
    if (s->pending_pool)
        mesh_upstream_cancel_pending(s);
    if (s->uops) {
        const struct mesh_up_ops *u = s->uops;
        u->detach(s);
        s->uops = NULL;
        s->up = NULL;
    }
}

/* ---- Retry state (the decisions are retry.c's) ---- */

static const struct mesh_retry_policy *retry_policy(const struct mesh_stream *s)
{
    if (s->is_shadow || s->is_connect || s->is_upgrade || !s->route || !s->route->policy)
        return NULL;
    const struct mesh_retry_policy *rp = s->route->policy->retry;
    return rp && rp->attempts ? rp : NULL;
}

void mesh_proxy_copy_buf(struct evbuffer *dst, struct evbuffer *src)
{
    struct evbuffer_iovec v[8];
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(src, &pos, 0, EVBUFFER_PTR_SET);
    size_t left = evbuffer_get_length(src);
    while (left) {
        int n = evbuffer_peek(src, (ev_ssize_t)left, &pos, v, 8);
        if (n <= 0)
            break;
        for (int i = 0; i < n && i < 8 && left; i++) {
            size_t len = MESH_MIN(v[i].iov_len, left);
            evbuffer_add(dst, v[i].iov_base, len);
            left -= len;
            evbuffer_ptr_set(src, &pos, len, EVBUFFER_PTR_ADD);
        }
    }
}

/* The cluster's max_retries slot taken for the retry in progress goes back. */
static void retry_release(struct mesh_stream *s)
{
    if (s->retry_held) {
        s->retry_held = false;
        mesh_lb_retry_release(s->w, s->cluster);
    }
}

static void stop_try_timer(struct mesh_stream *s)
{
    if (s->try_timer)
        event_del(s->try_timer);
    s->retry_wait = false;
}

/* What a stream runs or holds besides its arena: upstream, mirror copies, retry slot,
 * timers, buffers. Shared by the end of a stream and the park of one (a tunnel's). */
static void stream_release(struct mesh_stream *s)
{
    mesh_mirror_stream_gone(s);
    detach_upstream(s);
    retry_release(s);
    stop_timer(s);
    stop_try_timer(s);
    struct evbuffer **bufs[] = {&s->req_buf, &s->resp_buf, &s->replay};
    for (size_t i = 0; i < MESH_ARRAY_LEN(bufs); i++) {
        if (*bufs[i])
            evbuffer_free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

void mesh_proxy_stream_park(struct mesh_stream *s)
{
    stream_release(s);
    s->state = MESH_SS_TUNNEL;
}

void mesh_stream_free(struct mesh_stream *s)
{
    stream_release(s);
    struct mesh_worker *w = s->w;
    if (!s->is_shadow)
        MESH_STAT_DEC(&w->stats, downstream_rq_active);
    mesh_snapshot_unref(s->snap);
    mesh_stream_arena_give(w, s->arena);
}

void mesh_stream_worker_free(struct mesh_worker *w)
{
    mesh_tqs_free(w->tqs);
    w->tqs = NULL;
    while (w->n_arena_cache)
        mesh_arena_free(w->arena_cache[--w->n_arena_cache]);
    if (w->arena_trim)
        event_free(w->arena_trim);
    w->arena_trim = NULL;
    w->arena_trim_armed = false;
}

/* ---- Local replies ---- */

void mesh_proxy_local_reply(struct mesh_stream *s, int status, unsigned flag, const char *reason)
{
    s->flags |= flag; /* first: the load balancer's report of the try carries it (UT ejects) */
    detach_upstream(s);
    retry_release(s);
    stop_try_timer(s);
    stop_timer(s);
    s->state = MESH_SS_LOCAL;
    if (s->resp_headers_sent) {
        s->dops->reset(s);
        return;
    }
    char fl[64];
    mesh_response_flags_str(s->flags, fl, sizeof(fl));
    size_t rlen = reason ? strlen(reason) : 0;
    memset(&s->resp, 0, sizeof(s->resp));
    s->resp.status = status;
    s->resp.content_length = (int64_t)(rlen ? rlen + 1 : 0);
    if (rlen) {
        mesh_headers_add(s->arena, &s->resp.hdrs, LIT("content-type"), LIT("text/plain"));
    }
    if (flag) {
        char *v = mesh_arena_strndup(s->arena, fl, strlen(fl));
        if (v)
            mesh_headers_add(s->arena, &s->resp.hdrs, LIT("x-meshd-response-flags"), v, strlen(v));
    }
    if (!rlen) {
        s->dops->send_headers(s, true);
        s->dops->send_end(s);
        return;
    }
    s->dops->send_headers(s, false);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, reason, rlen);
    evbuffer_add(b, "\n", 1);
    s->dops->send_data(s, b);
    evbuffer_free(b);
    /* send_data may have closed the connection (and freed <s>) only via conn close,
     * which frees streams through the codec: codecs keep <s> valid until send_end. */
    s->dops->send_end(s);
}

/* The response head is final: the filters' on_response, then headers they queued. */
static void response_filters(struct mesh_stream *s)
{
    if (s->is_shadow)
        return; /* nobody reads a mirror's response */
    if (s->route && (s->route->policy || s->dest))
        mesh_filter_response(s);
    for (uint32_t i = 0; i < s->resp_add.n; i++) {
        const struct mesh_header *h = &s->resp_add.v[i];
        mesh_headers_add(s->arena, &s->resp.hdrs, h->name, h->name_len, h->value, h->value_len);
    }
}

static void direct_reply(struct mesh_stream *s, const struct mesh_route *r)
{
    s->state = MESH_SS_LOCAL;
    s->resp.status = r->direct_status;
    s->resp.content_length = (int64_t)r->direct_body_len;
    if (r->direct_body_len)
        mesh_headers_add(s->arena, &s->resp.hdrs, LIT("content-type"), LIT("text/plain"));
    response_filters(s);
    if (!r->direct_body_len) {
        s->dops->send_headers(s, true);
        s->dops->send_end(s);
        return;
    }
    s->dops->send_headers(s, false);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, r->direct_body, r->direct_body_len, NULL, NULL);
    s->dops->send_data(s, b);
    evbuffer_free(b);
    s->dops->send_end(s);
}

/* ---- Request path ---- */

static uint64_t next_rand(struct mesh_worker *w)
{
    /* xorshift64*: request ids need uniqueness, not secrecy */
    uint64_t x = w->rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rand_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/*
 * A websocket over HTTP/2 (RFC 8441) has no Sec-WebSocket-Key, which an HTTP/1.1 server
 * needs (RFC 6455 4.1): 16 random bytes in base64, as haproxy makes one. The
 * Sec-WebSocket-Accept that answers it is dropped (h2_down.c). h2_down.c lets only
 * :protocol websocket through, so the Upgrade is a websocket's.
 */
static void add_websocket_key(struct mesh_stream *s)
{
    struct mesh_msg *m = &s->req;
    if (mesh_headers_get(&m->hdrs, LIT("sec-websocket-key")))
        return;
    uint64_t r[2] = {next_rand(s->w), next_rand(s->w)};
    char *v = mesh_arena_alloc(s->arena, 25);
    size_t n = 0;
    if (v && mbedtls_base64_encode((unsigned char *)v, 25, &n, (const unsigned char *)r,
                                   sizeof(r)) == 0)
        mesh_headers_add(s->arena, &m->hdrs, LIT("sec-websocket-key"), v, n);
}

static void add_request_headers(struct mesh_stream *s)
{
    struct mesh_msg *m = &s->req;
    mesh_headers_strip_hop(&m->hdrs, s->is_upgrade);
    if (s->is_upgrade) {
        mesh_headers_del(&m->hdrs, LIT("connection"));
        mesh_headers_add(s->arena, &m->hdrs, LIT("Connection"), LIT("Upgrade"));
        if (s->is_ext_connect)
            add_websocket_key(s);
    }
    /* x-forwarded-for: append the peer (RFC 7239 practice, as Envoy does) */
    struct mesh_header *xff = mesh_headers_get(&m->hdrs, LIT("x-forwarded-for"));
    const char *ip = s->conn->peer_ip;
    size_t iplen = strlen(ip);
    if (xff) {
        size_t n = xff->value_len + 2 + iplen;
        char *v = mesh_arena_alloc(s->arena, n + 1);
        if (v) {
            memcpy(v, xff->value, xff->value_len);
            memcpy(v + xff->value_len, ", ", 2);
            memcpy(v + xff->value_len + 2, ip, iplen);
            xff->value = v;
            xff->value_len = (uint32_t)n;
        }
    } else {
        mesh_headers_add_copy(s->arena, &m->hdrs, LIT("x-forwarded-for"), ip, iplen);
    }
    mesh_headers_del(&m->hdrs, LIT("x-forwarded-proto"));
    mesh_headers_add(s->arena, &m->hdrs, LIT("x-forwarded-proto"), m->scheme, strlen(m->scheme));
    if (!mesh_headers_get(&m->hdrs, LIT("x-request-id"))) {
        uint64_t a = next_rand(s->w), b = next_rand(s->w);
        char *v = mesh_arena_alloc(s->arena, 37);
        if (v) {
            /* UUID v4 layout, formatted by hand (snprintf was a tenth of a request) */
            static const char hx[] = "0123456789abcdef";
            char d[32]; /* 32 digits, then placed around the dashes (8-4-4-4-12) */
            for (int i = 0; i < 16; i++) {
                d[i] = hx[(a >> (4 * i)) & 15];
                d[16 + i] = hx[(b >> (4 * i)) & 15];
            }
            memcpy(v, d, 8);
            v[8] = '-';
            memcpy(v + 9, d + 8, 4);
            v[13] = '-';
            memcpy(v + 14, d + 12, 4);
            v[18] = '-';
            memcpy(v + 19, d + 16, 4);
            v[23] = '-';
            memcpy(v + 24, d + 20, 12);
            v[14] = '4';                                    /* version */
            v[19] = hx[8 | ((b >> 60) & 3)];                /* variant 10xx */
            v[36] = '\0';
            mesh_headers_add(s->arena, &m->hdrs, LIT("x-request-id"), v, 36);
        }
    }
}

/* Lazy idle timers of connections (struct mesh_lazy_timer, proxy-int.h). */
void mesh_lazy_timer_arm(struct mesh_worker *w, struct mesh_lazy_timer *t, struct event *ev,
                         uint32_t ms)
{
    t->on = true;
    t->deadline_ms = mesh_worker_now_ms(w) + ms;
    if (evtimer_pending(ev, NULL) && t->fire_ms <= t->deadline_ms)
        return; /* fires first, then re-arms for the rest */
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(ev, &tv);
    t->fire_ms = t->deadline_ms;
}

bool mesh_lazy_timer_due(struct mesh_worker *w, struct mesh_lazy_timer *t, struct event *ev)
{
    if (!t->on)
        return false;
    uint64_t now = mesh_worker_now_ms(w);
    if (now >= t->deadline_ms)
        return true;
    uint64_t ms = t->deadline_ms - now;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(ev, &tv);
    t->fire_ms = t->deadline_ms;
    return false;
}

/*
 * One timer per stream covers both the request timeout (a deadline set when
 * the request is complete) and the stream idle timeout (no byte either way).
 * Activity only stamps a cached time; the timer re-arms itself when it fires
 * early, so the hot path never touches a timer.
 *
 * The timer is an entry of the worker's timeout queue for its duration
 * (tqueue.h): arming for a whole request or idle timeout is a list append.
 * What is left after an early fire is some other duration, so it goes on a
 * libevent timer of the stream's own, made only then.
 */
static void touch(struct mesh_stream *s)
{
    s->last_ms = mesh_worker_now_ms(s->w);
}

static void schedule_timer(struct mesh_stream *s);

static void stream_timeout(struct mesh_stream *s)
{
    uint64_t now = mesh_worker_now_ms(s->w);
    if (s->deadline_ms && now >= s->deadline_ms) {
        MESH_STAT_INC(&s->w->stats, downstream_rq_timeout);
        mesh_proxy_local_reply(s, 504, MESH_RF_UT, "upstream request timeout");
        return;
    }
    uint32_t idle = s->snap->timeouts.stream_idle_ms;
    if (idle && now >= s->last_ms + idle) {
        MESH_STAT_INC(&s->w->stats, downstream_rq_idle_timeout);
        if (s->req_end || s->is_upgrade) /* an extended CONNECT's request never ends */
            mesh_proxy_local_reply(s, 504, MESH_RF_SI, "stream idle timeout");
        else
            mesh_proxy_local_reply(s, 408, MESH_RF_SI, "stream idle timeout: request incomplete");
        return;
    }
    schedule_timer(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    stream_timeout(arg);
}

static void on_tq_timeout(struct mesh_tq_entry *e)
{
    stream_timeout(MESH_CONTAINER_OF(e, struct mesh_stream, tmo));
}

static void stop_timer(struct mesh_stream *s)
{
    mesh_tq_del(&s->tmo);
    if (s->timer)
        event_del(s->timer); /* the event itself lives in the arena */
}

static void schedule_timer(struct mesh_stream *s)
{
    struct mesh_worker *w = s->w;
    uint64_t now = mesh_worker_now_ms(w), next = 0;
    uint32_t idle = s->snap->timeouts.stream_idle_ms;
    if (idle)
        next = s->last_ms + idle;
    if (s->deadline_ms && (!next || s->deadline_ms < next))
        next = s->deadline_ms;
    if (!next) {
        stop_timer(s);
        return;
    }
    uint64_t ms = next > now ? next - now : 0;
    if (ms && (ms == idle || ms == s->timeout_ms)) {
        if (!w->tqs)
            w->tqs = mesh_tqs_new(w->base);
        if (!s->tmo.fire)
            mesh_tq_entry_init(&s->tmo, on_tq_timeout);
        if (mesh_tq_add(w->tqs, &s->tmo, (uint32_t)ms, now)) {
            if (s->timer)
                event_del(s->timer);
            return;
        }
    }
    mesh_tq_del(&s->tmo);
    if (!s->timer) {
        s->timer = mesh_arena_alloc(s->arena, event_get_struct_event_size());
        if (!s->timer)
            return;
        evtimer_assign(s->timer, w->base, on_timeout, s);
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

/* The request is complete: its timeout starts now (Envoy's route timeout semantics). */
static void arm_timeout(struct mesh_stream *s)
{
    if (s->state != MESH_SS_ROUTED && s->state != MESH_SS_UPSTREAM)
        return;
    if (s->is_connect || s->is_upgrade)
        return;
    uint32_t ms = s->route && s->route->timeout_ms ? s->route->timeout_ms : s->snap->timeouts.request_ms;
    s->timeout_ms = ms;
    s->deadline_ms = ms ? mesh_worker_now_ms(s->w) + ms : 0;
    schedule_timer(s);
}

/* A weighted split (canary): each request draws independently, so the split converges. */
static const struct mesh_weighted_cluster *pick_weighted(struct mesh_worker *w,
                                                         const struct mesh_route *r)
{
    uint32_t x = (uint32_t)(next_rand(w) >> 32) % r->total_weight;
    for (size_t i = 0; i < r->n_weighted; i++) {
        if (x < r->weighted[i].weight)
            return &r->weighted[i];
        x -= r->weighted[i].weight;
    }
    return &r->weighted[r->n_weighted - 1];
}

static void run_handler(struct mesh_stream *s)
{
    s->handler->fn(s->handler->arg, s);
}

static bool start_handler(struct mesh_stream *s, const char *name, bool end)
{
    struct mesh_runtime *rt = s->w->rt;
    for (size_t i = 0; i < rt->n_handlers; i++) {
        if (strcmp(rt->handlers[i].name, name) == 0) {
            s->handler = &rt->handlers[i];
            break;
        }
    }
    if (!s->handler) {
        mesh_proxy_local_reply(s, 500, 0, "no handler serves this listener");
        return true;
    }
    s->state = MESH_SS_HANDLER;
    if (s->req.content_length > 0 && (uint64_t)s->req.content_length > s->handler->max_body) {
        mesh_proxy_local_reply(s, 413, 0, "request body too large");
        return true;
    }
    if (end)
        run_handler(s);
    return true;
}

/* A passthrough to the proxy itself: refused, said once in the reply and once in the log. */
static void loop_reply(struct mesh_stream *s, const char *cluster)
{
    char dst[INET6_ADDRSTRLEN + 8], why[400];
    mesh_l4_dst_str(s->conn, dst, sizeof(dst));
    int hl = (int)MESH_MIN(s->req.authority_len, 100u);
    const char *host = s->req.authority ? s->req.authority : "";
    snprintf(why, sizeof(why),
             "the request for host \"%.*s\" has no original destination (the connection to "
             "%s was not redirected to this proxy): passing it through (cluster %s) would loop "
             "back to the proxy",
             hl, host, dst, cluster);
    mesh_log(mesh_l4_loop_warn(s->w) ? MESH_LOG_WARN : MESH_LOG_DEBUG, "%s: %s",
             s->conn->peer_ip, why);
    mesh_proxy_local_reply(s, 502, MESH_RF_NR, why);
}

/*
 * No virtual host takes the request's authority, on a listener with "unmatched"
 * (Istio's outboundTrafficPolicy): REGISTRY_ONLY answers 502 (Istio's
 * block_all); ALLOW_ANY sends the request to the connection's original
 * destination through the passthrough cluster, unless that is this proxy.
 * False when the listener has no such policy (the request gets 404).
 */
static bool unmatched_http(struct mesh_stream *s, const struct mesh_listener_cfg *lc)
{
    const struct mesh_unmatched *u = lc->l4 ? &lc->l4->unmatched : NULL;
    if (!u || u->action == MESH_UNMATCHED_NONE)
        return false;
    if (u->action == MESH_UNMATCHED_REFUSE) {
        char dst[INET6_ADDRSTRLEN + 8], why[300];
        mesh_l4_dst_str(s->conn, dst, sizeof(dst));
        MESH_STAT_INC(&s->w->stats, blackhole_rq_total);
        snprintf(why, sizeof(why),
                 "host \"%.*s\" (%s) is not in the mesh registry: the outbound traffic policy "
                 "is REGISTRY_ONLY",
                 (int)MESH_MIN(s->req.authority_len, 100u),
                 s->req.authority ? s->req.authority : "", dst);
        mesh_proxy_local_reply(s, 502, MESH_RF_NR, why);
        return true;
    }
    if (mesh_l4_dst_is_self(s->conn, s->snap)) {
        loop_reply(s, u->cluster->name);
        return true;
    }
    MESH_STAT_INC(&s->w->stats, passthrough_rq_total);
    s->route = u->http;
    s->cluster = mesh_snapshot_cluster(s->snap, u->cluster);
    mesh_proxy_continue(s);
    return true;
}

void mesh_proxy_request_headers(struct mesh_stream *s, bool end)
{
    const struct mesh_snapshot *snap = s->snap;
    const char *hname = snap->listeners[s->conn->listener_idx].handler;
    if (hname && start_handler(s, hname, end))
        return;
    const struct mesh_listener_cfg *lc = &snap->listeners[s->conn->listener_idx];
    const struct mesh_route_config *rc = lc->route_config;
    const char *path = s->req.path ? s->req.path : "/";
    size_t plen = s->req.path ? s->req.path_len : 1;
    const struct mesh_router_req rq = {
        .method = s->req.method, .method_len = s->req.method_len,
        .scheme = s->req.scheme, .scheme_len = s->req.scheme ? strlen(s->req.scheme) : 0,
        .authority = s->req.authority, .authority_len = s->req.authority_len,
        .path = path, .path_len = plen, .headers = &s->req.hdrs, .arena = s->arena,
        .dst_port = mesh_router_dst_port(&s->conn->dst, s->conn->dst_len)};
    const struct mesh_vhost *vh = mesh_router_vhost(rc, rq.authority, rq.authority_len);
    const struct mesh_route *r = vh ? mesh_router_route(vh, &rq) : NULL;
    if (!vh && unmatched_http(s, lc))
        return;
    if (!r) {
        MESH_STAT_INC(&s->w->stats, downstream_rq_no_route);
        char why[256];
        snprintf(why, sizeof(why), "no route for host \"%.*s\" path \"%.*s\"",
                 (int)MESH_MIN(s->req.authority_len, 100u), s->req.authority,
                 (int)MESH_MIN(plen, 100u), path);
        mesh_proxy_local_reply(s, 404, MESH_RF_NR, why);
        return;
    }
    s->route = r;
    if (r->action == MESH_ACTION_CLUSTER) {
        if (r->n_weighted) {
            s->dest = pick_weighted(s->w, r);
            s->cluster = mesh_snapshot_cluster(s->snap, s->dest->cluster);
        } else {
            s->cluster = mesh_snapshot_cluster(s->snap, r->cluster);
        }
    }
    if (s->cluster && s->cluster->lb_policy == MESH_LBP_PASSTHROUGH &&
        mesh_l4_dst_is_self(s->conn, s->snap)) {
        loop_reply(s, s->cluster->name);
        return;
    }
    (void)end; /* s->req_end says it from here on */
    if ((r->policy || s->dest) && mesh_filter_request(s) != MESH_FILTER_CONTINUE)
        return; /* answered, or paused until mesh_filter_resume() */
    mesh_proxy_continue(s);
}

/* ---- Tries: the per-try timeout, the backoff before a retry ---- */

static void start_try(struct mesh_stream *s);

static void try_timer_arm(struct mesh_stream *s, uint32_t ms, bool backoff);

/* The try in progress ends without a response for the client: forget its upstream. */
static void discard_try(struct mesh_stream *s)
{
    if (s->pending_pool)
        mesh_upstream_cancel_pending(s);
    if (s->uops) {
        const struct mesh_up_ops *u = s->uops;
        u->detach(s); /* an unfinished response closes its HTTP/1.1 connection, resets HTTP/2 */
        s->uops = NULL;
        s->up = NULL;
    }
}

/*
 * The try that just ended matched a retry condition (<match>): may another
 * start? It must be within the attempts, before anything went to the client,
 * with the whole body still replayable, and within the cluster's max_retries.
 * True takes a max_retries slot (held until that retry ends).
 */
static bool retry_allowed(struct mesh_stream *s, bool match)
{
    const struct mesh_retry_policy *rp = retry_policy(s);
    retry_release(s); /* the previous retry, if any, is over */
    if (!rp || !match || s->retries >= rp->attempts || s->resp_headers_sent || s->replay_lost)
        return false;
    if (s->req_bytes && (!s->replay || evbuffer_get_length(s->replay) != s->req_bytes))
        return false;
    if (s->deadline_ms && mesh_worker_now_ms(s->w) >= s->deadline_ms)
        return false;
    if (!mesh_lb_retry_acquire(s->w, s->cluster)) {
        MESH_STAT_INC(&s->w->stats, upstream_rq_retry_overflow);
        return false;
    }
    s->retry_held = true;
    return true;
}

/* Back to "routed" with the request as the client sent it, body included. */
static void reset_try(struct mesh_stream *s)
{
    s->state = MESH_SS_ROUTED;
    s->req_sent_end = false;
    s->resp_paused = false;
    s->up_bytes_seen = false;
    s->up_refused = false;
    s->up_unconsumed = 0;
    memset(&s->resp, 0, sizeof(s->resp));
    s->resp.content_length = -1;
    if (s->req_bytes) {
        if (!s->req_buf)
            s->req_buf = evbuffer_new();
        evbuffer_drain(s->req_buf, evbuffer_get_length(s->req_buf));
        if (s->replay)
            mesh_proxy_copy_buf(s->req_buf, s->replay);
    }
}

/* Retry number s->retries + 1 starts after a jittered backoff (on a timer, never inline). */
static void schedule_retry(struct mesh_stream *s)
{
    const struct mesh_retry_policy *rp = retry_policy(s);
    s->retries++;
    MESH_STAT_INC(&s->w->stats, upstream_rq_retry);
    reset_try(s);
    try_timer_arm(s, mesh_retry_backoff_ms(rp, s->retries, next_rand(s->w)), true);
}

static void on_try_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_stream *s = arg;
    if (s->retry_wait) {
        s->retry_wait = false;
        start_try(s);
        return;
    }
    /* the per-try timeout: no response head within per_try_timeout_ms */
    MESH_STAT_INC(&s->w->stats, upstream_rq_per_try_timeout);
    lb_done(s, 0, MESH_RF_UT);
    discard_try(s);
    if (retry_allowed(s, mesh_retry_on_failure(retry_policy(s), MESH_TRY_TIMEOUT))) {
        schedule_retry(s);
        return;
    }
    mesh_proxy_local_reply(s, 504, MESH_RF_UT, "upstream per-try timeout");
}

static void try_timer_arm(struct mesh_stream *s, uint32_t ms, bool backoff)
{
    if (!s->try_timer) {
        s->try_timer = mesh_arena_alloc(s->arena, event_get_struct_event_size());
        if (!s->try_timer)
            return;
        evtimer_assign(s->try_timer, s->w->base, on_try_timer, s);
    }
    s->retry_wait = backoff;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->try_timer, &tv);
}

/* The per-try timeout runs from the start of a try with a complete request. */
static void arm_per_try(struct mesh_stream *s)
{
    const struct mesh_retry_policy *rp = retry_policy(s);
    if (rp && rp->per_try_timeout_ms && s->req_end && !s->retry_wait)
        try_timer_arm(s, rp->per_try_timeout_ms, false);
}

static void start_try(struct mesh_stream *s)
{
    s->state = MESH_SS_ROUTED;
    touch(s);
    arm_per_try(s);
    mesh_upstream_start(s); /* may answer (and free <s>) at once */
}

/* Each mirror takes its share of requests (percent in millionths). */
static void start_mirrors(struct mesh_stream *s)
{
    const struct mesh_route_policy *pol = s->route->policy;
    if (!pol || !pol->n_mirrors || s->is_shadow || s->is_connect || s->is_upgrade)
        return;
    for (size_t i = 0; i < pol->n_mirrors; i++) {
        const struct mesh_mirror *m = &pol->mirrors[i];
        if (m->percent >= 1000000 || (uint32_t)((next_rand(s->w) >> 32) % 1000000) < m->percent)
            mesh_mirror_send(s, m);
    }
}

void mesh_proxy_continue(struct mesh_stream *s)
{
    const struct mesh_route *r = s->route;
    if ((s->is_connect || s->is_ext_connect) && r->action == MESH_ACTION_DIRECT &&
        r->direct_status / 100 == 2) {
        /* a 2xx to CONNECT (extended too, RFC 8441) says the tunnel is open: the client
         * would send its tunnel bytes into an HTTP exchange */
        mesh_proxy_local_reply(s, 405, 0, "CONNECT matched a route with a direct response");
        return;
    }
    if (r->action == MESH_ACTION_DIRECT) {
        direct_reply(s, r);
        return;
    }
    if (r->action != MESH_ACTION_CLUSTER) {
        mesh_proxy_local_reply(s, 500, 0, "route has no action to take");
        return;
    }
    add_request_headers(s);
    start_mirrors(s); /* copies of the request as it goes upstream */
    mesh_proxy_forward(s);
}

void mesh_proxy_forward(struct mesh_stream *s)
{
    s->state = MESH_SS_ROUTED;
    touch(s);
    /* An upgrade has no route timeout (it may become a tunnel of any length), but until
     * its 101 it is a stream like any: an upstream silent for the stream idle timeout
     * ends it (it waited for ever). A CONNECT's wait is the connect timeout. */
    if (s->req_end && !s->is_upgrade)
        arm_timeout(s);
    else if (!s->is_connect)
        schedule_timer(s);
    start_try(s);
}

/* Keeps what a retry must replay; past MESH_RETRY_REPLAY_MAX the request is no longer retried. */
static void keep_for_replay(struct mesh_stream *s, struct evbuffer *data)
{
    if (s->replay_lost || s->resp_headers_sent || s->state == MESH_SS_LOCAL || !retry_policy(s))
        return;
    size_t n = evbuffer_get_length(data);
    size_t have = s->replay ? evbuffer_get_length(s->replay) : 0;
    if (have + n > MESH_RETRY_REPLAY_MAX) {
        s->replay_lost = true;
        if (s->replay) {
            evbuffer_free(s->replay);
            s->replay = NULL;
        }
        return;
    }
    if (!s->replay)
        s->replay = evbuffer_new();
    if (s->replay)
        mesh_proxy_copy_buf(s->replay, data);
    else
        s->replay_lost = true;
}

/* An extended CONNECT's DATA before the 101 waits: it is the tunnel's if the upstream
 * switches, and must not reach an HTTP/1.1 server that declined (it would read it as the
 * next request). As an HTTP/1.1 upgrade's bytes wait in the connection (h1_down.c). Over
 * an upstream extended CONNECT the wait is for its 2xx, and the end of an HTTP/1.1
 * Upgrade's head is not the end of the stream either. */
static bool hold_for_switch(const struct mesh_stream *s)
{
    return (s->is_ext_connect || s->up_ext_connect) && s->state != MESH_SS_TUNNEL;
}

bool mesh_proxy_request_data(struct mesh_stream *s, struct evbuffer *data)
{
    s->req_bytes += evbuffer_get_length(data);
    if (!hold_for_switch(s))
        touch(s); /* before the 101 the wait is the upstream's: the client's bytes are no sign */
    if (s->state != MESH_SS_HANDLER) {
        keep_for_replay(s, data);
        mesh_mirror_request_data(s, data);
    }
    if (s->uops && !hold_for_switch(s)) {
        s->uops->send_data(s, data);
        return s->uops && s->uops->congested(s);
    }
    if (s->state == MESH_SS_LOCAL || s->state == MESH_SS_DONE || s->resp_headers_sent) {
        evbuffer_drain(data, evbuffer_get_length(data)); /* answered already: discard */
        return false;
    }
    if (s->state == MESH_SS_HANDLER) {
        if (!s->req_buf)
            s->req_buf = evbuffer_new();
        if (evbuffer_get_length(s->req_buf) + evbuffer_get_length(data) > s->handler->max_body) {
            evbuffer_drain(data, evbuffer_get_length(data));
            mesh_proxy_local_reply(s, 413, 0, "request body too large");
            return false;
        }
        evbuffer_add_buffer(s->req_buf, data);
        return false;
    }
    if (!s->req_buf)
        s->req_buf = evbuffer_new();
    evbuffer_add_buffer(s->req_buf, data);
    return evbuffer_get_length(s->req_buf) >= MESH_BUF_HIGH;
}

void mesh_proxy_request_end(struct mesh_stream *s)
{
    s->req_end = true;
    if (s->state == MESH_SS_HANDLER) {
        if (!s->resp_headers_sent)
            run_handler(s);
        return;
    }
    if (hold_for_switch(s))
        return; /* the end goes after the held DATA (send_held_request) */
    mesh_mirror_request_end(s);
    arm_timeout(s);
    if ((s->state == MESH_SS_ROUTED || s->state == MESH_SS_UPSTREAM) &&
        !(s->try_timer && evtimer_pending(s->try_timer, NULL)))
        arm_per_try(s);
    if (s->uops && !s->req_sent_end) {
        s->req_sent_end = true;
        s->uops->send_end(s);
    }
}

static void access_log(const struct mesh_stream *s, int status);

void mesh_proxy_downstream_abort(struct mesh_stream *s)
{
    if (s->state != MESH_SS_LOCAL) /* not a reset meshd sent itself (a timeout, an error) */
        s->flags |= MESH_RF_DC;
    if (!s->resp_end)
        mesh_log_debug("downstream closed before the response ended");
    detach_upstream(s);
    /* a request the client gave up on has its line too, as in Envoy: the status it was
     * sent (0 before any), DC; an HTTP/2 WebSocket ends this way when its client just goes */
    if (s->state != MESH_SS_HEADERS && s->state != MESH_SS_DONE)
        access_log(s, s->resp_headers_sent ? s->resp.status : 0);
}

/* ---- Upstream side ---- */

/* What the client sent while the stream waited for its upstream goes out now, through
 * s->uops (which any of these calls may end). */
static void send_held_request(struct mesh_stream *s)
{
    const struct mesh_up_ops *uops = s->uops;
    if (s->req_buf && evbuffer_get_length(s->req_buf) > 0) {
        uops->send_data(s, s->req_buf);
        if (s->uops != uops)
            return;
    }
    if (s->req_end && !s->req_sent_end) {
        s->req_sent_end = true;
        uops->send_end(s);
        if (s->uops != uops)
            return;
    }
    if (s->req_paused && !uops->congested(s))
        s->dops->resume_read(s);
}

void mesh_proxy_upstream_ready(struct mesh_stream *s, struct mesh_upconn *u,
                               const struct mesh_up_ops *uops)
{
    s->up = u;
    s->uops = uops;
    s->state = MESH_SS_UPSTREAM;
    if (s->is_connect) {
        MESH_STAT_INC(&s->w->stats, tunnels_total);
        s->dops->start_tunnel(s);
        return;
    }
    if (!hold_for_switch(s))
        send_held_request(s);
}

void mesh_proxy_tunnel_ready(struct mesh_stream *s, const struct mesh_up_ops *tops)
{
    if (s->up_ext_connect && !s->is_ext_connect)
        s->req_end = false; /* an HTTP/1.1 Upgrade: the tunnel's bytes follow the head */
    s->uops = tops;
    s->state = MESH_SS_TUNNEL;
    /* no byte either way for the stream idle timeout ends the tunnel (mesh_proxy_forward
     * armed no timer for a CONNECT: an HTTP/1.1 one frees its stream at this point) */
    touch(s);
    schedule_timer(s);
    send_held_request(s);
}

/*
 * A final response head arrived: true when the retry policy discards it and
 * tries again (its connection released or closed, nothing sent to the client).
 */
static bool retry_response(struct mesh_stream *s)
{
    const struct mesh_retry_policy *rp = retry_policy(s);
    if (!rp)
        return false;
    const struct mesh_header *g = mesh_headers_get(&s->resp.hdrs, LIT("grpc-status"));
    int grpc = g ? mesh_retry_grpc_status(g->value, g->value_len) : -1;
    bool match = mesh_retry_on_response(rp, s->resp.status, grpc);
    if (!match || !retry_allowed(s, match)) {
        if (!match && s->retries)
            MESH_STAT_INC(&s->w->stats, upstream_rq_retry_success);
        stop_try_timer(s); /* the answer stands: only the route timeout applies now */
        return false;
    }
    lb_done(s, s->resp.status, 0);
    discard_try(s);
    schedule_retry(s);
    return true;
}

void mesh_proxy_response_headers(struct mesh_stream *s, bool end)
{
    s->up_bytes_seen = true;
    touch(s);
    if (s->resp.status < 200 && s->resp.status != 101) {
        s->dops->send_headers(s, false); /* interim */
        s->resp.hdrs.n = 0;
        return;
    }
    if (s->resp.status == 101) {
        if (!s->is_upgrade) {
            lb_done(s, 0, MESH_RF_UPE);
            discard_try(s); /* the codec still holds <s> */
            mesh_proxy_local_reply(s, 502, MESH_RF_UPE, "upstream switched protocols unasked");
            return;
        }
        mesh_headers_strip_hop(&s->resp.hdrs, true);
        MESH_STAT_INC(&s->w->stats, tunnels_total);
        s->dops->start_tunnel(s);
        return;
    }
    if (s->up_ext_connect && s->resp.status / 100 == 2) {
        /* the upstream's extended CONNECT is open: the stream is the tunnel (RFC 8441 5) */
        mesh_headers_strip_hop(&s->resp.hdrs, false);
        MESH_STAT_INC(&s->w->stats, tunnels_total);
        s->dops->start_tunnel(s);
        if (end && s->state == MESH_SS_TUNNEL)
            mesh_proxy_response_end(s); /* open and half-closed at once: the client's FIN */
        return;
    }
    if (s->is_ext_connect && s->resp.status / 100 == 2) {
        /* a 2xx to an extended CONNECT says the tunnel is open (RFC 8441 5): a server
         * that ignored the Upgrade and answered 200 did not open one */
        lb_done(s, 0, MESH_RF_UPE);
        discard_try(s);
        mesh_proxy_local_reply(s, 502, MESH_RF_UPE, "upstream did not switch protocols");
        return;
    }
    mesh_headers_strip_hop(&s->resp.hdrs, false);
    if (retry_response(s))
        return;
    lb_done(s, s->resp.status, 0);
    response_filters(s);
    s->dops->send_headers(s, end);
    if (end)
        mesh_proxy_response_end(s);
}

bool mesh_proxy_response_data(struct mesh_stream *s, struct evbuffer *data)
{
    s->resp_bytes += evbuffer_get_length(data);
    touch(s);
    s->dops->send_data(s, data);
    return s->dops->congested(s);
}

void mesh_proxy_tunnel_upstream_done(struct mesh_stream *s)
{
    lb_done(s, 200, 0); /* a clean end for the load balancer and outlier detection */
    /* the client's side ends too: its bytes would go nowhere */
    mesh_proxy_local_reply(s, 502, 0, "upstream takes no more bytes");
}

void mesh_proxy_response_end(struct mesh_stream *s)
{
    if (s->state == MESH_SS_TUNNEL && s->up_ext_connect && s->uops && !s->req_sent_end) {
        /* a tunnel stream's END_STREAM is a half-close: the client's bytes still go until
         * its own end (RFC 9113 8.5), which ends the upstream stream */
        s->dops->send_end(s);
        return;
    }
    stop_timer(s);
    stop_try_timer(s);
    /* release the upstream connection before the codec may free <s> */
    detach_upstream(s);
    retry_release(s);
    s->dops->send_end(s);
}

void mesh_proxy_upstream_error(struct mesh_stream *s, int status, unsigned flag, const char *reason,
                               bool retryable)
{
    /* the codec has already forgotten <s> */
    s->up = NULL;
    s->uops = NULL;
    lb_done(s, 0, flag);
    bool refused = s->up_refused;
    s->up_refused = false;
    /* a reused keep-alive connection that closed, or a refused HTTP/2 stream, never
     * processed the request: replay it once more, whatever the retry policy says */
    bool replayable = s->req_bytes == 0 ||
                      (s->replay && evbuffer_get_length(s->replay) == s->req_bytes);
    if (retryable && s->reuse_retries < 2 && !s->resp_headers_sent && !s->is_connect &&
        (s->req_end || s->req_bytes == 0) && replayable) {
        MESH_STAT_INC(&s->w->stats, upstream_rq_retry_reused);
        s->reuse_retries++;
        reset_try(s);
        start_try(s);
        return;
    }
    if (!s->resp_headers_sent) {
        enum mesh_try_failure f = refused ? MESH_TRY_REFUSED_STREAM : MESH_TRY_RESET;
        if (flag == MESH_RF_UF)
            f = MESH_TRY_CONNECT_FAILURE;
        bool failure = flag & (MESH_RF_UF | MESH_RF_UC | MESH_RF_UPE);
        if (failure && retry_allowed(s, mesh_retry_on_failure(retry_policy(s), f))) {
            schedule_retry(s);
            return;
        }
    }
    if (flag == MESH_RF_UC)
        MESH_STAT_INC(&s->w->stats, upstream_rq_reset);
    char why[256];
    snprintf(why, sizeof(why), "%s", reason);
    mesh_proxy_local_reply(s, status, flag, why);
}

void mesh_proxy_stream_done(struct mesh_stream *s)
{
    struct mesh_stats *st = &s->w->stats;
    int status = s->resp.status;
    if (status >= 500)
        MESH_STAT_INC(st, downstream_rq_5xx);
    else if (status >= 400)
        MESH_STAT_INC(st, downstream_rq_4xx);
    else if (status >= 300)
        MESH_STAT_INC(st, downstream_rq_3xx);
    else if (status >= 200)
        MESH_STAT_INC(st, downstream_rq_2xx);
    else if (status >= 100)
        MESH_STAT_INC(st, downstream_rq_1xx);
    s->state = MESH_SS_DONE;
    access_log(s, status);
}

/* Envoy's default format, trimmed: flags say why a request failed */
static void access_log(const struct mesh_stream *s, int status)
{
    bool al = s->w->rt->access_log;
    if (!al && !mesh_log_enabled(MESH_LOG_DEBUG))
        return;
    char fl[64];
    const struct mesh_header *rid = mesh_headers_get(&s->req.hdrs, LIT("x-request-id"));
    const struct mesh_header *ua = mesh_headers_get(&s->req.hdrs, LIT("user-agent"));
    mesh_log(al ? MESH_LOG_INFO : MESH_LOG_DEBUG,
             "access \"%.*s %.*s HTTP/%s\" %d %s %llu %llu %.3fms \"%.*s\" \"%.*s\" \"%.*s\" "
             "\"%s\" %s %s",
             (int)s->req.method_len, s->req.method ? s->req.method : "-",
             (int)(s->req.path ? s->req.path_len : 1), s->req.path ? s->req.path : "-",
             s->h2_id ? "2" : s->req.http_minor ? "1.1" : "1.0", status,
             mesh_response_flags_str(s->flags, fl, sizeof(fl)), (unsigned long long)s->req_bytes,
             (unsigned long long)s->resp_bytes, (double)(mesh_worker_now_ns(s->w) - s->start_ns) / 1e6,
             ua ? (int)ua->value_len : 1, ua ? ua->value : "-", rid ? (int)rid->value_len : 1,
             rid ? rid->value : "-", (int)s->req.authority_len,
             s->req.authority ? s->req.authority : "", s->endpoint ? s->endpoint->key : "-",
             s->cluster ? s->cluster->name : "-", s->conn->peer_ip);
}
