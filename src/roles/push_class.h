/*
 * The control plane's compiled snapshots, one per proxy class (docs/control.md "Push").
 *
 * Proxies with the same namespace, labels, role, listen address and locality get the same
 * snapshot (the node's name is not in it), so a push round compiles and serialises once per
 * class, not per proxy. A class also keeps the hash of each of its clusters: after a change
 * of endpoints only (Endpoints, EndpointSlice, WorkloadEntry), mesh_push_class_endpoints()
 * recompiles just the clusters of the services touched, and the proxies get a delta (the
 * clusters that changed) instead of the whole snapshot, like Envoy's EDS next to its CDS.
 *
 * Everything here runs on the control role's worker thread.
 */
#ifndef MESH_ROLES_PUSH_CLASS_H
#define MESH_ROLES_PUSH_CLASS_H

#include <jansson.h>
#include "core/common.h"
#include "core/compile.h"

struct mesh_resource_set;

/** What a class is compiled for (borrowed by mesh_push_class_get, which copies it). */
struct mesh_push_class_node {
    const char *ns, *name;
    const char *labels_text;       /* "k=v,..." or "" */
    bool gateway;
    const char *listen_host;
    uint16_t listen_port;
    const char *locality;          /* or NULL */
    bool registry_only;            /* the mesh's outbound traffic policy is REGISTRY_ONLY */
};

struct mesh_push_class {
    struct mesh_push_class *next;
    char *key;
    /* the node, copied */
    char *ns, *name, *labels_text, *listen_host, *locality;
    struct mesh_kv *labels;
    size_t n_labels;
    bool gateway, registry_only;
    uint16_t listen_port;
    /* the snapshot */
    char *version;                 /* NULL when the last compile failed: see <why> */
    char *why;
    char *text;                    /* compact JSON; NULL after an endpoint update until asked */
    size_t text_len;
    json_t *cluster_hashes;        /* name -> mesh_compile_hash() of the cluster */
    uint64_t sum;                  /* the version's number (compile.h) */
    /* the last endpoint update: from version <delta_base>, the clusters in <delta_text> */
    char *delta_base;
    char *delta_text;              /* {"clusters":[...]} compact */
    size_t delta_len;
};

/** The class key of <n> (malloc'd). */
char *mesh_push_class_key(const struct mesh_push_class_node *n);

/**
 * The class of <n> in <cache>, compiled from <set> when it is not there yet (a NULL <set>
 * records <why_set> as the failure). Never NULL; the cache owns it.
 */
struct mesh_push_class *mesh_push_class_get(struct mesh_push_class **cache,
                                            const struct mesh_push_class_node *n,
                                            const struct mesh_resource_set *set,
                                            const char *why_set);

/**
 * The whole snapshot's text, compiled again from <set> when an endpoint update left it out
 * of date. NULL when that compile failed (c->version is NULL and c->why says why).
 */
const char *mesh_push_class_text(struct mesh_push_class *c, const struct mesh_resource_set *set);

/**
 * Applies a change of the endpoints of <only>'s services (<set> already holds it): the
 * clusters are recompiled and compared by hash; the version, the hashes and the delta
 * follow. Returns false when this class must be compiled whole instead (a gateway, a
 * compile failure, a workload of the class in a namespace of <only>, a headless service):
 * the caller drops it from the cache.
 */
bool mesh_push_class_endpoints(struct mesh_push_class *c, const struct mesh_resource_set *set,
                               const struct mesh_compile_only *only);

/** Frees a whole chain of classes (NULL is fine). */
void mesh_push_class_free_all(struct mesh_push_class *c);
/** Frees one class (unlinked by the caller). */
void mesh_push_class_free(struct mesh_push_class *c);

#endif /* MESH_ROLES_PUSH_CLASS_H */
