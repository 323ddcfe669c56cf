/*
 * Route index (route_index.h): built once per virtual host at load, read by
 * every request.
 *
 * Each route is filed under a key in one of two radix trees: the case-sensitive
 * one, or the folded one (keys in ASCII lowercase, walked with the path folded)
 * for ignore_case routes. An exact route is filed under its path at the node
 * where the key ends ("exact" list); a prefix route under its prefix ("pre"
 * list); a regex route under the literal text its matches must start with
 * ("pre" list, flagged: the regex still has to run), which is "" (the root,
 * tried for every path) when it has none.
 *
 * A lookup walks each tree along the path once; every list met on the way
 * holds candidates in route order. Since only the smallest accepted index
 * counts, each list is scanned only below the best index found so far.
 * Neither the walk nor the lists grow with the table, only with the path and
 * the routes that can actually match it.
 */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include "core/route_index.h"
#include "core/snapshot-int.h"

/* ---- the index as the router reads it ------------------------------------------- */

struct ri_node {
    const char *edge;              /* bytes from the parent to here; edge[0] is unique among siblings */
    uint32_t edge_len;
    uint32_t kids, n_kids;         /* children: nodes[kids .. kids + n_kids), sorted by edge[0] */
    uint32_t pre, n_pre;           /* ids[pre ..]: keys ending here, prefix semantics */
    uint32_t exact, n_exact;       /* ids[exact ..]: keys ending here, exact semantics */
};

/* An id in the lists: (route index << 1) | 1 when the route's path must still be checked. */
struct ri_tree {
    const struct ri_node *nodes;   /* nodes[0] is the root (empty edge) */
    bool fold;                     /* keys are lowercase; walk with the path folded */
};

struct mesh_route_index {
    struct ri_tree tree[2];        /* case-sensitive, folded */
    const uint32_t *ids;
};

static inline unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static inline void scan(const uint32_t *ids, uint32_t n, size_t *best,
                        mesh_route_accept_fn accept, void *arg)
{
    for (uint32_t k = 0; k < n; k++) {
        size_t i = ids[k] >> 1;
        if (i >= *best)
            return; /* lists are in route order: nothing below the best one is left */
        if (accept(arg, i, !(ids[k] & 1))) {
            *best = i;
            return;
        }
    }
}

