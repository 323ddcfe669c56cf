#include "core/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "core/arena.h"
#include "core/compile-int.h"
#include "core/status.h"

/*
 * mesh_compile(): the entry point, the helpers shared by compile*.c, and the
 * clusters (DestinationRule selection and traffic policy mapping). The
 * registry is compile_registry.c, virtual hosts and gateways compile_route.c.
 */

/* ---- String map ---- */

uint64_t mesh_cmap_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static struct mesh_cmap_slot *cmap_find(const struct mesh_cmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct mesh_cmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return s;
    }
}

void *mesh_cmap_get(const struct mesh_cmap *m, const char *key)
{
    if (m->n == 0)
        return NULL;
    struct mesh_cmap_slot *s = cmap_find(m, key, mesh_cmap_hash(key));
    return s->key ? s->val : NULL;
}

void mesh_cmap_put(struct mesh_cmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        struct mesh_cmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->slots = mesh_xcalloc(m->cap, sizeof(*m->slots));
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.slots[i].key) {
                *cmap_find(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
                m->n++;
            }
        }
        free(old.slots);
    }
    uint64_t h = mesh_cmap_hash(key);
    struct mesh_cmap_slot *s = cmap_find(m, key, h);
    if (!s->key) {
        s->key = key;
        s->hash = h;
        m->n++;
    }
    s->val = val;
}

