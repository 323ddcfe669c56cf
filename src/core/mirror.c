/*
 * Mirrors (mirror.h): shadow streams. A shadow is an ordinary mesh_stream
 * for everything upstream (pools, load balancing, timeouts), with down_ops
 * that discard its response. Its memory is its own arena (request head copied
 * into it), so it outlives the request it copies; the worker lists it so that
 * nothing leaks at exit.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "core/mirror.h"
#include "core/proxy-int.h"

#define LIT(s) s, sizeof(s) - 1

/* A shadow whose unsent request body exceeds this is dropped: well above the point
 * where the original request's producer pauses (MESH_BUF_HIGH), so that a copy that
 * only started later (its connection still opening) keeps up. */
#define MESH_MIRROR_BACKLOG_MAX (4 * MESH_BUF_HIGH)

static struct mesh_list *shadows_of(struct mesh_worker *w)
{
    if (!w->shadows.next)
        mesh_list_init(&w->shadows); /* the first mirror of this worker */
    return &w->shadows;
}

static void shadow_free(struct mesh_stream *s, bool failed)
{
    if (failed)
        MESH_STAT_INC(&s->w->stats, mirror_rq_failed);
    mesh_stream_free(s); /* leaves the lists through mesh_mirror_stream_gone() */
}

/* ---- down_ops: nobody is waiting for the response ---- */

static void sh_send_headers(struct mesh_stream *s, bool end)
{
    (void)end;
    if (s->resp.status >= 200)
        s->resp_headers_sent = true;
}

static void sh_send_data(struct mesh_stream *s, struct evbuffer *data)
{
    (void)s;
    evbuffer_drain(data, evbuffer_get_length(data));
}

static void sh_send_end(struct mesh_stream *s)
{
    s->resp_end = true;
    shadow_free(s, s->resp.status >= 500 || s->resp.status < 100);
}

static void sh_reset(struct mesh_stream *s)
{
    shadow_free(s, true);
}

static void sh_resume_read(struct mesh_stream *s)
{
    (void)s;
}

static bool sh_congested(struct mesh_stream *s)
{
    (void)s;
    return false; /* the response is dropped as it comes: never a reason to slow down */
}

static void sh_start_tunnel(struct mesh_stream *s)
{
    /* not reached: CONNECT and upgrades are never mirrored */
    mesh_proxy_local_reply(s, 502, MESH_RF_UPE, "a mirror copy cannot become a tunnel");
}

static const struct mesh_down_ops shadow_ops = {
    .send_headers = sh_send_headers,
    .send_data = sh_send_data,
    .send_end = sh_send_end,
    .reset = sh_reset,
    .resume_read = sh_resume_read,
    .congested = sh_congested,
    .start_tunnel = sh_start_tunnel,
};

/* ---- The copy ---- */

/* Istio's shadow host: "a.example:8080" -> "a.example-shadow:8080", "[::1]" -> "[::1]-shadow". */
static char *shadow_authority(struct mesh_arena *a, const char *v, size_t len, uint32_t *out_len)
{
    size_t host = len;
    if (len && v[0] == '[') {
        const char *rb = memchr(v, ']', len);
        host = rb ? (size_t)(rb - v) + 1 : len;
    } else {
        const char *colon = memchr(v, ':', len);
        if (colon)
            host = (size_t)(colon - v);
    }
    size_t n = len + 7;
    char *d = mesh_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, v, host);
    memcpy(d + host, "-shadow", 7);
    memcpy(d + host + 7, v + host, len - host);
    d[n] = '\0';
    *out_len = (uint32_t)n;
    return d;
}

static int copy_headers(struct mesh_arena *a, struct mesh_headers *dst, const struct mesh_headers *src,
                        bool skip_host)
{
    for (uint32_t i = 0; i < src->n; i++) {
        const struct mesh_header *h = &src->v[i];
        if (skip_host && mesh_header_is(h, LIT("host")))
            continue; /* written from the shadow authority */
        if (mesh_headers_add_copy(a, dst, h->name, h->name_len, h->value, h->value_len))
            return -1;
    }
    return 0;
}

static char *dup_or_null(struct mesh_arena *a, const char *v, size_t len, bool *fail)
{
    if (!v)
        return NULL;
    char *d = mesh_arena_strndup(a, v, len);
    if (!d)
        *fail = true;
    return d;
}

static int copy_request(struct mesh_stream *s, const struct mesh_stream *p)
{
    struct mesh_msg *d = &s->req;
    const struct mesh_msg *q = &p->req;
    bool fail = false;
    d->method = dup_or_null(s->arena, q->method, q->method_len, &fail);
    d->method_len = q->method_len;
    d->path = dup_or_null(s->arena, q->path, q->path_len, &fail);
    d->path_len = q->path_len;
    d->scheme = q->scheme ? dup_or_null(s->arena, q->scheme, strlen(q->scheme), &fail) : NULL;
    d->authority = shadow_authority(s->arena, q->authority ? q->authority : "",
                                    q->authority ? q->authority_len : 0, &d->authority_len);
    d->content_length = q->content_length;
    d->chunked = q->chunked;
    d->http_minor = q->http_minor;
    if (fail || !d->authority || copy_headers(s->arena, &d->hdrs, &q->hdrs, true))
        return -1;
    return 0;
}

