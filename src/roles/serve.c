#include "core/common.h"
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "core/admin.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "roles/serve.h"

struct event_base *mesh_serve_base(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* before any event base exists: workers wake the main loop across threads */
    evthread_use_pthreads();
    return event_base_new();
}

/* The last step of a stop: accepting stops, requests in flight finish. */
static void start_drain(struct mesh_serve *sv)
{
    if (mesh_runtime_draining(sv->rt))
        return;
    if (sv->grace_timer)
        evtimer_del(sv->grace_timer);
    mesh_log_info("draining: no new connections, finishing requests in flight");
    if (sv->on_drain)
        sv->on_drain(sv->drain_arg);
    /* the main loop keeps serving admin (/ready says DRAINING) until the workers finish */
    mesh_runtime_drain(sv->rt);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_drain(arg);
}

void mesh_serve_left(struct mesh_serve *sv)
{
    if (sv->left || !sv->rt)
        return;
    sv->left = true;
    start_drain(sv);
}

/* SIGTERM, SIGINT, /quitquitquit, mesh_serve_drain(). */
static void start_stop(void *arg)
{
    struct mesh_serve *sv = arg;
    if (mesh_runtime_draining(sv->rt))
        return;
    if (sv->stopping) {
        mesh_log_info("asked again to stop: draining now");
        start_drain(sv);
        return;
    }
    sv->stopping = true;
    if (sv->on_leave) {
        mesh_log_info("stopping: leaving the other proxies' load balancing first (readiness "
                      "is 503, still serving, at most %u ms)", sv->drain_grace_ms);
        sv->on_leave(sv, sv->leave_arg);
        return;
    }
    if (!sv->drain_grace_ms || !sv->grace_timer) {
        start_drain(sv);
        return;
    }
    /* nothing tells us when the endpoint has left (e.g. Kubernetes Endpoints): serve on */
    mesh_log_info("stopping: readiness is 503, serving %u ms more, then draining",
                  sv->drain_grace_ms);
    struct timeval tv = {sv->drain_grace_ms / 1000, (sv->drain_grace_ms % 1000) * 1000};
    evtimer_add(sv->grace_timer, &tv);
}

void mesh_serve_drain(struct mesh_serve *sv)
{
    start_stop(sv);
}

bool mesh_serve_stopping(const struct mesh_serve *sv)
{
    return sv->stopping || (sv->rt && mesh_runtime_draining(sv->rt));
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    start_stop(arg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct mesh_serve *sv = arg;
    sv->on_hup(sv->hup_arg);
}

static void write_ready(const struct mesh_serve *sv, const struct mesh_admin *admin)
{
    char line[2048];
    int off = snprintf(line, sizeof(line), "ready admin=%u", admin ? mesh_admin_port(admin) : 0);
    for (size_t i = 0; i < sv->snap->n_listeners && off < (int)sizeof(line) - 80; i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s=%u",
                        sv->snap->listeners[i].name, mesh_runtime_listener_port(sv->rt, i));
    if (sv->ready_extra && off < (int)sizeof(line) - 80)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s", sv->ready_extra);
    off += snprintf(line + off, sizeof(line) - (size_t)off, "\n");
    ssize_t w = write(sv->ready_fd, line, (size_t)off);
    (void)w;
    close(sv->ready_fd);
}

int mesh_serve_run(struct mesh_serve *sv)
{
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    struct mesh_admin *admin = NULL;
    struct event *sigs[3] = {NULL, NULL, NULL};
    int rc = 1;
    if (sv->admin_sa) {
        admin = mesh_admin_new(sv->base, sv->rt, sv->admin_sa, sv->admin_len, start_stop, sv,
                               &err);
        if (!admin) {
            mesh_err_print(&err, stderr);
            goto out;
        }
    }
    sv->grace_timer = evtimer_new(sv->base, on_grace, sv);
    sigs[0] = evsignal_new(sv->base, SIGTERM, on_term, sv);
    sigs[1] = evsignal_new(sv->base, SIGINT, on_term, sv);
    sigs[2] = evsignal_new(sv->base, SIGHUP, on_hup, sv);
    for (size_t i = 0; i < MESH_ARRAY_LEN(sigs); i++)
        evsignal_add(sigs[i], NULL);
    mesh_runtime_set_access_log(sv->rt, sv->access_log);
    mesh_runtime_set_io(sv->rt, (enum mesh_io_mode)sv->io_mode, sv->poll_spins);
    if (mesh_runtime_start(sv->rt) != MESH_OK)
        goto out;
    for (size_t i = 0; i < sv->snap->n_listeners; i++)
        mesh_log_info("listener %s on %s:%u", sv->snap->listeners[i].name,
                      sv->snap->listeners[i].address, mesh_runtime_listener_port(sv->rt, i));
    if (admin)
        mesh_log_info("admin on port %u", mesh_admin_port(admin));
    if (sv->ready_fd >= 0)
        write_ready(sv, admin);
    mesh_log_info("meshd %s ready: snapshot %s", sv->what, sv->snap->version);
    event_base_dispatch(sv->base);
    rc = 0;
out:
    if (!mesh_runtime_draining(sv->rt))
        mesh_runtime_drain(sv->rt);
    for (size_t i = 0; i < MESH_ARRAY_LEN(sigs); i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (sv->grace_timer)
        event_free(sv->grace_timer);
    sv->grace_timer = NULL;
    mesh_admin_free(admin);
    mesh_runtime_free(sv->rt); /* joins the workers */
    sv->rt = NULL;
    mesh_log_info("meshd %s stopped", sv->what);
    return rc;
}
