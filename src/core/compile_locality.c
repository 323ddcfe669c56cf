#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include "core/compile-int.h"

/*
 * Locality load balancing (DestinationRule localityLbSetting) as Istio's
 * pilot does it for one proxy: endpoint priorities from the distance between
 * the node's locality and each endpoint's (failover), from labels the node
 * shares with the endpoint (failoverPriority), or endpoint weights per
 * locality (distribute). The data plane only sees "priority" and "weight".
 */

#define LABEL_REGION "topology.kubernetes.io/region"
#define LABEL_ZONE "topology.kubernetes.io/zone"
#define LABEL_SUBZONE "topology.istio.io/subzone"

static const char *label(const struct mesh_kv *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0)
            return l[i].value ? l[i].value : "";
    return NULL;
}

/* "r/z/s" (or "r.z.s" with <sep> '.') into three arena strings; absent parts are "". */
static struct mesh_clocality split(struct mesh_cc *c, const char *s, char sep)
{
    struct mesh_clocality l = {"", "", "", false};
    if (!s)
        return l;
    char *copy = mesh_cc_strdup(c, s);
    const char **part[3] = {&l.region, &l.zone, &l.subzone};
    for (size_t i = 0; i < 3 && copy; i++) {
        char *next = strchr(copy, sep);
        if (next)
            *next++ = '\0';
        *part[i] = copy;
        copy = next;
    }
    l.known = *l.region || *l.zone || *l.subzone;
    return l;
}

static const char *join(struct mesh_cc *c, const char *r, const char *z, const char *s)
{
    if (!*r && !*z && !*s)
        return NULL;
    if (!*s)
        return MESH_CC_JOIN(c, r, "/", z);
    return MESH_CC_JOIN(c, r, "/", z, "/", s);
}

struct mesh_clocality mesh_cc_node_locality(struct mesh_cc *c)
{
    const struct mesh_node *n = c->node;
    if (n->locality)
        return split(c, n->locality, '/');
    const char *loc = mesh_cc_labels_locality(c, n->labels, n->n_labels);
    return split(c, loc, '/');
}

const char *mesh_cc_labels_locality(struct mesh_cc *c, const struct mesh_kv *labels, size_t n)
{
    const char *il = label(labels, n, "istio-locality");
    if (il && *il) {
        struct mesh_clocality l = split(c, il, '.');
        return join(c, l.region, l.zone, l.subzone);
    }
    const char *r = label(labels, n, LABEL_REGION), *z = label(labels, n, LABEL_ZONE),
               *s = label(labels, n, LABEL_SUBZONE);
    return join(c, r ? r : "", z ? z : "", s ? s : "");
}

/* Istio's LocalityMatch: "region/zone/subzone" with "*" (and absent zone/subzone) wildcards. */
static bool locality_match(const struct mesh_clocality *l, const struct mesh_clocality *rule)
{
    bool region = strcmp(rule->region, "*") == 0 || strcmp(rule->region, l->region) == 0;
    bool zone = !*rule->zone || strcmp(rule->zone, "*") == 0 || strcmp(rule->zone, l->zone) == 0;
    bool sub = !*rule->subzone || strcmp(rule->subzone, "*") == 0 ||
               strcmp(rule->subzone, l->subzone) == 0;
    return region && zone && sub;
}

/* Istio's LbPriority: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
static uint32_t distance(const struct mesh_clocality *node, const struct mesh_clocality *ep)
{
    if (strcmp(node->region, ep->region) != 0)
        return 3;
    if (strcmp(node->zone, ep->zone) != 0)
        return 2;
    return strcmp(node->subzone, ep->subzone) != 0 ? 1 : 0;
}

static uint32_t failover_priority(const struct mesh_clocality *node,
                                  const struct mesh_clocality *ep,
                                  const struct mesh_locality_lb *set)
{
    uint32_t p = distance(node, ep);
    /* another region: the failover target region next, any other region after it */
    for (size_t i = 0; p == 3 && set && i < set->n_failover; i++) {
        if (set->failover[i].from && strcmp(set->failover[i].from, node->region) == 0) {
            if (!set->failover[i].to || strcmp(set->failover[i].to, ep->region) != 0)
                p = 4;
            break;
        }
    }
    return p;
}

/* A label's value for failoverPriority: the topology keys come from the locality. */
static const char *prio_value(const char *key, const struct mesh_kv *labels, size_t n,
                              const struct mesh_clocality *loc)
{
    if (strcmp(key, LABEL_REGION) == 0)
        return loc->region;
    if (strcmp(key, LABEL_ZONE) == 0)
        return loc->zone;
    if (strcmp(key, LABEL_SUBZONE) == 0)
        return loc->subzone;
    const char *v = label(labels, n, key);
    return v ? v : "";
}

