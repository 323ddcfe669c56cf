/*
 * The control plane's push (control_push.h, docs/control.md "Push").
 *
 * Every watch stream is a struct watcher on the worker thread. A change (a mutation through
 * the API, a registry change, or another process writing the store, seen by polling its
 * revision every second) arms the debounce timer; when it fires, the store's changes are
 * applied to the resource set, the classes' snapshots are brought up to date (push_class.h:
 * an endpoint change recompiles only the clusters it touched) and a watcher gets a frame only
 * when its content version (the compiler's hash) differs from the one it was last sent: the
 * changed clusters when it holds the version they apply to, else the whole snapshot.
 *
 * The timers live on the worker's event base and exist only while a watcher does: the last
 * watcher to go frees them, which happens on the worker before its base is freed.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/addr.h"
#include "core/compile.h"
#include "core/diag.h"
#include "core/handler.h"
#include "core/list.h"
#include "core/log.h"
#include "core/resource.h"
#include "core/store.h"
#include "roles/control_api.h"
#include "roles/control_push.h"
#include "roles/push_class.h"
#include "roles/push_frame.h"

#define TICK_MS 100u             /* shutdown check; every 10th tick polls the revision */
/*
 * A ping every 5 s: the proxy knows the stream is alive, and an HTTP/1.1 watcher gone away
 * (curl -N, bench/watchers) is noticed when a write fails: its FIN alone does not end a
 * streaming response. Sidecars watch over HTTP/2, where the stream ends with the connection.
 */
#define HEARTBEAT_TICKS 50u
#define POLL_TICKS 10u
#define MAX_QUERY 4096

struct watcher {
    struct mesh_list link;
    struct mesh_control_push *p;
    struct mesh_stream *s;       /* NULL once ended by us (the stream may still be freed later) */
    uint64_t id;
    char *node;                  /* "NS/NAME" */
    char *ns, *name;             /* into one copy of node */
    char *labels_text;
    struct mesh_kv *labels;
    size_t n_labels;
    bool gateway;
    char listen_host[64];
    uint16_t listen_port;
    char *locality;
    char peer[64];
    time_t connected;
    char *sent_version;          /* last snapshot sent */
    int64_t sent_rev;
    time_t sent_at;
    char *acked_version;         /* last version the proxy applied */
    time_t acked_at;
    char *error;                 /* last NACK reason or compile error */
    bool nacked;                 /* the proxy refused the version it was last sent */
    bool not_sent_error;         /* the last compile failed */
    uint64_t pushes, nacks;
};

struct mesh_control_push {
    struct mesh_store *st;
    struct mesh_control_api *api;
    unsigned debounce_ms;
    bool registry_only;          /* the mesh's outbound traffic policy (push_class.h) */
    atomic_bool closing;
    /* the worker thread only: */
    struct mesh_list watchers;
    size_t n_watchers;
    uint64_t next_id;
    struct event *tick, *debounce;
    unsigned ticks;
    bool debounce_armed;
    uint64_t last_round_ms;      /* when the last push round ran (the debounce) */
    int64_t polled_rev;          /* the revision the last poll saw */
    struct mesh_resource_set set;
    bool set_valid;
    int64_t set_rev;
    int64_t pushed_rev;          /* the revision the last round compiled (stopping sidecars) */
    uint64_t rounds, pushes, deltas;
    /* what changed in <set> since the classes were brought up to date (sync_classes) */
    bool full_pending;           /* anything but endpoints: every class compiles again */
    json_t *eds_scope;           /* "NS/NAME" or "NS/" "*" -> true: services whose endpoints
                                    changed */
    struct mesh_push_class *cache; /* one compiled snapshot per proxy class, for <set> */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? mesh_xstrdup(src) : NULL;
}

/* ---- replies ---- */

