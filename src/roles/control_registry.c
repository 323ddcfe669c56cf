/*
 * Self-registration (control_registry.h): leases kept as WorkloadEntries in the store.
 *
 * Why WorkloadEntries and not a table of their own: the compiler already turns
 * WorkloadEntries into endpoints of the Services and ServiceEntries that select them, the
 * store already persists and versions them (a restart finds them, the push sees a revision),
 * and operators already read them (`meshd ctl get we`). What is not stored is the deadline:
 * renewals are frequent and only move it in memory, so they cost no write and no push.
 */
#include "core/common.h"
#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "core/resource.h"
#include "core/store.h"
#include "core/validate.h"
#include "roles/control_registry.h"

struct lease {
    char *ns, *name;
    json_t *doc;                   /* the WorkloadEntry as applied (renewals compare to it) */
    uint32_t ttl_s;
    int64_t deadline_ms;
};

struct mesh_registry {
    struct mesh_store *st;
    int64_t (*now_ms)(void *arg);
    void *clock_arg;
    struct lease *v;
    size_t n, cap;
    json_t *index;                 /* "ns/name" -> position in <v> */
    void (*on_change)(void *arg);
    void *change_arg;
    uint64_t changes;
    struct event review;           /* event_assign'ed: owned here, no free after the base */
    bool review_set;
};

static int64_t mono_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now(const struct mesh_registry *r)
{
    return r->now_ms(r->clock_arg);
}

static char *key_of(const char *ns, const char *name)
{
    size_t a = strlen(ns), b = strlen(name);
    char *k = mesh_xmalloc(a + b + 2);
    memcpy(k, ns, a);
    k[a] = '/';
    memcpy(k + a + 1, name, b + 1);
    return k;
}

static struct lease *find(struct mesh_registry *r, const char *ns, const char *name)
{
    char *k = key_of(ns, name);
    json_t *i = json_object_get(r->index, k);
    free(k);
    return i ? &r->v[json_integer_value(i)] : NULL;
}

/* Takes <doc>. */
static struct lease *add(struct mesh_registry *r, const char *ns, const char *name, json_t *doc,
                         uint32_t ttl_s)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = mesh_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    struct lease *l = &r->v[r->n];
    *l = (struct lease){.ns = mesh_xstrdup(ns), .name = mesh_xstrdup(name), .doc = doc,
                        .ttl_s = ttl_s, .deadline_ms = now(r) + (int64_t)ttl_s * 1000};
    char *k = key_of(ns, name);
    json_object_set_new(r->index, k, json_integer((json_int_t)r->n));
    free(k);
    r->n++;
    return l;
}

static void drop(struct mesh_registry *r, struct lease *l)
{
    size_t i = (size_t)(l - r->v);
    char *k = key_of(l->ns, l->name);
    json_object_del(r->index, k);
    free(k);
    free(l->ns);
    free(l->name);
    json_decref(l->doc);
    if (i != r->n - 1) {
        r->v[i] = r->v[r->n - 1];
        k = key_of(r->v[i].ns, r->v[i].name);
        json_object_set_new(r->index, k, json_integer((json_int_t)i));
        free(k);
    }
    r->n--;
}

static void changed(struct mesh_registry *r)
{
    r->changes++;
    if (r->on_change)
        r->on_change(r->change_arg);
}

/* ---- life cycle ---- */

static uint32_t ttl_of(json_t *obj)
{
    const char *t = json_string_value(
        json_object_get(json_object_get(json_object_get(obj, "metadata"), "annotations"),
                        MESH_REGISTRY_TTL_ANNOTATION));
    char *end;
    errno = 0;
    unsigned long v = t ? strtoul(t, &end, 10) : 0;
    if (!t || *end || errno || v == 0 || v > MESH_REGISTRY_MAX_TTL_S)
        return MESH_REGISTRY_DEFAULT_TTL_S;
    return (uint32_t)v;
}

/* The stored object without the fields the store adds: what a registration applies. */
static json_t *as_applied(json_t *obj)
{
    json_t *d = json_deep_copy(obj);
    json_t *m = json_object_get(d, "metadata");
    json_object_del(m, "resourceVersion");
    json_object_del(m, "creationTimestamp");
    return d;
}

