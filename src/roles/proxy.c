/*
 * The proxy roles (sidecar and gateway): both run the same engine from a
 * snapshot. What differs between them comes in the snapshot (listeners,
 * routes), not in code paths here.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "core/addr.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "roles/role.h"
#include "roles/serve.h"

struct proxy_role {
    const struct mesh_opts *o;
    struct mesh_runtime *rt;
};

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

static void on_hup(void *arg)
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
    struct event_base *base = mesh_serve_base();
    unsigned n = o->concurrency ? o->concurrency : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    struct mesh_snapshot *keep = mesh_snapshot_ref(snap);
    struct proxy_role p = {.o = o};
    p.rt = mesh_runtime_new(base, snap, n, &err);
    int rc = 1;
    if (!p.rt) {
        mesh_err_print(&err, stderr);
        mesh_snapshot_unref(snap);
    } else {
        struct mesh_serve sv = {.base = base, .rt = p.rt, .snap = keep,
                                .admin_sa = admin_len ? (struct sockaddr *)&admin_sa : NULL,
                                .admin_len = admin_len, .ready_fd = o->ready_fd,
                                .access_log = o->access_log, .what = o->role,
                                .on_hup = on_hup, .hup_arg = &p};
        mesh_log_info("meshd %s: %u workers", o->role, n);
        rc = mesh_serve_run(&sv);
    }
    mesh_snapshot_unref(keep);
    event_base_free(base);
    return rc;
}
