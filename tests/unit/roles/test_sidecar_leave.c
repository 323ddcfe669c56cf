/*
 * A stopping sidecar's leave (src/roles/sidecar_register.h, mesh_register_leave): it
 * deregisters, then polls GET /v1/proxies until the control plane's last push round is at
 * the deregistration's revision and no other proxy is STALE. Against a fake control plane
 * (evhttp on loopback, the same event base): confirmation, waiting on a round or a STALE
 * proxy, its own STALE entry ignored, a 404, an older control plane, no control plane, a
 * budget of 0.
 */
#include "core/common.h"
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <criterion/criterion.h>
#include "core/log.h"
#include "roles/sidecar_register.h"
#include "../leakcheck.h"

/* ---- the fake control plane ---- */

struct fake {
    int delete_code;          /* answer to the DELETE */
    int delete_rev;           /* "revision" in it; 0: none */
    int store_rev;            /* "revision" in /v1/proxies */
    int pushed_from_poll;     /* pushedRevision = store_rev from this poll on (1-based)... */
    int stale_until_poll;     /* ...and the other proxy is STALE until this poll */
    bool self_stale;          /* our own entry is STALE throughout */
    bool no_pushed;           /* an older control plane: no pushedRevision */
    int posts, deletes, polls;
};

static void reply(struct evhttp_request *req, int code, json_t *o)
{
    struct evbuffer *b = evbuffer_new();
    char *t = json_dumps(o, JSON_COMPACT);
    evbuffer_add(b, t, strlen(t));
    free(t);
    json_decref(o);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Not Found", b);
    evbuffer_free(b);
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_POST && strcmp(uri, "/v1/register") == 0) {
        f->posts++;
        reply(req, 200, json_pack("{s:s}", "op", "created"));
    } else if (m == EVHTTP_REQ_DELETE && strcmp(uri, "/v1/register/ns1/pod-1") == 0) {
        f->deletes++;
        json_t *o = json_pack("{s:s}", "op", "deleted");
        if (f->delete_rev)
            json_object_set_new(o, "revision", json_integer(f->delete_rev));
        reply(req, f->delete_code, o);
    } else if (m == EVHTTP_REQ_GET && strcmp(uri, "/v1/proxies") == 0) {
        f->polls++;
        bool pushed = f->polls >= f->pushed_from_poll;
        bool stale = f->polls < f->stale_until_poll;
        json_t *o = json_pack("{s:i, s:[{s:s, s:s}, {s:s, s:s}]}", "revision", f->store_rev,
                              "proxies", "node", "ns1/pod-1", "status",
                              f->self_stale ? "STALE" : "SYNCED", "node", "ns2/client",
                              "status", stale ? "STALE" : "SYNCED");
        if (!f->no_pushed)
            json_object_set_new(o, "pushedRevision",
                                json_integer(pushed ? f->store_rev : f->store_rev - 1));
        reply(req, 200, o);
    } else {
        reply(req, 404, json_object());
    }
}