struct mesh_registry *mesh_registry_new(struct mesh_store *st,
                                        const struct mesh_registry_opts *opts,
                                        struct mesh_err *err)
{
    struct mesh_registry *r = mesh_xcalloc(1, sizeof(*r));
    r->st = st;
    r->now_ms = opts && opts->now_ms ? opts->now_ms : mono_ms;
    r->clock_arg = opts ? opts->clock_arg : NULL;
    r->index = json_object();
    struct mesh_store_filter f = {.kind = "WorkloadEntry", .selector = MESH_REGISTRY_LABEL "=true"};
    json_t *items = NULL;
    if (mesh_store_list(st, &f, &items, NULL, err) != MESH_OK) {
        mesh_registry_free(r);
        return NULL;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(items, i, obj) {
        json_t *m = json_object_get(obj, "metadata");
        const char *ns = json_string_value(json_object_get(m, "namespace"));
        const char *name = json_string_value(json_object_get(m, "name"));
        if (ns && name)
            add(r, ns, name, as_applied(obj), ttl_of(obj));
    }
    json_decref(items);
    if (r->n)
        mesh_log_info("registry: %zu leases from the store, each renewed for its TTL", r->n);
    return r;
}

void mesh_registry_free(struct mesh_registry *r)
{
    if (!r)
        return;
    while (r->n)
        drop(r, &r->v[r->n - 1]);
    free(r->v);
    json_decref(r->index);
    free(r);
}

void mesh_registry_on_change(struct mesh_registry *r, void (*fn)(void *arg), void *arg)
{
    r->on_change = fn;
    r->change_arg = arg;
}

uint64_t mesh_registry_changes(const struct mesh_registry *r)
{
    return r->changes;
}

size_t mesh_registry_count(const struct mesh_registry *r)
{
    return r->n;
}

/* ---- expiry ---- */

/* *<rev> (may be NULL): the revision that removed it (the current one if it was gone). */
static int delete_lease(struct mesh_registry *r, struct lease *l, const char *why,
                        int64_t *rev, struct mesh_err *err)
{
    int64_t at = 0;
    int rc = mesh_store_delete(r->st, "WorkloadEntry", l->ns, l->name, 0, why, &at, err);
    if (rc == MESH_ENOTFOUND) { /* deleted by hand meanwhile: the lease goes all the same */
        rc = MESH_OK;
        mesh_store_revision(r->st, &at, NULL);
    }
    if (rev)
        *rev = at;
    return rc;
}

size_t mesh_registry_expire(struct mesh_registry *r)
{
    int64_t t = now(r);
    size_t n = 0;
    for (size_t i = 0; i < r->n;) {
        struct lease *l = &r->v[i];
        if (l->deadline_ms > t) {
            i++;
            continue;
        }
        struct mesh_err err;
        mesh_err_init(&err, NULL);
        if (delete_lease(r, l, "registry: lease expired", NULL, &err) != MESH_OK) {
            char buf[512];
            mesh_err_format(&err, buf, sizeof(buf));
            mesh_log_warn("registry: cannot delete the expired lease %s/%s (retried in 1 s): %s",
                          l->ns, l->name, buf);
            i++;
            continue;
        }
        mesh_log_info("registry: lease %s/%s expired (no renewal in %u s): endpoint removed",
                      l->ns, l->name, l->ttl_s);
        drop(r, l); /* the last lease moved to <i>: look at it next */
        n++;
    }
    if (n)
        changed(r);
    return n;
}

static void on_review(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mesh_registry_expire(arg);
}

void mesh_registry_start(struct mesh_registry *r, struct event_base *base)
{
    /* a fixed 1 s review: O(leases) compares a second, simpler than a heap of deadlines
     * that renewals would keep moving, and a lease outlives its TTL by under a second */
    event_assign(&r->review, base, -1, EV_PERSIST, on_review, r);
    struct timeval tv = {1, 0};
    event_add(&r->review, &tv);
    r->review_set = true;
}

/* ---- requests ---- */

static const char *const register_fields[] = {"namespace", "name", "address", "service",
                                              "ports", "labels", "locality", "weight",
                                              "serviceAccount", "ttl_s", NULL};

static json_t *error_answer(json_t *details, const char *fmt, ...) MESH_PRINTF(2, 3);
static json_t *error_answer(json_t *details, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    json_object_set_new(o, "details", details ? details : json_array());
    return o;
}

static void bad(json_t *details, const char *field, const char *fmt, ...) MESH_PRINTF(3, 4);
static void bad(json_t *details, const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(details, json_sprintf("%s: %s", field, msg));
}

/* A string member; reports a wrong type, and a missing one when <required>. */
static const char *str_field(json_t *b, const char *key, bool required, json_t *details)
{
    json_t *v = json_object_get(b, key);
    if (!v) {
        if (required)
            bad(details, key, "is required");
        return NULL;
    }
    if (!json_is_string(v) || !*json_string_value(v)) {
        bad(details, key, "must be a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

/*
 * The WorkloadEntry of a registration body, or NULL with every problem in <details>.
 * *<ttl> is the lease's TTL (0: deregister).
 */
static json_t *parse_registration(json_t *b, json_t *details, uint32_t *ttl)
{
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        bool known = false;
        for (size_t i = 0; register_fields[i]; i++)
            known = known || strcmp(k, register_fields[i]) == 0;
        if (!known)
            bad(details, k, "unknown field");
    }
    const char *ns = str_field(b, "namespace", true, details);
    const char *name = str_field(b, "name", true, details);
    const char *addr = str_field(b, "address", true, details);
    const char *svc = str_field(b, "service", false, details);
    const char *loc = str_field(b, "locality", false, details);
    const char *sa = str_field(b, "serviceAccount", false, details);
    const char *why;
    if (ns && (why = mesh_validate_dns1123_label(ns)))
        bad(details, "namespace", "'%s': %s", ns, why);
    if (name && (why = mesh_validate_dns1123_subdomain(name)))
        bad(details, "name", "'%s': %s", name, why);
    if (svc && (why = mesh_validate_dns1123_label(svc)))
        bad(details, "service", "'%s': %s", svc, why);
    if (addr && (why = mesh_validate_ip(addr)))
        bad(details, "address", "'%s': %s (a numeric IP: the snapshot is resolved)", addr, why);
    *ttl = MESH_REGISTRY_DEFAULT_TTL_S;
    if ((v = json_object_get(b, "ttl_s"))) {
        json_int_t t = json_is_integer(v) ? json_integer_value(v) : -1;
        if (t < 0 || t > MESH_REGISTRY_MAX_TTL_S)
            bad(details, "ttl_s", "must be an integer from 0 (deregister) to %u seconds",
                MESH_REGISTRY_MAX_TTL_S);
        else
            *ttl = (uint32_t)t;
    }
    json_t *ports = json_object(), *labels = json_object();
    json_t *p = json_object_get(b, "ports");
    if (p && !json_is_object(p))
        bad(details, "ports", "must be an object {\"name\": port}");
    json_object_foreach(p, k, v) {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if ((why = mesh_validate_istio_label(k)))
            bad(details, "ports", "name '%s': %s", k, why);
        else if (n < 1 || n > 65535)
            bad(details, "ports", "%s: must be a port number 1..65535", k);
        else
            json_object_set_new(ports, k, json_integer(n));
    }
    json_t *l = json_object_get(b, "labels");
    if (l && !json_is_object(l))
        bad(details, "labels", "must be an object {\"key\": \"value\"}");
    json_object_foreach(l, k, v) {
        if ((why = mesh_validate_label_key(k)))
            bad(details, "labels", "key '%s': %s", k, why);
        else if (!json_is_string(v) || (why = mesh_validate_label_value(json_string_value(v))))
            bad(details, "labels", "%s: %s", k, json_is_string(v) ? why : "must be a string");
        else
            json_object_set_new(labels, k, json_string(json_string_value(v)));
    }
    /* Services select pods by "app" as a rule: a registration names its service that way */
    if (svc && !json_object_get(labels, "app"))
        json_object_set_new(labels, "app", json_string(svc));
    json_int_t weight = 0;
    if ((v = json_object_get(b, "weight"))) {
        weight = json_is_integer(v) ? json_integer_value(v) : 0;
        if (weight < 1 || weight > 0xffffffffLL)
            bad(details, "weight", "must be an integer from 1");
    }
    if (json_array_size(details)) {
        json_decref(ports);
        json_decref(labels);
        return NULL;
    }
    json_t *spec = json_pack("{s:s}", "address", addr);
    if (json_object_size(ports))
        json_object_set(spec, "ports", ports);
    if (json_object_size(labels))
        json_object_set(spec, "labels", labels);
    if (loc)
        json_object_set_new(spec, "locality", json_string(loc));
    if (weight)
        json_object_set_new(spec, "weight", json_integer(weight));
    if (sa)
        json_object_set_new(spec, "serviceAccount", json_string(sa));
    char ttl_text[16];
    snprintf(ttl_text, sizeof(ttl_text), "%u", *ttl ? *ttl : 1);
    json_t *ann = json_pack("{s:s}", MESH_REGISTRY_TTL_ANNOTATION, ttl_text);
    if (svc)
        json_object_set_new(ann, MESH_REGISTRY_SERVICE_ANNOTATION, json_string(svc));
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:o}, s:o}", "apiVersion",
                            "networking.istio.io/v1", "kind", "WorkloadEntry", "metadata", "name",
                            name, "namespace", ns, "labels", MESH_REGISTRY_LABEL, "true",
                            "annotations", ann, "spec", spec);
    json_decref(ports);
    json_decref(labels);
    return doc;
}

