/*
 * The proxy roles (sidecar and gateway): both run the same engine from a
 * snapshot. What differs between them comes in the snapshot (listeners,
 * routes), not in code paths here.
 *
 * The snapshot comes from a file (--snapshot), from Istio YAML compiled here
 * (--config-dir), or from the control plane's push (--control, docs/control.md
 * "Push"). With --control the process starts with no runtime at all: the main
 * loop runs the push client and the health listener until the first snapshot
 * arrives, then builds the runtime from it (its listeners are bound then), and
 * every later snapshot is swapped in the way SIGHUP swaps a file's.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "core/addr.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "core/snapshot_delta.h"
#include "roles/push_client.h"
#include "roles/token.h"
#include "roles/role.h"
#include "roles/serve.h"
#include "roles/sidecar_dns.h"
#include "roles/sidecar_register.h"

#define DEFAULT_HEALTH "127.0.0.1:15021"
#define DEFAULT_ADMIN "127.0.0.1:15000"
#define APP_POLL_MS 250 /* kill(pid, 0) when pidfd_open is not available */

struct proxy_role {
    const struct mesh_opts *o;
    struct event_base *base;
    struct mesh_runtime *rt;     /* NULL until the first snapshot (--control) */
    struct mesh_serve sv;        /* valid once rt is */
    struct mesh_snapshot *keep;  /* the first snapshot: names the listeners in the ready line */
    unsigned n_workers;
    struct sockaddr_storage admin_sa;
    socklen_t admin_len;
    bool admin_from_flag;
    bool stop;                   /* asked to stop before the first snapshot */
    struct evhttp *health;
    uint16_t health_port;
    char ready_extra[32];
    int app_fd;                  /* pidfd of --exit-on-app-exit, or -1 */
    struct event *app_ev;
    struct mesh_push_client *push;
    struct mesh_register *reg;   /* --register: the workload's lease (sidecar_register.h) */
    struct mesh_dns *dns;        /* the DNS proxy (sidecar_dns.c), or NULL */
    struct event *flatten;       /* after deltas: load the snapshot whole again (push_apply_delta) */
};

/* Quiet time after the last delta before a derived snapshot is loaded whole again. */
#define FLATTEN_AFTER_MS 5000

static struct mesh_snapshot *load_config(const struct mesh_opts *o, struct mesh_err *err)
{
    if (o->config_dir) {
        char *text = mesh_config_dir_compile(o, err);
        if (!text)
            return NULL;
        struct mesh_snapshot *snap = mesh_snapshot_parse(text, strlen(text), err);
        free(text);
        return snap;
    }
    mesh_err_init(err, o->snapshot);
    return mesh_snapshot_load_file(o->snapshot, err);
}

/*
 * The first snapshot is kept only to name the listeners in the ready line (serve.c); once
 * another serves, keeping it would hold a whole snapshot for the life of the process.
 */
static void drop_keep(struct proxy_role *p)
{
    mesh_snapshot_unref(p->keep);
    p->keep = NULL;
    p->sv.snap = NULL;
}

/* Serves <s> from now on (takes it, also on failure): MESH_OK, or why not in <err>. */
static int swap_in(struct proxy_role *p, struct mesh_snapshot *s, struct mesh_err *err)
{
    if (!s)
        return MESH_EINVAL;
    if (mesh_runtime_swap(p->rt, s, err) != MESH_OK) {
        mesh_snapshot_unref(s);
        return MESH_EINVAL;
    }
    drop_keep(p);
    return MESH_OK;
}

/* <err> on one line, for a NACK: the trailing newline and spaces go. */
static void refusal(const struct mesh_err *err, char *why, size_t size)
{
    mesh_err_format(err, why, size);
    size_t n = strlen(why);
    while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
        why[--n] = '\0';
}

static void on_hup(void *arg)
{
    struct proxy_role *p = arg;
    if (p->o->control) {
        mesh_log_info("SIGHUP ignored: snapshots come from the control plane (--control)");
        return;
    }
    struct mesh_err err;
    mesh_err_init(&err, p->o->snapshot ? p->o->snapshot : p->o->config_dir);
    if (swap_in(p, load_config(p->o, &err), &err) != MESH_OK) {
        char buf[4096];
        mesh_err_format(&err, buf, sizeof(buf));
        mesh_log_error("reload refused, the previous snapshot keeps serving:\n%s", buf);
        return;
    }
    struct mesh_snapshot *cur = mesh_runtime_snapshot(p->rt);
    mesh_log_info("reloaded snapshot version %s", cur->version);
    mesh_snapshot_unref(cur);
}