void mesh_cmap_free(struct mesh_cmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- Helpers ---- */

void *mesh_cc_alloc(struct mesh_cc *c, size_t size)
{
    void *p = mesh_arena_calloc(c->arena, 1, size ? size : 1);
    if (!p)
        mesh_bug(__FILE__, __LINE__, "out of memory");
    return p;
}

char *mesh_cc_strdup(struct mesh_cc *c, const char *s)
{
    size_t n = strlen(s);
    char *p = mesh_cc_alloc(c, n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *mesh_cc_printf(struct mesh_cc *c, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    char *p = mesh_cc_alloc(c, (size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

char *mesh_cc_join(struct mesh_cc *c, const char *const *parts, size_t n)
{
    size_t len = 0, lens[16];
    MESH_BUG_ON(n > MESH_ARRAY_LEN(lens));
    for (size_t i = 0; i < n; i++)
        len += lens[i] = strlen(parts[i]);
    char *p = mesh_cc_alloc(c, len + 1), *q = p;
    for (size_t i = 0; i < n; i++) {
        memcpy(q, parts[i], lens[i]);
        q += lens[i];
    }
    *q = '\0';
    return p;
}

char *mesh_cc_utoa(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return buf;
}

char *mesh_cc_path(struct mesh_cc *c, const char *a, const char *b, size_t i, const char *d)
{
    char num[24];
    return MESH_CC_JOIN(c, a, b, "[", mesh_cc_utoa(num, i), "]", d);
}

void mesh_cc_diag(struct mesh_cc *c, enum mesh_diag_severity sev, const struct mesh_resource *r,
                  const char *path, const char *fmt, ...)
{
    char msg[1024], subject[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    subject[0] = '\0';
    if (r)
        snprintf(subject, sizeof(subject), "%s %s/%s", mesh_kind_name(r->kind),
                 r->meta.namespace_, r->meta.name);
    /* the same text from several ports or several clusters is said once */
    char *key = mesh_cc_printf(c, "%d|%s|%s|%s", (int)sev, subject, path ? path : "", msg);
    if (mesh_cmap_get(&c->warned, key))
        return;
    mesh_cmap_put(&c->warned, key, key);
    mesh_diags_add(c->diags, sev, r ? r->file : NULL, r ? r->line : 0, r ? r->col : 0,
                   r ? subject : NULL, path, "%s", msg);
}

bool mesh_cc_labels_match(const struct mesh_kv *sel, size_t n_sel, const struct mesh_kv *labels,
                          size_t n_labels)
{
    for (size_t i = 0; i < n_sel; i++) {
        bool found = false;
        for (size_t j = 0; j < n_labels && !found; j++)
            found = strcmp(sel[i].key, labels[j].key) == 0 &&
                    strcmp(sel[i].value ? sel[i].value : "",
                           labels[j].value ? labels[j].value : "") == 0;
        if (!found)
            return false;
    }
    return true;
}

bool mesh_cc_exported(const char *ns, const char **export_to, size_t n_export_to,
                      const char *from)
{
    if (n_export_to == 0)
        return true; /* Istio's default exportTo is "*" */
    for (size_t i = 0; i < n_export_to; i++) {
        const char *e = export_to[i];
        if (strcmp(e, "*") == 0 || strcmp(e, from) == 0 ||
            (strcmp(e, ".") == 0 && strcmp(ns, from) == 0))
            return true;
    }
    return false;
}

const char *mesh_cc_expand_host(struct mesh_cc *c, const char *host, const char *ns)
{
    if (strchr(host, '.') || strcmp(host, "*") == 0) {
        for (const char *p = host; *p; p++)
            if (*p >= 'A' && *p <= 'Z') {
                char *low = mesh_cc_strdup(c, host);
                for (char *q = low; *q; q++)
                    if (*q >= 'A' && *q <= 'Z')
                        *q = (char)(*q - 'A' + 'a');
                return low;
            }
        return host;
    }
    char *fq = MESH_CC_JOIN(c, host, ".", ns, "." MESH_DOMAIN_SUFFIX);
    for (char *q = fq; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return fq;
}

bool mesh_cc_host_match(const char *pat, const char *h)
{
    if (strcmp(pat, "*") == 0)
        return true;
    if (pat[0] != '*')
        return strcmp(pat, h) == 0;
    /* "*.example.com" covers "a.example.com" and the narrower wildcard "*.a.example.com" */
    size_t np = strlen(pat) - 1, nh = strlen(h);
    if (h[0] == '*') {
        size_t nhs = nh - 1;
        return nhs >= np && strcmp(h + 1 + (nhs - np), pat + 1) == 0;
    }
    return nh > np && strcmp(h + (nh - np), pat + 1) == 0;
}

/* ---- DestinationRules ---- */

/* One DestinationRule with its host expanded, indexed for the per-service lookup. */
struct cdr {
    const struct mesh_resource *res;
    const char *host;
    struct cdr *next_same_host;
};

struct dr_index {
    struct mesh_cmap exact;        /* host -> first struct cdr (chain in key order) */
    struct cdr **wild;             /* wildcard hosts, in key order */
    size_t n_wild;
    struct mesh_cmap by_svc;       /* service host -> chosen resource (or &no_dr) */
};

static const char no_dr_marker;

static struct dr_index *dr_index(struct mesh_cc *c)
{
    if (c->drx)
        return c->drx;
    struct dr_index *ix = mesh_cc_alloc(c, sizeof(*ix));
    size_t n = c->n_by_kind[MESH_KIND_DESTINATION_RULE];
    ix->wild = mesh_cc_alloc(c, (n + 1) * sizeof(*ix->wild));
    /* walk in reverse key order so that each chain ends up in key order */
    for (size_t i = n; i-- > 0;) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_DESTINATION_RULE][i];
        const struct mesh_destination_rule *dr = r->typed.destination_rule;
        if (!dr->host)
            continue;
        /* a DR with a workloadSelector applies only to the workloads it selects */
        if (dr->workload_selector &&
            (strcmp(r->meta.namespace_, c->node->namespace_) != 0 ||
             !mesh_cc_labels_match(dr->workload_selector->match_labels,
                                   dr->workload_selector->n_match_labels, c->node->labels,
                                   c->node->n_labels)))
            continue;
        if (!mesh_cc_exported(r->meta.namespace_, dr->export_to, dr->n_export_to,
                              c->node->namespace_))
            continue;
        struct cdr *d = mesh_cc_alloc(c, sizeof(*d));
        d->res = r;
        d->host = mesh_cc_expand_host(c, dr->host, r->meta.namespace_);
        if (d->host[0] == '*') {
            ix->wild[ix->n_wild++] = d;
        } else {
            d->next_same_host = mesh_cmap_get(&ix->exact, d->host);
            mesh_cmap_put(&ix->exact, d->host, d);
        }
    }
    /* the reverse walk reversed the wildcard list too */
    for (size_t i = 0; i < ix->n_wild / 2; i++) {
        struct cdr *t = ix->wild[i];
        ix->wild[i] = ix->wild[ix->n_wild - 1 - i];
        ix->wild[ix->n_wild - 1 - i] = t;
    }
    c->drx = ix;
    return ix;
}

/*
 * Istio's lookup (push_context destinationRule()): the rules of the proxy's
 * namespace first, then those of the service's namespace, then the root
 * namespace; within one namespace the most specific host wins (exact, then the
 * longest wildcard). Several rules for the same host are merged by Istio; we
 * take the first by name and say so.
 */
const struct mesh_resource *mesh_cc_destination_rule(struct mesh_cc *c,
                                                     const struct mesh_csvc *svc)
{
    struct dr_index *ix = dr_index(c);
    const void *cached = mesh_cmap_get(&ix->by_svc, svc->host);
    if (cached)
        return cached == &no_dr_marker ? NULL : cached;

    const char *order[3] = {c->node->namespace_, svc->ns, MESH_ROOT_NAMESPACE};
    const struct mesh_resource *found = NULL;
    for (size_t k = 0; k < 3 && !found; k++) {
        if ((k == 1 && strcmp(order[1], order[0]) == 0) ||
            (k == 2 && (strcmp(order[2], order[0]) == 0 || strcmp(order[2], order[1]) == 0)))
            continue;
        const struct cdr *best = NULL, *other = NULL;
        /* a rule that selects this workload beats the namespace-wide ones */
        for (int want_sel = 1; want_sel >= 0 && !best; want_sel--) {
            for (const struct cdr *d = mesh_cmap_get(&ix->exact, svc->host); d;
                 d = d->next_same_host) {
                bool has_sel = d->res->typed.destination_rule->workload_selector != NULL;
                if (strcmp(d->res->meta.namespace_, order[k]) != 0 || has_sel != want_sel)
                    continue;
                if (!best)
                    best = d;
                else if (!other)
                    other = d;
            }
        }
        size_t best_len = 0;
        if (!best) {
            for (size_t i = 0; i < ix->n_wild; i++) {
                const struct cdr *d = ix->wild[i];
                if (strcmp(d->res->meta.namespace_, order[k]) != 0 ||
                    !mesh_cc_host_match(d->host, svc->host))
                    continue;
                size_t len = strlen(d->host);
                if (len > best_len) {
                    best = d;
                    best_len = len;
                    other = NULL;
                } else if (len == best_len && !other) {
                    other = d;
                }
            }
        }
        if (best)
            found = best->res;
        if (found && other)
            mesh_cc_diag(c, MESH_DIAG_WARNING, other->res, "spec.host",
                         "%s is also configured by DestinationRule %s/%s: only that one is used "
                         "(Istio merges them; meshd does not yet)",
                         svc->host, found->meta.namespace_, found->meta.name);
    }
    mesh_cmap_put(&ix->by_svc, svc->host, found ? (void *)found : (void *)&no_dr_marker);
    return found;
}

/* ---- Clusters ---- */

static int cmp_inst(const void *a, const void *b)
{
    const struct mesh_cinst *x = *(const struct mesh_cinst *const *)a;
    const struct mesh_cinst *y = *(const struct mesh_cinst *const *)b;
    int d = strcmp(x->address, y->address);
    if (d)
        return d;
    return x->port < y->port ? -1 : x->port > y->port;
}

static json_t *endpoints_json(struct mesh_cc *c, const struct mesh_csvc *svc, size_t port_idx,
                              const struct mesh_subset *subset, const struct mesh_resource *dr,
                              const struct mesh_cpolicy *pol)
{
    const struct mesh_cinst **v = mesh_cc_alloc(c, (svc->n_inst + 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < svc->n_inst; i++) {
        const struct mesh_cinst *e = &svc->inst[i];
        if (e->port_idx != port_idx)
            continue;
        if (subset && !mesh_cc_labels_match(subset->labels, subset->n_labels, e->labels,
                                            e->n_labels))
            continue;
        v[n++] = e;
    }
    qsort(v, n, sizeof(*v), cmp_inst);
    json_t *arr = json_array();
    const struct mesh_cinst **kept = mesh_cc_alloc(c, (n + 1) * sizeof(*kept));
    size_t n_kept = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        /* the same address and port twice (Endpoints and a WorkloadEntry): keep one */
        if (i > 0 && strcmp(v[i]->address, v[i - 1]->address) == 0 && v[i]->port == v[i - 1]->port)
            continue;
        uint32_t w = v[i]->weight;
        if (sum + w > UINT32_MAX)
            w = 1;
        sum += w;
        json_t *ep = json_object();
        json_object_set_new_nocheck(ep, "address", json_string(v[i]->address));
        json_object_set_new_nocheck(ep, "port", json_integer(v[i]->port));
        if (w != 1) /* the snapshot's default; 10,000 fewer values to build at 1k services */
            json_object_set_new_nocheck(ep, "weight", json_integer(w));
        if (v[i]->locality)
            json_object_set_new_nocheck(ep, "locality", json_string(v[i]->locality));
        json_array_append_new(arr, ep);
        kept[n_kept++] = v[i];
    }
    mesh_cc_apply_locality(c, dr, pol, arr, kept);
    return arr;
}

static const char *add_cluster(struct mesh_cc *c, const char *name, json_t *o)
{
    json_array_append_new(c->cluster_list, o);
    mesh_cmap_put(&c->clusters, name, o); /* <name> lives in the arena */
    return name;
}

static const char *empty_cluster(struct mesh_cc *c, const char *name)
{
    json_t *o = mesh_cc_cluster_json(name, false, NULL);
    json_object_set_new_nocheck(o, "endpoints", json_array());
    return add_cluster(c, name, o);
}

/*
 * HTTP/2 towards the endpoints: the port says so (http2, grpc), or every endpoint of the
 * cluster has a sidecar (mesh_cc_inst_meshed), which sniffs the preface and speaks the
 * application's protocol on localhost. A cluster with plain endpoints among meshed ones
 * stays HTTP/1.1: one protocol per cluster.
 */
static bool cluster_h2(struct mesh_cc *c, const struct mesh_csvc *svc, size_t pi,
                       const struct mesh_subset *ss)
{
    const struct mesh_cport *p = &svc->ports[pi];
    if (p->h2)
        return true;
    if (!p->http)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < svc->n_inst; i++) {
        const struct mesh_cinst *e = &svc->inst[i];
        if (e->port_idx != pi ||
            (ss && !mesh_cc_labels_match(ss->labels, ss->n_labels, e->labels, e->n_labels)))
            continue;
        if (!mesh_cc_inst_meshed(c, e))
            return false;
        n++;
    }
    return n > 0;
}

const char *mesh_cc_cluster(struct mesh_cc *c, const struct mesh_csvc *svc, const char *host,
                            uint32_t port, const char *subset, const struct mesh_resource *from,
                            const char *from_path)
{
    char num[24];
    const char *name =
        MESH_CC_JOIN(c, "outbound|", mesh_cc_utoa(num, port), "|", subset ? subset : "", "|", host);
    if (mesh_cmap_get(&c->clusters, name))
        return name;

    if (!svc) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, from, from_path,
                     "no service %s is known to this proxy (not in the registry, or hidden by "
                     "exportTo or the Sidecar): cluster %s has no endpoints and answers 503",
                     host, name);
        return empty_cluster(c, name);
    }
    size_t pi = SIZE_MAX;
    for (size_t i = 0; i < svc->n_ports && pi == SIZE_MAX; i++)
        if (svc->ports[i].port == port)
            pi = i;
    if (pi == SIZE_MAX) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, from, from_path,
                     "service %s has no port %u: cluster %s has no endpoints and answers 503",
                     host, port, name);
        return empty_cluster(c, name);
    }
    const struct mesh_resource *dr = mesh_cc_destination_rule(c, svc);
    const struct mesh_destination_rule *d = dr ? dr->typed.destination_rule : NULL;
    const struct mesh_subset *ss = NULL;
    if (subset) {
        for (size_t i = 0; d && i < d->n_subsets && !ss; i++)
            if (d->subsets[i].name && strcmp(d->subsets[i].name, subset) == 0)
                ss = &d->subsets[i];
        if (!ss) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, from, from_path,
                         "subset '%s' of %s is not defined by a DestinationRule visible to this "
                         "proxy: cluster %s has no endpoints and answers 503",
                         subset, host, name);
            return empty_cluster(c, name);
        }
    }
    if (dr)
        mesh_cc_warn_dr_once(c, dr);
    struct mesh_cpolicy pol = mesh_cc_effective_policy(d ? d->traffic_policy : NULL,
                                                       ss ? ss->traffic_policy : NULL, port);
    json_t *o = mesh_cc_cluster_json(name, cluster_h2(c, svc, pi, ss), &pol);
    const char *lb = json_string_value(json_object_get(o, "lb_policy"));
    if (strcmp(lb, "passthrough") == 0) {
        /* the original destination: a passthrough cluster has no endpoints */
        json_object_set_new_nocheck(o, "endpoints", json_array());
    } else {
        json_object_set_new_nocheck(o, "endpoints",
                                    endpoints_json(c, svc, pi, ss, dr, &pol));
    }
    return add_cluster(c, name, o);
}