/* The resource loader's verdict on <doc>: what the compiler will read must be valid. */
static bool validate_doc(json_t *doc, json_t *details)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    mesh_resource_load_buffer(&set, text, strlen(text), "registration", 0);
    free(text);
    for (size_t i = 0; i < set.diags.n; i++) {
        const struct mesh_diag *d = &set.diags.v[i];
        if (d->severity == MESH_DIAG_ERROR)
            json_array_append_new(details, json_sprintf("%s%s%s", d->path ? d->path : "",
                                                        d->path ? ": " : "", d->msg));
    }
    bool ok = set.diags.n_errors == 0;
    mesh_resource_set_free(&set);
    return ok;
}

static json_t *lease_json(const struct mesh_registry *r, const struct lease *l, const char *op)
{
    json_t *spec = json_object_get(l->doc, "spec");
    json_t *ann = json_object_get(json_object_get(l->doc, "metadata"), "annotations");
    int64_t left = l->deadline_ms - now(r);
    json_t *o = json_pack("{s:s, s:s, s:O, s:i, s:I}", "namespace", l->ns, "name", l->name,
                          "address", json_object_get(spec, "address"), "ttl_s", (int)l->ttl_s,
                          "expires_in_ms", (json_int_t)(left > 0 ? left : 0));
    json_t *svc = json_object_get(ann, MESH_REGISTRY_SERVICE_ANNOTATION);
    if (svc)
        json_object_set(o, "service", svc);
    static const char *const copied[] = {"ports", "labels", "locality", "weight",
                                         "serviceAccount"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(copied); i++) {
        json_t *v = json_object_get(spec, copied[i]);
        if (v)
            json_object_set(o, copied[i], v);
    }
    if (op)
        json_object_set_new(o, "op", json_string(op));
    return o;
}

