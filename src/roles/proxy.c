/*
 * The proxy roles (sidecar and gateway): both run the same engine from a
 * snapshot. What differs between them comes in the snapshot (listeners,
 * routes), not in code paths here.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/addr.h"
#include "core/admin.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "roles/role.h"

struct proxy_role {
    const struct mesh_opts *o;
    struct event_base *base;
    struct mesh_runtime *rt;
    struct mesh_admin *admin;
    struct event *sig_term, *sig_int, *sig_hup;
};

static void start_drain(void *arg)
{
    struct proxy_role *p = arg;
    if (mesh_runtime_draining(p->rt))
        return;
    mesh_log_info("draining: no new connections, finishing requests in flight");
    /* the main loop keeps serving admin (/ready says DRAINING) until the workers finish */
    mesh_runtime_drain(p->rt);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    start_drain(arg);
}

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

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct proxy_role *p = arg;
    struct mesh_err err;
    mesh_err_init(&err, p->o->snapshot ? p->o->snapshot : p->o->config_dir);
    struct mesh_snapshot *s = load_config(p->o, &err);
    if (s && mesh_runtime_swap(p->rt, s, &err) != MESH_OK) {
        mesh_snapshot_unref(s);
        s = NULL;
    }
    if (!s) {
        char buf[4096];
        mesh_err_format(&err, buf, sizeof(buf));
        mesh_log_error("reload refused, the previous snapshot keeps serving:\n%s", buf);
        return;
    }
    struct mesh_snapshot *cur = mesh_runtime_snapshot(p->rt);
    mesh_log_info("reloaded snapshot version %s", cur->version);
    mesh_snapshot_unref(cur);
}

static void write_ready(struct proxy_role *p, struct mesh_snapshot *snap)
{
    char line[2048];
    int off = snprintf(line, sizeof(line), "ready admin=%u",
                       p->admin ? mesh_admin_port(p->admin) : 0);
    for (size_t i = 0; i < snap->n_listeners && off < (int)sizeof(line) - 80; i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s=%u", snap->listeners[i].name,
                        mesh_runtime_listener_port(p->rt, i));
    off += snprintf(line + off, sizeof(line) - (size_t)off, "\n");
    ssize_t w = write(p->o->ready_fd, line, (size_t)off);
    (void)w;
    close(p->o->ready_fd);
}

int mesh_role_proxy_run(const struct mesh_opts *o)
{
    if (!o->snapshot == !o->config_dir) {
        fprintf(stderr, "meshd: --role=%s needs one of --snapshot FILE or --config-dir DIR (the "
                        "control plane push comes in a later release)\n", o->role);
        return 2;
    }
    struct mesh_err err;
    mesh_err_init(&err, o->snapshot ? o->snapshot : o->config_dir);
    struct mesh_snapshot *snap = load_config(o, &err);
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
    struct sockaddr_storage admin_sa;
    socklen_t admin_len = 0;
    if (o->admin) {
        if (mesh_addr_parse(o->admin, &admin_sa, &admin_len)) {
            fprintf(stderr, "meshd: --admin %s: expected ADDR:PORT with a numeric address\n",
                    o->admin);
            mesh_snapshot_unref(snap);
            return 2;
        }
    } else if (snap->admin_address) {
        admin_sa = snap->admin_sa;
        admin_len = snap->admin_salen;
    }
    signal(SIGPIPE, SIG_IGN);
    /* before any event base exists: workers wake the main loop across threads */
    evthread_use_pthreads();
    struct proxy_role p = {.o = o};
    p.base = event_base_new();
    unsigned n = o->concurrency ? o->concurrency : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct mesh_snapshot *keep = mesh_snapshot_ref(snap);
    p.rt = mesh_runtime_new(p.base, snap, n, &err);
    int rc = 1;
    if (!p.rt) {
        mesh_err_print(&err, stderr);
        mesh_snapshot_unref(snap);
        goto out_snap;
    }
    if (admin_len) {
        p.admin = mesh_admin_new(p.base, p.rt, (struct sockaddr *)&admin_sa, admin_len,
                                 start_drain, &p, &err);
        if (!p.admin) {
            mesh_err_print(&err, stderr);
            goto out_rt;
        }
    }
    p.sig_term = evsignal_new(p.base, SIGTERM, on_term, &p);
    p.sig_int = evsignal_new(p.base, SIGINT, on_term, &p);
    p.sig_hup = evsignal_new(p.base, SIGHUP, on_hup, &p);
    evsignal_add(p.sig_term, NULL);
    evsignal_add(p.sig_int, NULL);
    evsignal_add(p.sig_hup, NULL);
    mesh_runtime_set_access_log(p.rt, o->access_log);
    if (mesh_runtime_start(p.rt) != MESH_OK)
        goto out_sig;
    for (size_t i = 0; i < keep->n_listeners; i++)
        mesh_log_info("listener %s on %s:%u", keep->listeners[i].name, keep->listeners[i].address,
                      mesh_runtime_listener_port(p.rt, i));
    if (o->ready_fd >= 0)
        write_ready(&p, keep);
    mesh_log_info("meshd %s ready: %u workers, snapshot %s", o->role, n, keep->version);
    event_base_dispatch(p.base);
    rc = 0;
out_sig:
    if (!mesh_runtime_draining(p.rt))
        mesh_runtime_drain(p.rt);
    event_free(p.sig_term);
    event_free(p.sig_int);
    event_free(p.sig_hup);
    mesh_admin_free(p.admin);
out_rt:
    if (!mesh_runtime_draining(p.rt))
        mesh_runtime_drain(p.rt);
    mesh_runtime_free(p.rt);
    mesh_log_info("meshd %s stopped", o->role);
out_snap:
    mesh_snapshot_unref(keep);
    event_base_free(p.base);
    return rc;
}