/* Builds the runtime for <snap> (takes the caller's reference, also on failure). */
static void serve_leave_hooks(struct proxy_role *p);

static int start_runtime(struct proxy_role *p, struct mesh_snapshot *snap, struct mesh_err *err)
{
    if (!p->admin_from_flag && snap->admin_address) {
        p->admin_sa = snap->admin_sa;
        p->admin_len = snap->admin_salen;
    }
    struct mesh_snapshot *keep = mesh_snapshot_ref(snap);
    p->rt = mesh_runtime_new(p->base, snap, p->n_workers, err);
    if (!p->rt) {
        mesh_snapshot_unref(snap);
        mesh_snapshot_unref(keep);
        return -1;
    }
    p->keep = keep;
    p->sv = (struct mesh_serve){.base = p->base, .rt = p->rt, .snap = keep,
                                .admin_sa = p->admin_len ? (struct sockaddr *)&p->admin_sa : NULL,
                                .admin_len = p->admin_len, .ready_fd = p->o->ready_fd,
                                .access_log = p->o->access_log, .what = p->o->role,
                                .io_mode = p->o->io_mode, .poll_spins = p->o->poll_spins,
                                .on_hup = on_hup, .hup_arg = p,
                                .drain_grace_ms = p->o->drain_grace_ms > 0
                                                      ? (unsigned)p->o->drain_grace_ms : 0,
                                .ready_extra = p->health ? p->ready_extra : NULL};
    if (p->reg)
        serve_leave_hooks(p);
    return 0;
}

/* ---- the push (--control) ---- */

static int push_apply(void *arg, const char *json, size_t len, const char *version, char *why,
                      size_t why_size)
{
    struct proxy_role *p = arg;
    if (p->rt) {
        /* after a reconnect the control plane resends what we serve: nothing to swap */
        struct mesh_snapshot *cur = mesh_runtime_snapshot(p->rt);
        bool same = strcmp(cur->version, version) == 0;
        mesh_snapshot_unref(cur);
        if (same)
            return 0;
    }
    struct mesh_err err;
    mesh_err_init(&err, "push");
    struct mesh_snapshot *s = mesh_snapshot_parse(json, len, &err);
    int rc = s ? 0 : -1;
    if (s && p->rt) {
        rc = swap_in(p, s, &err) == MESH_OK ? 0 : -1;
    } else if (s) {
        rc = start_runtime(p, s, &err);
        if (rc == 0)
            event_base_loopbreak(p->base); /* the main function starts serving */
    }
    if (rc != 0) {
        refusal(&err, why, why_size);
        mesh_log_error("snapshot version %s refused%s: %s", version,
                       p->rt ? ", the previous one keeps serving" : "", why);
        return -1;
    }
    mesh_log_info("applied snapshot version %s from the control plane", version);
    return 0;
}

/*
 * A derived snapshot (snapshot_delta.h) keeps its parents, each with a clusters array; once
 * the deltas stop for a while it is loaded whole again (same version, same content), off
 * the path of any change, and the chain goes.
 */
static void on_flatten(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_role *p = arg;
    struct mesh_snapshot *cur = mesh_runtime_snapshot(p->rt);
    if (cur->depth > 0) {
        struct mesh_err err;
        if (swap_in(p, mesh_snapshot_flatten(cur, &err), &err) == MESH_OK)
            mesh_log_debug("snapshot version %s loaded whole after %u endpoint updates",
                           cur->version, cur->depth);
        else
            mesh_err_print(&err, stderr); /* keeps serving the derived one */
    }
    mesh_snapshot_unref(cur);
}

