/*
 * Glue between the sidecar role and the DNS proxy (src/core/dns.c): flags,
 * /etc/resolv.conf, and the lookup in the snapshot's dns table. The proxy
 * runs on the main loop, where snapshots are swapped too, so the entry it
 * gets stays valid while it writes the answer.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/addr.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "core/status.h"
#include "roles/role.h"
#include "roles/sidecar_dns.h"

#define RESOLV_CONF "/etc/resolv.conf"

static bool lookup(void *arg, const char *name, size_t len, struct mesh_dns_addrs *out)
{
    struct mesh_runtime *const *rt = arg;
    if (!*rt)
        return false;
    struct mesh_snapshot *s = mesh_runtime_snapshot(*rt);
    const struct mesh_dns_entry *e = mesh_dns_lookup(&s->dns, name, len);
    if (e) {
        out->v4 = e->v4;
        out->n_v4 = e->n_v4;
        out->v6 = e->v6;
        out->n_v6 = e->n_v6;
    }
    /* the runtime holds the snapshot until a swap, and swaps run on this thread */
    mesh_snapshot_unref(s);
    return e != NULL;
}

int mesh_sidecar_dns_start(struct mesh_dns **out, struct event_base *base,
                           const struct mesh_opts *o, struct mesh_runtime *const *rt,
                           const struct mesh_snapshot *snap)
{
    *out = NULL;
    bool implicit = !o->dns;
    if (implicit && !(o->role && strcmp(o->role, "sidecar") == 0 && snap && snap->dns.n))
        return 0;
    struct mesh_dns_config c;
    mesh_dns_config_init(&c);
    if (o->dns && mesh_addr_parse(o->dns, &c.listen, &c.listen_len)) {
        fprintf(stderr, "meshd: --dns %s: expected ADDR:PORT with a numeric address\n", o->dns);
        return -1;
    }
    if (o->dns_upstream && mesh_addr_parse(o->dns_upstream, &c.upstream, &c.upstream_len)) {
        fprintf(stderr, "meshd: --dns-upstream %s: expected ADDR:PORT with a numeric address\n",
                o->dns_upstream);
        return -1;
    }
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    /* the search line still helps with --dns-upstream: short names of the pod's namespace */
    if (mesh_dns_read_resolv_conf(&c, RESOLV_CONF, &err) && !c.upstream_len) {
        char buf[512];
        mesh_err_format(&err, buf, sizeof(buf));
        mesh_log_warn("dns proxy: %s; names outside the mesh get SERVFAIL", buf);
    }
    c.lookup = lookup;
    c.lookup_arg = (void *)rt;
    mesh_err_init(&err, NULL);
    *out = mesh_dns_start(base, &c, &err);
    if (!*out) {
        char buf[512];
        mesh_err_format(&err, buf, sizeof(buf));
        if (implicit) {
            mesh_log_warn("dns proxy not started (the snapshot has a dns table): %s", buf);
            return 0;
        }
        fprintf(stderr, "meshd: --dns %s: %s", o->dns, buf);
        return -1;
    }
    return 0;
}