static void reply_json(struct mesh_stream *s, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    size_t len = text ? strlen(text) : 0;
    mesh_stream_reply_header(s, "cache-control", "no-store");
    if (text) {
        text = mesh_xrealloc(text, len + 2);
        text[len++] = '\n';
        text[len] = '\0';
    }
    mesh_stream_reply(s, text ? status : 500, "application/json", text ? text : "", len);
    free(text);
}

static void reply_error(struct mesh_stream *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct mesh_stream *s, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_json(s, status, json_pack("{s:s, s:[]}", "error", msg, "details"));
}

static void send_frame(struct watcher *w, json_t *header, const char *body, size_t body_len)
{
    size_t n;
    char *buf = mesh_push_frame_encode(header, body, body_len, &n);
    json_decref(header);
    if (buf && w->s)
        mesh_stream_reply_data(w->s, buf, n);
    free(buf);
}

/* ---- the store's resources ---- */

/* Notes which services a change of <kind> NS/NAME touches (<old>, <obj>: before, after). */
static void note_change(struct mesh_control_push *p, const char *kind, const char *ns,
                        const char *name, const struct mesh_resource *old, json_t *obj)
{
    char buf[600];
    if (strcmp(kind, "Endpoints") == 0) {
        snprintf(buf, sizeof(buf), "%s/%s", ns, name);
    } else if (strcmp(kind, "WorkloadEntry") == 0) {
        /* any Service or ServiceEntry of the namespace may select it */
        snprintf(buf, sizeof(buf), "%s/*", ns);
    } else if (strcmp(kind, "EndpointSlice") == 0) {
        /* the slice's service, before and after (the label may move it) */
        json_t *objs[2] = {old ? old->object : NULL, obj};
        for (size_t i = 0; i < 2; i++) {
            const char *svc = json_string_value(json_object_get(
                json_object_get(json_object_get(objs[i], "metadata"), "labels"),
                "kubernetes.io/service-name"));
            if (svc) {
                snprintf(buf, sizeof(buf), "%s/%s", ns, svc);
                json_object_set_new(p->eds_scope, buf, json_true());
            }
        }
        return;
    } else {
        p->full_pending = true;
        return;
    }
    json_object_set_new(p->eds_scope, buf, json_true());
}

/* More changes than this since the last round: read the whole store again. */
#define MAX_INCREMENTAL_CHANGES 512

/* Applies the store's changes since p->set_rev to <set>; false when it could not. */
static bool apply_changes(struct mesh_control_push *p, int64_t *rev_out)
{
    json_t *rows = NULL;
    int64_t cur = 0;
    if (mesh_store_changes(p->st, p->set_rev, &rows, &cur, NULL) != MESH_OK)
        return false;
    if (json_array_size(rows) > MAX_INCREMENTAL_CHANGES) {
        json_decref(rows);
        return false;
    }
    mesh_diags_free(&p->set.diags); /* this round's load problems only */
    mesh_diags_init(&p->set.diags);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *op = json_string_value(json_object_get(row, "op"));
        const char *kind = json_string_value(json_object_get(row, "kind"));
        const char *ns = json_string_value(json_object_get(row, "namespace"));
        const char *name = json_string_value(json_object_get(row, "name"));
        json_t *obj = json_object_get(row, "object");
        if (!op || !kind || !ns || !name)
            continue;
        char key[600];
        snprintf(key, sizeof(key), "%s/%s/%s", kind, ns, name);
        bool del = strcmp(op, "delete") == 0;
        note_change(p, kind, ns, name, mesh_resource_set_find(&p->set, key), del ? NULL : obj);
        if (del) {
            mesh_resource_set_remove(&p->set, key);
            continue;
        }
        char *text = json_dumps(obj, JSON_COMPACT);
        size_t errors = p->set.diags.n_errors;
        if (text)
            mesh_resource_load_buffer(&p->set, text, strlen(text), "store", MESH_LOAD_REPLACE);
        if (!text || p->set.diags.n_errors != errors)
            mesh_resource_set_remove(&p->set, key); /* as a whole reload would skip it */
        free(text);
    }
    json_decref(rows);
    p->set_rev = cur;
    *rev_out = cur;
    return true;
}

