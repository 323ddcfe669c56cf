#include "core/common.h"
#include <string.h>
#include "core/compile-int.h"

/*
 * HTTPMatchRequest -> the snapshot's "match" (docs/snapshot.md). The
 * config-time conditions (port, sourceLabels, sourceNamespace, gateways) were
 * decided by the caller; everything else becomes a run-time condition. The
 * resource loader has already checked the regexes and the one-of rules.
 */

/* {"exact"|"prefix"|"regex": v}; an empty match is Istio's "any value": {"present": true}. */
static json_t *string_match(const struct mesh_string_match *m)
{
    json_t *o = json_object();
    if (m->exact)
        json_object_set_new_nocheck(o, "exact", json_string(m->exact));
    else if (m->prefix)
        json_object_set_new_nocheck(o, "prefix", json_string(m->prefix));
    else if (m->regex)
        json_object_set_new_nocheck(o, "regex", json_string(m->regex));
    else
        json_object_set_new_nocheck(o, "present", json_true());
    return o;
}

static char *lower(struct mesh_cc *c, const char *s)
{
    char *l = mesh_cc_strdup(c, s);
    for (char *q = l; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return l;
}

/*
 * A header condition. "host" is the request's authority, which the snapshot
 * matches with its own field. Returns false (warned) when the entry cannot be
 * expressed. (The loader refuses pseudo headers and invalid names.)
 */
static bool header_cond(struct mesh_cc *c, const struct mesh_resource *r, const char *path,
                        const struct mesh_string_match_entry *e, bool invert, json_t *match,
                        json_t *headers, const char *left_out)
{
    const char *name = lower(c, e->key);
    if (name[0] == '@') {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, path,
                     "matching on request metadata (%s) is not enforced by this version of "
                     "meshd; %s",
                     e->key, left_out);
        return false;
    }
    if (strcmp(name, "host") == 0) {
        bool empty = !e->value.exact && !e->value.prefix && !e->value.regex;
        if (!invert && empty)
            return true; /* "present": every request has one */
        if (invert || json_object_get(match, "authority")) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, path,
                         "this condition on the host cannot be expressed; %s", left_out);
            return false;
        }
        json_object_set_new_nocheck(match, "authority", string_match(&e->value));
        return true;
    }
    json_t *h = string_match(&e->value);
    json_object_set_new_nocheck(h, "name", json_string(name));
    if (invert)
        json_object_set_new_nocheck(h, "invert", json_true());
    json_array_append_new(headers, h);
    return true;
}

json_t *mesh_cc_http_match(struct mesh_cc *c, const struct mesh_resource *r, const char *mp,
                           const struct mesh_http_match *m, const char *left_out)
{
    json_t *match = json_object();
    const struct mesh_string_match *u = m->uri;
    const char *kind = "prefix", *path = "/", *field = "uri.prefix";
    if (u && u->exact) {
        kind = "path";
        path = u->exact;
        field = "uri.exact";
    } else if (u && u->prefix) {
        path = u->prefix;
    } else if (u && u->regex) {
        kind = "regex";
        path = u->regex;
        field = "uri.regex";
    }
    if (kind[0] != 'r' && (path[0] != '/' || strchr(path, '?'))) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, mp, ".", field),
                     "the router matches paths that start with '/' and have no query; %s",
                     left_out);
        goto fail;
    }
    json_object_set_new_nocheck(match, kind, json_string(path));
    if (m->ignore_uri_case && u)
        json_object_set_new_nocheck(match, "ignore_case", json_true());

    const struct {
        const struct mesh_string_match *m;
        const char *field;
    } simple[] = {{m->method, "method"}, {m->scheme, "scheme"}, {m->authority, "authority"}};
    for (size_t i = 0; i < MESH_ARRAY_LEN(simple); i++)
        if (simple[i].m)
            json_object_set_new_nocheck(match, simple[i].field, string_match(simple[i].m));

    json_t *headers = json_array();
    json_object_set_new_nocheck(match, "headers", headers);
    for (size_t i = 0; i < m->n_headers; i++) {
        const char *k = m->headers[i].key;
        /* Istio ignores these keys in headers: they have fields of their own */
        if (strcmp(k, "uri") == 0 || strcmp(k, "scheme") == 0 || strcmp(k, "method") == 0 ||
            strcmp(k, "authority") == 0) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r,
                         mesh_cc_printf(c, "%s.headers.%s", mp, k),
                         "ignored, as Istio does: use the match field '%s'", k);
            continue;
        }
        if (!header_cond(c, r, mesh_cc_printf(c, "%s.headers.%s", mp, k), &m->headers[i], false,
                         match, headers, left_out))
            goto fail;
    }
    for (size_t i = 0; i < m->n_without_headers; i++)
        if (!header_cond(c, r,
                         mesh_cc_printf(c, "%s.withoutHeaders.%s", mp, m->without_headers[i].key),
                         &m->without_headers[i], true, match, headers, left_out))
            goto fail;
    if (json_array_size(headers) == 0)
        json_object_del(match, "headers");

    if (m->n_query_params) {
        json_t *qp = json_array();
        json_object_set_new_nocheck(match, "query_params", qp);
        for (size_t i = 0; i < m->n_query_params; i++) {
            json_t *q = string_match(&m->query_params[i].value);
            json_object_set_new_nocheck(q, "name", json_string(m->query_params[i].key));
            json_array_append_new(qp, q);
        }
    }
    if (m->stat_prefix)
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, mp, ".statPrefix"),
                     "not enforced yet");
    return match;
fail:
    json_decref(match);
    return NULL;
}
