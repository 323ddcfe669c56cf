/* Registration with the control plane from a sidecar (sidecar_register.h). */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "core/addr.h"
#include "core/compile.h"
#include "core/log.h"
#include "roles/control_registry.h"
#include "roles/sidecar_register.h"

struct mesh_register {
    struct event_base *base;
    struct evhttp_connection *conn;
    char host[64];
    uint16_t port;
    char *auth;                    /* "Bearer TOKEN" or NULL */
    char *body;                    /* the registration, JSON */
    char *ns, *name;
    unsigned ttl_s;
    struct event *timer;           /* next renewal or retry */
    unsigned backoff_s;
    bool active, leaving, left, freeing;
    /* leaving (mesh_register_leave): deregister, then wait for the push to be applied */
    struct event *leave_timer;     /* the deadline, then the settle after confirmation */
    struct event *poll_timer;      /* the next GET /v1/proxies */
    int64_t leave_start_ms;
    unsigned budget_ms;
    int64_t leave_rev;             /* the revision without us; -1 until known */
    bool deleted, delete_ok, confirmed;
    void (*done)(void *arg);
    void *done_arg;
};

static unsigned jitter_ms(unsigned base_ms)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        r = (uint32_t)base_ms * 2654435761u;
    unsigned spread = base_ms / 10; /* +-10% */
    return base_ms - spread + (spread ? r % (2 * spread + 1) : 0);
}

static void arm(struct mesh_register *r, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

static void send_post(struct mesh_register *r);

static void on_post(struct evhttp_request *req, void *arg)
{
    struct mesh_register *r = arg;
    if (r->freeing || r->leaving)
        return;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    unsigned third_ms = r->ttl_s * 1000 / 3;
    if (code == 200) {
        if (!r->active)
            mesh_log_info("registered %s/%s with the control plane %s:%u (lease %u s)", r->ns,
                          r->name, r->host, r->port, r->ttl_s);
        r->active = true;
        r->backoff_s = 0;
        arm(r, jitter_ms(third_ms));
        return;
    }
    char why[200] = "no answer";
    if (req && code) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        if (n > sizeof(why) - 1)
            n = sizeof(why) - 1;
        evbuffer_copyout(b, why, n);
        why[n] = '\0';
        why[strcspn(why, "\n")] = '\0';
    }
    r->backoff_s = r->backoff_s ? r->backoff_s * 2 : 1;
    unsigned wait_ms = r->backoff_s * 1000;
    if (wait_ms > third_ms)
        wait_ms = third_ms > 1000 ? third_ms : 1000;
    mesh_log_warn("registration of %s/%s with %s:%u failed (%d: %s); retrying in %u ms", r->ns,
                  r->name, r->host, r->port, code, why, wait_ms);
    /* 4xx other than 401/409 will not get better by itself, but the operator may fix the
     * control plane's side (a Service, a token file): keep trying, slowly */
    arm(r, jitter_ms(wait_ms));
}

static struct evhttp_request *new_request(struct mesh_register *r,
                                          void (*cb)(struct evhttp_request *, void *))
{
    struct evhttp_request *req = evhttp_request_new(cb, r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char host[96];
    snprintf(host, sizeof(host), "%s:%u", r->host, r->port);
    evhttp_add_header(h, "Host", host);
    if (r->auth)
        evhttp_add_header(h, "Authorization", r->auth);
    return req;
}

static void send_post(struct mesh_register *r)
{
    struct evhttp_request *req = new_request(r, on_post);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), r->body, strlen(r->body));
    if (evhttp_make_request(r->conn, req, EVHTTP_REQ_POST, "/v1/register") != 0)
        arm(r, 1000); /* the request was freed by libevent */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mesh_register *r = arg;
    if (!r->leaving)
        send_post(r);
}

/* ---- the body ---- */

static json_t *kv_object(const char *text, bool numbers, const char *flag)
{
    struct mesh_kv *kv;
    size_t n;
    if (!mesh_compile_parse_labels(text, &kv, &n)) {
        fprintf(stderr, "meshd: %s \"%s\": expected name=value,...\n", flag, text);
        return NULL;
    }
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        if (!numbers) {
            json_object_set_new(o, kv[i].key, json_string(kv[i].value));
            continue;
        }
        char *end;
        unsigned long v = strtoul(kv[i].value, &end, 10);
        if (!*kv[i].value || *end || v == 0 || v > 65535) {
            fprintf(stderr, "meshd: %s %s=%s: expected a port 1..65535\n", flag, kv[i].key,
                    kv[i].value);
            json_decref(o);
            free(kv);
            return NULL;
        }
        json_object_set_new(o, kv[i].key, json_integer((json_int_t)v));
    }
    free(kv);
    return o;
}