/* ---- Entry point ---- */

void mesh_node_init(struct mesh_node *node)
{
    memset(node, 0, sizeof(*node));
    node->outbound_address = "127.0.0.1";
    node->outbound_port = 15001;
    node->admin_address = "127.0.0.1";
    node->admin_port = 15000;
    node->gateway_address = "0.0.0.0";
}

struct keyed {
    const char *key;
    const struct mesh_resource *res;
};

static int cmp_keyed(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

static void sort_resources(struct mesh_cc *c)
{
    const struct mesh_resource_set *set = c->set;
    for (size_t i = 0; i < set->n; i++) {
        enum mesh_kind k = set->items[i]->kind;
        if ((unsigned)k < MESH_KIND_COUNT)
            c->n_by_kind[k]++;
    }
    for (size_t k = 0; k < MESH_KIND_COUNT; k++) {
        c->by_kind[k] = mesh_cc_alloc(c, (c->n_by_kind[k] + 1) * sizeof(*c->by_kind[k]));
        c->n_by_kind[k] = 0;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct mesh_resource *r = set->items[i];
        if ((unsigned)r->kind < MESH_KIND_COUNT && r->typed.any)
            c->by_kind[r->kind][c->n_by_kind[r->kind]++] = r;
    }
    /* sort (key, resource) pairs: the keys are compared without touching the resources */
    struct keyed *tmp = mesh_xmalloc((set->n + 1) * sizeof(*tmp));
    for (size_t k = 0; k < MESH_KIND_COUNT; k++) {
        size_t n = c->n_by_kind[k];
        for (size_t i = 0; i < n; i++)
            tmp[i] = (struct keyed){c->by_kind[k][i]->key, c->by_kind[k][i]};
        qsort(tmp, n, sizeof(*tmp), cmp_keyed);
        for (size_t i = 0; i < n; i++)
            c->by_kind[k][i] = tmp[i].res;
    }
    free(tmp);
}

struct named {
    const char *name;
    json_t *obj;
};

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static json_t *sorted_clusters(struct mesh_cc *c)
{
    size_t n = json_array_size(c->cluster_list);
    struct named *v = mesh_cc_alloc(c, (n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].obj = json_array_get(c->cluster_list, i);
        v[i].name = json_string_value(json_object_get(v[i].obj, "name"));
    }
    qsort(v, n, sizeof(*v), cmp_named);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, v[i].obj);
    return arr;
}

