/*
 * The control plane's resource API (docs/control.md): routing, auth, request bodies through
 * the resource loader, the store's answers as JSON. Every endpoint answers JSON except
 * /v1/diff (text/plain); every error is {"error": "...", "details": [...]}.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/diag.h"
#include "core/handler.h"
#include "core/log.h"
#include "core/resource.h"
#include "core/status.h"
#include "core/store.h"
#include "core/validate.h"
#include "roles/control_api.h"
#include "roles/control_registry.h"

struct mesh_control_api {
    struct mesh_store *st;
    char *token;
    size_t token_len;
    struct mesh_registry *registry; /* /v1/register, /v1/registry; NULL: not served */
};

#define MAX_PARAMS 16
#define MAX_SEGS 8
#define MAX_NOTE 1024

struct param {
    char *key, *value;
};

/* One request being served. */
struct ctx {
    struct mesh_control_api *api;
    int64_t t_start;      /* monotonic µs when the request started being served */
    int64_t t_loaded;     /* ... and when its body was validated */
    const struct mesh_api_request *req;
    struct mesh_api_response *resp;
    char method[16];
    char *segs[MAX_SEGS]; /* decoded path segments */
    size_t n_segs;
    struct param params[MAX_PARAMS];
    size_t n_params;
};

/* Name of the request body in diagnostics: "body:3:5: VirtualService default/x: ..." */
static const char body_name[] = "body";

/* ---- responses ---- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void set_body(struct mesh_api_response *resp, int status, const char *ctype, char *body,
                     size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = ctype;
    resp->body = body;
    resp->len = len;
}

/*
 * A JSON string for text that may come from the request (names, messages quoting it): bytes
 * that are not valid UTF-8 become '?', since jansson refuses such strings.
 */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *copy = mesh_xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

/* Answers <v> (stolen) as compact JSON plus a newline. */
static void reply_json(struct ctx *c, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(v);
    if (!text) {
        static const char oom[] = "{\"error\":\"cannot encode the answer as JSON\"}\n";
        set_body(c->resp, 500, "application/json", mesh_xstrdup(oom), sizeof(oom) - 1);
        return;
    }
    size_t len = strlen(text);
    text = mesh_xrealloc(text, len + 2); /* jansson allocates with malloc() */
    text[len++] = '\n';
    text[len] = '\0';
    set_body(c->resp, status, "application/json", text, len);
}

/* {"error": MSG, "details": <details>} with <details> (stolen) an array or NULL. */
static void reply_error_v(struct ctx *c, int status, json_t *details, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *o = json_object();
    json_object_set_new(o, "error", jstr(msg));
    json_object_set_new(o, "details", details ? details : json_array());
    reply_json(c, status, o);
}

static void reply_error(struct ctx *c, int status, json_t *details, const char *fmt, ...)
    MESH_PRINTF(4, 5);
static void reply_error(struct ctx *c, int status, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(c, status, details, fmt, ap);
    va_end(ap);
}

/* The store's status -> HTTP (docs/store.md's mapping). */
static int http_status(int rc)
{
    switch (rc) {
    case MESH_EINVAL: return 400;
    case MESH_ENOTFOUND: return 404;
    case MESH_STORE_ECONFLICT: return 409;
    case MESH_EAGAIN: return 503;
    default: return 500;
    }
}

static void reply_store_error(struct ctx *c, int rc, const struct mesh_err *err, const char *what)
{
    json_t *details = json_array();
    for (size_t i = 0; i < err->count; i++) {
        const struct mesh_err_entry *e = &err->e[i];
        char line[512];
        snprintf(line, sizeof(line), "%s%s%s", e->path, e->path[0] ? ": " : "", e->msg);
        json_array_append_new(details, jstr(line));
    }
    if (err->total > err->count) {
        char line[64];
        snprintf(line, sizeof(line), "... and %zu more", err->total - err->count);
        json_array_append_new(details, jstr(line));
    }
    int status = http_status(rc);
    if (status >= 500)
        mesh_log_error("%s: %s", what, err->count ? err->e[0].msg : mesh_strstatus(rc));
    if (err->count == 1 || (err->count && status != 400 && status != 409))
        reply_error(c, status, details, "%s", err->e[0].msg);
    else if (err->count)
        reply_error(c, status, details, "%s: %zu errors", what, err->total);
    else
        reply_error(c, status, details, "%s: %s", what, mesh_strstatus(rc));
}