static const struct ri_node *child(const struct ri_node *nodes, const struct ri_node *n,
                                   unsigned char c)
{
    uint32_t lo = n->kids, hi = n->kids + n->n_kids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        unsigned char e = (unsigned char)nodes[mid].edge[0];
        if (e == c)
            return &nodes[mid];
        if (e < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void walk(const struct mesh_route_index *ix, const struct ri_tree *t, const char *path,
                 size_t len, size_t *best, mesh_route_accept_fn accept, void *arg)
{
    const struct ri_node *n = &t->nodes[0];
    size_t pos = 0;
    for (;;) {
        scan(ix->ids + n->pre, n->n_pre, best, accept, arg);
        if (pos == len) {
            scan(ix->ids + n->exact, n->n_exact, best, accept, arg);
            return;
        }
        unsigned char c = (unsigned char)path[pos];
        n = child(t->nodes, n, t->fold ? fold(c) : c);
        if (!n || n->edge_len > len - pos)
            return;
        for (uint32_t j = 1; j < n->edge_len; j++) {
            unsigned char p = (unsigned char)path[pos + j];
            if ((unsigned char)n->edge[j] != (t->fold ? fold(p) : p))
                return;
        }
        pos += n->edge_len;
    }
}

size_t mesh_route_index_find(const struct mesh_route_index *ix, const char *path, size_t len,
                             mesh_route_accept_fn accept, void *arg, size_t none)
{
    size_t best = none;
    if (!path)
        len = 0;
    for (size_t t = 0; t < 2; t++)
        walk(ix, &ix->tree[t], path, len, &best, accept, arg);
    return best;
}

/* ---- literal prefix of a regex ---------------------------------------------------- */

/* Is there something in <re> this scan cannot follow, or an alternation at the top level? */
static bool regex_too_hard(const char *re)
{
    int depth = 0;
    bool in_class = false;
    for (const char *p = re; *p; p++) {
        if (*p == '\\') {
            if (p[1] == 'Q' || p[1] == 'E')
                return true; /* quoting: the scan would misread what is inside */
            if (p[1])
                p++;
            continue;
        }
        if (in_class) {
            if (*p == '[' && p[1] == ':')
                return true; /* POSIX classes nest brackets */
            if (*p == ']')
                in_class = false;
            continue;
        }
        if (*p == '[') {
            in_class = true;
            if (p[1] == '^')
                p++;
            if (p[1] == ']')
                p++; /* a leading ']' is a literal */
        } else if (*p == '(') {
            /* option settings: (?x) makes '#' a comment and whitespace meaningless */
            if (p[1] == '?' || p[1] == '*') {
                for (const char *q = p + 2; *q && *q != ')' && *q != ':'; q++)
                    if (*q == 'x')
                        return true;
            }
            depth++;
        } else if (*p == ')') {
            depth--;
        } else if (*p == '|' && depth <= 0) {
            return true;
        }
    }
    return false;
}

size_t mesh_route_regex_literal(const char *re, bool caseless, char *out, size_t cap)
{
    if (!re || regex_too_hard(re))
        return 0;
    const char *p = re;
    if (*p == '^')
        p++; /* the pattern is anchored anyway */
    size_t n = 0;
    while (*p && n < cap) {
        unsigned char ch = (unsigned char)*p;
        const char *next = p + 1;
        if (ch == '\\') {
            unsigned char e = (unsigned char)p[1];
            /* an escaped punctuation character is itself; "\d", "\x41", "\1"... are not */
            if (e < 0x21 || e > 0x7e || (e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
                (e >= 'A' && e <= 'Z'))
                break;
            ch = e;
            next = p + 2;
        } else if (ch < 0x21 || ch > 0x7e || strchr("^$.[|()?*+{", ch)) {
            break; /* a metacharacter, or a byte of a multibyte character */
        }
        if (*next == '?' || *next == '*' || *next == '{')
            break; /* the atom may match zero times */
        if (caseless) {
            ch = fold(ch);
            /* UTF-8 caseless: 'k' also matches U+212A KELVIN SIGN, 's' U+017F LONG S */
            if (ch == 'k' || ch == 's')
                break;
        }
        out[n++] = (char)ch;
        if (*next == '+')
            break; /* one is certain, what follows is not */
        p = next;
    }
    return n;
}

/* ---- building ---------------------------------------------------------------------- */

struct idvec {
    uint32_t *v;
    size_t n, cap;
};

struct bnode {
    unsigned char label;
    uint32_t *kids;                /* indices into builder.nodes */
    size_t n_kids, cap_kids;
    struct idvec pre, exact;
};

struct builder {
    struct bnode *nodes;
    size_t n, cap;
    size_t n_ids;
};

static void *grow(void *v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return v;
    size_t c = *cap ? *cap * 2 : 4;
    while (c < need)
        c *= 2;
    void *nv = realloc(v, c * size);
    if (!nv)
        mesh_snap_oom();
    *cap = c;
    return nv;
}

static uint32_t new_node(struct builder *b, unsigned char label)
{
    b->nodes = grow(b->nodes, &b->cap, b->n + 1, sizeof(*b->nodes));
    memset(&b->nodes[b->n], 0, sizeof(b->nodes[b->n]));
    b->nodes[b->n].label = label;
    return (uint32_t)b->n++;
}

static void insert(struct builder *b, const char *key, size_t len, bool exact, uint32_t id)
{
    uint32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        uint32_t next = UINT32_MAX;
        for (size_t k = 0; k < b->nodes[n].n_kids; k++) {
            if (b->nodes[b->nodes[n].kids[k]].label == c) {
                next = b->nodes[n].kids[k];
                break;
            }
        }
        if (next == UINT32_MAX) {
            next = new_node(b, c); /* may move b->nodes */
            struct bnode *bn = &b->nodes[n];
            bn->kids = grow(bn->kids, &bn->cap_kids, bn->n_kids + 1, sizeof(*bn->kids));
            bn->kids[bn->n_kids++] = next;
        }
        n = next;
    }
    struct idvec *v = exact ? &b->nodes[n].exact : &b->nodes[n].pre;
    v->v = grow(v->v, &v->cap, v->n + 1, sizeof(*v->v));
    v->v[v->n++] = id;
    b->n_ids++;
}

static void sort_kids(const struct builder *b, struct bnode *bn)
{
    /* insertion sort: at most 256 children */
    for (size_t i = 1; i < bn->n_kids; i++) {
        uint32_t k = bn->kids[i];
        size_t j = i;
        while (j > 0 && b->nodes[bn->kids[j - 1]].label > b->nodes[k].label) {
            bn->kids[j] = bn->kids[j - 1];
            j--;
        }
        bn->kids[j] = k;
    }
}

static uint32_t put_ids(uint32_t *ids, size_t *used, const struct idvec *v)
{
    uint32_t at = (uint32_t)*used;
    if (v->n)
        memcpy(ids + *used, v->v, v->n * sizeof(*ids));
    *used += v->n;
    return at;
}

/*
 * Flattens the byte trie of <b> into a radix tree in the arena: chains of
 * nodes with one child and no entries become one edge, and the children of a
 * node are contiguous and sorted, so a lookup binary-searches them.
 */
static void flatten(struct mesh_snap_ctx *c, struct builder *b, struct ri_tree *t, uint32_t *ids,
                    size_t *used)
{
    struct ri_node *out = calloc(b->n, sizeof(*out));
    uint32_t *src = calloc(b->n, sizeof(*src));
    char *edge = malloc(b->n + 1);
    if (!out || !src || !edge)
        mesh_snap_oom();
    size_t n_out = 1;
    out[0].edge = "";
    src[0] = 0;
    for (size_t j = 0; j < n_out; j++) {
        struct bnode *bn = &b->nodes[src[j]];
        out[j].pre = put_ids(ids, used, &bn->pre);
        out[j].n_pre = (uint32_t)bn->pre.n;
        out[j].exact = put_ids(ids, used, &bn->exact);
        out[j].n_exact = (uint32_t)bn->exact.n;
        sort_kids(b, bn);
        out[j].kids = (uint32_t)n_out;
        out[j].n_kids = (uint32_t)bn->n_kids;
        for (size_t k = 0; k < bn->n_kids; k++) {
            uint32_t x = bn->kids[k];
            size_t el = 0;
            edge[el++] = (char)b->nodes[x].label;
            while (b->nodes[x].n_kids == 1 && !b->nodes[x].pre.n && !b->nodes[x].exact.n) {
                x = b->nodes[x].kids[0];
                edge[el++] = (char)b->nodes[x].label;
            }
            out[n_out].edge = mesh_snap_sdup(c, edge, el);
            out[n_out].edge_len = (uint32_t)el;
            src[n_out++] = x;
        }
    }
    struct ri_node *nodes = mesh_snap_zalloc(c, n_out, sizeof(*nodes));
    memcpy(nodes, out, n_out * sizeof(*nodes));
    t->nodes = nodes;
    free(out);
    free(src);
    free(edge);
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->nodes[i].kids);
        free(b->nodes[i].pre.v);
        free(b->nodes[i].exact.v);
    }
    free(b->nodes);
}