/*
 * A content hash as version: the control plane compares versions to skip
 * unchanged pushes. Walks the tree rather than serialising it, which would
 * cost as much as the whole compile. Keys are taken in insertion order
 * (jansson keeps it), which the compiler makes the same for the same input.
 */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull; /* FNV-1a */
    }
    return h;
}

static uint64_t hash_json(uint64_t h, json_t *v)
{
    unsigned char tag = (unsigned char)json_typeof(v);
    h = hash_bytes(h, &tag, 1);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            h = hash_bytes(h, k, strlen(k) + 1);
            h = hash_json(h, x);
        }
        return hash_bytes(h, "}", 1);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            h = hash_json(h, x);
        return hash_bytes(h, "]", 1);
    }
    case JSON_STRING:
        return hash_bytes(h, json_string_value(v), json_string_length(v) + 1);
    case JSON_INTEGER: {
        long long x = json_integer_value(v);
        return hash_bytes(h, &x, sizeof(x));
    }
    case JSON_REAL: {
        double x = json_real_value(v);
        return hash_bytes(h, &x, sizeof(x));
    }
    default:
        return h;
    }
}

uint64_t mesh_compile_hash(json_t *v)
{
    return hash_json(0xcbf29ce484222325ull, v);
}

uint64_t mesh_compile_rest_hash(json_t *snapshot)
{
    uint64_t h = hash_bytes(0xcbf29ce484222325ull, "{", 1);
    const char *k;
    json_t *x;
    json_object_foreach(snapshot, k, x) {
        if (strcmp(k, "clusters") == 0 || strcmp(k, "version") == 0)
            continue;
        h = hash_bytes(h, k, strlen(k) + 1);
        h = hash_json(h, x);
    }
    return h;
}

