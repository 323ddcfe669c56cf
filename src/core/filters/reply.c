/*
 * The local answer of a filter (CORS preflight, fault abort, redirect): like
 * a direct response, the route's response filters see its head and the
 * headers queued in s->resp_add are appended.
 */
#include "core/common.h"
#include <string.h>
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"

void mesh_filter_reply_begin(struct mesh_stream *s)
{
    memset(&s->resp, 0, sizeof(s->resp));
}

void mesh_filter_reply(struct mesh_stream *s, int status, const char *body, size_t body_len)
{
    s->state = MESH_SS_LOCAL;
    s->resp.status = status;
    s->resp.content_length = (int64_t)body_len;
    mesh_filter_response(s);
    for (uint32_t i = 0; i < s->resp_add.n; i++) {
        const struct mesh_header *h = &s->resp_add.v[i];
        mesh_headers_add(s->arena, &s->resp.hdrs, h->name, h->name_len, h->value, h->value_len);
    }
    if (!body_len) {
        s->dops->send_headers(s, true);
        s->dops->send_end(s);
        return;
    }
    s->dops->send_headers(s, false);
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add_reference(b, body, body_len, NULL, NULL);
        s->resp_bytes += body_len;
        s->dops->send_data(s, b);
        evbuffer_free(b);
    }
    s->dops->send_end(s); /* codecs keep <s> valid until here; it may be gone after */
}