static int push_apply_delta(void *arg, const char *json, size_t len, const char *base,
                            const char *version, char *why, size_t why_size)
{
    struct proxy_role *p = arg;
    if (!p->rt)
        return 1;
    struct mesh_snapshot *cur = mesh_runtime_snapshot(p->rt);
    if (strcmp(cur->version, base) != 0) {
        mesh_snapshot_unref(cur);
        return 1;
    }
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_apply_delta(cur, json, len, version, &err);
    mesh_snapshot_unref(cur);
    if (swap_in(p, s, &err) != MESH_OK) {
        refusal(&err, why, why_size);
        mesh_log_error("endpoint update to version %s refused, version %s keeps serving: %s",
                       version, base, why);
        return -1;
    }
    if (!p->flatten)
        p->flatten = evtimer_new(p->base, on_flatten, p);
    if (p->flatten) {
        struct timeval tv = {FLATTEN_AFTER_MS / 1000, (FLATTEN_AFTER_MS % 1000) * 1000};
        evtimer_add(p->flatten, &tv); /* pushed back by each delta */
    }
    mesh_log_info("applied snapshot version %s from the control plane (endpoints only)",
                  version);
    return 0;
}

static int start_push(struct proxy_role *p)
{
    const struct mesh_opts *o = p->o;
    char host[64];
    uint16_t port;
    if (mesh_addr_split(o->control, host, sizeof(host), &port) != 0 || port == 0) {
        fprintf(stderr, "meshd: --control %s: expected ADDR:PORT with a numeric address\n",
                o->control);
        return 2;
    }
    const char *slash = o->node ? strchr(o->node, '/') : NULL;
    if (!slash || slash == o->node || !slash[1]) {
        fprintf(stderr, "meshd: --control needs --node NAMESPACE/NAME (the proxy's identity)\n");
        return 2;
    }
    char *token = NULL;
    if (o->control_token && !(token = mesh_token_read(o->control_token))) {
        fprintf(stderr, "meshd: --control-token %s: %s\n", o->control_token,
                errno == ENODATA ? "the file is empty" : strerror(errno));
        return 1;
    }
    struct mesh_push_client_cfg cfg = {.base = p->base, .host = host, .port = port,
                                       .node = o->node, .labels = o->labels,
                                       .role = strcmp(o->role, "gateway") == 0 ? "gateway"
                                                                               : "sidecar",
                                       .listen = o->listen, .token = token,
                                       .apply = push_apply, .apply_delta = push_apply_delta,
                                       .arg = p};
    p->push = mesh_push_client_new(&cfg);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return 0;
}

/* ---- readiness (/healthz/ready) and --exit-on-app-exit ---- */

static bool ready(const struct proxy_role *p)
{
    return p->rt && !mesh_serve_stopping(&p->sv); /* 503 from the first step of a stop */
}

static void on_health(struct evhttp_request *req, void *arg)
{
    struct proxy_role *p = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *b = evbuffer_new();
    int code = 404;
    if (uri && (strcmp(uri, "/healthz/ready") == 0 || strncmp(uri, "/healthz/ready?", 15) == 0)) {
        code = ready(p) ? 200 : 503;
        evbuffer_add_printf(b, "%s\n", code == 200 ? "ready"
                                       : p->rt     ? "draining"
                                                   : "not ready: waiting for the first snapshot");
    } else {
        evbuffer_add_printf(b, "health endpoint: /healthz/ready\n");
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, code, code == 200 ? "OK" : code == 503 ? "Service Unavailable"
                                                                   : "Not Found", b);
    evbuffer_free(b);
}

static int start_health(struct proxy_role *p)
{
    const char *addr = p->o->health ? p->o->health : DEFAULT_HEALTH;
    char host[64];
    uint16_t port;
    if (mesh_addr_split(addr, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "meshd: --health %s: expected ADDR:PORT with a numeric address\n", addr);
        return 2;
    }
    p->health = evhttp_new(p->base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(p->health, host, port);
    if (!bs) {
        fprintf(stderr, "meshd: --health %s: cannot listen: %s\n", addr, strerror(errno));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl);
    p->health_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                   : ((struct sockaddr_in6 *)&ss)->sin6_port);
    evhttp_set_gencb(p->health, on_health, p);
    snprintf(p->ready_extra, sizeof(p->ready_extra), "health=%u", p->health_port);
    mesh_log_info("health on %s:%u (/healthz/ready)", host, p->health_port);
    return 0;
}