void mesh_compile_version_text(uint64_t h, char out[24])
{
    snprintf(out, 24, "c-%016llx", (unsigned long long)h);
}

static char *content_version(json_t *root)
{
    uint64_t h = mesh_compile_rest_hash(root);
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(root, "clusters"), i, cl)
        h += mesh_compile_hash(cl);
    char *v = mesh_xmalloc(24);
    mesh_compile_version_text(h, v);
    return v;
}

static bool numeric_ip(const char *s)
{
    unsigned char buf[16];
    return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static void cc_free(struct mesh_cc *c)
{
    mesh_cmap_free(&c->warned);
    mesh_cmap_free(&c->k8s_by_key);
    mesh_cmap_free(&c->we_by_ns);
    mesh_cmap_free(&c->visible);
    mesh_cmap_free(&c->clusters);
    if (c->drx) {
        mesh_cmap_free(&c->drx->exact);
        mesh_cmap_free(&c->drx->by_svc);
    }
    mesh_cmap_free(&c->dr_warned);
    mesh_cmap_free(&c->all_hosts);
    mesh_cmap_free(&c->meshed);
    for (size_t i = 0; i < c->n_free_maps; i++)
        mesh_cmap_free(c->free_maps[i]);
    json_decref(c->cluster_list);
    mesh_arena_free(c->arena);
}

void mesh_cc_own_map(struct mesh_cc *c, struct mesh_cmap *m)
{
    MESH_BUG_ON(c->n_free_maps >= MESH_ARRAY_LEN(c->free_maps));
    c->free_maps[c->n_free_maps++] = m;
}

/* The node's fields the compiler relies on; MESH_EINVAL with an error in <diags>. */
static int check_node(const struct mesh_node *node, struct mesh_diags *diags)
{
    if (!node->namespace_ || !*node->namespace_) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "the node has no namespace");
        return MESH_EINVAL;
    }
    if (node->role == MESH_NODE_SIDECAR && !numeric_ip(node->outbound_address)) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "the outbound address must be a numeric IP");
        return MESH_EINVAL;
    }
    if (node->role == MESH_NODE_SIDECAR && node->inbound_address &&
        !numeric_ip(node->inbound_address)) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "the inbound address must be a numeric IP");
        return MESH_EINVAL;
    }
    if (node->admin_address && !numeric_ip(node->admin_address)) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "the admin address must be a numeric IP");
        return MESH_EINVAL;
    }
    return MESH_OK;
}

