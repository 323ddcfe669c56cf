/*
 * The control plane's per-class snapshots and their endpoint updates (push_class.h).
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/compile.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/resource.h"
#include "roles/push_class.h"

char *mesh_push_class_key(const struct mesh_push_class_node *n)
{
    size_t len = strlen(n->ns) + strlen(n->labels_text) + strlen(n->listen_host) +
                 (n->locality ? strlen(n->locality) : 0) + (n->gateway ? strlen(n->name) : 0) +
                 32;
    char *k = mesh_xmalloc(len);
    /* a gateway's error names it: keep gateways apart */
    snprintf(k, len, "%s|%s|%c|%s:%u|%s|%s", n->ns, n->labels_text, n->gateway ? 'g' : 's',
             n->listen_host, (unsigned)n->listen_port, n->locality ? n->locality : "",
             n->gateway ? n->name : "");
    return k;
}

static void to_node(const struct mesh_push_class *c, struct mesh_node *node)
{
    mesh_node_init(node);
    node->namespace_ = c->ns;
    node->name = c->name;
    node->labels = c->labels;
    node->n_labels = c->n_labels;
    node->role = c->gateway ? MESH_NODE_GATEWAY : MESH_NODE_SIDECAR;
    node->outbound_address = c->listen_host;
    node->outbound_port = c->listen_port;
    node->admin_address = NULL; /* the proxy's admin is its own flag, not the mesh's */
    node->locality = c->locality;
    node->registry_only = c->registry_only;
}

/* The errors of <d>, "; "-separated, into <why>. */
static void diag_errors(const struct mesh_diags *d, char *why, size_t size)
{
    size_t off = 0;
    why[0] = '\0';
    for (size_t i = 0; i < d->n && off < size - 2; i++) {
        if (d->v[i].severity != MESH_DIAG_ERROR)
            continue;
        if (off)
            off += (size_t)snprintf(why + off, size - off, "; ");
        if (off < size)
            off += mesh_diag_format(&d->v[i], why + off, size - off);
    }
    if (!why[0])
        snprintf(why, size, "the compiler failed");
}

static void forget_delta(struct mesh_push_class *c)
{
    free(c->delta_base);
    free(c->delta_text);
    c->delta_base = c->delta_text = NULL;
    c->delta_len = 0;
}

/* Compiles the whole snapshot: version, text and cluster hashes, or <why>. */
static void compile_whole(struct mesh_push_class *c, const struct mesh_resource_set *set,
                          const char *why_set)
{
    char *was = c->version; /* to check the endpoint path against */
    c->version = NULL;
    free(c->text);
    c->text = NULL;
    free(c->why);
    c->why = NULL;
    json_decref(c->cluster_hashes);
    c->cluster_hashes = NULL;
    char why[2048] = "";
    json_t *snap = NULL;
    if (set) {
        struct mesh_node node;
        to_node(c, &node);
        /* the content version is summed below with the cluster hashes this class keeps:
         * a placeholder spares the compiler hashing the tree a first time */
        node.version = "-";
        struct mesh_diags d;
        mesh_diags_init(&d);
        if (mesh_compile(set, &node, &snap, &d) != MESH_OK)
            diag_errors(&d, why, sizeof(why));
        mesh_diags_free(&d);
    } else {
        snprintf(why, sizeof(why), "the store: %s", why_set);
    }
    if (snap) {
        c->sum = mesh_compile_rest_hash(snap);
        c->cluster_hashes = json_object();
        size_t i;
        json_t *cl;
        json_array_foreach(json_object_get(snap, "clusters"), i, cl) {
            uint64_t h = mesh_compile_hash(cl);
            c->sum += h;
            const char *name = json_string_value(json_object_get(cl, "name"));
            json_object_set_new(c->cluster_hashes, name ? name : "", json_integer((json_int_t)h));
        }
        char version[24];
        mesh_compile_version_text(c->sum, version); /* what mesh_compile would have written */
        json_object_set_new(snap, "version", json_string(version));
        c->text = json_dumps(snap, JSON_COMPACT);
        if (c->text) {
            c->version = mesh_xstrdup(version);
            c->text_len = strlen(c->text);
        } else {
            snprintf(why, sizeof(why), "out of memory serialising the snapshot");
        }
        json_decref(snap);
    }
    if (c->version && was && c->delta_base && strcmp(was, c->version) != 0) {
        /* the endpoint path and the compiler disagree: a bug, but the full compile wins */
        mesh_log_warn("push: class %s: the endpoint update gave version %s, a whole compile %s",
                      c->key, was, c->version);
        forget_delta(c);
    }
    free(was);
    if (!c->version) {
        c->why = mesh_xstrdup(why);
        forget_delta(c);
    }
}

