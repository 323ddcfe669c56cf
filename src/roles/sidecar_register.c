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
    struct event *leave_timer;     /* the deregistration's deadline */
    unsigned backoff_s;
    bool active, leaving, left, freeing;
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

struct mesh_register *mesh_register_start(struct event_base *base,
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
    send_post(r);
    return r;
}

bool mesh_register_active(const struct mesh_register *r)
{
    return r && r->active && !r->left;
}

/* ---- leaving ---- */

static void finish_leave(struct mesh_register *r)
{
    if (r->left)
        return;
    r->left = true;
    r->active = false;
    evtimer_del(r->leave_timer);
    if (r->done)
        r->done(r->done_arg);
}

static void on_delete(struct evhttp_request *req, void *arg)
{
    struct mesh_register *r = arg;
    if (r->freeing)
        return;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 200 || code == 404)
        mesh_log_info("deregistered %s/%s from the control plane", r->ns, r->name);
    else
        mesh_log_warn("deregistration of %s/%s failed (%d): its lease ends in %u s at most",
                      r->ns, r->name, code, r->ttl_s);
    finish_leave(r);
}

static void on_leave_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mesh_register *r = arg;
    mesh_log_warn("deregistration of %s/%s unanswered: going on (the lease ends in %u s)",
                  r->ns, r->name, r->ttl_s);
    finish_leave(r);
}

void mesh_register_leave(struct mesh_register *r, unsigned timeout_ms, void (*done)(void *arg),
                         void *arg)
{
    if (!r || r->leaving)
        return;
    r->leaving = true;
    r->done = done;
    r->done_arg = arg;
    evtimer_del(r->timer);
    r->leave_timer = evtimer_new(r->base, on_leave_timeout, r);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(r->leave_timer, &tv);
    char path[600];
    snprintf(path, sizeof(path), "/v1/register/%s/%s", r->ns, r->name);
    struct evhttp_request *req = new_request(r, on_delete);
    if (evhttp_make_request(r->conn, req, EVHTTP_REQ_DELETE, path) != 0) {
        /* answered by the timeout: never call <done> from inside this call */
        mesh_log_warn("cannot send the deregistration of %s/%s", r->ns, r->name);
    }
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
    free(r->body);
    free(r->ns);
    free(r->name);
    if (r->auth) {
        explicit_bzero(r->auth, strlen(r->auth));
        free(r->auth);
    }
    free(r);
}