void mesh_api_response_free(struct mesh_api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

/* ---- request parsing ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *mesh_control_url_decode(const char *s, size_t len, bool plus_space)
{
    char *out = mesh_xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_space) {
            *o++ = ' ';
        } else if (s[i] == '\0') {
            free(out);
            return NULL;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static void ctx_free(struct ctx *c)
{
    for (size_t i = 0; i < c->n_segs; i++)
        free(c->segs[i]);
    for (size_t i = 0; i < c->n_params; i++) {
        free(c->params[i].key);
        free(c->params[i].value);
    }
}

/* Splits the target into decoded path segments and query parameters; false after a 400. */
static bool parse_target(struct ctx *c)
{
    const char *t = c->req->target;
    size_t len = c->req->target_len;
    const char *q = memchr(t, '?', len);
    size_t plen = q ? (size_t)(q - t) : len;
    size_t i = 0;
    while (i < plen) {
        while (i < plen && t[i] == '/')
            i++;
        if (i == plen)
            break;
        size_t start = i;
        while (i < plen && t[i] != '/')
            i++;
        if (c->n_segs == MAX_SEGS) {
            reply_error(c, 404, NULL, "no such endpoint: the path has too many segments");
            return false;
        }
        char *seg = mesh_control_url_decode(t + start, i - start, false);
        if (!seg) {
            reply_error(c, 400, NULL, "the path has a bad %%-escape");
            return false;
        }
        c->segs[c->n_segs++] = seg;
    }
    if (!q)
        return true;
    const char *p = q + 1, *end = t + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if (pe > p) {
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            const char *ke = eq ? eq : pe;
            if (c->n_params == MAX_PARAMS) {
                reply_error(c, 400, NULL, "too many query parameters (at most %d)", MAX_PARAMS);
                return false;
            }
            char *k = mesh_control_url_decode(p, (size_t)(ke - p), true);
            char *v = eq ? mesh_control_url_decode(eq + 1, (size_t)(pe - eq - 1), true) : mesh_xstrdup("");
            if (!k || !v) {
                free(k);
                free(v);
                reply_error(c, 400, NULL, "the query string has a bad %%-escape");
                return false;
            }
            c->params[c->n_params].key = k;
            c->params[c->n_params].value = v;
            c->n_params++;
        }
        p = pe + 1;
    }
    return true;
}

static const char *param(const struct ctx *c, const char *key)
{
    for (size_t i = 0; i < c->n_params; i++)
        if (strcmp(c->params[i].key, key) == 0)
            return c->params[i].value;
    return NULL;
}

/* Every parameter must be one of <allowed> (NULL-terminated): a typo is an error, not
 * silently a different query. */
static bool params_allowed(struct ctx *c, const char *const *allowed)
{
    for (size_t i = 0; i < c->n_params; i++) {
        bool ok = false;
        for (size_t j = 0; allowed[j] && !ok; j++)
            ok = strcmp(c->params[i].key, allowed[j]) == 0;
        if (!ok) {
            char list[256] = "";
            size_t off = 0;
            for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "",
                                        allowed[j]);
            reply_error(c, 400, NULL,
                        "unknown query parameter \"%.100s\" (this endpoint takes: %s)",
                        c->params[i].key, allowed[0] ? list : "none");
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->params[i].key, c->params[j].key) == 0) {
                reply_error(c, 400, NULL, "query parameter \"%.100s\" given twice",
                            c->params[i].key);
                return false;
            }
        }
    }
    return true;
}

/* A revision parameter: "12" (>= <min>). Absent: *<out> untouched, true. */
static bool param_rev(struct ctx *c, const char *key, int64_t min, bool required, int64_t *out)
{
    const char *v = param(c, key);
    if (!v) {
        if (required)
            reply_error(c, 400, NULL, "query parameter \"%s\" (a revision number) is required",
                        key);
        return !required;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || v[0] == '-' || v[0] == '+' || v[0] == ' ') {
        reply_error(c, 400, NULL, "query parameter \"%s\": \"%.40s\" is not a revision number%s",
                    key, v, min > 0 ? " (1 or more)" : "");
        return false;
    }
    *out = n;
    return true;
}

/* A boolean flag: absent, "", "0", "false" are false; "1", "true", "All" (kubectl) true. */
static bool param_flag(struct ctx *c, const char *key, bool *out)
{
    const char *v = param(c, key);
    *out = false;
    if (!v || !*v || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        return true;
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "All") == 0) {
        *out = true;
        return true;
    }
    reply_error(c, 400, NULL, "query parameter \"%s\": expected 1 or 0, got \"%.40s\"", key, v);
    return false;
}

/* The note recorded with a revision: printable text only (it is shown in tables). */
static bool param_note(struct ctx *c, const char **out)
{
    const char *v = param(c, "note");
    *out = NULL;
    if (!v || !*v)
        return true;
    if (strlen(v) > MAX_NOTE) {
        reply_error(c, 400, NULL, "note: longer than %d bytes", MAX_NOTE);
        return false;
    }
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            reply_error(c, 400, NULL, "note: control characters are not allowed");
            return false;
        }
    }
    *out = v;
    return true;
}