/*
 * The resource set at the store's current revision (shared by watchers): the changes since
 * the last call applied to it (bench/converge: reading and parsing 2,000 resources again cost
 * more than the rest of an endpoint change), or the whole store when there is no set yet or
 * too much changed.
 */
static struct mesh_resource_set *current_set(struct mesh_control_push *p, int64_t *rev_out,
                                             char *why, size_t why_size)
{
    struct mesh_err err;
    mesh_err_init(&err, "store");
    int64_t rev = 0;
    if (mesh_store_revision(p->st, &rev, &err) != MESH_OK) {
        mesh_err_format(&err, why, why_size);
        return NULL;
    }
    *rev_out = rev;
    if (p->set_valid && p->set_rev == rev)
        return &p->set;
    if (p->set_valid && rev > p->set_rev && apply_changes(p, rev_out))
        return &p->set;
    json_t *items = NULL;
    mesh_err_init(&err, "store");
    if (mesh_store_list(p->st, NULL, &items, &rev, &err) != MESH_OK) {
        mesh_err_format(&err, why, why_size);
        return NULL;
    }
    *rev_out = rev;
    json_t *list = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List", "items",
                             items);
    char *text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (p->set_valid)
        mesh_resource_set_free(&p->set);
    mesh_resource_set_init(&p->set);
    p->full_pending = true;
    p->set_valid = true;
    p->set_rev = rev;
    if (text)
        mesh_resource_load_buffer(&p->set, text, strlen(text), "store", 0);
    free(text);
    if (p->set.diags.n_errors)
        mesh_log_warn("push: revision %lld: %zu stored resources failed to load; compiling "
                      "the others", (long long)rev, p->set.diags.n_errors);
    return &p->set;
}

/*
 * Brings the class cache up to <set>: after anything but an endpoint change every class
 * compiles again (when next asked for); after an endpoint change each class recompiles the
 * clusters of the services touched and keeps a delta (push_class.h).
 */
static void sync_classes(struct mesh_control_push *p, struct mesh_resource_set *set)
{
    if (!set || p->full_pending) {
        mesh_push_class_free_all(p->cache);
        p->cache = NULL;
        p->full_pending = false;
        json_object_clear(p->eds_scope);
        return;
    }
    size_t n = json_object_size(p->eds_scope);
    if (!n)
        return;
    const char **v = mesh_xmalloc(n * sizeof(*v));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(p->eds_scope, key, val)
        v[k++] = key;
    struct mesh_compile_only only = {.services = v, .n = k};
    for (struct mesh_push_class **pp = &p->cache; *pp;) {
        struct mesh_push_class *c = *pp;
        if (mesh_push_class_endpoints(c, set, &only)) {
            pp = &c->next;
        } else {
            *pp = c->next;
            mesh_push_class_free(c);
        }
    }
    free(v);
    json_object_clear(p->eds_scope);
}

/* ---- one watcher ---- */

static struct mesh_push_class *class_of(struct mesh_control_push *p, const struct watcher *w,
                                        struct mesh_resource_set *set, const char *why_set)
{
    struct mesh_push_class_node n = {.ns = w->ns, .name = w->name, .labels_text = w->labels_text,
                                     .gateway = w->gateway, .listen_host = w->listen_host,
                                     .listen_port = w->listen_port, .locality = w->locality,
                                     .registry_only = p->registry_only};
    return mesh_push_class_get(&p->cache, &n, set, why_set);
}