struct mesh_register *mesh_register_new(struct event_base *base,
                                        const struct mesh_register_opts *o)
{
    char host[64];
    uint16_t port;
    if (!o->control || mesh_addr_split(o->control, host, sizeof(host), &port) != 0 || !port) {
        fprintf(stderr, "meshd: --register needs --control ADDR:PORT (numeric address)\n");
        return NULL;
    }
    if (!o->ns || !o->name) {
        fprintf(stderr, "meshd: --register needs --node NAMESPACE/NAME (the workload)\n");
        return NULL;
    }
    unsigned char buf[16];
    if (!o->address || (inet_pton(AF_INET, o->address, buf) != 1 &&
                        inet_pton(AF_INET6, o->address, buf) != 1)) {
        fprintf(stderr, "meshd: --register needs --register-address IP (the workload's "
                        "numeric address)\n");
        return NULL;
    }
    unsigned ttl = o->ttl_s ? o->ttl_s : MESH_REGISTRY_DEFAULT_TTL_S;
    if (ttl < 3 || ttl > MESH_REGISTRY_MAX_TTL_S) {
        fprintf(stderr, "meshd: --register-ttl: expected 3..%u seconds\n",
                MESH_REGISTRY_MAX_TTL_S);
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:i}", "namespace", o->ns, "name", o->name,
                             "address", o->address, "ttl_s", (int)ttl);
    if (o->service)
        json_object_set_new(body, "service", json_string(o->service));
    if (o->locality)
        json_object_set_new(body, "locality", json_string(o->locality));
    json_t *ports = o->ports ? kv_object(o->ports, true, "--register-port") : json_object();
    json_t *labels = o->labels ? kv_object(o->labels, false, "--labels") : json_object();
    if (!ports || !labels) {
        json_decref(ports);
        json_decref(labels);
        json_decref(body);
        return NULL;
    }
    if (json_object_size(ports))
        json_object_set(body, "ports", ports);
    if (json_object_size(labels))
        json_object_set(body, "labels", labels);
    json_decref(ports);
    json_decref(labels);

    struct mesh_register *r = mesh_xcalloc(1, sizeof(*r));
    r->base = base;
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;
    r->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    r->ns = mesh_xstrdup(o->ns);
    r->name = mesh_xstrdup(o->name);
    r->ttl_s = ttl;
    if (o->token && *o->token) {
        size_t n = strlen(o->token) + 8;
        r->auth = mesh_xmalloc(n);
        snprintf(r->auth, n, "Bearer %s", o->token);
    } else {
        mesh_log_warn("--register without a token (--control-token FILE): the control plane "
                      "will refuse the registration (401)");
    }
    r->conn = evhttp_connection_base_new(base, NULL, r->host, r->port);
    evhttp_connection_set_timeout(r->conn, 5);
    r->timer = evtimer_new(base, on_timer, r);
    return r;
}

void mesh_register_begin(struct mesh_register *r)
{
    send_post(r);
}

struct mesh_register *mesh_register_start(struct event_base *base,
                                          const struct mesh_register_opts *o)
{
    struct mesh_register *r = mesh_register_new(base, o);
    if (r)
        mesh_register_begin(r);
    return r;
}

bool mesh_register_active(const struct mesh_register *r)
{
    return r && r->active && !r->left;
}

/* ---- leaving ---- */

/*
 * A stopping sidecar deregisters, then polls GET /v1/proxies until the control plane has
 * compiled a push round at (or past) the deregistration's revision and no other proxy is
 * STALE: every connected proxy then runs a snapshot without this endpoint (or refused it, or
 * cannot compile: nothing waiting would change). A short settle lets the proxies' workers
 * pick the swapped snapshot up. Bounded by the budget (--drain-grace-ms): with no answer the
 * sidecar drains at the budget's end all the same.
 */
#define POLL_MS 50
#define SETTLE_MS 100

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm_ms(struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static int64_t budget_left(const struct mesh_register *r)
{
    return r->leave_start_ms + (int64_t)r->budget_ms - mono_ms();
}

static void finish_leave(struct mesh_register *r)
{
    if (r->left)
        return;
    r->left = true;
    r->active = false;
    evtimer_del(r->leave_timer);
    evtimer_del(r->poll_timer);
    if (r->done)
        r->done(r->done_arg);
}

static void on_leave_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mesh_register *r = arg;
    if (!r->deleted)
        mesh_log_warn("deregistration of %s/%s unanswered: going on (the lease ends in %u s)",
                      r->ns, r->name, r->ttl_s);
    else if (!r->delete_ok)
        mesh_log_warn("going on after %u ms: %s/%s stays an endpoint until its lease ends",
                      r->budget_ms, r->ns, r->name);
    else if (!r->confirmed && r->budget_ms)
        mesh_log_warn("the control plane did not confirm within %u ms that every proxy "
                      "applied the deregistration of %s/%s: draining all the same",
                      r->budget_ms, r->ns, r->name);
    finish_leave(r);
}

static void send_poll(struct mesh_register *r);

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_poll(arg);
}

