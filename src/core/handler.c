/*
 * The handler API (handler.h): a role serves a listener itself (the control
 * plane's API) through the engine's streams, reading the request and writing
 * the reply with these calls instead of routing upstream.
 */
#include "core/common.h"
#include <string.h>
#include "core/handler.h"
#include "core/proxy-int.h"

int mesh_runtime_add_handler(struct mesh_runtime *rt, const char *name, mesh_handler_fn *fn,
                             void *arg, size_t max_body)
{
    if (rt->n_handlers == MESH_ARRAY_LEN(rt->handlers))
        return MESH_ELIMIT;
    struct mesh_handler_reg *h = &rt->handlers[rt->n_handlers++];
    h->name = mesh_xstrdup(name);
    h->fn = fn;
    h->arg = arg;
    h->max_body = max_body;
    return MESH_OK;
}

const char *mesh_stream_method(const struct mesh_stream *s, size_t *len)
{
    *len = s->req.method_len;
    return s->req.method;
}

const char *mesh_stream_path(const struct mesh_stream *s, size_t *len)
{
    *len = s->req.path ? s->req.path_len : 1;
    return s->req.path ? s->req.path : "/";
}

const char *mesh_stream_header(const struct mesh_stream *s, const char *name, size_t *len)
{
    const struct mesh_header *h = mesh_headers_get(&s->req.hdrs, name, strlen(name));
    if (!h)
        return NULL;
    *len = h->value_len;
    return h->value;
}

const char *mesh_stream_peer(const struct mesh_stream *s)
{
    return s->conn->peer_ip;
}

const char *mesh_stream_body(struct mesh_stream *s, size_t *len)
{
    if (!s->req_buf || !evbuffer_get_length(s->req_buf)) {
        *len = 0;
        return "";
    }
    *len = evbuffer_get_length(s->req_buf);
    return (const char *)evbuffer_pullup(s->req_buf, -1);
}

struct event_base *mesh_stream_base(const struct mesh_stream *s)
{
    return s->w->base;
}

void mesh_stream_reply_header(struct mesh_stream *s, const char *name, const char *value)
{
    if (!s->resp_headers_sent)
        mesh_headers_add_copy(s->arena, &s->resp.hdrs, name, strlen(name), value, strlen(value));
}

void mesh_stream_reply_start(struct mesh_stream *s, int status, const char *content_type)
{
    if (s->resp_headers_sent)
        return;
    s->resp.status = status;
    s->resp.content_length = -1;
    if (content_type)
        mesh_stream_reply_header(s, "content-type", content_type);
    s->dops->send_headers(s, false);
}

void mesh_stream_reply_data(struct mesh_stream *s, const void *data, size_t len)
{
    if (!len || s->resp_end)
        return;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    s->resp_bytes += len;
    s->dops->send_data(s, b);
    evbuffer_free(b);
}

void mesh_stream_reply_end(struct mesh_stream *s)
{
    if (!s->resp_end)
        s->dops->send_end(s);
}

void mesh_stream_reply(struct mesh_stream *s, int status, const char *content_type,
                       const void *body, size_t len)
{
    if (s->resp_headers_sent)
        return;
    s->resp.status = status;
    s->resp.content_length = (int64_t)len;
    if (content_type && len)
        mesh_stream_reply_header(s, "content-type", content_type);
    s->dops->send_headers(s, len == 0);
    if (len) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, body, len);
        s->resp_bytes += len;
        s->dops->send_data(s, b);
        evbuffer_free(b);
    }
    s->dops->send_end(s);
}

int mesh_stream_on_close(struct mesh_stream *s, void (*fn)(void *), void *arg)
{
    return mesh_arena_defer(s->arena, fn, arg);
}