static void push_error(struct watcher *w, const char *why, int64_t rev)
{
    if (!w->error || strcmp(w->error, why) != 0 || !w->not_sent_error) {
        mesh_log_warn("push: no snapshot for %s: %s", w->node, why);
        send_frame(w, json_pack("{s:s, s:I, s:I, s:s}", "type", "error", "id", (json_int_t)w->id,
                                "revision", (json_int_t)rev, "error", why),
                   NULL, 0);
    }
    set_str(&w->error, why);
    w->not_sent_error = true;
}

/*
 * Sends <w> its class's snapshot when its version differs from the one last sent: the
 * delta when <w> has the version the class's last endpoint update started from, else the
 * whole snapshot.
 */
static void push_one(struct watcher *w, struct mesh_push_class *c,
                     const struct mesh_resource_set *set, int64_t rev)
{
    if (!c->version) {
        push_error(w, c->why, rev);
        return;
    }
    if (w->sent_version && strcmp(c->version, w->sent_version) == 0) {
        w->not_sent_error = false;
        return; /* this proxy's snapshot did not change */
    }
    bool delta = c->delta_base && w->sent_version && !w->nacked &&
                 strcmp(c->delta_base, w->sent_version) == 0;
    const char *body = delta ? c->delta_text : mesh_push_class_text(c, set);
    if (!body) {
        push_error(w, c->why, rev);
        return;
    }
    w->not_sent_error = false;
    json_t *h = json_pack("{s:s, s:I, s:s, s:I}", "type", delta ? "delta" : "snapshot", "id",
                          (json_int_t)w->id, "version", c->version, "revision", (json_int_t)rev);
    if (delta)
        json_object_set_new(h, "base", json_string(w->sent_version));
    set_str(&w->sent_version, c->version);
    w->sent_rev = rev;
    w->sent_at = time(NULL);
    w->nacked = false;
    w->pushes++;
    w->p->pushes++;
    w->p->deltas += delta;
    send_frame(w, h, body, delta ? c->delta_len : c->text_len);
    mesh_log_debug("push: %s version %s (revision %lld%s)", w->node, w->sent_version,
                   (long long)rev, delta ? ", endpoints only" : "");
}

static void push_all(struct mesh_control_push *p)
{
    char why[1024] = "";
    int64_t rev = 0;
    struct mesh_resource_set *set = current_set(p, &rev, why, sizeof(why));
    p->rounds++;
    p->last_round_ms = mono_ms();
    p->polled_rev = rev;
    p->pushed_rev = rev;
    sync_classes(p, set);
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->watchers)
    {
        struct watcher *w = mesh_list_entry(pos, struct watcher, link);
        if (w->s)
            push_one(w, class_of(p, w, set, why), set, rev);
    }
    if (!set) { /* a store failure is not worth keeping */
        mesh_push_class_free_all(p->cache);
        p->cache = NULL;
    }
}

/* ---- timers ---- */

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_control_push *p = arg;
    p->debounce_armed = false;
    push_all(p);
}

/*
 * A change is pushed at once when no round ran in the last <debounce_ms>; changes that come
 * within that time after a round wait for its end and go out together, in one round (the
 * store is read when the round runs). So a lone change costs no delay, and a burst costs
 * one round per <debounce_ms>.
 */
static void arm_debounce(struct mesh_control_push *p)
{
    if (!p->debounce || p->debounce_armed)
        return; /* no watcher (the next one compiles what is there), or a round is due */
    uint64_t now = mono_ms(), at = p->last_round_ms + p->debounce_ms;
    uint64_t ms = at > now ? at - now : 0;
    p->debounce_armed = true;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(p->debounce, &tv);
}

