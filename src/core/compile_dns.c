#include "core/common.h"
#include <string.h>
#include "core/compile-int.h"

/*
 * The snapshot's "dns" table: the names an application of this node may dial
 * for each service it sees, and the addresses they resolve to (the virtual IP,
 * or a headless Service's endpoints). The sidecar's DNS proxy answers from it.
 */

struct dns_name {
    const char *name;
    const struct mesh_csvc *svc;
};

struct dns_acc {
    struct mesh_cmap seen; /* name -> itself: the first service to claim a name keeps it */
    struct dns_name *v;
    size_t n, cap;
};

static void add_name(struct mesh_cc *c, struct dns_acc *a, const char *name,
                     const struct mesh_csvc *s)
{
    if (mesh_cmap_get(&a->seen, name))
        return;
    mesh_cmap_put(&a->seen, name, (void *)name);
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct dns_name *v = mesh_cc_alloc(c, cap * sizeof(*v));
        if (a->n)
            memcpy(v, a->v, a->n * sizeof(*v));
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (struct dns_name){name, s};
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(((const struct dns_name *)x)->name, ((const struct dns_name *)y)->name);
}

/* The addresses of <s>: its virtual IPs, else (headless) its endpoints' distinct addresses. */
static json_t *addresses(const struct mesh_csvc *s)
{
    json_t *out = json_array();
    for (size_t i = 0; i < s->n_addrs; i++)
        json_array_append_new(out, json_string(s->addrs[i]));
    if (s->n_addrs)
        return out;
    struct mesh_cmap seen = {0};
    for (size_t i = 0; i < s->n_inst; i++) {
        const char *ip = s->inst[i].address;
        if (mesh_cmap_get(&seen, ip))
            continue;
        mesh_cmap_put(&seen, ip, (void *)ip);
        json_array_append_new(out, json_string(ip));
    }
    mesh_cmap_free(&seen);
    return out;
}

json_t *mesh_cc_dns(struct mesh_cc *c)
{
    struct dns_acc a = {0};
    /* full names first, so a short name never hides another service's host */
    for (size_t i = 0; i < c->n_vis; i++) {
        const struct mesh_csvc *s = c->vis[i];
        if (!strchr(s->host, '*'))
            add_name(c, &a, s->host, s);
    }
    /* Kubernetes search domains: "name.ns", "name.ns.svc", and "name" in its namespace */
    for (size_t i = 0; i < c->n_vis; i++) {
        const struct mesh_csvc *s = c->vis[i];
        if (s->source != MESH_CSVC_K8S)
            continue;
        const char *n = s->host; /* lowercase "name.ns.svc.cluster.local" */
        size_t name_len = strlen(s->name), ns_len = strlen(s->ns);
        add_name(c, &a, mesh_cc_printf(c, "%.*s", (int)(name_len + 1 + ns_len), n), s);
        add_name(c, &a, mesh_cc_printf(c, "%.*s", (int)(name_len + 1 + ns_len + 4), n), s);
        if (s->local)
            add_name(c, &a, mesh_cc_printf(c, "%.*s", (int)name_len, n), s);
    }
    if (a.n)
        qsort(a.v, a.n, sizeof(*a.v), cmp_name);
    json_t *out = json_array();
    for (size_t i = 0; i < a.n; i++) {
        json_t *addrs = addresses(a.v[i].svc);
        if (!json_array_size(addrs)) { /* a headless Service without endpoints yet */
            json_decref(addrs);
            continue;
        }
        json_t *e = json_object();
        json_object_set_new_nocheck(e, "addresses", addrs);
        json_object_set_new_nocheck(e, "name", json_string(a.v[i].name));
        json_array_append_new(out, e);
    }
    mesh_cmap_free(&a.seen);
    return out;
}