/* A kind as kubectl names it ("vs", "virtualservices") -> "VirtualService"; NULL after a 400. */
static const char *parse_kind(struct ctx *c, const char *name)
{
    enum mesh_kind k = mesh_kind_parse(name);
    if (k == MESH_KIND_UNKNOWN) {
        reply_error(c, 400, NULL, "unknown kind \"%.100s\" (the API serves VirtualService, "
                                  "DestinationRule, Gateway, ServiceEntry, WorkloadEntry, Sidecar, "
                                  "PeerAuthentication, AuthorizationPolicy, RequestAuthentication, "
                                  "Service, Endpoints, EndpointSlice, and kubectl's short names)",
                    name);
        return NULL;
    }
    return mesh_kind_name(k);
}

/* ---- auth ---- */

/* Compares in time that depends on the lengths only, not on where the bytes differ. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    volatile unsigned char diff = (unsigned char)(alen != blen);
    size_t n = MESH_MAX(alen, blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

/*
 * Mutations always need the token; reads need it unless the peer is on loopback. A token
 * that is present but wrong is refused even where none is needed: the client would otherwise
 * learn of its bad token only at its next write.
 */
static bool authorize(struct ctx *c, bool mutation)
{
    const struct mesh_api_request *r = c->req;
    if (r->authorization) {
        const char *v = r->authorization;
        size_t len = r->authorization_len;
        if (len > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
            v += 7;
            len -= 7;
            while (len && *v == ' ') {
                v++;
                len--;
            }
            while (len && v[len - 1] == ' ')
                len--;
            if (token_equal(v, len, c->api->token, c->api->token_len))
                return true;
        }
        c->resp->auth_challenge = true;
        reply_error(c, 401, NULL, "the bearer token is not valid for this control plane");
        return false;
    }
    if (!mutation && r->peer_loopback)
        return true;
    c->resp->auth_challenge = true;
    reply_error(c, 401, NULL, "%s needs \"Authorization: Bearer TOKEN\" (the token is in the "
                              "control plane's DATA_DIR/token)",
                mutation ? "a change" : "a read from a non-loopback address");
    return false;
}

bool mesh_control_api_authorize(struct mesh_control_api *api, const struct mesh_api_request *req,
                                bool mutation, struct mesh_api_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct ctx c = {.api = api, .req = req, .resp = resp};
    return authorize(&c, mutation);
}

/* ---- request bodies ---- */

static json_t *diags_json(const struct mesh_diags *d, enum mesh_diag_severity sev)
{
    json_t *a = json_array();
    char line[2048];
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].severity != sev)
            continue;
        mesh_diag_format(&d->v[i], line, sizeof(line));
        json_array_append_new(a, jstr(line));
    }
    size_t total = sev == MESH_DIAG_ERROR     ? d->n_errors
                   : sev == MESH_DIAG_WARNING ? d->n_warnings
                                              : d->n_notes;
    if (total > json_array_size(a)) {
        snprintf(line, sizeof(line), "... and %zu more", total - json_array_size(a));
        json_array_append_new(a, json_string(line));
    }
    return a;
}

/*
 * Loads the body into <set>: a multi-document YAML stream, a JSON object, or a JSON array of
 * objects. The array goes to the loader inside a kind: List on the same line, so lines stay
 * true; columns on line 1 are shifted back. False after a 400 (every error in the details).
 */
static bool load_body(struct ctx *c, struct mesh_resource_set *set)
{
    static const char prefix[] = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":";
    const char *b = c->req->body;
    size_t len = c->req->body_len, i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
        i++;
    if (i == len) {
        reply_error(c, 400, NULL, "the request body is empty: send YAML or JSON documents");
        return false;
    }
    if (b[i] == '[') {
        size_t plen = sizeof(prefix) - 1;
        char *w = mesh_xmalloc(plen + len + 2);
        memcpy(w, prefix, plen);
        memcpy(w + plen, b, len);
        w[plen + len] = '}';
        w[plen + len + 1] = '\0';
        mesh_resource_load_buffer(set, w, plen + len + 1, body_name, 0);
        free(w);
        for (size_t k = 0; k < set->diags.n; k++)
            if (set->diags.v[k].line == 1 && set->diags.v[k].col > (int)plen)
                set->diags.v[k].col -= (int)plen;
    } else {
        mesh_resource_load_buffer(set, b, len, body_name, 0);
    }
    c->t_loaded = now_us();
    if (set->diags.n_errors) {
        json_t *o = json_object();
        json_object_set_new(o, "error", json_sprintf("the request has %zu error%s; nothing was "
                                                     "applied",
                                                     set->diags.n_errors,
                                                     set->diags.n_errors == 1 ? "" : "s"));
        json_object_set_new(o, "details", diags_json(&set->diags, MESH_DIAG_ERROR));
        json_object_set_new(o, "warnings", diags_json(&set->diags, MESH_DIAG_WARNING));
        reply_json(c, 400, o);
        return false;
    }
    return true;
}