static void end_watch(struct watcher *w)
{
    if (!w->s)
        return;
    struct mesh_stream *s = w->s;
    w->s = NULL;
    mesh_stream_reply_end(s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_control_push *p = arg;
    struct mesh_list *pos, *tmp;
    if (atomic_load(&p->closing)) {
        mesh_list_foreach_safe(pos, tmp, &p->watchers)
            end_watch(mesh_list_entry(pos, struct watcher, link));
        return; /* the watchers' on_close frees the timers */
    }
    p->ticks++;
    if (p->ticks % POLL_TICKS == 0) {
        int64_t rev = 0;
        if (mesh_store_revision(p->st, &rev, NULL) == MESH_OK && rev != p->polled_rev) {
            p->polled_rev = rev;
            arm_debounce(p);
        }
    }
    if (p->ticks % HEARTBEAT_TICKS == 0) {
        mesh_list_foreach_safe(pos, tmp, &p->watchers)
        {
            struct watcher *w = mesh_list_entry(pos, struct watcher, link);
            send_frame(w, json_pack("{s:s}", "type", "ping"), NULL, 0);
        }
    }
    struct timeval tv = {0, TICK_MS * 1000};
    evtimer_add(p->tick, &tv);
}

static void timers_start(struct mesh_control_push *p, struct event_base *base)
{
    if (p->tick)
        return;
    p->tick = evtimer_new(base, on_tick, p);
    p->debounce = evtimer_new(base, on_debounce, p);
    p->debounce_armed = false;
    struct timeval tv = {0, TICK_MS * 1000};
    evtimer_add(p->tick, &tv);
}

static void timers_stop(struct mesh_control_push *p)
{
    if (p->tick)
        event_free(p->tick);
    if (p->debounce)
        event_free(p->debounce);
    p->tick = p->debounce = NULL;
    p->debounce_armed = false;
}

static void watcher_free(struct watcher *w)
{
    free(w->node);
    free(w->ns);
    free(w->labels_text);
    free(w->labels);
    free(w->locality);
    free(w->sent_version);
    free(w->acked_version);
    free(w->error);
    free(w);
}

/* The stream is freed (the proxy went away, or we ended it). */
static void watcher_gone(void *arg)
{
    struct watcher *w = arg;
    struct mesh_control_push *p = w->p;
    mesh_log_info("push: %s (watch %llu) disconnected", w->node, (unsigned long long)w->id);
    mesh_list_remove(&w->link);
    p->n_watchers--;
    watcher_free(w);
    if (p->n_watchers == 0)
        timers_stop(p);
}

/* ---- requests ---- */

/* Decodes %XX and '+' in place (the result is never longer); false on a bad escape or NUL. */
static bool url_decode(char *s)
{
    char *d = mesh_control_url_decode(s, strlen(s), true);
    if (!d)
        return false;
    memcpy(s, d, strlen(d) + 1);
    free(d);
    return true;
}

struct query {
    char buf[MAX_QUERY];
    const char *node, *labels, *role, *listen, *locality;
};

/* Parses the watch query; false after replying 400. */
static bool parse_watch_query(struct mesh_stream *s, const char *q, size_t len, struct query *out)
{
    memset(out, 0, sizeof(*out));
    if (len >= sizeof(out->buf)) {
        reply_error(s, 400, "the query is longer than %zu bytes", sizeof(out->buf) - 1);
        return false;
    }
    memcpy(out->buf, q, len);
    out->buf[len] = '\0';
    char *save = NULL;
    for (char *item = strtok_r(out->buf, "&", &save); item; item = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(item, '=');
        const char *val = "";
        if (eq) {
            *eq = '\0';
            val = eq + 1;
        }
        if (!url_decode(item) || !url_decode((char *)val)) {
            reply_error(s, 400, "bad %%-escape in the query");
            return false;
        }
        const char **slot = strcmp(item, "node") == 0       ? &out->node
                            : strcmp(item, "labels") == 0   ? &out->labels
                            : strcmp(item, "role") == 0     ? &out->role
                            : strcmp(item, "listen") == 0   ? &out->listen
                            : strcmp(item, "locality") == 0 ? &out->locality
                                                            : NULL;
        if (!slot) {
            reply_error(s, 400, "unknown parameter \"%.100s\" (node, labels, role, listen, "
                                "locality)", item);
            return false;
        }
        if (*slot) {
            reply_error(s, 400, "parameter \"%s\" given twice", item);
            return false;
        }
        *slot = val;
    }
    return true;
}

static struct watcher *new_watcher(struct mesh_control_push *p, struct mesh_stream *s,
                                   const struct query *q)
{
    const char *slash = q->node ? strchr(q->node, '/') : NULL;
    if (!slash || slash == q->node || !slash[1] || strchr(slash + 1, '/')) {
        reply_error(s, 400, "node=NAMESPACE/NAME is required, got \"%.200s\"",
                    q->node ? q->node : "");
        return NULL;
    }
    struct watcher *w = mesh_xcalloc(1, sizeof(*w));
    w->p = p;
    w->node = mesh_xstrdup(q->node);
    w->ns = mesh_xstrdup(q->node);
    w->ns[slash - q->node] = '\0';
    w->name = w->ns + (slash - q->node) + 1;
    w->labels_text = mesh_xstrdup(q->labels ? q->labels : "");
    if (q->labels && *q->labels &&
        !mesh_compile_parse_labels(q->labels, &w->labels, &w->n_labels)) {
        reply_error(s, 400, "labels: expected k=v,k2=v2, got \"%.200s\"", q->labels);
        watcher_free(w);
        return NULL;
    }
    if (q->role && strcmp(q->role, "gateway") == 0) {
        w->gateway = true;
    } else if (q->role && strcmp(q->role, "sidecar") != 0) {
        reply_error(s, 400, "role: expected sidecar or gateway, got \"%.50s\"", q->role);
        watcher_free(w);
        return NULL;
    }
    snprintf(w->listen_host, sizeof(w->listen_host), "127.0.0.1");
    w->listen_port = 15001;
    if (q->listen && mesh_addr_split(q->listen, w->listen_host, sizeof(w->listen_host),
                                     &w->listen_port) != 0) {
        reply_error(s, 400, "listen: expected ADDR:PORT with a numeric address, got \"%.100s\"",
                    q->listen);
        watcher_free(w);
        return NULL;
    }
    w->locality = q->locality && *q->locality ? mesh_xstrdup(q->locality) : NULL;
    snprintf(w->peer, sizeof(w->peer), "%s", mesh_stream_peer(s));
    w->connected = time(NULL);
    w->id = ++p->next_id;
    return w;
}

static bool authorized(struct mesh_control_push *p, struct mesh_stream *s)
{
    struct mesh_api_request req = {0};
    req.authorization = mesh_stream_header(s, "authorization", &req.authorization_len);
    req.peer_loopback = mesh_control_is_loopback(mesh_stream_peer(s));
    struct mesh_api_response resp;
    if (mesh_control_api_authorize(p->api, &req, false, &resp))
        return true;
    mesh_stream_reply_header(s, "www-authenticate", "Bearer realm=\"meshd\"");
    mesh_stream_reply(s, resp.status, resp.content_type, resp.body, resp.len);
    mesh_api_response_free(&resp);
    return false;
}

static void ep_watch(struct mesh_control_push *p, struct mesh_stream *s, const char *q, size_t qlen)
{
    struct query query;
    if (!parse_watch_query(s, q, qlen, &query))
        return;
    if (atomic_load(&p->closing)) {
        reply_error(s, 503, "the control plane is shutting down");
        return;
    }
    struct watcher *w = new_watcher(p, s, &query);
    if (!w)
        return;
    if (mesh_stream_on_close(s, watcher_gone, w) != MESH_OK) {
        watcher_free(w);
        reply_error(s, 503, "cannot track this stream");
        return;
    }
    w->s = s;
    mesh_list_insert_tail(&p->watchers, &w->link);
    p->n_watchers++;
    timers_start(p, mesh_stream_base(s));
    mesh_log_info("push: %s (watch %llu, %s%s%s) connected from %s", w->node,
                  (unsigned long long)w->id, w->gateway ? "gateway" : "sidecar",
                  *w->labels_text ? ", " : "", w->labels_text, w->peer);
    mesh_stream_reply_header(s, "cache-control", "no-store");
    mesh_stream_reply_start(s, 200, "application/x-meshd-push");
    char why[1024] = "";
    int64_t rev = 0;
    struct mesh_resource_set *set = current_set(p, &rev, why, sizeof(why));
    sync_classes(p, set);
    push_one(w, class_of(p, w, set, why), set, rev);
    if (!set) {
        mesh_push_class_free_all(p->cache);
        p->cache = NULL;
    }
}

static struct watcher *find_watcher(struct mesh_control_push *p, uint64_t id)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->watchers)
    {
        struct watcher *w = mesh_list_entry(pos, struct watcher, link);
        if (w->id == id)
            return w;
    }
    return NULL;
}