/* failoverPriority: the number of leading labels the endpoint does not share, from the end. */
static uint32_t label_priority(struct mesh_cc *c, const struct mesh_locality_lb *set,
                               const struct mesh_clocality *node_loc,
                               const struct mesh_cinst *e, const struct mesh_clocality *ep_loc)
{
    size_t n = set->n_failover_priority, matched = 0;
    for (; matched < n; matched++) {
        const char *item = set->failover_priority[matched];
        const char *eq = strchr(item, '=');
        const char *key = eq ? mesh_cc_printf(c, "%.*s", (int)(eq - item), item) : item;
        const char *want = eq ? eq + 1
                              : prio_value(key, c->node->labels, c->node->n_labels, node_loc);
        if (strcmp(prio_value(key, e->labels, e->n_labels, ep_loc), want) != 0)
            break;
    }
    return (uint32_t)(n - matched);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* distribute: endpoint weights so that each locality gets its share; others are removed. */
static void distribute(struct mesh_cc *c, const struct mesh_locality_distribute *d, json_t *eps,
                       const struct mesh_clocality *locs)
{
    size_t n = json_array_size(eps);
    uint64_t *w = mesh_cc_alloc(c, (n + 1) * sizeof(*w));
    bool *taken = mesh_cc_alloc(c, n + 1);
    for (size_t t = 0; t < d->n_to; t++) {
        struct mesh_clocality rule = split(c, d->to[t].key, '/');
        /* Istio: a rule matching several localities splits its weight among them */
        const char **groups = mesh_cc_alloc(c, (n + 1) * sizeof(*groups));
        size_t n_groups = 0;
        for (size_t i = 0; i < n; i++) {
            if (taken[i] || !locs[i].known || !locality_match(&locs[i], &rule))
                continue;
            const char *g = json_string_value(json_object_get(json_array_get(eps, i), "locality"));
            bool seen = false;
            for (size_t k = 0; k < n_groups && !seen; k++)
                seen = strcmp(groups[k], g) == 0;
            if (!seen)
                groups[n_groups++] = g;
        }
        for (size_t k = 0; k < n_groups; k++) {
            uint64_t group_w = (d->to[t].value + n_groups - 1) / n_groups, sum = 0;
            for (size_t i = 0; i < n; i++) {
                const char *g =
                    json_string_value(json_object_get(json_array_get(eps, i), "locality"));
                if (!taken[i] && locs[i].known && strcmp(g, groups[k]) == 0) {
                    json_int_t ew =
                        json_integer_value(json_object_get(json_array_get(eps, i), "weight"));
                    sum += ew > 0 ? (uint64_t)ew : 1;
                }
            }
            for (size_t i = 0; i < n; i++) {
                json_t *ep = json_array_get(eps, i);
                const char *g = json_string_value(json_object_get(ep, "locality"));
                if (taken[i] || !locs[i].known || strcmp(g, groups[k]) != 0)
                    continue;
                json_int_t ew = json_integer_value(json_object_get(ep, "weight"));
                /* the locality's weight spread over its endpoints, by their own weights */
                uint64_t v = group_w * 1000 * (uint64_t)(ew > 0 ? ew : 1) / (sum ? sum : 1);
                w[i] = v ? v : (group_w ? 1 : 0);
                taken[i] = true;
            }
        }
    }
    /* localities no rule names receive nothing: removed (from the end, indexes stay valid) */
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += taken[i] ? w[i] : 0;
    for (size_t i = n; i-- > 0;) {
        if (!taken[i] || w[i] == 0) {
            json_array_remove(eps, i);
            continue;
        }
        uint64_t v = w[i];
        if (total > UINT32_MAX) /* keep the sum within 32 bits */
            v = MESH_MAX(v * (UINT32_MAX / 2) / total, 1);
        json_object_set_new_nocheck(json_array_get(eps, i), "weight", json_integer((json_int_t)v));
    }
}

void mesh_cc_apply_locality(struct mesh_cc *c, const struct mesh_resource *dr,
                            const struct mesh_cpolicy *pol, json_t *eps,
                            const struct mesh_cinst *const *inst)
{
    const struct mesh_locality_lb *set = pol && pol->lb ? pol->lb->locality_lb_setting : NULL;
    if (set && set->enabled.set && !set->enabled.v)
        return;
    size_t n = json_array_size(eps);
    bool distributes = set && set->n_distribute;
    /* failover needs outlier detection, or traffic would never leave priority 0 (Istio) */
    if (n == 0 || (!distributes && !(pol && pol->outlier)))
        return;
    struct mesh_clocality node = mesh_cc_node_locality(c);
    if (!node.known) {
        if (set && dr)
            mesh_cc_diag(c, MESH_DIAG_NOTE, dr, NULL,
                         "the proxy's locality is unknown (no topology labels, no --locality): "
                         "localityLbSetting has no effect");
        return;
    }
    struct mesh_clocality *locs = mesh_cc_alloc(c, (n + 1) * sizeof(*locs));
    for (size_t i = 0; i < n; i++)
        locs[i] = split(c, json_string_value(json_object_get(json_array_get(eps, i), "locality")),
                        '/');

    if (distributes) {
        for (size_t k = 0; k < set->n_distribute; k++) {
            struct mesh_clocality from = split(c, set->distribute[k].from, '/');
            if (set->distribute[k].from && locality_match(&node, &from)) {
                distribute(c, &set->distribute[k], eps, locs);
                break;
            }
        }
        return;
    }

    /* priorities, then renumbered 0, 1, 2... (Envoy wants them consecutive) */
    uint64_t *prio = mesh_cc_alloc(c, (n + 1) * sizeof(*prio));
    uint64_t *sorted = mesh_cc_alloc(c, (n + 1) * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        uint64_t lp = set && set->n_failover_priority
                          ? label_priority(c, set, &node, inst[i], &locs[i])
                          : 0;
        uint64_t fp = (!set || !set->n_failover_priority || set->n_failover)
                          ? failover_priority(&node, &locs[i], set)
                          : 0;
        prio[i] = sorted[i] = lp << 8 | fp;
    }
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    size_t n_uniq = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[n_uniq - 1])
            sorted[n_uniq++] = sorted[i];
    for (size_t i = 0; i < n; i++) {
        const uint64_t *at = bsearch(&prio[i], sorted, n_uniq, sizeof(*sorted), cmp_u64);
        size_t rank = (size_t)(at - sorted);
        if (rank)
            json_object_set_new_nocheck(json_array_get(eps, i), "priority",
                                        json_integer((json_int_t)rank));
    }
}