static json_t *result_json(const struct mesh_resource *r, const char *result, int64_t rv)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(mesh_kind_name(r->kind)));
    json_object_set_new(o, "namespace", json_string(r->meta.namespace_));
    json_object_set_new(o, "name", json_string(r->meta.name));
    json_object_set_new(o, "result", json_string(result));
    if (rv > 0)
        json_object_set_new(o, "resourceVersion", json_sprintf("%lld", (long long)rv));
    return o;
}

/* The object as the store would keep it, for a dry run's comparison. */
static json_t *normalized(json_t *obj, const char *ns)
{
    json_t *o = json_copy(obj);
    json_t *meta = json_object_get(o, "metadata");
    if (json_is_object(meta)) {
        meta = json_copy(meta);
        json_object_set_new(o, "metadata", meta);
        json_object_del(meta, "resourceVersion");
        json_object_del(meta, "creationTimestamp");
        json_object_set_new(meta, "namespace", json_string(ns));
    }
    return o;
}

/* What an apply would do with <r>, without writing: created, configured or unchanged. */
static int dry_run_one(struct mesh_store *st, const struct mesh_resource *r, const char **result,
                       int64_t *rv, struct mesh_err *err)
{
    json_t *cur = NULL;
    const char *kind = mesh_kind_name(r->kind);
    struct mesh_err get_err; /* "not found" is an answer here, not an error */
    mesh_err_init(&get_err, NULL);
    int rc = mesh_store_get(st, kind, r->meta.namespace_, r->meta.name, &cur, &get_err);
    if (rc != MESH_OK && rc != MESH_ENOTFOUND) {
        mesh_err_add(err, 0, 0, NULL, "%s", get_err.count ? get_err.e[0].msg : "store error");
        err->e[err->count - 1].status = rc;
        return rc;
    }
    if (rc == MESH_ENOTFOUND) {
        if (r->meta.resource_version && *r->meta.resource_version)
            goto conflict;
        *result = "created";
        *rv = 0;
        return MESH_OK;
    }
    const char *cur_rv =
        json_string_value(json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
    if (r->meta.resource_version && *r->meta.resource_version &&
        (!cur_rv || strcmp(cur_rv, r->meta.resource_version) != 0)) {
        json_decref(cur);
        goto conflict;
    }
    json_t *a = normalized(r->object, r->meta.namespace_);
    json_t *b = normalized(cur, r->meta.namespace_);
    *result = json_equal(a, b) ? "unchanged" : "configured";
    *rv = cur_rv ? strtoll(cur_rv, NULL, 10) : 0;
    json_decref(a);
    json_decref(b);
    json_decref(cur);
    return MESH_OK;
conflict:
    mesh_err_add(err, 0, 0, NULL, "%s %s/%s: the object has been modified; please apply your "
                                  "changes to the latest version",
                 kind, r->meta.namespace_, r->meta.name);
    err->e[err->count - 1].status = MESH_STORE_ECONFLICT;
    return MESH_STORE_ECONFLICT;
}

/*
 * Applies every resource of <set> (or, <dry>, says what it would do) and answers
 * {"revision", "results", "warnings", "notes"} (+ "object" for one PUT resource).
 */
static void apply_set(struct ctx *c, struct mesh_resource_set *set, bool dry, const char *note,
                      bool put)
{
    struct mesh_store *st = c->api->st;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *results = json_array();
    int64_t rev = 0;
    int rc = MESH_OK;
    size_t counts[4] = {0};
    if (dry) {
        int worst = MESH_OK;
        for (size_t i = 0; i < set->n; i++) {
            const char *res;
            int64_t rv;
            rc = dry_run_one(st, set->items[i], &res, &rv, &err);
            if (rc == MESH_STORE_ECONFLICT) {
                worst = worst == MESH_OK ? rc : worst;
                continue;
            }
            if (rc != MESH_OK) {
                worst = rc;
                break;
            }
            json_array_append_new(results, result_json(set->items[i], res, rv));
        }
        rc = worst;
        if (rc == MESH_OK)
            rc = mesh_store_revision(st, &rev, &err);
    } else {
        json_t *docs = json_array();
        for (size_t i = 0; i < set->n; i++)
            json_array_append(docs, set->items[i]->object);
        struct mesh_store_result *res = mesh_xcalloc(set->n, sizeof(*res));
        rc = mesh_store_apply(st, docs, note, res, &rev, &err);
        json_decref(docs);
        if (rc == MESH_OK) {
            for (size_t i = 0; i < set->n; i++) {
                counts[res[i].op]++;
                json_array_append_new(results,
                                      result_json(set->items[i], mesh_store_op_name(res[i].op),
                                                  res[i].resource_version));
            }
        }
        free(res);
    }
    if (rc != MESH_OK) {
        json_decref(results);
        reply_store_error(c, rc, &err, dry ? "dry run" : "apply");
        return;
    }
    int64_t t_end = now_us();
    if (!dry && counts[MESH_STORE_CREATED] + counts[MESH_STORE_CONFIGURED])
        mesh_log_info("%s: revision %lld: %zu created, %zu configured, %zu unchanged (validated "
                      "in %lld ms, stored in %lld ms)%s%s",
                      put ? "put" : "apply", (long long)rev, counts[MESH_STORE_CREATED],
                      counts[MESH_STORE_CONFIGURED], counts[MESH_STORE_UNCHANGED],
                      (long long)(c->t_loaded - c->t_start) / 1000,
                      (long long)(t_end - c->t_loaded) / 1000, note ? "; note: " : "",
                      note ? note : "");
    json_t *o = json_object();
    json_object_set_new(o, "revision", json_integer((json_int_t)rev));
    if (dry)
        json_object_set_new(o, "dryRun", json_true());
    json_object_set_new(o, "results", results);
    json_object_set_new(o, "warnings", diags_json(&set->diags, MESH_DIAG_WARNING));
    json_object_set_new(o, "notes", diags_json(&set->diags, MESH_DIAG_NOTE));
    int status = 200;
    if (put && !dry) {
        const struct mesh_resource *r = set->items[0];
        json_t *obj = NULL;
        mesh_err_init(&err, NULL);
        if (mesh_store_get(st, mesh_kind_name(r->kind), r->meta.namespace_, r->meta.name, &obj,
                           &err) == MESH_OK)
            json_object_set_new(o, "object", obj);
        if (counts[MESH_STORE_CREATED])
            status = 201;
    }
    reply_json(c, status, o);
}

/* ---- endpoints ---- */

static void ep_healthz(struct ctx *c)
{
    static const char *const none[] = {NULL};
    if (!params_allowed(c, none))
        return;
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    reply_json(c, 200, o);
}

static void ep_revision(struct ctx *c)
{
    static const char *const none[] = {NULL};
    if (!params_allowed(c, none))
        return;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    int64_t rev = 0;
    int rc = mesh_store_revision(c->api->st, &rev, &err);
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "revision");
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "revision", json_integer((json_int_t)rev));
    reply_json(c, 200, o);
}