static void ep_ack(struct mesh_control_push *p, struct mesh_stream *s)
{
    size_t len;
    const char *body = mesh_stream_body(s, &len);
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *jid = json_object_get(o, "id");
    const char *node = json_string_value(json_object_get(o, "node"));
    const char *version = json_string_value(json_object_get(o, "version"));
    json_t *jerror = json_object_get(o, "error");
    if (!json_is_object(o) || !json_is_integer(jid) || !node || !version ||
        (jerror && !json_is_string(jerror) && !json_is_null(jerror))) {
        json_decref(o);
        reply_error(s, 400, "expected {\"id\": N, \"node\": \"NS/NAME\", \"version\": \"V\", "
                            "\"error\": \"...\" (a NACK) or absent (an ACK)}");
        return;
    }
    struct watcher *w = find_watcher(p, (uint64_t)json_integer_value(jid));
    if (!w || strcmp(w->node, node) != 0) {
        reply_error(s, 404, "no watch %lld for node %.200s (reconnected? the next snapshot "
                            "carries the new id)",
                    (long long)json_integer_value(jid), node);
        json_decref(o);
        return;
    }
    const char *error = json_string_value(jerror);
    bool current = w->sent_version && strcmp(version, w->sent_version) == 0;
    if (error) {
        w->nacks++;
        set_str(&w->error, error);
        if (current)
            w->nacked = true;
        mesh_log_warn("push: %s refused version %s: %s", w->node, version, error);
    } else {
        set_str(&w->acked_version, version);
        w->acked_at = time(NULL);
        if (current)
            w->nacked = false;
        mesh_log_debug("push: %s applied version %s", w->node, version);
    }
    json_decref(o);
    reply_json(s, 200, json_pack("{s:b}", "ok", 1));
}