/* Whether the /v1/proxies answer <o> shows every other proxy on a snapshot without us. */
static bool pushed_everywhere(struct mesh_register *r, json_t *o, bool *unsupported)
{
    json_t *pushed = json_object_get(o, "pushedRevision");
    if (!json_is_integer(pushed)) {
        *unsupported = true; /* an older control plane */
        return false;
    }
    if (r->leave_rev < 0) /* the DELETE said nothing (404): what is there now */
        r->leave_rev = json_integer_value(json_object_get(o, "revision"));
    if (json_integer_value(pushed) < r->leave_rev)
        return false;
    char self[600];
    snprintf(self, sizeof(self), "%s/%s", r->ns, r->name);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(o, "proxies"), i, p) {
        const char *node = json_string_value(json_object_get(p, "node"));
        const char *st = json_string_value(json_object_get(p, "status"));
        if (node && strcmp(node, self) != 0 && st && strcmp(st, "STALE") == 0)
            return false;
    }
    return true;
}

static void on_poll(struct evhttp_request *req, void *arg)
{
    struct mesh_register *r = arg;
    if (r->freeing || r->left)
        return;
    bool unsupported = false, done = false;
    if (req && evhttp_request_get_response_code(req) == 200) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        json_t *o = json_loadb((const char *)evbuffer_pullup(b, (ev_ssize_t)n), n, 0, NULL);
        done = o && pushed_everywhere(r, o, &unsupported);
        json_decref(o);
    }
    if (done) {
        r->confirmed = true;
        mesh_log_info("every proxy applied the deregistration of %s/%s (revision %lld) after "
                      "%lld ms", r->ns, r->name, (long long)r->leave_rev,
                      (long long)(mono_ms() - r->leave_start_ms));
        int64_t left = budget_left(r);
        arm_ms(r->leave_timer, left < SETTLE_MS ? left : SETTLE_MS);
        return;
    }
    if (unsupported) {
        mesh_log_info("the control plane cannot confirm pushes: serving %lld ms more",
                      (long long)budget_left(r));
        return; /* the leave timer ends it */
    }
    arm_ms(r->poll_timer, POLL_MS);
}

static void send_poll(struct mesh_register *r)
{
    struct evhttp_request *req = new_request(r, on_poll);
    if (evhttp_make_request(r->conn, req, EVHTTP_REQ_GET, "/v1/proxies") != 0)
        arm_ms(r->poll_timer, POLL_MS);
}

static void on_delete(struct evhttp_request *req, void *arg)
{
    struct mesh_register *r = arg;
    if (r->freeing || r->left)
        return;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    r->deleted = true;
    r->delete_ok = code == 200 || code == 404;
    if (r->delete_ok) {
        mesh_log_info("deregistered %s/%s from the control plane", r->ns, r->name);
    } else {
        mesh_log_warn("deregistration of %s/%s failed (%d): its lease ends in %u s at most",
                      r->ns, r->name, code, r->ttl_s);
    }
    if (code == 200) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        json_t *o = json_loadb((const char *)evbuffer_pullup(b, (ev_ssize_t)n), n, 0, NULL);
        json_t *rev = json_object_get(o, "revision");
        if (json_is_integer(rev))
            r->leave_rev = json_integer_value(rev);
        json_decref(o);
    }
    int64_t left = budget_left(r);
    if (left <= 0) {
        finish_leave(r);
        return;
    }
    arm_ms(r->leave_timer, left); /* the rest of the budget */
    if (r->delete_ok)
        send_poll(r);
}

void mesh_register_leave(struct mesh_register *r, unsigned budget_ms, void (*done)(void *arg),
                         void *arg)
{
    if (!r || r->leaving)
        return;
    r->leaving = true;
    r->done = done;
    r->done_arg = arg;
    r->leave_start_ms = mono_ms();
    r->budget_ms = budget_ms;
    r->leave_rev = -1;
    evtimer_del(r->timer);
    r->leave_timer = evtimer_new(r->base, on_leave_timeout, r);
    r->poll_timer = evtimer_new(r->base, on_poll_timer, r);
    /* the DELETE itself may take longer than a short budget: it must reach the control plane */
    arm_ms(r->leave_timer, budget_ms > MESH_REGISTER_LEAVE_TIMEOUT_MS
                               ? budget_ms : MESH_REGISTER_LEAVE_TIMEOUT_MS);
    char path[600];
    snprintf(path, sizeof(path), "/v1/register/%s/%s", r->ns, r->name);
    struct evhttp_request *req = new_request(r, on_delete);
    if (evhttp_make_request(r->conn, req, EVHTTP_REQ_DELETE, path) != 0) {
        /* answered by the timeout: never call <done> from inside this call */
        mesh_log_warn("cannot send the deregistration of %s/%s", r->ns, r->name);
    }
}

bool mesh_register_confirmed(const struct mesh_register *r)
{
    return r && r->confirmed;
}

void mesh_register_free(struct mesh_register *r)
{
    if (!r)
        return;
    r->freeing = true;
    if (r->conn)
        evhttp_connection_free(r->conn);
    if (r->timer)
        event_free(r->timer);
    if (r->leave_timer)
        event_free(r->leave_timer);
    if (r->poll_timer)
        event_free(r->poll_timer);
    free(r->body);
    free(r->ns);
    free(r->name);
    if (r->auth) {
        explicit_bzero(r->auth, strlen(r->auth));
        free(r->auth);
    }
    free(r);
}
