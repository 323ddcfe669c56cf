/*
 * The admin endpoint (admin.c) and the runtime's snapshot swap (worker.c) on a real
 * runtime, not started: its listener is bound, no worker thread runs. The admin listener
 * serves on this thread's event base; a client socket asks it over real HTTP.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>
#include "core/admin.h"
#include "core/log.h"
#include "core/runtime.h"
#include "../leakcheck.h"

struct fix {
    struct event_base *base;
    struct mesh_runtime *rt;
    struct mesh_admin *admin;
    unsigned quits;      /* /quitquitquit callbacks */
    uint16_t port;       /* the runtime's listener */
};

static void on_quit(void *arg)
{
    struct fix *f = arg;
    f->quits++;
}

/* A snapshot with version <version> and one listener on <port> (0: any). */
static struct mesh_snapshot *snap_with(const char *version, unsigned port)
{
    char json[768];
    int n = snprintf(json, sizeof(json),
                     "{\"version\":\"%s\",\"listeners\":[{\"name\":\"l\",\"address\":\"127.0.0.1\","
                     "\"port\":%u,\"route_config\":\"rc\"}],\"route_configs\":[{\"name\":\"rc\","
                     "\"virtual_hosts\":[{\"name\":\"v\",\"domains\":[\"*\"],\"routes\":[{\"match\":"
                     "{\"prefix\":\"/\"},\"route\":{\"cluster\":\"web\"}}]}]}],\"clusters\":[{\"name\":"
                     "\"web\",\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":9}]}]}",
                     version, port);
    struct mesh_err err;
    mesh_err_init(&err, "test");
    struct mesh_snapshot *s = mesh_snapshot_parse(json, (size_t)n, &err);
    cr_assert_not_null(s);
    return s;
}

static void fix_start(struct fix *f)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(evthread_use_pthreads(), 0);
    f->base = event_base_new();
    struct mesh_err err;
    mesh_err_init(&err, "test");
    f->rt = mesh_runtime_new(f->base, snap_with("v1", 0), 1, &err);
    cr_assert_not_null(f->rt);
    f->port = mesh_runtime_listener_port(f->rt, 0);
    cr_assert_neq(f->port, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->admin = mesh_admin_new(f->base, f->rt, (struct sockaddr *)&sa, sizeof(sa), on_quit, f, &err);
    cr_assert_not_null(f->admin);
    cr_assert_neq(mesh_admin_port(f->admin), 0);
}

static void fix_stop(struct fix *f)
{
    mesh_admin_free(f->admin);
    mesh_runtime_free(f->rt);
    event_base_free(f->base);
    libevent_global_shutdown();
}

/*
 * Sends "<method> <target>" (Connection: close) to the admin port and turns the event
 * base until the answer is complete (the server closes), at most 2 s. Returns the status;
 * the body (NUL-terminated) in <body>.
 */
static int ask(struct fix *f, const char *method, const char *target, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons(mesh_admin_port(f->admin))};
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                     method, target);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    static char resp[65536];
    size_t have = 0;
    for (int i = 0; i < 400; i++) {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5) <= 0)
            continue;
        ssize_t k = read(fd, resp + have, sizeof(resp) - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    close(fd);
    resp[have] = '\0';
    int status = 0;
    cr_assert_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1, "an HTTP answer: \"%s\"", resp);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

LEAK_TEST(admin, refuses_an_address_off_loopback)
{
    cr_assert_eq(evthread_use_pthreads(), 0);
    struct event_base *base = event_base_new();
    struct mesh_err err;
    mesh_err_init(&err, "test");
    struct mesh_runtime *rt = mesh_runtime_new(base, snap_with("v1", 0), 1, &err);
    cr_assert_not_null(rt);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    cr_expect_null(mesh_admin_new(base, rt, (struct sockaddr *)&any, sizeof(any), on_quit, NULL,
                                  &err));
    char msg[512];
    mesh_err_format(&err, msg, sizeof(msg));
    cr_expect(strstr(msg, "admin.address") && strstr(msg, "loopback"), "%s", msg);
    /* an IPv4-mapped address is not loopback to the check: only 127/8 and ::1 are */
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    cr_expect_null(mesh_admin_new(base, rt, (struct sockaddr *)&mapped, sizeof(mapped), on_quit,
                                  NULL, &err));
    mesh_runtime_free(rt);
    event_base_free(base);
    libevent_global_shutdown();
}