struct mesh_push_class *mesh_push_class_get(struct mesh_push_class **cache,
                                            const struct mesh_push_class_node *n,
                                            const struct mesh_resource_set *set,
                                            const char *why_set)
{
    char *key = mesh_push_class_key(n);
    for (struct mesh_push_class *c = *cache; c; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            free(key);
            return c;
        }
    }
    struct mesh_push_class *c = mesh_xcalloc(1, sizeof(*c));
    c->key = key;
    c->ns = mesh_xstrdup(n->ns);
    c->name = mesh_xstrdup(n->name);
    c->labels_text = mesh_xstrdup(n->labels_text);
    /* the watcher checked the syntax already */
    (void)mesh_compile_parse_labels(c->labels_text, &c->labels, &c->n_labels);
    c->gateway = n->gateway;
    c->registry_only = n->registry_only;
    c->listen_host = mesh_xstrdup(n->listen_host);
    c->listen_port = n->listen_port;
    c->locality = n->locality ? mesh_xstrdup(n->locality) : NULL;
    c->next = *cache;
    *cache = c;
    compile_whole(c, set, why_set);
    return c;
}

const char *mesh_push_class_text(struct mesh_push_class *c, const struct mesh_resource_set *set)
{
    if (!c->text && c->version)
        compile_whole(c, set, "no resources");
    return c->text;
}

/* A workload of this class in a namespace of <only>: its inbound listener may follow the
 * endpoints (a named targetPort as Kubernetes resolved it), so compile it whole. */
static bool own_namespace_touched(const struct mesh_push_class *c,
                                  const struct mesh_compile_only *only)
{
    if (!c->n_labels)
        return false; /* no labels: no Service selects it, no inbound listener */
    size_t ns_len = strlen(c->ns);
    for (size_t i = 0; i < only->n; i++)
        if (strncmp(only->services[i], c->ns, ns_len) == 0 && only->services[i][ns_len] == '/')
            return true;
    return false;
}

bool mesh_push_class_endpoints(struct mesh_push_class *c, const struct mesh_resource_set *set,
                               const struct mesh_compile_only *only)
{
    if (c->gateway || !c->version || !c->cluster_hashes || own_namespace_touched(c, only))
        return false;
    struct mesh_node node;
    to_node(c, &node);
    struct mesh_diags d;
    mesh_diags_init(&d);
    json_t *clusters = NULL;
    int rc = mesh_compile_clusters(set, &node, only, &clusters, &d);
    mesh_diags_free(&d);
    if (rc != MESH_OK)
        return false;
    uint64_t sum = c->sum;
    json_t *changed = json_array(), *hashes = json_object();
    bool ok = true;
    size_t i;
    json_t *cl;
    json_array_foreach(clusters, i, cl) {
        const char *name = json_string_value(json_object_get(cl, "name"));
        json_t *old = name ? json_object_get(c->cluster_hashes, name) : NULL;
        if (!old) { /* a new cluster is not an endpoint change */
            ok = false;
            break;
        }
        uint64_t h = mesh_compile_hash(cl), was = (uint64_t)json_integer_value(old);
        if (h == was)
            continue;
        sum += h - was;
        json_object_set_new(hashes, name, json_integer((json_int_t)h));
        json_array_append(changed, cl);
    }
    json_decref(clusters);
    if (!ok) {
        json_decref(changed);
        json_decref(hashes);
        return false;
    }
    if (json_array_size(changed)) {
        json_object_update(c->cluster_hashes, hashes);
        json_t *body = json_pack("{s:o}", "clusters", changed);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text) {
            json_decref(hashes);
            return false;
        }
        forget_delta(c);
        c->delta_base = c->version;
        c->delta_text = text;
        c->delta_len = strlen(text);
        c->sum = sum;
        c->version = mesh_xmalloc(24);
        mesh_compile_version_text(sum, c->version);
        free(c->text); /* compiled again when a proxy needs the whole snapshot */
        c->text = NULL;
        c->text_len = 0;
    } else {
        json_decref(changed);
    }
    json_decref(hashes);
    return true;
}

void mesh_push_class_free(struct mesh_push_class *c)
{
    if (!c)
        return;
    free(c->key);
    free(c->ns);
    free(c->name);
    free(c->labels_text);
    free(c->labels);
    free(c->listen_host);
    free(c->locality);
    free(c->version);
    free(c->why);
    free(c->text);
    json_decref(c->cluster_hashes);
    forget_delta(c);
    free(c);
}

void mesh_push_class_free_all(struct mesh_push_class *c)
{
    while (c) {
        struct mesh_push_class *next = c->next;
        mesh_push_class_free(c);
        c = next;
    }
}