static json_t *jtime(time_t t)
{
    if (!t)
        return json_null();
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *status_of(const struct watcher *w)
{
    if (!w->sent_version)
        return "NOT SENT";
    if (w->nacked)
        return "NACK";
    if (w->acked_version && strcmp(w->acked_version, w->sent_version) == 0)
        return "SYNCED";
    return "STALE";
}

static void ep_proxies(struct mesh_control_push *p, struct mesh_stream *s)
{
    json_t *arr = json_array();
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->watchers)
    {
        struct watcher *w = mesh_list_entry(pos, struct watcher, link);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)w->id));
        json_object_set_new(o, "node", json_string(w->node));
        json_object_set_new(o, "role", json_string(w->gateway ? "gateway" : "sidecar"));
        json_object_set_new(o, "labels", json_string(w->labels_text));
        json_object_set_new(o, "peer", json_string(w->peer));
        json_object_set_new(o, "connected", jtime(w->connected));
        json_object_set_new(o, "status", json_string(status_of(w)));
        json_object_set_new(o, "sent", jstr(w->sent_version));
        json_object_set_new(o, "sentRevision", json_integer((json_int_t)w->sent_rev));
        json_object_set_new(o, "sentAt", jtime(w->sent_at));
        json_object_set_new(o, "acked", jstr(w->acked_version));
        json_object_set_new(o, "ackedAt", jtime(w->acked_at));
        json_object_set_new(o, "error", jstr(w->error));
        json_object_set_new(o, "pushes", json_integer((json_int_t)w->pushes));
        json_object_set_new(o, "nacks", json_integer((json_int_t)w->nacks));
        json_array_append_new(arr, o);
    }
    int64_t rev = 0;
    mesh_store_revision(p->st, &rev, NULL);
    reply_json(s, 200, json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "revision", (json_int_t)rev,
                                 "pushedRevision", (json_int_t)p->pushed_rev, "rounds",
                                 (json_int_t)p->rounds, "pushes", (json_int_t)p->pushes,
                                 "deltas", (json_int_t)p->deltas, "proxies", arr));
}

