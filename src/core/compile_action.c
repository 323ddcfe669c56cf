#include "core/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/compile-int.h"
#include "core/compile_dest.h"

/*
 * What an HTTPRoute does besides choosing destinations: redirect, rewrite,
 * header operations, CORS, fault injection, mirrors and retries, each turned
 * into its snapshot field (docs/snapshot.md "routes[]", "route", "retry").
 * The resource loader has validated the values (status ranges, regexes,
 * retryOn names); what is left here is the translation and what the snapshot
 * cannot say, which is warned about.
 */

uint32_t mesh_cc_dest_port(const struct mesh_crctx *x, const struct mesh_csvc *svc,
                           const struct mesh_destination *d)
{
    if (d->port && d->port->number)
        return d->port->number;
    if (svc && svc->n_ports == 1)
        return svc->ports[0].port;
    if (x->dest_port) {
        if (!svc)
            return x->dest_port;
        for (size_t i = 0; i < svc->n_ports; i++)
            if (svc->ports[i].port == x->dest_port)
                return x->dest_port;
    }
    return 0;
}

const char *mesh_cc_dest_cluster(struct mesh_cc *c, const struct mesh_crctx *x,
                                 const struct mesh_resource *r, const char *dp,
                                 const struct mesh_destination *d, const char *what,
                                 const char *left_out)
{
    if (!d || !d->host)
        return NULL;
    const char *host = mesh_cc_expand_host(c, d->host, r->meta.namespace_);
    const struct mesh_csvc *svc = mesh_cmap_get(&c->visible, host);
    uint32_t port = mesh_cc_dest_port(x, svc, d);
    if (port == 0) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, dp, ".port"),
                     "%s has %s: the %s needs a port; %s", host,
                     svc ? "several ports" : "no known port", what, left_out);
        return NULL;
    }
    return mesh_cc_cluster(c, svc, host, port, d->subset, r, dp);
}

bool mesh_cc_split_total_ok(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                            uint64_t total)
{
    if (total > 0 && total <= 1000000)
        return true;
    mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, p, ".route"),
                 "the weights add up to %llu; the route is left out", (unsigned long long)total);
    return false;
}

/* Istio's percentage (a double 0..100) as the snapshot's percent: an integer when it is one. */
static json_t *percent_json(double v)
{
    if (v == floor(v))
        return json_integer((json_int_t)v);
    return json_real(v);
}

static uint32_t ms_of(int64_t ns)
{
    int64_t ms = ns / 1000000;
    return ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* ---- Header operations ---- */

static bool hop_by_hop(const char *n)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "te", "trailer"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++)
        if (strcasecmp(n, names[i]) == 0)
            return true;
    return false;
}

static char *lower(struct mesh_cc *c, const char *s)
{
    char *l = mesh_cc_strdup(c, s);
    for (char *q = l; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return l;
}

/* A name the snapshot accepts in header operations; else warned and false. */
static bool op_name_ok(struct mesh_cc *c, const struct mesh_resource *r, const char *path,
                       const char *name)
{
    if (name[0] == ':' || hop_by_hop(name) || strcasecmp(name, "host") == 0) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, path,
                     "%s cannot be changed by header operations in this version of meshd "
                     "(pseudo, Host and hop-by-hop headers); the operation is left out",
                     name);
        return false;
    }
    return true;
}