/* The context every compile starts from: the set sorted, the registry, what the node sees. */
static void cc_init(struct mesh_cc *c, const struct mesh_resource_set *set,
                    const struct mesh_node *node, struct mesh_diags *diags)
{
    *c = (struct mesh_cc){.set = set, .node = node, .diags = diags};
    c->arena = mesh_arena_new(256 * 1024, 0);
    c->cluster_list = json_array();
    sort_resources(c);
    mesh_cc_build_registry(c);
    mesh_cc_select_visible(c);
}

/* The clusters every sidecar gets for <s>: each port, plain and per DestinationRule subset. */
static void service_clusters(struct mesh_cc *c, const struct mesh_csvc *s)
{
    const struct mesh_resource *dr = mesh_cc_destination_rule(c, s);
    const struct mesh_destination_rule *d = dr ? dr->typed.destination_rule : NULL;
    for (size_t p = 0; p < s->n_ports; p++) {
        mesh_cc_cluster(c, s, s->host, s->ports[p].port, NULL, NULL, NULL);
        for (size_t k = 0; d && k < d->n_subsets; k++)
            if (d->subsets[k].name)
                mesh_cc_cluster(c, s, s->host, s->ports[p].port, d->subsets[k].name, dr,
                                "spec.subsets");
    }
}

