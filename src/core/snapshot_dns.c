/* The snapshot's "dns" table: loading (errors by JSON path) and lookup. */
#include "core/common.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "core/snapshot-int.h"
#include "core/snapshot_dns.h"

#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

static const char *const entry_fields[] = {"name", "addresses", NULL};

/* NULL when <n> is a valid lowercase DNS name without trailing dot, else why not. */
static const char *name_problem(const char *n)
{
    size_t len = strlen(n);
    if (len > DNS_NAME_MAX)
        return "longer than 253 characters";
    size_t label = 0;
    for (const char *p = n; ; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0)
                return *p == '\0' && p > n ? "must not end with '.'" : "has an empty label";
            if (label > DNS_LABEL_MAX)
                return "has a label longer than 63 characters";
            if (*p == '\0')
                return NULL;
            label = 0;
            continue;
        }
        if (*p >= 'A' && *p <= 'Z')
            return "must be lowercase";
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return "may hold only letters, digits, '-', '_' and '.' (no wildcards)";
        label++;
    }
}

struct sort_item {
    struct mesh_dns_entry e;
    size_t index;                  /* position in the document, for duplicate errors */
};

static int cmp_item(const void *a, const void *b)
{
    const struct sort_item *x = a, *y = b;
    int d = strcmp(x->e.name, y->e.name);
    if (d)
        return d;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool parse_entry(struct mesh_snap_ctx *c, json_t *o, const char *path,
                        struct mesh_dns_entry *e)
{
    char p[MESH_SNAP_PATH_MAX];
    if (!json_is_object(o)) {
        mesh_snap_fail(c, path, "must be an object");
        return false;
    }
    mesh_snap_check_fields(c, o, path, entry_fields);
    bool ok = true;
    const char *name = mesh_snap_get_string(c, o, path, "name", true, true);
    if (name) {
        const char *why = name_problem(name);
        if (why) {
            mesh_snap_path_key(p, path, "name");
            mesh_snap_fail(c, p, "'%s': %s", name, why);
            ok = false;
        } else {
            e->name = mesh_snap_sdup(c, name, strlen(name));
            e->name_len = strlen(name);
        }
    } else {
        ok = false;
    }
    json_t *a = mesh_snap_get_array(c, o, path, "addresses", true, p);
    if (!a)
        return false;
    size_t n = json_array_size(a);
    if (n == 0) {
        mesh_snap_fail(c, p, "must list at least one address");
        return false;
    }
    struct in_addr *v4 = mesh_snap_zalloc(c, n, sizeof(*v4));
    struct in6_addr *v6 = mesh_snap_zalloc(c, n, sizeof(*v6));
    for (size_t i = 0; i < n; i++) {
        char ip[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(ip, p, i);
        json_t *v = json_array_get(a, i);
        const char *s = json_string_value(v);
        if (!s) {
            mesh_snap_fail(c, ip, "must be a string");
            ok = false;
        } else if (inet_pton(AF_INET, s, &v4[e->n_v4]) == 1) {
            e->n_v4++;
        } else if (inet_pton(AF_INET6, s, &v6[e->n_v6]) == 1) {
            e->n_v6++;
        } else {
            mesh_snap_fail(c, ip, "'%s' is not a numeric IPv4 or IPv6 address", s);
            ok = false;
        }
    }
    e->v4 = e->n_v4 ? v4 : NULL;
    e->v6 = e->n_v6 ? v6 : NULL;
    return ok;
}

void mesh_snap_parse_dns(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                         const char *path)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return;
    struct sort_item *items = calloc(n, sizeof(*items));
    if (!items)
        mesh_snap_oom();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(p, path, i);
        struct mesh_dns_entry e = {0};
        if (parse_entry(c, json_array_get(arr, i), p, &e))
            items[k++] = (struct sort_item){e, i};
    }
    qsort(items, k, sizeof(*items), cmp_item);
    struct mesh_dns_entry *out = mesh_snap_zalloc(c, k ? k : 1, sizeof(*out));
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m && strcmp(out[m - 1].name, items[i].e.name) == 0) {
            char at[MESH_SNAP_PATH_MAX], p[MESH_SNAP_PATH_MAX], first[MESH_SNAP_PATH_MAX];
            mesh_snap_path_idx(at, path, items[i].index);
            mesh_snap_path_key(p, at, "name");
            /* the earlier one is the previous item of the same name */
            mesh_snap_path_idx(first, path, items[i - 1].index);
            mesh_snap_fail(c, p, "duplicate name '%s' (also %s)", items[i].e.name, first);
            continue;
        }
        out[m++] = items[i].e;
    }
    free(items);
    s->dns.entries = out;
    s->dns.n = m;
}

const struct mesh_dns_entry *mesh_dns_lookup(const struct mesh_dns_table *t, const char *name,
                                             size_t len)
{
    if (!t || !t->n)
        return NULL;
    if (len && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return NULL;
    char key[DNS_NAME_MAX];
    for (size_t i = 0; i < len; i++)
        key[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct mesh_dns_entry *e = &t->entries[mid];
        size_t l = e->name_len < len ? e->name_len : len;
        int d = memcmp(e->name, key, l);
        if (d == 0)
            d = e->name_len < len ? -1 : e->name_len > len;
        if (d == 0)
            return e;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