static int store_failure(int rc, struct mesh_err *err, json_t **answer, const char *what)
{
    char buf[1024];
    mesh_err_format(err, buf, sizeof(buf));
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    json_t *details = json_array();
    json_array_append_new(details, json_string(buf));
    *answer = error_answer(details, "%s", what);
    switch (rc) {
    case MESH_EINVAL: return 400;
    case MESH_ENOTFOUND: return 404;
    case MESH_STORE_ECONFLICT: return 409;
    case MESH_EAGAIN: return 503;
    default: mesh_log_error("registry: %s: %s", what, buf); return 500;
    }
}

static int deregister(struct mesh_registry *r, const char *ns, const char *name,
                      json_t **answer)
{
    struct lease *l = find(r, ns, name);
    if (!l) {
        *answer = error_answer(NULL, "no lease %s/%s (expired, or never registered)", ns, name);
        return 404;
    }
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    int64_t rev = 0;
    int rc = delete_lease(r, l, "registry: deregistered", &rev, &err);
    if (rc != MESH_OK)
        return store_failure(rc, &err, answer, "the store refused the deregistration");
    *answer = lease_json(r, l, "deleted");
    json_object_set_new(*answer, "expires_in_ms", json_integer(0));
    /* a stopping sidecar waits for a push round at this revision (sidecar_register.c) */
    json_object_set_new(*answer, "revision", json_integer((json_int_t)rev));
    mesh_log_info("registry: %s/%s deregistered", ns, name);
    drop(r, l);
    changed(r);
    return 200;
}

