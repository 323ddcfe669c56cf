/*
 * Header operations (docs/snapshot.md, "header operations"): request_headers
 * edit the request head before it goes upstream, response_headers the final
 * response head. Names are checked at load, so nothing is validated per request.
 */
#include "core/common.h"
#include <string.h>
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/snapshot-int.h"

static const char *const ops_fields[] = {"set", "add", "remove", NULL};

/* RFC 9110 tchar */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

const char *mesh_filter_header_name(struct mesh_snap_ctx *c, const char *name, const char *path)
{
    size_t n = strlen(name);
    if (n == 0) {
        mesh_snap_fail(c, path, "header name must not be empty");
        return NULL;
    }
    if (name[0] == ':') {
        mesh_snap_fail(c, path, "pseudo header '%s' is not allowed", name);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)name[i])) {
            mesh_snap_fail(c, path, "'%s' is not a valid header name", name);
            return NULL;
        }
    }
    char *low = mesh_snap_sdup(c, name, n);
    for (char *q = low; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "te", "upgrade", "trailer", NULL};
    for (size_t i = 0; hop[i]; i++) {
        if (strcmp(low, hop[i]) == 0) {
            mesh_snap_fail(c, path, "hop-by-hop header '%s' is not allowed", low);
            return NULL;
        }
    }
    /* the proxy keeps these consistent with the message itself */
    if (strcmp(low, "host") == 0) {
        mesh_snap_fail(c, path, "'host' is not allowed (use route.rewrite.authority)");
        return NULL;
    }
    if (strcmp(low, "content-length") == 0) {
        mesh_snap_fail(c, path, "'content-length' is not allowed (the proxy frames the message)");
        return NULL;
    }
    return low;
}

static bool valid_value(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

/* "set"/"add": {"name": "value", ...} */
static void parse_pairs(struct mesh_snap_ctx *c, json_t *o, const char *path, const char *key,
                        struct mesh_hdr_op **out, size_t *n_out)
{
    char p[MESH_SNAP_PATH_MAX];
    json_t *obj = mesh_snap_get_object(c, o, path, key, false, p);
    if (!obj || json_object_size(obj) == 0)
        return;
    struct mesh_hdr_op *ops = mesh_snap_zalloc(c, json_object_size(obj), sizeof(*ops));
    size_t n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char pn[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(pn, p, name);
        const char *low = mesh_filter_header_name(c, name, pn);
        if (!json_is_string(v)) {
            mesh_snap_fail(c, pn, "must be a string");
            continue;
        }
        const char *val = json_string_value(v);
        size_t vlen = json_string_length(v);
        if (!valid_value(val, vlen)) {
            mesh_snap_fail(c, pn, "header value must not contain control characters");
            continue;
        }
        if (!low)
            continue;
        ops[n].name = low;
        ops[n].name_len = (uint32_t)strlen(low);
        ops[n].value = mesh_snap_sdup(c, val, vlen);
        ops[n].value_len = (uint32_t)vlen;
        n++;
    }
    *out = ops;
    *n_out = n;
}

static const void *parse_ops(struct mesh_snap_ctx *c, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, ops_fields);
    struct mesh_hdr_ops *ops = mesh_snap_zalloc(c, 1, sizeof(*ops));
    parse_pairs(c, v, path, "set", &ops->set, &ops->n_set);
    parse_pairs(c, v, path, "add", &ops->add, &ops->n_add);
    char p[MESH_SNAP_PATH_MAX];
    json_t *rm = mesh_snap_get_array(c, v, path, "remove", false, p);
    size_t n = rm ? json_array_size(rm) : 0;
    if (n) {
        ops->remove = mesh_snap_zalloc(c, n, sizeof(*ops->remove));
        for (size_t i = 0; i < n; i++) {
            char pi[MESH_SNAP_PATH_MAX];
            mesh_snap_path_idx(pi, p, i);
            json_t *e = json_array_get(rm, i);
            if (!json_is_string(e)) {
                mesh_snap_fail(c, pi, "must be a string");
                continue;
            }
            const char *low = mesh_filter_header_name(c, json_string_value(e), pi);
            if (!low)
                continue;
            struct mesh_hdr_op *op = &ops->remove[ops->n_remove++];
            op->name = low;
            op->name_len = (uint32_t)strlen(low);
        }
    }
    return ops;
}

void mesh_hdr_ops_apply(struct mesh_arena *a, struct mesh_headers *h, const struct mesh_hdr_ops *ops)
{
    for (size_t i = 0; i < ops->n_remove; i++)
        mesh_headers_del(h, ops->remove[i].name, ops->remove[i].name_len);
    for (size_t i = 0; i < ops->n_set; i++) {
        const struct mesh_hdr_op *op = &ops->set[i];
        mesh_headers_del(h, op->name, op->name_len);
        mesh_headers_add(a, h, op->name, op->name_len, op->value, op->value_len);
    }
    for (size_t i = 0; i < ops->n_add; i++) {
        const struct mesh_hdr_op *op = &ops->add[i];
        mesh_headers_add(a, h, op->name, op->name_len, op->value, op->value_len);
    }
}

static enum mesh_filter_status on_request(struct mesh_stream *s, const void *cfg)
{
    mesh_hdr_ops_apply(s->arena, &s->req.hdrs, cfg);
    return MESH_FILTER_CONTINUE;
}

static void on_response(struct mesh_stream *s, const void *cfg)
{
    mesh_hdr_ops_apply(s->arena, &s->resp.hdrs, cfg);
}

const struct mesh_filter_type mesh_filter_request_headers = {
    .name = "request_headers",
    .parse = parse_ops,
    .on_request = on_request,
};

const struct mesh_filter_type mesh_filter_response_headers = {
    .name = "response_headers",
    .parse = parse_ops,
    .on_response = on_response,
};