static void ep_apply(struct ctx *c)
{
    static const char *const allowed[] = {"dryRun", "note", NULL};
    bool dry;
    const char *note;
    if (!params_allowed(c, allowed) || !param_flag(c, "dryRun", &dry) || !param_note(c, &note))
        return;
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    if (load_body(c, &set)) {
        if (!set.n) {
            json_t *o = json_object();
            json_object_set_new(o, "error", json_string("no resources to apply in the request "
                                                        "body"));
            json_object_set_new(o, "details", diags_json(&set.diags, MESH_DIAG_NOTE));
            reply_json(c, 400, o);
        } else {
            apply_set(c, &set, dry, note, false);
        }
    }
    mesh_resource_set_free(&set);
}

/* GET /v1/resources[/KIND[/NS]] and its query: a kubectl-style List. */
static void ep_list(struct ctx *c, const char *path_kind, const char *path_ns)
{
    static const char *const allowed[] = {"kind", "namespace", "labelSelector", NULL};
    if (!params_allowed(c, allowed))
        return;
    const char *kind_arg = path_kind ? path_kind : param(c, "kind");
    const char *ns = path_ns ? path_ns : param(c, "namespace");
    if ((path_kind && param(c, "kind")) || (path_ns && param(c, "namespace"))) {
        reply_error(c, 400, NULL, "give the kind and namespace in the path or in the query, "
                                  "not both");
        return;
    }
    const char *kind = NULL;
    if (kind_arg && *kind_arg && !(kind = parse_kind(c, kind_arg)))
        return;
    struct mesh_store_filter f = {.kind = kind, .ns = ns && *ns ? ns : NULL,
                                  .selector = param(c, "labelSelector")};
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *items = NULL;
    int64_t rev = 0;
    int rc = mesh_store_list(c->api->st, &f, &items, &rev, &err);
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "list");
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "apiVersion", json_string("v1"));
    json_object_set_new(o, "kind", json_string("List"));
    json_t *meta = json_object();
    json_object_set_new(meta, "resourceVersion", json_sprintf("%lld", (long long)rev));
    json_object_set_new(o, "metadata", meta);
    json_object_set_new(o, "items", items);
    reply_json(c, 200, o);
}

