/*
 * Glue between the sidecar role and the DNS proxy (src/core/dns.c): flags,
 * when it runs by default, /etc/resolv.conf, and the lookup in the snapshot's
 * dns table. The proxy runs on the main loop, where snapshots are swapped
 * too, so the entry it gets stays valid while it writes the answer.
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
        return false; /* no snapshot yet: every name is forwarded */
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

enum mesh_sidecar_dns_mode mesh_sidecar_dns_mode(const struct mesh_opts *o,
                                                 const struct mesh_snapshot *snap)
{
    if (o->dns)
        return strcmp(o->dns, "off") == 0 ? MESH_SIDECAR_DNS_OFF : MESH_SIDECAR_DNS_FLAG;
    if (!o->role || strcmp(o->role, "sidecar") != 0)
        return MESH_SIDECAR_DNS_OFF;
    if (o->control || o->config_dir) {
        char host[64];
        uint16_t port = 0;
        if (!o->listen)
            return MESH_SIDECAR_DNS_DEFAULT;
        return mesh_addr_split(o->listen, host, sizeof(host), &port) == 0 &&
                       port == MESH_SIDECAR_CAPTURE_PORT
                   ? MESH_SIDECAR_DNS_DEFAULT
                   : MESH_SIDECAR_DNS_OFF;
    }
    for (size_t i = 0; snap && i < snap->n_listeners; i++)
        if (snap->listeners[i].port == MESH_SIDECAR_CAPTURE_PORT)
            return MESH_SIDECAR_DNS_DEFAULT;
    return MESH_SIDECAR_DNS_OFF;
}

int mesh_sidecar_dns_start(struct mesh_dns **out, struct event_base *base,
                           const struct mesh_opts *o, struct mesh_runtime *const *rt,
                           const struct mesh_snapshot *snap)
{
    *out = NULL;
    /* with --control the decision is taken once, before the first snapshot */
    if (o->control && snap)
        return 0;
    enum mesh_sidecar_dns_mode mode = mesh_sidecar_dns_mode(o, snap);
    if (mode == MESH_SIDECAR_DNS_OFF)
        return 0;
    struct mesh_dns_config c;
    mesh_dns_config_init(&c);
    if (mode == MESH_SIDECAR_DNS_FLAG && mesh_addr_parse(o->dns, &c.listen, &c.listen_len)) {
        fprintf(stderr, "meshd: --dns %s: expected ADDR:PORT with a numeric address, or off\n",
                o->dns);
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
        if (mode == MESH_SIDECAR_DNS_DEFAULT) {
            mesh_log_warn("dns proxy not started (on by default in a pod; --dns off turns it "
                          "off): %s", buf);
            return 0;
        }
        fprintf(stderr, "meshd: --dns %s: %s", o->dns, buf);
        return -1;
    }
    return 0;
}