int mesh_compile(const struct mesh_resource_set *set, const struct mesh_node *node,
                 json_t **snapshot, struct mesh_diags *diags)
{
    *snapshot = NULL;
    int crc = check_node(node, diags);
    if (crc != MESH_OK)
        return crc;

    struct mesh_cc c;
    cc_init(&c, set, node, diags);

    json_t *listeners = json_array(), *route_configs = json_array();
    if (node->role == MESH_NODE_SIDECAR) {
        /* Istio sidecars get a cluster for every port of every service they see */
        for (size_t i = 0; i < c.n_vis; i++)
            service_clusters(&c, c.vis[i]);
        json_t *tcp_routes;
        json_t *rc = mesh_cc_sidecar_routes(&c, &tcp_routes);
        json_array_append_new(route_configs, rc);
        json_t *l = json_object();
        json_object_set_new_nocheck(l, "address", json_string(node->outbound_address));
        json_object_set_new_nocheck(l, "name", json_string("outbound"));
        json_object_set_new_nocheck(l, "port", json_integer(node->outbound_port));
        json_object_set_new_nocheck(l, "route_config", json_string("outbound"));
        if (tcp_routes)
            json_object_set_new_nocheck(l, "tcp_routes", tcp_routes);
        mesh_cc_outbound_unmatched(&c, l); /* outboundTrafficPolicy (compile_outbound.c) */
        json_array_append_new(listeners, l);
        mesh_cc_inbound(&c, listeners, route_configs); /* the node's own workload */
    } else {
        mesh_cc_gateway(&c, listeners, route_configs);
    }

    int rc = MESH_OK;
    if (json_array_size(listeners) == 0) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "no Gateway server selects this workload (%s/%s): a gateway snapshot "
                       "needs at least one listener",
                       node->namespace_, node->name ? node->name : "-");
        rc = MESH_EINVAL;
    }

    json_t *root = NULL;
    if (rc == MESH_OK) {
        root = json_object();
        if (node->admin_address) {
            json_t *a = json_object();
            json_object_set_new_nocheck(a, "address", json_string(node->admin_address));
            json_object_set_new_nocheck(a, "port", json_integer(node->admin_port));
            json_object_set_new_nocheck(root, "admin", a);
        }
        json_object_set_new_nocheck(root, "clusters", sorted_clusters(&c));
        json_object_set_new_nocheck(root, "listeners", listeners);
        json_object_set_new_nocheck(root, "route_configs", route_configs);
        if (node->role == MESH_NODE_SIDECAR) /* the DNS proxy's names (compile_dns.c) */
            json_object_set_new_nocheck(root, "dns", mesh_cc_dns(&c));
        /* Istio sets no route timeout unless a VirtualService asks for one */
        json_t *t = json_object();
        json_object_set_new_nocheck(t, "request_ms", json_integer(0));
        json_object_set_new_nocheck(root, "timeouts", t);
        char *v = node->version ? mesh_xstrdup(node->version) : content_version(root);
        json_object_set_new_nocheck(root, "version", json_string(v ? v : "compiled"));
        free(v);
        listeners = route_configs = NULL;
    }
    json_decref(listeners);
    json_decref(route_configs);
    cc_free(&c);
    *snapshot = root;
    return rc;
}