static void ep_get(struct ctx *c, const char *kind, const char *ns, const char *name)
{
    static const char *const none[] = {NULL};
    if (!params_allowed(c, none))
        return;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *obj = NULL;
    int rc = mesh_store_get(c->api->st, kind, ns, name, &obj, &err);
    if (rc == MESH_ENOTFOUND) {
        reply_error(c, 404, NULL, "%s %s/%s not found", kind, ns, name);
        return;
    }
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "get");
        return;
    }
    reply_json(c, 200, obj);
}

static void ep_put(struct ctx *c, const char *kind, const char *ns, const char *name)
{
    static const char *const allowed[] = {"dryRun", "note", NULL};
    bool dry;
    const char *note;
    if (!params_allowed(c, allowed) || !param_flag(c, "dryRun", &dry) || !param_note(c, &note))
        return;
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    if (!load_body(c, &set))
        goto out;
    if (set.n_docs != 1 || set.n != 1) {
        reply_error(c, 400, diags_json(&set.diags, MESH_DIAG_NOTE),
                    "PUT takes exactly one %s document (the body has %zu document%s, %zu of a "
                    "kind meshd serves)",
                    kind, set.n_docs, set.n_docs == 1 ? "" : "s", set.n);
        goto out;
    }
    struct mesh_resource *r = set.items[0];
    const char *rkind = mesh_kind_name(r->kind);
    bool ns_ok = !r->meta.namespace_set || strcmp(r->meta.namespace_, ns) == 0;
    if (strcmp(rkind, kind) != 0 || strcmp(r->meta.name, name) != 0 || !ns_ok) {
        reply_error(c, 400, NULL, "the document is %s %s/%s but the URL names %s %s/%s", rkind,
                    r->meta.namespace_set ? r->meta.namespace_ : "(no namespace)", r->meta.name,
                    kind, ns, name);
        goto out;
    }
    if (!r->meta.namespace_set) {
        /* the URL gives the namespace; the resource's arena owns the string it points to */
        json_t *meta = json_object_get(r->object, "metadata");
        json_object_set_new(meta, "namespace", json_string(ns));
        r->meta.namespace_ = json_string_value(json_object_get(meta, "namespace"));
    }
    apply_set(c, &set, dry, note, true);
out:
    mesh_resource_set_free(&set);
}

static void ep_delete(struct ctx *c, const char *kind, const char *ns, const char *name)
{
    static const char *const allowed[] = {"resourceVersion", "note", NULL};
    int64_t rv = 0, rev = 0;
    const char *note;
    if (!params_allowed(c, allowed) || !param_rev(c, "resourceVersion", 1, false, &rv) ||
        !param_note(c, &note))
        return;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    int rc = mesh_store_delete(c->api->st, kind, ns, name, rv, note, &rev, &err);
    if (rc == MESH_ENOTFOUND) {
        reply_error(c, 404, NULL, "%s %s/%s not found", kind, ns, name);
        return;
    }
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "delete");
        return;
    }
    mesh_log_info("delete: revision %lld: %s %s/%s%s%s", (long long)rev, kind, ns, name,
                  note ? "; note: " : "", note ? note : "");
    json_t *r = json_object();
    json_object_set_new(r, "kind", json_string(kind));
    json_object_set_new(r, "namespace", json_string(ns));
    json_object_set_new(r, "name", json_string(name));
    json_object_set_new(r, "result", json_string("deleted"));
    json_t *o = json_object();
    json_object_set_new(o, "revision", json_integer((json_int_t)rev));
    json_object_set_new(o, "results", json_pack("[o]", r));
    reply_json(c, 200, o);
}

static void ep_history(struct ctx *c)
{
    static const char *const allowed[] = {"kind", "namespace", "name", "objects", NULL};
    bool objects = true;
    if (!params_allowed(c, allowed))
        return;
    if (param(c, "objects") && !param_flag(c, "objects", &objects))
        return;
    const char *kind = NULL, *k = param(c, "kind");
    if (k && *k && !(kind = parse_kind(c, k)))
        return;
    const char *ns = param(c, "namespace"), *name = param(c, "name");
    struct mesh_store_filter f = {.kind = kind, .ns = ns && *ns ? ns : NULL,
                                  .name = name && *name ? name : NULL};
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *rows = NULL;
    int rc = mesh_store_history(c->api->st, &f, &rows, &err);
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "history");
        return;
    }
    if (!objects) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
            json_object_del(row, "object");
    }
    json_t *o = json_object();
    json_object_set_new(o, "items", rows);
    reply_json(c, 200, o);
}

