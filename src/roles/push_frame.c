/* The push stream's framing and the reconnect backoff (push_frame.h). */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "roles/push_frame.h"

void mesh_push_parser_init(struct mesh_push_parser *p)
{
    memset(p, 0, sizeof(*p));
}

void mesh_push_parser_free(struct mesh_push_parser *p)
{
    json_decref(p->header);
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

void mesh_push_parser_feed(struct mesh_push_parser *p, const void *data, size_t len)
{
    if (!len || p->failed)
        return;
    /* drop what was consumed before growing: a long stream must not grow the buffer */
    if (p->off && p->off == p->len) {
        p->off = p->len = 0;
    } else if (p->off > p->cap / 2) {
        memmove(p->buf, p->buf + p->off, p->len - p->off);
        p->len -= p->off;
        p->off = 0;
    }
    if (p->len + len + 1 > p->cap) {
        p->cap = MESH_MAX(p->cap * 2, p->len + len + 1);
        p->buf = mesh_xrealloc(p->buf, p->cap);
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
}

static int fail(struct mesh_push_parser *p, char *why, size_t why_size, const char *msg)
{
    p->failed = true;
    snprintf(why, why_size, "%s", msg);
    return -1;
}

int mesh_push_parser_next(struct mesh_push_parser *p, struct mesh_push_frame *f, char *why,
                          size_t why_size)
{
    json_decref(p->header);
    p->header = NULL;
    memset(f, 0, sizeof(*f));
    if (p->failed)
        return fail(p, why, why_size, "the stream already failed");
    const char *start = p->buf + p->off;
    size_t avail = p->len - p->off;
    const char *nl = avail ? memchr(start, '\n', MESH_MIN(avail, MESH_PUSH_MAX_HEADER + 1)) : NULL;
    if (!nl) {
        if (avail > MESH_PUSH_MAX_HEADER)
            return fail(p, why, why_size, "a header line is longer than 64 KiB");
        if (!avail && p->cap > MESH_PUSH_MAX_HEADER) {
            /* all consumed: do not keep a whole snapshot's buffer between frames */
            free(p->buf);
            p->buf = NULL;
            p->off = p->len = p->cap = 0;
        }
        return 0;
    }
    size_t hlen = (size_t)(nl - start);
    if (hlen == 0)
        return fail(p, why, why_size, "an empty header line");
    json_error_t jerr;
    json_t *h = json_loadb(start, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(h)) {
        json_decref(h);
        char msg[256];
        snprintf(msg, sizeof(msg), "a header line is not a JSON object: %s", jerr.text);
        return fail(p, why, why_size, msg);
    }
    const char *type = json_string_value(json_object_get(h, "type"));
    json_t *jlen = json_object_get(h, "length");
    if (!type) {
        json_decref(h);
        return fail(p, why, why_size, "a header without a string \"type\"");
    }
    size_t blen = 0;
    bool has_body = jlen != NULL;
    if (has_body) {
        if (!json_is_integer(jlen) || json_integer_value(jlen) < 0 ||
            json_integer_value(jlen) > (json_int_t)MESH_PUSH_MAX_BODY) {
            json_decref(h);
            return fail(p, why, why_size, "\"length\" must be an integer from 0 to 256 MiB");
        }
        blen = (size_t)json_integer_value(jlen);
        if (avail < hlen + 1 + blen + 1) {
            json_decref(h); /* parsed again once the body is complete: headers are small */
            return 0;
        }
        if (start[hlen + 1 + blen] != '\n') {
            json_decref(h);
            return fail(p, why, why_size, "a body is not followed by a newline (bad \"length\")");
        }
    }
    p->header = h;
    f->header = h;
    f->type = type;
    if (has_body) {
        char *body = p->buf + p->off + hlen + 1;
        body[blen] = '\0'; /* the newline after it: NUL-terminated for the JSON loader */
        f->body = body;
        f->body_len = blen;
        p->off += hlen + 1 + blen + 1;
    } else {
        p->off += hlen + 1;
    }
    return 1;
}

char *mesh_push_frame_encode(json_t *header, const char *body, size_t body_len, size_t *out_len)
{
    if (body)
        json_object_set_new(header, "length", json_integer((json_int_t)body_len));
    char *h = json_dumps(header, JSON_COMPACT);
    if (!h)
        return NULL;
    size_t hl = strlen(h);
    size_t n = hl + 1 + (body ? body_len + 1 : 0);
    char *out = mesh_xmalloc(n + 1);
    memcpy(out, h, hl);
    out[hl] = '\n';
    if (body) {
        memcpy(out + hl + 1, body, body_len);
        out[n - 1] = '\n';
    }
    out[n] = '\0';
    free(h);
    *out_len = n;
    return out;
}

uint32_t mesh_push_backoff_ms(unsigned attempt, uint32_t rnd)
{
    uint32_t d = MESH_PUSH_BACKOFF_BASE_MS;
    for (unsigned i = 0; i < attempt && d < MESH_PUSH_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > MESH_PUSH_BACKOFF_MAX_MS)
        d = MESH_PUSH_BACKOFF_MAX_MS;
    return d / 2 + rnd % (d / 2 + 1);
}