static int do_register(struct mesh_registry *r, const char *body, size_t len, json_t **answer)
{
    json_error_t je;
    json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!b || !json_is_object(b)) {
        json_t *details = json_array();
        if (!b)
            json_array_append_new(details, json_sprintf("body:%d:%d: %s", je.line, je.column,
                                                        je.text));
        json_decref(b);
        *answer = error_answer(details, "the registration must be a JSON object");
        return 400;
    }
    json_t *details = json_array();
    uint32_t ttl;
    json_t *doc = parse_registration(b, details, &ttl);
    if (doc && !validate_doc(doc, details)) {
        json_decref(doc);
        doc = NULL;
    }
    if (!doc) {
        json_decref(b);
        *answer = error_answer(details, "invalid registration; nothing was registered");
        return 400;
    }
    json_decref(details);
    const char *ns = json_string_value(json_object_get(b, "namespace"));
    const char *name = json_string_value(json_object_get(b, "name"));
    int status = 200;
    if (ttl == 0) {
        status = deregister(r, ns, name, answer);
        json_decref(doc);
        json_decref(b);
        return status;
    }
    struct lease *l = find(r, ns, name);
    if (l && json_equal(l->doc, doc)) {
        /* a renewal: no write, no push */
        l->ttl_s = ttl;
        l->deadline_ms = now(r) + (int64_t)ttl * 1000;
        *answer = lease_json(r, l, "renewed");
        json_decref(doc);
        json_decref(b);
        return 200;
    }
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    if (!l) {
        /* never take over a WorkloadEntry somebody wrote by hand */
        json_t *have = NULL;
        if (mesh_store_get(r->st, "WorkloadEntry", ns, name, &have, NULL) == MESH_OK) {
            json_t *lab = json_object_get(json_object_get(have, "metadata"), "labels");
            bool ours = json_object_get(lab, MESH_REGISTRY_LABEL) != NULL;
            json_decref(have);
            if (!ours) {
                *answer = error_answer(NULL, "WorkloadEntry %s/%s exists and was not made by "
                                             "registration: pick another name", ns, name);
                json_decref(doc);
                json_decref(b);
                return 409;
            }
        }
    }
    struct mesh_store_result res = {0};
    int64_t rev = 0;
    char note[300];
    snprintf(note, sizeof(note), "registry: %s/%s registered", ns, name);
    int rc = mesh_store_apply(r->st, doc, note, &res, &rev, &err);
    if (rc != MESH_OK) {
        json_decref(doc);
        json_decref(b);
        return store_failure(rc, &err, answer, "the store refused the registration");
    }
    const char *op = l ? "configured" : "created";
    if (l) {
        json_decref(l->doc);
        l->doc = doc;
        l->ttl_s = ttl;
        l->deadline_ms = now(r) + (int64_t)ttl * 1000;
    } else {
        l = add(r, ns, name, doc, ttl);
    }
    mesh_log_info("registry: %s/%s %s at %s (ttl %u s), revision %lld", ns, name, op,
                  json_string_value(json_object_get(json_object_get(doc, "spec"), "address")),
                  ttl, (long long)rev);
    *answer = lease_json(r, l, op);
    json_object_set_new(*answer, "revision", json_integer((json_int_t)rev));
    json_decref(b);
    if (res.op != MESH_STORE_UNCHANGED)
        changed(r);
    return 200;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list(struct mesh_registry *r, json_t **answer)
{
    /* sorted by namespace/name: the index's keys */
    const char **keys = mesh_xcalloc(r->n + 1, sizeof(*keys));
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(r->index, k, v)
        keys[n++] = k;
    qsort(keys, n, sizeof(*keys), cmp_key);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            items, lease_json(r, &r->v[json_integer_value(json_object_get(r->index, keys[i]))],
                              NULL));
    free(keys);
    *answer = json_pack("{s:o}", "items", items);
    return 200;
}

int mesh_registry_serve(struct mesh_registry *r, const char *method, char *const *segs,
                        size_t n_segs, const char *body, size_t body_len, json_t **answer)
{
    bool reg = n_segs >= 2 && strcmp(segs[1], "register") == 0;
    if (n_segs == 2 && !reg) { /* /v1/registry */
        if (strcmp(method, "GET") != 0) {
            *answer = error_answer(NULL, "method %s is not allowed here (allowed: GET)", method);
            return 405;
        }
        return list(r, answer);
    }
    if (n_segs == 2 && reg) {
        if (strcmp(method, "POST") != 0) {
            *answer = error_answer(NULL, "method %s is not allowed here (allowed: POST)", method);
            return 405;
        }
        return do_register(r, body, body_len, answer);
    }
    if (n_segs == 4 && reg) {
        if (strcmp(method, "DELETE") != 0) {
            *answer = error_answer(NULL, "method %s is not allowed here (allowed: DELETE)",
                                   method);
            return 405;
        }
        return deregister(r, segs[2], segs[3], answer);
    }
    *answer = error_answer(NULL, "no such endpoint (expected POST /v1/register, DELETE "
                                 "/v1/register/NAMESPACE/NAME or GET /v1/registry)");
    return 404;
}