static void app_exited(struct proxy_role *p)
{
    mesh_log_info("the application (pid %d) exited: %s", p->o->exit_on_app_exit,
                  p->rt ? "draining" : "stopping");
    if (p->app_ev)
        event_del(p->app_ev);
    if (p->rt) {
        mesh_serve_drain(&p->sv);
    } else {
        p->stop = true;
        event_base_loopbreak(p->base);
    }
}

static void on_app(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_role *p = arg;
    if (p->app_fd < 0 && kill(p->o->exit_on_app_exit, 0) == 0)
        return; /* polling: still there */
    if (p->app_fd < 0 && errno == EPERM)
        return; /* alive, someone else's */
    app_exited(p);
}

static int watch_app(struct proxy_role *p)
{
    pid_t pid = p->o->exit_on_app_exit;
    p->app_fd = -1;
#ifdef SYS_pidfd_open
    p->app_fd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    if (p->app_fd < 0 && errno == ESRCH) {
        fprintf(stderr, "meshd: --exit-on-app-exit %d: no such process\n", (int)pid);
        return 1;
    }
    if (p->app_fd >= 0) {
        /* a pidfd turns readable when the process exits */
        p->app_ev = event_new(p->base, p->app_fd, EV_READ, on_app, p);
        event_add(p->app_ev, NULL);
    } else {
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            fprintf(stderr, "meshd: --exit-on-app-exit %d: no such process\n", (int)pid);
            return 1;
        }
        p->app_ev = event_new(p->base, -1, EV_PERSIST, on_app, p);
        struct timeval tv = {0, APP_POLL_MS * 1000};
        event_add(p->app_ev, &tv);
    }
    mesh_log_info("exits when process %d does", (int)pid);
    return 0;
}

/* ---- before the first snapshot (--control) ---- */

static void on_early_signal(evutil_socket_t sig, short what, void *arg)
{
    struct proxy_role *p = arg;
    if (sig == SIGHUP) {
        mesh_log_info("SIGHUP ignored: snapshots come from the control plane (--control)");
        return;
    }
    mesh_log_info("stopping before the first snapshot arrived");
    p->stop = true;
    event_base_loopbreak(p->base);
}

/* Runs the loop until the first snapshot is serving or a signal stops us. */
static void wait_first_snapshot(struct proxy_role *p)
{
    int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    struct event *ev[3];
    for (size_t i = 0; i < 3; i++) {
        ev[i] = evsignal_new(p->base, sigs[i], on_early_signal, p);
        evsignal_add(ev[i], NULL);
    }
    mesh_log_info("meshd %s: waiting for the first snapshot from %s", p->o->role, p->o->control);
    while (!p->rt && !p->stop)
        event_base_loop(p->base, EVLOOP_ONCE);
    for (size_t i = 0; i < 3; i++)
        event_free(ev[i]);
}

/* ---- self-registration (--register) ---- */

/* SIGTERM: deregister and serve on until every proxy has applied that, then drain. */
static void leave_done(void *arg)
{
    mesh_serve_left(arg);
}

static void leave_on_stop(struct mesh_serve *sv, void *arg)
{
    struct proxy_role *p = arg;
    mesh_register_leave(p->reg, sv->drain_grace_ms, leave_done, sv);
}

/* A registered sidecar deregisters, and waits for the others to know, before it drains. */
static void serve_leave_hooks(struct proxy_role *p)
{
    p->sv.on_leave = leave_on_stop;
    p->sv.leave_arg = p;
    if (p->o->drain_grace_ms < 0)
        p->sv.drain_grace_ms = MESH_REGISTER_DRAIN_GRACE_MS;
}

static int start_register(struct proxy_role *p)
{
    const struct mesh_opts *o = p->o;
    char ns[256] = "", *name = NULL;
    if (o->node && strlen(o->node) < sizeof(ns)) {
        snprintf(ns, sizeof(ns), "%s", o->node);
        name = strchr(ns, '/');
        if (name)
            *name++ = '\0';
    }
    char *token = o->control_token ? mesh_token_read(o->control_token) : NULL;
    struct mesh_register_opts ro = {
        .control = o->control, .token = token, .ns = name ? ns : NULL, .name = name,
        .service = o->register_service, .address = o->register_address,
        .ports = o->register_ports, .labels = o->labels, .locality = o->locality,
        .ttl_s = o->register_ttl};
    p->reg = mesh_register_new(p->base, &ro);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return p->reg ? 0 : 2;
}