static bool in_scope(const struct mesh_csvc *s, const struct mesh_compile_only *only)
{
    size_t ns_len = strlen(s->ns);
    for (size_t i = 0; i < only->n; i++) {
        const char *e = only->services[i];
        if (strncmp(e, s->ns, ns_len) != 0 || e[ns_len] != '/')
            continue;
        if (strcmp(e + ns_len + 1, "*") == 0 ||
            (s->source == MESH_CSVC_K8S && strcmp(e + ns_len + 1, s->name) == 0))
            return true;
    }
    return false;
}

int mesh_compile_clusters(const struct mesh_resource_set *set, const struct mesh_node *node,
                          const struct mesh_compile_only *only, json_t **clusters,
                          struct mesh_diags *diags)
{
    *clusters = NULL;
    if (node->role != MESH_NODE_SIDECAR) {
        mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                       "a gateway's clusters come from its routes: compile it whole");
        return MESH_EINVAL;
    }
    int rc = check_node(node, diags);
    if (rc != MESH_OK)
        return rc;
    struct mesh_cc c;
    cc_init(&c, set, node, diags);
    for (size_t i = 0; i < c.n_vis && rc == MESH_OK; i++) {
        const struct mesh_csvc *s = c.vis[i];
        if (!in_scope(s, only))
            continue;
        if (s->n_addrs == 0 && !strchr(s->host, '*')) {
            /* no virtual IP: the DNS table answers its endpoints' addresses */
            mesh_diags_add(diags, MESH_DIAG_ERROR, NULL, 0, 0, NULL, NULL,
                           "%s has no virtual IP: its endpoints are in the DNS table too",
                           s->host);
            rc = MESH_EINVAL;
        }
        service_clusters(&c, s);
    }
    if (rc == MESH_OK)
        *clusters = sorted_clusters(&c);
    cc_free(&c);
    return rc;
}

bool mesh_compile_parse_labels(const char *text, struct mesh_kv **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text || !*text)
        return true;
    size_t len = strlen(text), items = 1;
    for (const char *p = text; *p; p++)
        items += *p == ',';
    /* one block: the kv array, then a copy of the text cut at ',' and '=' */
    struct mesh_kv *kv = mesh_xmalloc(items * sizeof(*kv) + len + 1);
    char *buf = (char *)(kv + items);
    memcpy(buf, text, len + 1);
    size_t k = 0;
    for (char *item = buf; item;) {
        char *next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            free(kv);
            return false;
        }
        *eq = '\0';
        kv[k].key = item;
        kv[k].value = eq + 1;
        k++;
        item = next;
    }
    *out = kv;
    *n = k;
    return true;
}