static struct mesh_stream *shadow_new(struct mesh_stream *p, const struct mesh_mirror *m)
{
    struct mesh_worker *w = p->w;
    struct mesh_arena *a = mesh_stream_arena_take(w);
    if (!a)
        return NULL;
    struct mesh_stream *s = mesh_arena_calloc(a, 1, sizeof(*s));
    /* a connection record of its own: the client's may close before the shadow ends */
    struct mesh_conn *c = s ? mesh_arena_calloc(a, 1, sizeof(*c)) : NULL;
    if (!c) {
        mesh_arena_free(a);
        return NULL;
    }
    c->w = w;
    c->fd = -1;
    c->listener_idx = p->conn->listener_idx;
    memcpy(c->peer_ip, p->conn->peer_ip, sizeof(c->peer_ip));
    c->dst = p->conn->dst;
    c->dst_len = p->conn->dst_len;
    mesh_list_init(&c->link);
    s->arena = a;
    s->w = w;
    s->conn = c;
    s->dops = &shadow_ops;
    s->snap = mesh_snapshot_ref(p->snap);
    s->is_shadow = true;
    s->route = p->route;
    s->cluster = mesh_snapshot_cluster(s->snap, m->cluster);
    s->is_head = p->is_head;
    s->req_end = p->req_end;
    s->req.content_length = -1;
    s->resp.content_length = -1;
    s->start_ns = mesh_worker_now_ns(w);
    mesh_list_init(&s->pending_link);
    mesh_list_init(&s->shadows);
    mesh_list_init(&s->shadow_link);
    mesh_list_insert_tail(shadows_of(w), &s->worker_link);
    if (!p->req_end) {
        /* the rest of the body comes through mesh_mirror_request_data() */
        s->shadow_parent = p;
        mesh_list_insert_tail(&p->shadows, &s->shadow_link);
    }
    if (copy_request(s, p) != 0) {
        shadow_free(s, true);
        return NULL;
    }
    /* nothing went upstream yet: what the client sent so far waits in req_buf */
    s->req_bytes = p->req_bytes;
    if (p->req_buf && evbuffer_get_length(p->req_buf)) {
        s->req_buf = evbuffer_new();
        if (!s->req_buf) {
            shadow_free(s, true);
            return NULL;
        }
        mesh_proxy_copy_buf(s->req_buf, p->req_buf);
    }
    return s;
}

void mesh_mirror_send(struct mesh_stream *p, const struct mesh_mirror *m)
{
    MESH_STAT_INC(&p->w->stats, mirror_rq_total);
    struct mesh_stream *s = shadow_new(p, m);
    if (!s) {
        MESH_STAT_INC(&p->w->stats, mirror_rq_failed);
        return;
    }
    mesh_proxy_forward(s);
}

/* Request bytes the shadow holds that its upstream has not taken yet. */
static size_t backlog(struct mesh_stream *s)
{
    size_t n = s->req_buf ? evbuffer_get_length(s->req_buf) : 0;
    if (s->up && s->up->proto == MESH_PROTO_HTTP1)
        n += evbuffer_get_length(s->up->out); /* its own connection while attached */
    return n;
}

void mesh_mirror_request_data(struct mesh_stream *p, struct evbuffer *data)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->shadows)
    {
        struct mesh_stream *s = mesh_list_entry(pos, struct mesh_stream, shadow_link);
        struct evbuffer *b = evbuffer_new();
        bool behind = true;
        if (b) {
            mesh_proxy_copy_buf(b, data);
            mesh_proxy_request_data(s, b); /* its "pause" answer cannot pause anyone */
            evbuffer_free(b);
            behind = backlog(s) > MESH_MIRROR_BACKLOG_MAX;
        }
        if (behind) {
            /* the mirror is slower than the client: drop the copy, never slow the client */
            mesh_log_debug("mirror to cluster %s falls behind: copy dropped", s->cluster->name);
            shadow_free(s, true);
        }
    }
}

void mesh_mirror_request_end(struct mesh_stream *p)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->shadows)
    {
        struct mesh_stream *s = mesh_list_entry(pos, struct mesh_stream, shadow_link);
        mesh_list_remove(&s->shadow_link);
        s->shadow_parent = NULL;
        if (copy_headers(s->arena, &s->req.trailers, &p->req.trailers, false)) {
            shadow_free(s, true);
            continue;
        }
        mesh_proxy_request_end(s);
    }
}

void mesh_mirror_stream_gone(struct mesh_stream *s)
{
    if (s->is_shadow) {
        if (s->shadow_parent) {
            mesh_list_remove(&s->shadow_link);
            s->shadow_parent = NULL;
        }
        mesh_list_remove(&s->worker_link);
        return;
    }
    /* the client went away mid-body: its shadows can never finish their requests */
    while (s->shadows.next && !mesh_list_empty(&s->shadows))
        shadow_free(mesh_list_entry(s->shadows.next, struct mesh_stream, shadow_link), true);
}

void mesh_mirror_free_all(struct mesh_worker *w)
{
    struct mesh_list *l = shadows_of(w);
    while (!mesh_list_empty(l))
        mesh_stream_free(mesh_list_entry(l->next, struct mesh_stream, worker_link));
}