/* ---- the role ---- */

static int check_flags(const struct mesh_opts *o)
{
    int sources = !!o->snapshot + !!o->config_dir + !!o->control;
    if (sources != 1) {
        fprintf(stderr, "meshd: --role=%s needs exactly one of --snapshot FILE, --config-dir DIR "
                        "or --control ADDR:PORT\n", o->role);
        return 2;
    }
    if (o->control && o->check_only) {
        fprintf(stderr, "meshd: --check validates a file or directory, not --control\n");
        return 2;
    }
    if (!o->control && o->control_token) {
        fprintf(stderr, "meshd: --control-token goes with --control\n");
        return 2;
    }
    return 0;
}

int mesh_role_proxy_run(const struct mesh_opts *o)
{
    int rc = check_flags(o);
    if (rc)
        return rc;
    struct proxy_role p = {.o = o, .app_fd = -1};
    struct mesh_snapshot *snap = NULL;
    struct mesh_err err;
    if (!o->control) {
        mesh_err_init(&err, o->snapshot ? o->snapshot : o->config_dir);
        snap = load_config(o, &err);
        if (!snap) {
            mesh_err_print(&err, stderr);
            return 1;
        }
        if (o->check_only) {
            printf("%s: snapshot %s is valid\n", o->snapshot ? o->snapshot : o->config_dir,
                   snap->version);
            mesh_snapshot_unref(snap);
            return 0;
        }
    }
    const char *admin = o->admin ? o->admin : o->control ? DEFAULT_ADMIN : NULL;
    if (admin) {
        if (mesh_addr_parse(admin, &p.admin_sa, &p.admin_len)) {
            fprintf(stderr, "meshd: --admin %s: expected ADDR:PORT with a numeric address\n",
                    admin);
            mesh_snapshot_unref(snap);
            return 2;
        }
        p.admin_from_flag = true;
    }
    p.base = mesh_serve_base();
    p.n_workers = o->concurrency ? o->concurrency : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    rc = 0;
    if (o->register_)
        rc = start_register(&p); /* flags checked now; nothing sent before the first snapshot */
    if (!rc && (o->health || o->control))
        rc = start_health(&p);
    if (!rc && o->exit_on_app_exit)
        rc = watch_app(&p);
    if (!rc)
        rc = mesh_sidecar_dns_start(&p.dns, p.base, o, &p.rt, snap) ? 1 : 0;
    if (!rc && snap) {
        mesh_err_init(&err, o->snapshot ? o->snapshot : o->config_dir);
        if (start_runtime(&p, snap, &err) != 0) {
            mesh_err_print(&err, stderr);
            rc = 1;
        }
        snap = NULL;
    }
    if (!rc && o->control)
        rc = start_push(&p);
    if (!rc && o->control)
        wait_first_snapshot(&p);
    if (!rc && p.rt && p.reg)
        mesh_register_begin(p.reg); /* once serving: no traffic before the first snapshot */
    if (!rc && p.rt) {
        if (!p.sv.snap) /* a second snapshot came in the same turn as the first */
            p.sv.snap = p.keep = mesh_runtime_snapshot(p.rt);
        mesh_log_info("meshd %s: %u workers", o->role, p.n_workers);
        rc = mesh_serve_run(&p.sv);
    }
    mesh_dns_stop(p.dns); /* before anything else: its lookups read p.rt, freed by now */
    mesh_snapshot_unref(snap);
    mesh_push_client_free(p.push);
    mesh_register_free(p.reg);
    if (p.health)
        evhttp_free(p.health);
    if (p.app_ev)
        event_free(p.app_ev);
    if (p.flatten)
        event_free(p.flatten);
    if (p.app_fd >= 0)
        close(p.app_fd);
    if (p.keep)
        mesh_snapshot_unref(p.keep);
    event_base_free(p.base);
    return rc;
}