struct run {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port;
    struct fake f;
    struct mesh_register *reg;
    bool done;
    int64_t started_ms, done_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_done(void *arg)
{
    struct run *r = arg;
    r->done = true;
    r->done_ms = now_ms();
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs the loop until <cond> holds or 10 s passed. */
static void loop_until(struct run *r, bool (*cond)(struct run *))
{
    struct event *dl = evtimer_new(r->base, on_deadline, r->base);
    struct timeval tv = {10, 0};
    evtimer_add(dl, &tv);
    while (!cond(r) && event_base_loop(r->base, EVLOOP_ONCE) == 0 && evtimer_pending(dl, NULL))
        ;
    event_free(dl);
}

static bool registered(struct run *r)
{
    return mesh_register_active(r->reg);
}

static bool left(struct run *r)
{
    return r->done;
}

/* A fake control plane (or none, <with_server> false: a port nobody listens on). */
static void start(struct run *r, bool with_server)
{
    mesh_log_set_level(MESH_LOG_ERROR);
    r->base = event_base_new();
    r->http = evhttp_new(r->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    r->port = ntohs(sin.sin_port);
    evhttp_set_gencb(r->http, serve, &r->f);
    char control[32];
    snprintf(control, sizeof(control), "127.0.0.1:%u", r->port);
    struct mesh_register_opts o = {.control = control, .token = "t", .ns = "ns1",
                                   .name = "pod-1", .service = "b", .address = "10.0.0.1",
                                   .ports = "http=8080"};
    r->reg = mesh_register_start(r->base, &o);
    cr_assert_not_null(r->reg);
    loop_until(r, registered);
    cr_assert(mesh_register_active(r->reg), "the fake control plane took the registration");
    if (!with_server) {
        evhttp_free(r->http); /* the port closes: nothing answers any more */
        r->http = NULL;
    }
}

static void leave(struct run *r, unsigned budget_ms)
{
    r->started_ms = now_ms();
    mesh_register_leave(r->reg, budget_ms, on_done, r);
    cr_assert_not(r->done, "never done from inside the call");
    loop_until(r, left);
    cr_assert(r->done, "the leave ended");
}

static void finish(struct run *r)
{
    mesh_register_free(r->reg);
    if (r->http)
        evhttp_free(r->http);
    event_base_free(r->base);
    mesh_log_set_level(MESH_LOG_INFO);
}

LEAK_TEST(leave, waits_for_the_round_and_the_stale_proxy)
{
    struct run r = {.f = {.delete_code = 200, .delete_rev = 7, .store_rev = 7,
                          .pushed_from_poll = 3, .stale_until_poll = 5}};
    start(&r, true);
    leave(&r, 5000);
    cr_assert_eq(r.f.deletes, 1);
    cr_assert_eq(r.f.polls, 5, "polled until the round ran and no proxy was STALE (%d polls)",
                 r.f.polls);
    cr_assert(mesh_register_confirmed(r.reg));
    cr_assert_not(mesh_register_active(r.reg));
    finish(&r);
}

LEAK_TEST(leave, its_own_stale_entry_does_not_count)
{
    struct run r = {.f = {.delete_code = 200, .delete_rev = 3, .store_rev = 3,
                          .pushed_from_poll = 1, .self_stale = true}};
    start(&r, true);
    leave(&r, 5000);
    cr_assert_eq(r.f.polls, 1);
    cr_assert(mesh_register_confirmed(r.reg));
    finish(&r);
}

LEAK_TEST(leave, a_404_waits_for_the_current_revision)
{
    /* no lease any more (expired): the revision comes from /v1/proxies */
    struct run r = {.f = {.delete_code = 404, .store_rev = 9, .pushed_from_poll = 2}};
    start(&r, true);
    leave(&r, 5000);
    cr_assert_eq(r.f.polls, 2);
    cr_assert(mesh_register_confirmed(r.reg));
    finish(&r);
}

LEAK_TEST(leave, an_older_control_plane_costs_the_budget)
{
    struct run r = {.f = {.delete_code = 200, .delete_rev = 4, .store_rev = 4,
                          .no_pushed = true}};
    start(&r, true);
    leave(&r, 300);
    cr_assert_eq(r.f.polls, 1, "no pushedRevision: it stops asking");
    cr_assert_not(mesh_register_confirmed(r.reg));
    cr_assert_geq(r.done_ms - r.started_ms, 290, "served on for the budget");
    finish(&r);
}

LEAK_TEST(leave, a_round_that_never_comes_costs_the_budget)
{
    struct run r = {.f = {.delete_code = 200, .delete_rev = 4, .store_rev = 4,
                          .pushed_from_poll = 1000000}};
    start(&r, true);
    leave(&r, 300);
    cr_assert_geq(r.f.polls, 2, "it kept polling");
    cr_assert_not(mesh_register_confirmed(r.reg));
    cr_assert_geq(r.done_ms - r.started_ms, 290);
    finish(&r);
}

LEAK_TEST(leave, no_control_plane_costs_the_budget)
{
    struct run r = {.f = {.delete_code = 200}};
    start(&r, false);
    leave(&r, 300);
    cr_assert_not(mesh_register_confirmed(r.reg));
    cr_assert_geq(r.done_ms - r.started_ms, 290);
    finish(&r);
}

LEAK_TEST(leave, a_budget_of_zero_only_waits_for_the_delete)
{
    struct run r = {.f = {.delete_code = 200, .delete_rev = 4, .store_rev = 4,
                          .pushed_from_poll = 1000000}};
    start(&r, true);
    leave(&r, 0);
    cr_assert_eq(r.f.deletes, 1, "the DELETE was answered first");
    cr_assert_eq(r.f.polls, 0);
    cr_assert_not(mesh_register_confirmed(r.reg));
    finish(&r);
}