static void ep_diff(struct ctx *c)
{
    static const char *const allowed[] = {"from", "to", NULL};
    int64_t from = 0, to = MESH_STORE_CURRENT;
    if (!params_allowed(c, allowed) || !param_rev(c, "from", 0, true, &from) ||
        !param_rev(c, "to", 0, false, &to))
        return;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    char *text = NULL;
    size_t len = 0;
    int rc = mesh_store_diff(c->api->st, from, to, &text, &len, &err);
    if (rc != MESH_OK) {
        reply_store_error(c, rc, &err, "diff");
        return;
    }
    set_body(c->resp, 200, "text/plain; charset=utf-8", text, len);
}

static void ep_rollback(struct ctx *c)
{
    static const char *const allowed[] = {"to", "note", NULL};
    int64_t to = 0, rev = 0, before = 0;
    const char *note;
    if (!params_allowed(c, allowed) || !param_rev(c, "to", 0, true, &to) ||
        !param_note(c, &note))
        return;
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *changes = NULL;
    int rc = mesh_store_revision(c->api->st, &before, &err);
    if (rc == MESH_OK)
        rc = mesh_store_rollback(c->api->st, to, note, &changes, &rev, &err);
    if (rc != MESH_OK) {
        json_decref(changes); /* the store hands over an (empty) array even on failure */
        reply_store_error(c, rc, &err, "rollback");
        return;
    }
    if (rev != before)
        mesh_log_info("rollback to revision %lld: revision %lld, %zu changes", (long long)to,
                      (long long)rev, json_array_size(changes));
    json_t *o = json_object();
    json_object_set_new(o, "revision", json_integer((json_int_t)rev));
    json_object_set_new(o, "previous", json_integer((json_int_t)before));
    json_object_set_new(o, "to", json_integer((json_int_t)to));
    json_object_set_new(o, "changes", changes ? changes : json_array());
    reply_json(c, 200, o);
}

static bool method_is(const struct ctx *c, const char *m)
{
    return strcmp(c->method, m) == 0;
}

static void not_allowed(struct ctx *c, const char *allow)
{
    c->resp->allow = allow;
    reply_error(c, 405, NULL, "method %s is not allowed here (allowed: %s)", c->method, allow);
}

static bool seg_is(const struct ctx *c, size_t i, const char *s)
{
    return i < c->n_segs && strcmp(c->segs[i], s) == 0;
}

/* /v1/resources[/KIND[/NS[/NAME]]] */
static void route_resources(struct ctx *c)
{
    const char *kind = NULL;
    if (c->n_segs > 5) {
        reply_error(c, 404, NULL, "no such endpoint (expected /v1/resources/KIND/NAMESPACE/NAME)");
        return;
    }
    bool one = c->n_segs == 5;
    const char *allow = one ? "GET, PUT, DELETE" : "GET";
    bool mutation = method_is(c, "PUT") || method_is(c, "DELETE");
    if (!method_is(c, "GET") && !(one && mutation)) {
        not_allowed(c, allow);
        return;
    }
    if (!authorize(c, mutation))
        return;
    if (c->n_segs >= 3 && !(kind = parse_kind(c, c->segs[2])))
        return;
    if (!one) {
        ep_list(c, kind, c->n_segs >= 4 ? c->segs[3] : NULL);
        return;
    }
    const char *ns = c->segs[3], *name = c->segs[4];
    /* the namespace names objects the URL creates (PUT without metadata.namespace) */
    const char *why = mesh_validate_dns1123_label(ns);
    if (why) {
        reply_error(c, 400, NULL, "namespace \"%.100s\" in the path: %s", ns, why);
        return;
    }
    if (method_is(c, "GET"))
        ep_get(c, kind, ns, name);
    else if (method_is(c, "PUT"))
        ep_put(c, kind, ns, name);
    else
        ep_delete(c, kind, ns, name);
}

struct simple_route {
    const char *path;   /* second segment, after "v1" */
    const char *method;
    bool mutation;
    void (*fn)(struct ctx *c);
};

static const struct simple_route simple_routes[] = {
    {"revision", "GET", false, ep_revision},
    {"apply", "POST", true, ep_apply},
    {"history", "GET", false, ep_history},
    {"diff", "GET", false, ep_diff},
    {"rollback", "POST", true, ep_rollback},
};