static bool is_path(const char *path, size_t plen, const char *want)
{
    return plen == strlen(want) && memcmp(path, want, plen) == 0;
}

void mesh_control_push_handle(void *arg, struct mesh_stream *s)
{
    struct mesh_control_push *p = arg;
    size_t mlen, tlen;
    const char *method = mesh_stream_method(s, &mlen);
    const char *target = mesh_stream_path(s, &tlen);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    bool get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    bool post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    const char *allow = NULL;
    if (is_path(target, plen, "/v1/watch")) {
        if (!get)
            allow = "GET";
        else if (authorized(p, s))
            ep_watch(p, s, q ? q + 1 : "", q ? tlen - plen - 1 : 0);
    } else if (is_path(target, plen, "/v1/ack")) {
        if (!post)
            allow = "POST";
        else if (q)
            reply_error(s, 400, "/v1/ack takes no parameters");
        else if (authorized(p, s))
            ep_ack(p, s);
    } else if (is_path(target, plen, "/v1/proxies")) {
        if (!get)
            allow = "GET";
        else if (q)
            reply_error(s, 400, "/v1/proxies takes no parameters");
        else if (authorized(p, s))
            ep_proxies(p, s);
    } else {
        mesh_control_api_handle(p->api, s);
        bool read = get || (mlen == 4 && memcmp(method, "HEAD", 4) == 0);
        if (!read)
            mesh_control_push_changed(p);
        return;
    }
    if (allow) {
        mesh_stream_reply_header(s, "allow", allow);
        reply_error(s, 405, "method %.*s is not allowed here (allowed: %s)", (int)MESH_MIN(mlen, 16u),
                    method, allow);
    }
}

void mesh_control_push_changed(struct mesh_control_push *p)
{
    arm_debounce(p);
}

void mesh_control_push_shutdown(void *arg)
{
    struct mesh_control_push *p = arg;
    atomic_store(&p->closing, true);
}

struct mesh_control_push *mesh_control_push_new(struct mesh_store *st,
                                                struct mesh_control_api *api,
                                                unsigned debounce_ms, bool registry_only)
{
    struct mesh_control_push *p = mesh_xcalloc(1, sizeof(*p));
    p->st = st;
    p->api = api;
    p->debounce_ms = debounce_ms;
    p->registry_only = registry_only;
    atomic_init(&p->closing, false);
    mesh_list_init(&p->watchers);
    p->eds_scope = json_object();
    return p;
}

void mesh_control_push_free(struct mesh_control_push *p)
{
    if (!p)
        return;
    /* the worker has stopped: every stream was freed, so no watcher and no timer is left */
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &p->watchers)
    {
        struct watcher *w = mesh_list_entry(pos, struct watcher, link);
        mesh_list_remove(&w->link);
        watcher_free(w);
    }
    timers_stop(p);
    mesh_push_class_free_all(p->cache);
    json_decref(p->eds_scope);
    if (p->set_valid)
        mesh_resource_set_free(&p->set);
    free(p);
}