json_t *mesh_cc_header_ops(struct mesh_cc *c, const struct mesh_resource *r, const char *path,
                           const struct mesh_header_operations *ops, bool route_request)
{
    if (!ops)
        return NULL;
    json_t *o = json_object();
    const struct {
        const struct mesh_kv *kv;
        size_t n;
        const char *key;
    } maps[] = {{ops->set, ops->n_set, "set"}, {ops->add, ops->n_add, "add"}};
    for (size_t m = 0; m < MESH_ARRAY_LEN(maps); m++) {
        json_t *obj = json_object();
        for (size_t i = 0; i < maps[m].n; i++) {
            const char *name = lower(c, maps[m].kv[i].key);
            const char *value = maps[m].kv[i].value ? maps[m].kv[i].value : "";
            if (route_request && m == 0 &&
                (strcmp(name, "host") == 0 || strcmp(name, ":authority") == 0))
                continue; /* an authority rewrite (request_host_set) */
            char *op = mesh_cc_printf(c, "%s.%s.%s", path, maps[m].key, maps[m].kv[i].key);
            if (op_name_ok(c, r, op, name))
                json_object_set_new(obj, name, json_string(value));
        }
        if (json_object_size(obj))
            json_object_set_new_nocheck(o, maps[m].key, obj);
        else
            json_decref(obj);
    }
    json_t *rm = json_array();
    for (size_t i = 0; i < ops->n_remove; i++) {
        const char *name = lower(c, ops->remove[i]);
        if (op_name_ok(c, r, mesh_cc_path(c, path, ".remove", i, ""), name))
            json_array_append_new(rm, json_string(name));
    }
    if (json_array_size(rm))
        json_object_set_new_nocheck(o, "remove", rm);
    else
        json_decref(rm);
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Istio turns "host" in headers.request.set into an authority rewrite. */
static const char *request_host_set(const struct mesh_route_headers *h)
{
    if (!h || !h->request)
        return NULL;
    for (size_t i = 0; i < h->request->n_set; i++)
        if (strcasecmp(h->request->set[i].key, "host") == 0 ||
            strcmp(h->request->set[i].key, ":authority") == 0)
            return h->request->set[i].value;
    return NULL;
}

/* ---- Redirect ---- */

json_t *mesh_cc_redirect(struct mesh_cc *c, const struct mesh_crctx *x,
                         const struct mesh_resource *r, const char *p,
                         const struct mesh_http_redirect *rd)
{
    json_t *o = json_object();
    if (rd->prefix_rewrite) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, p, ".redirect.prefixRewrite"),
                     "not enforced by this version of meshd; the route is left out");
        json_decref(o);
        return NULL;
    }
    if (rd->uri)
        json_object_set_new_nocheck(o, "path", json_string(rd->uri));
    if (rd->authority)
        json_object_set_new_nocheck(o, "authority", json_string(rd->authority));
    if (rd->scheme)
        json_object_set_new_nocheck(o, "scheme", json_string(rd->scheme));
    if (rd->port.set && rd->port.v >= 1 && rd->port.v <= 65535) {
        json_object_set_new_nocheck(o, "port", json_integer(rd->port.v));
    } else if (rd->has_derive_port &&
               rd->derive_port == MESH_REDIRECT_DERIVE_PORT_FROM_REQUEST_PORT) {
        /* as Istio: routes are built per port, so the request's port is known here */
        if (x->match_port)
            json_object_set_new_nocheck(o, "port", json_integer(x->match_port));
    }
    /* FROM_PROTOCOL_DEFAULT (and nothing): no port rewrite, as Istio */
    if (rd->redirect_code) {
        uint32_t code = rd->redirect_code;
        if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, p, ".redirect.redirectCode"),
                         "%u is not a redirect status meshd can send (301, 302, 303, 307, 308); "
                         "the route is left out",
                         code);
            json_decref(o);
            return NULL;
        }
        json_object_set_new_nocheck(o, "code", json_integer(code));
    }
    return o;
}

/* ---- Retries ---- */