/* /v1/register[/NS/NAME] and /v1/registry: the registry (control_registry.h) */
static void route_registry(struct ctx *c)
{
    bool reg = seg_is(c, 1, "register");
    if (!c->api->registry || (reg ? c->n_segs != 2 && c->n_segs != 4 : c->n_segs != 2)) {
        reply_error(c, 404, NULL, "no such endpoint (expected POST /v1/register, DELETE "
                                  "/v1/register/NAMESPACE/NAME or GET /v1/registry)");
        return;
    }
    const char *allow = !reg ? "GET" : c->n_segs == 2 ? "POST" : "DELETE";
    if (!method_is(c, allow)) {
        not_allowed(c, allow);
        return;
    }
    if (!authorize(c, reg))
        return;
    json_t *answer = NULL;
    int status = mesh_registry_serve(c->api->registry, c->method, c->segs, c->n_segs,
                                     c->req->body, c->req->body_len, &answer);
    reply_json(c, status, answer);
}

static void route(struct ctx *c)
{
    if (c->n_segs == 1 && seg_is(c, 0, "healthz")) {
        if (!method_is(c, "GET"))
            not_allowed(c, "GET");
        else
            ep_healthz(c);
        return;
    }
    if (c->n_segs >= 2 && seg_is(c, 0, "v1") && seg_is(c, 1, "resources")) {
        route_resources(c);
        return;
    }
    if (c->n_segs >= 2 && seg_is(c, 0, "v1") && (seg_is(c, 1, "register") ||
                                                 seg_is(c, 1, "registry"))) {
        route_registry(c);
        return;
    }
    if (c->n_segs == 2 && seg_is(c, 0, "v1")) {
        for (size_t i = 0; i < MESH_ARRAY_LEN(simple_routes); i++) {
            const struct simple_route *r = &simple_routes[i];
            if (strcmp(c->segs[1], r->path) != 0)
                continue;
            if (!method_is(c, r->method))
                not_allowed(c, r->method);
            else if (authorize(c, r->mutation))
                r->fn(c);
            return;
        }
    }
    const char *q = memchr(c->req->target, '?', c->req->target_len);
    size_t plen = q ? (size_t)(q - c->req->target) : c->req->target_len;
    reply_error(c, 404, NULL, "no such endpoint: %s %.*s (see docs/control.md)", c->method,
                (int)MESH_MIN(plen, 200u), c->req->target);
}

void mesh_control_api_serve(struct mesh_control_api *api, const struct mesh_api_request *req,
                            struct mesh_api_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct ctx c = {.api = api, .req = req, .resp = resp, .t_start = now_us()};
    if (req->method_len == 0 || req->method_len >= sizeof(c.method)) {
        reply_error(&c, 405, NULL, "unknown method");
        return;
    }
    memcpy(c.method, req->method, req->method_len);
    c.method[req->method_len] = '\0';
    if (parse_target(&c))
        route(&c);
    ctx_free(&c);
    if (!resp->body)
        reply_error(&c, 500, NULL, "the request got no answer (a bug)");
}

/* ---- life cycle and the engine's handler ---- */

struct mesh_control_api *mesh_control_api_new(struct mesh_store *st, const char *token)
{
    if (!token || !*token)
        return NULL;
    struct mesh_control_api *api = mesh_xcalloc(1, sizeof(*api));
    api->st = st;
    api->token = mesh_xstrdup(token);
    api->token_len = strlen(token);
    return api;
}

void mesh_control_api_set_registry(struct mesh_control_api *api, struct mesh_registry *r)
{
    api->registry = r;
}

void mesh_control_api_free(struct mesh_control_api *api)
{
    if (!api)
        return;
    explicit_bzero(api->token, api->token_len);
    free(api->token);
    free(api);
}

bool mesh_control_is_loopback(const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!ip)
        return false;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return a6.s6_addr[12] == 127;
    }
    return false;
}

void mesh_control_api_handle(void *arg, struct mesh_stream *s)
{
    struct mesh_api_request req = {0};
    req.method = mesh_stream_method(s, &req.method_len);
    req.target = mesh_stream_path(s, &req.target_len);
    req.authorization = mesh_stream_header(s, "authorization", &req.authorization_len);
    req.body = mesh_stream_body(s, &req.body_len);
    req.peer_loopback = mesh_control_is_loopback(mesh_stream_peer(s));
    struct mesh_api_response resp;
    mesh_control_api_serve(arg, &req, &resp);
    if (resp.allow)
        mesh_stream_reply_header(s, "allow", resp.allow);
    if (resp.auth_challenge)
        mesh_stream_reply_header(s, "www-authenticate", "Bearer realm=\"meshd\"");
    mesh_stream_reply_header(s, "cache-control", "no-store");
    mesh_stream_reply(s, resp.status, resp.content_type, resp.body, resp.len);
    mesh_api_response_free(&resp);
}