void mesh_snap_index_vhost(struct mesh_snap_ctx *c, struct mesh_vhost *vh)
{
    vh->index = NULL;
    /* one route is its own only candidate: the scan tries just it, so no index to keep
     * (a sidecar has a one-route virtual host per service of the mesh) */
    if (c->err->total > 0 || vh->n_routes <= 1 || vh->n_routes > UINT32_MAX / 2)
        return; /* the snapshot is rejected anyway (or scanned in order) */

    struct builder b[2] = {{0}};
    new_node(&b[0], 0);
    new_node(&b[1], 0);
    char *key = NULL;
    size_t key_cap = 0;
    for (size_t i = 0; i < vh->n_routes; i++) {
        const struct mesh_route_match *m = &vh->routes[i].match;
        key = grow(key, &key_cap, m->path_len + 1, 1);
        size_t klen;
        bool check_path = false, exact = false;
        if (m->kind == MESH_MATCH_REGEX) {
            klen = mesh_route_regex_literal(m->path, m->ignore_case, key, m->path_len);
            check_path = true;
        } else {
            klen = m->path_len;
            memcpy(key, m->path, klen);
            exact = m->kind == MESH_MATCH_EXACT;
        }
        if (m->ignore_case)
            for (size_t k = 0; k < klen; k++)
                key[k] = (char)fold((unsigned char)key[k]);
        insert(&b[m->ignore_case], key, klen, exact, (uint32_t)(i << 1 | check_path));
    }
    free(key);

    struct mesh_route_index *ix = mesh_snap_zalloc(c, 1, sizeof(*ix));
    uint32_t *ids = mesh_snap_zalloc(c, b[0].n_ids + b[1].n_ids, sizeof(*ids));
    size_t used = 0;
    for (int t = 0; t < 2; t++) {
        ix->tree[t].fold = t == 1;
        flatten(c, &b[t], &ix->tree[t], ids, &used);
        builder_free(&b[t]);
    }
    ix->ids = ids;
    vh->index = ix;
}