/* Envoy conditions the data plane evaluates (docs/snapshot.md "retry"). */
static bool known_retry_on(const char *s, size_t n)
{
    static const char *const names[] = {"5xx",
                                        "gateway-error",
                                        "reset",
                                        "connect-failure",
                                        "refused-stream",
                                        "retriable-4xx",
                                        "retriable-status-codes",
                                        "cancelled",
                                        "deadline-exceeded",
                                        "internal",
                                        "resource-exhausted",
                                        "unavailable"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return true;
    return false;
}

static void default_retry_on(json_t *on, json_t *codes)
{
    /* Istio's retry.DefaultPolicy() */
    static const char *const def[] = {"connect-failure", "refused-stream", "unavailable",
                                      "cancelled", "retriable-status-codes"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(def); i++)
        json_array_append_new(on, json_string(def[i]));
    json_array_append_new(codes, json_integer(503));
}

json_t *mesh_cc_retry(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                      const struct mesh_http_retry *rt, bool consistent_hash)
{
    if (rt && rt->attempts <= 0)
        return NULL; /* explicitly disabled */
    json_t *o = json_object(), *on = json_array(), *codes = json_array();
    uint32_t attempts = 2;
    char *rp = rt ? MESH_CC_JOIN(c, p, ".retries") : NULL;
    if (rt) {
        attempts = (uint32_t)rt->attempts;
        if (attempts > 100) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, rp, ".attempts"),
                         "%u retries are more than meshd allows; 100 are used", attempts);
            attempts = 100;
        }
    }
    if (rt && rt->retry_on && *rt->retry_on) {
        bool has_codes_cond = false;
        for (const char *s = rt->retry_on; *s;) {
            const char *comma = strchr(s, ',');
            size_t n = comma ? (size_t)(comma - s) : strlen(s);
            while (n && (*s == ' ' || *s == '\t'))
                s++, n--;
            while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
            char num[8];
            if (n == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
                s[2] >= '0' && s[2] <= '9') {
                memcpy(num, s, 3);
                num[3] = '\0';
                json_array_append_new(codes, json_integer(atoi(num)));
            } else if (known_retry_on(s, n)) {
                has_codes_cond = has_codes_cond ||
                                 (n == 22 && memcmp(s, "retriable-status-codes", 22) == 0);
                json_array_append_new(on, json_stringn(s, n));
            } else if (n) {
                mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, rp, ".retryOn"),
                             "'%.*s' is not enforced by this version of meshd; the other "
                             "conditions are kept",
                             (int)MESH_MIN(n, 64), s);
            }
            s = comma ? comma + 1 : s + n;
            if (!comma)
                break;
        }
        /* Istio: bare codes imply retriable-status-codes */
        if (json_array_size(codes) && !has_codes_cond)
            json_array_append_new(on, json_string("retriable-status-codes"));
    } else {
        default_retry_on(on, codes);
    }
    json_object_set_new_nocheck(o, "attempts", json_integer(attempts));
    json_object_set_new_nocheck(o, "retry_on", on);
    if (json_array_size(codes))
        json_object_set_new_nocheck(o, "retriable_status_codes", codes);
    else
        json_decref(codes);
    if (rt && rt->per_try_timeout.set)
        json_object_set_new_nocheck(o, "per_try_timeout_ms",
                                    json_integer(ms_of(rt->per_try_timeout.ns)));
    if (rt && rt->backoff.set) {
        uint32_t b = ms_of(rt->backoff.ns);
        json_object_set_new_nocheck(o, "backoff_base_ms", json_integer(b ? b : 1));
    }
    /* Istio: previous_hosts unless the destination hashes (then the same host is wanted) */
    bool other = !consistent_hash;
    if (rt && rt->retry_ignore_previous_hosts.set)
        other = rt->retry_ignore_previous_hosts.v;
    if (!other)
        json_object_set_new_nocheck(o, "other_host", json_false());
    if (rt && rt->retry_remote_localities.set)
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, MESH_CC_JOIN(c, rp, ".retryRemoteLocalities"),
                     "ignored: retries follow the endpoints' priorities like first tries");
    return o;
}

/* ---- CORS, fault, header operations: the route's filters ---- */

static json_t *origin_match(const struct mesh_string_match *m)
{
    json_t *o = json_object();
    const char *v = m->exact ? m->exact : m->prefix ? m->prefix : m->regex;
    if ((m->exact || m->prefix) && v && strcmp(v, "*") == 0)
        json_object_set_new_nocheck(o, "regex", json_string(".*")); /* any origin */
    else if (m->exact)
        json_object_set_new_nocheck(o, "exact", json_string(m->exact));
    else if (m->prefix)
        json_object_set_new_nocheck(o, "prefix", json_string(m->prefix));
    else
        json_object_set_new_nocheck(o, "regex", json_string(m->regex ? m->regex : ".*"));
    return o;
}