LEAK_TEST(admin, ready_stats_and_prometheus)
{
    struct fix f;
    fix_start(&f);
    char body[65536];
    cr_expect_eq(ask(&f, "GET", "/ready", body, sizeof(body)), 200);
    cr_expect_str_eq(body, "LIVE\n");
    cr_expect_eq(ask(&f, "GET", "/stats", body, sizeof(body)), 200);
    cr_expect(strstr(body, "downstream_rq_total: 0\n"), "%s", body);
    cr_expect(strstr(body, "downstream_cx_active: 0\n"), "%s", body);
    cr_expect_eq(ask(&f, "GET", "/stats/prometheus", body, sizeof(body)), 200);
    cr_expect(strstr(body, "# TYPE meshd_downstream_rq_total counter\nmeshd_downstream_rq_total 0\n"),
              "%s", body);
    cr_expect(strstr(body, "# TYPE meshd_downstream_cx_active gauge\nmeshd_downstream_cx_active 0\n"),
              "a gauge has no _total: %s", body);
    /* draining: /ready says so (a load balancer stops sending) */
    mesh_runtime_drain(f.rt);
    cr_expect_eq(ask(&f, "GET", "/ready", body, sizeof(body)), 503);
    cr_expect_str_eq(body, "DRAINING\n");
    fix_stop(&f);
}

LEAK_TEST(admin, config_dump_and_clusters_follow_the_swap)
{
    struct fix f;
    fix_start(&f);
    char body[65536];
    cr_expect_eq(ask(&f, "GET", "/config_dump", body, sizeof(body)), 200);
    cr_expect(strstr(body, "\"version\": \"v1\"") || strstr(body, "\"version\":\"v1\""), "%s", body);
    cr_expect_eq(ask(&f, "GET", "/clusters", body, sizeof(body)), 200);
    cr_expect(strstr(body, "web::protocol::http1\n"), "%s", body);
    cr_expect(strstr(body, "web::endpoints::1\n"), "%s", body);
    cr_expect(strstr(body, "web::127.0.0.1:9::health_flags::healthy\n"), "%s", body);

    /* same listeners (as configured: port 0 stays 0 across a SIGHUP): swapped, and what
     * the admin shows is the new snapshot */
    struct mesh_err err;
    mesh_err_init(&err, "test");
    cr_assert_eq(mesh_runtime_swap(f.rt, snap_with("v2", 0), &err), MESH_OK);
    cr_expect_eq(ask(&f, "GET", "/config_dump", body, sizeof(body)), 200);
    cr_expect(strstr(body, "v2") && !strstr(body, "\"v1\""), "%s", body);

    /* another port: refused with the reason, the caller keeps its reference, and the
     * current snapshot stays */
    struct mesh_snapshot *moved = snap_with("v3", f.port);
    cr_expect_eq(mesh_runtime_swap(f.rt, moved, &err), MESH_EINVAL);
    char msg[512];
    mesh_err_format(&err, msg, sizeof(msg));
    cr_expect(strstr(msg, "listeners") && strstr(msg, "restart"), "%s", msg);
    mesh_snapshot_unref(moved);
    struct mesh_snapshot *cur = mesh_runtime_snapshot(f.rt);
    cr_expect_str_eq(cur->version, "v2");
    mesh_snapshot_unref(cur);
    fix_stop(&f);
}

LEAK_TEST(admin, logging_and_quit_need_post)
{
    struct fix f;
    fix_start(&f);
    int before = mesh_log_get_level();
    char body[4096];
    cr_expect_eq(ask(&f, "GET", "/logging", body, sizeof(body)), 200);
    cr_expect(strncmp(body, "level: ", 7) == 0, "%s", body);
    cr_expect_eq(ask(&f, "GET", "/logging?level=debug", body, sizeof(body)), 405,
                 "a change by GET is refused (a crawler or a browser prefetch would make it)");
    cr_expect_eq(mesh_log_get_level(), before);
    cr_expect_eq(ask(&f, "POST", "/logging?level=debug", body, sizeof(body)), 200);
    cr_expect_str_eq(body, "level: debug\n");
    cr_expect_eq(mesh_log_get_level(), MESH_LOG_DEBUG);
    cr_expect_eq(ask(&f, "POST", "/logging?level=loud", body, sizeof(body)), 400);
    cr_expect(strstr(body, "trace, debug, info, warn, error, off"), "%s", body);
    cr_expect_eq(mesh_log_get_level(), MESH_LOG_DEBUG, "a bad level changes nothing");
    mesh_log_set_level(before);

    cr_expect_eq(ask(&f, "GET", "/quitquitquit", body, sizeof(body)), 405);
    cr_expect_eq(f.quits, 0u);
    cr_expect_eq(ask(&f, "POST", "/quitquitquit", body, sizeof(body)), 200);
    cr_expect_eq(f.quits, 1u, "POST starts the shutdown");

    cr_expect_eq(ask(&f, "GET", "/nope", body, sizeof(body)), 404);
    cr_expect(strstr(body, "/ready") && strstr(body, "/quitquitquit"), "the 404 lists them: %s", body);
    /* a method no endpoint implements: libevent's 501 (RFC 9110 15.6.2) */
    cr_expect_eq(ask(&f, "DELETE", "/ready", body, sizeof(body)), 501, "only GET, POST and HEAD");
    fix_stop(&f);
}