static json_t *string_list(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *cors_json(const struct mesh_cors_policy *cp)
{
    json_t *o = json_object();
    json_t *origins = json_array();
    for (size_t i = 0; i < cp->n_allow_origins; i++)
        json_array_append_new(origins, origin_match(&cp->allow_origins[i]));
    for (size_t i = 0; i < cp->n_allow_origin; i++) {
        struct mesh_string_match m = {.exact = cp->allow_origin[i]};
        json_array_append_new(origins, origin_match(&m));
    }
    json_object_set_new_nocheck(o, "allow_origins", origins);
    if (cp->n_allow_methods)
        json_object_set_new_nocheck(o, "allow_methods",
                                    string_list(cp->allow_methods, cp->n_allow_methods));
    if (cp->n_allow_headers)
        json_object_set_new_nocheck(o, "allow_headers",
                                    string_list(cp->allow_headers, cp->n_allow_headers));
    if (cp->n_expose_headers)
        json_object_set_new_nocheck(o, "expose_headers",
                                    string_list(cp->expose_headers, cp->n_expose_headers));
    if (cp->max_age.set) {
        int64_t s = cp->max_age.ns / 1000000000;
        json_object_set_new_nocheck(o, "max_age_s",
                                    json_integer(s > UINT32_MAX ? UINT32_MAX : s));
    }
    if (cp->allow_credentials.set && cp->allow_credentials.v)
        json_object_set_new_nocheck(o, "allow_credentials", json_true());
    if (cp->unmatched_preflights == MESH_CORS_UNMATCHED_IGNORE)
        json_object_set_new_nocheck(o, "unmatched_preflights", json_string("ignore"));
    else if (cp->unmatched_preflights == MESH_CORS_UNMATCHED_FORWARD)
        json_object_set_new_nocheck(o, "unmatched_preflights", json_string("forward"));
    return o;
}

static int grpc_code(const char *name)
{
    static const char *const codes[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(codes); i++)
        if (strcasecmp(codes[i], name) == 0)
            return (int)i;
    return -1;
}

/*
 * Istio's fault percentage: percentage.value, else the deprecated integer
 * percent, else 0 -- a fault without either fires on no request (Istio
 * translates the absent integer as 0%), which is said in a note.
 */
static json_t *fault_percent(struct mesh_cc *c, const struct mesh_resource *r, const char *path,
                             const struct mesh_percent *pct, int32_t deprecated)
{
    if (pct)
        return percent_json(pct->value);
    if (deprecated <= 0)
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, path,
                     "no percentage: no request is affected (as in Istio); set "
                     "percentage.value: 100 for every request");
    return json_integer(deprecated > 0 ? deprecated : 0);
}

static json_t *fault_json(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                          const struct mesh_http_fault *f)
{
    json_t *o = json_object();
    if (f->delay) {
        const struct mesh_fault_delay *d = f->delay;
        char *dp = MESH_CC_JOIN(c, p, ".fault.delay");
        if (d->fixed_delay.set) {
            json_t *dj = json_object();
            json_object_set_new_nocheck(dj, "fixed_delay_ms",
                                        json_integer(ms_of(d->fixed_delay.ns)));
            json_object_set_new_nocheck(dj, "percent",
                                        fault_percent(c, r, dp, d->percentage, d->percent));
            json_object_set_new_nocheck(o, "delay", dj);
        } else {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, dp,
                         "only fixedDelay is enforced by this version of meshd; the delay is "
                         "left out");
        }
    }
    if (f->abort) {
        const struct mesh_fault_abort *a = f->abort;
        char *ap = MESH_CC_JOIN(c, p, ".fault.abort");
        json_t *aj = json_object();
        int g = a->grpc_status ? grpc_code(a->grpc_status) : -1;
        if (a->has_http_status && a->http_status >= 200 && a->http_status <= 599) {
            json_object_set_new_nocheck(aj, "http_status", json_integer(a->http_status));
        } else if (g >= 0) {
            json_object_set_new_nocheck(aj, "grpc_status", json_integer(g));
        } else {
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, ap,
                         "only httpStatus and grpcStatus aborts are enforced by this version of "
                         "meshd; the abort is left out");
            json_decref(aj);
            aj = NULL;
        }
        if (aj) {
            json_object_set_new_nocheck(aj, "percent", fault_percent(c, r, ap, a->percentage, 0));
            json_object_set_new_nocheck(o, "abort", aj);
        }
    }
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void mesh_cc_route_filters(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                           const struct mesh_http_route *h, json_t *rt)
{
    if (h->cors_policy)
        json_object_set_new_nocheck(rt, "cors", cors_json(h->cors_policy));
    if (h->fault) {
        json_t *f = fault_json(c, r, p, h->fault);
        if (f)
            json_object_set_new_nocheck(rt, "fault", f);
    }
    if (h->headers) {
        json_t *req = mesh_cc_header_ops(c, r, MESH_CC_JOIN(c, p, ".headers.request"),
                                         h->headers->request, true);
        json_t *resp = mesh_cc_header_ops(c, r, MESH_CC_JOIN(c, p, ".headers.response"),
                                          h->headers->response, false);
        if (req)
            json_object_set_new_nocheck(rt, "request_headers", req);
        if (resp)
            json_object_set_new_nocheck(rt, "response_headers", resp);
    }
}

/* ---- Rewrite and mirrors: in the route action ---- */

static json_t *mirror_json(struct mesh_cc *c, const struct mesh_crctx *x,
                           const struct mesh_resource *r, const char *path,
                           const struct mesh_destination *d, double percent)
{
    const char *name = mesh_cc_dest_cluster(c, x, r, path, d, "mirror", "it is left out");
    if (!name)
        return NULL;
    json_t *m = json_object();
    json_object_set_new_nocheck(m, "cluster", json_string(name));
    json_object_set_new_nocheck(m, "percent", percent_json(percent));
    return m;
}

void mesh_cc_route_extras(struct mesh_cc *c, const struct mesh_crctx *x,
                          const struct mesh_resource *r, const char *p,
                          const struct mesh_http_route *h, json_t *action)
{
    json_t *rw = json_object();
    const struct mesh_http_rewrite *w = h->rewrite;
    if (w && w->uri)
        json_object_set_new_nocheck(rw, "prefix", json_string(w->uri));
    if (w && w->uri_regex_rewrite) {
        json_t *rx = json_object();
        json_object_set_new_nocheck(rx, "pattern", json_string(w->uri_regex_rewrite->match));
        json_object_set_new_nocheck(rx, "substitution",
                                    json_string(w->uri_regex_rewrite->rewrite));
        json_object_set_new_nocheck(rw, "regex", rx);
    }
    const char *host = request_host_set(h->headers);
    if (w && w->authority)
        json_object_set_new_nocheck(rw, "authority", json_string(w->authority));
    else if (host)
        json_object_set_new_nocheck(rw, "authority", json_string(host)); /* Istio does the same */
    if (json_object_size(rw))
        json_object_set_new_nocheck(action, "rewrite", rw);
    else
        json_decref(rw);

    json_t *mirrors = json_array();
    if (h->mirror) {
        double pct = 100;
        if (h->mirror_percentage)
            pct = h->mirror_percentage->value;
        else if (h->mirror_percent.set)
            pct = h->mirror_percent.v;
        json_t *m = mirror_json(c, x, r, MESH_CC_JOIN(c, p, ".mirror"), h->mirror, pct);
        if (m)
            json_array_append_new(mirrors, m);
    } else if (h->mirror_percentage || h->mirror_percent.set) {
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, MESH_CC_JOIN(c, p, ".mirrorPercentage"),
                     "ignored: there is no mirror");
    }
    for (size_t i = 0; i < h->n_mirrors; i++) {
        const struct mesh_http_mirror_policy *mp = &h->mirrors[i];
        json_t *m = mirror_json(c, x, r, mesh_cc_path(c, p, ".mirrors", i, ".destination"),
                                mp->destination, mp->percentage ? mp->percentage->value : 100);
        if (m)
            json_array_append_new(mirrors, m);
    }
    if (json_array_size(mirrors))
        json_object_set_new_nocheck(action, "mirrors", mirrors);
    else
        json_decref(mirrors);
}
