/* Istio and Kubernetes resources: loading, validation (istioctl-like) and the typed model. */
#ifndef MESH_CORE_RESOURCE_H
#define MESH_CORE_RESOURCE_H

#include <jansson.h>
#include "core/common.h"
#include "core/diag.h"
#include "core/resource_types.h"
#include "core/status.h"

/*
 * A user's Istio YAML (or JSON) becomes a list of struct mesh_resource: the
 * object as JSON (for the store and the wire) plus a typed, validated spec
 * (resource_types.h) for the compiler. Loading never stops at the first
 * problem: every error, warning ("not enforced yet", deprecations) and note
 * (skipped kinds) goes to the set's diagnostics with FILE:LINE:COL, the
 * resource and the field path. A resource with any error is left out of the
 * set. See docs/config.md for the rules.
 */

enum mesh_kind {
    MESH_KIND_UNKNOWN = 0,
    MESH_KIND_VIRTUAL_SERVICE = 1,
    MESH_KIND_DESTINATION_RULE = 2,
    MESH_KIND_GATEWAY = 3,
    MESH_KIND_SERVICE_ENTRY = 4,
    MESH_KIND_WORKLOAD_ENTRY = 5,
    MESH_KIND_SIDECAR = 6,
    MESH_KIND_PEER_AUTHENTICATION = 7,
    MESH_KIND_AUTHORIZATION_POLICY = 8,
    MESH_KIND_REQUEST_AUTHENTICATION = 9,
    MESH_KIND_SERVICE = 10,
    MESH_KIND_ENDPOINTS = 11,
    MESH_KIND_ENDPOINT_SLICE = 12,
    MESH_KIND_COUNT = 13,
};

/** "VirtualService"...; "" for MESH_KIND_UNKNOWN. */
const char *mesh_kind_name(enum mesh_kind kind);
/**
 * Kind from a name as kubectl accepts it: "VirtualService", "virtualservice",
 * "virtualservices", short names ("vs", "dr", "gw", "se", "we", "pa", "ap", "ra",
 * "svc", "ep"). MESH_KIND_UNKNOWN when none matches.
 */
enum mesh_kind mesh_kind_parse(const char *name);
/** API group: "networking.istio.io", "security.istio.io", "" (core v1), "discovery.k8s.io". */
const char *mesh_kind_group(enum mesh_kind kind);

struct mesh_metadata {
    const char *name;
    const char *namespace_;       /* "default" when the document has none */
    bool namespace_set;           /* the document named a namespace */
    const char *resource_version; /* NULL when absent */
    struct mesh_kv *labels;
    size_t n_labels;
    struct mesh_kv *annotations;
    size_t n_annotations;
};

struct mesh_arena;

struct mesh_resource {
    enum mesh_kind kind;
    const char *api_version;      /* as written: "networking.istio.io/v1beta1" */
    struct mesh_metadata meta;
    const char *key;              /* identity "Kind/namespace/name" */
    const char *file;             /* where it was read; "-" for stdin */
    int line, col;                /* start of its document */
    json_t *object;               /* the whole document (owned) */
    json_t *spec;                 /* borrowed from <object>: its "spec" (an empty object when
                                     absent), or <object> itself for Endpoints/EndpointSlice */
    union {                       /* typed spec, never NULL for a resource in a set */
        const void *any;
        const struct mesh_virtual_service *virtual_service;
        const struct mesh_destination_rule *destination_rule;
        const struct mesh_gateway *gateway;
        const struct mesh_service_entry *service_entry;
        const struct mesh_workload_entry *workload_entry;
        const struct mesh_sidecar *sidecar;
        const struct mesh_peer_authentication *peer_authentication;
        const struct mesh_authorization_policy *authorization_policy;
        const struct mesh_request_authentication *request_authentication;
        const struct mesh_k8s_service_spec *service; /* its spec */
        const struct mesh_k8s_endpoints *endpoints;
        const struct mesh_k8s_endpoint_slice *endpoint_slice;
    } typed;
    struct mesh_arena *arena;     /* owns every string and typed struct above */
};

/** Frees one resource (NULL is fine). */
void mesh_resource_free(struct mesh_resource *r);

/* Loading flags. */
#define MESH_LOAD_FRAGMENTS 0x1u  /* a document without "kind" is skipped (note), not an error */
#define MESH_LOAD_RECURSIVE 0x2u  /* directories: descend into subdirectories */
#define MESH_LOAD_REPLACE 0x4u    /* a key already in the set is replaced without a warning
                                     (an update, not a duplicate) */

struct mesh_resource_set {
    struct mesh_resource **items; /* valid resources in load order; the set owns them */
    size_t n, cap;
    struct mesh_diags diags;      /* every error, warning and note of every load */
    size_t n_docs;                /* documents seen (empty ones not counted) */
    size_t n_valid;               /* documents of supported kinds that validated (a key defined
                                     twice counts twice, but is in <items> once) */
    size_t n_invalid;             /* documents of supported kinds rejected with errors */
    size_t n_skipped;             /* other kinds and fragments */
    json_t *index;                /* key -> position in <items> (private) */
};

void mesh_resource_set_init(struct mesh_resource_set *set);
/** Frees the resources, the diagnostics and the index. */
void mesh_resource_set_free(struct mesh_resource_set *set);

/**
 * Loads every document of <len> bytes at <buf>, reported as file <name>.
 * Valid resources are added to <set> (a later document with the same key
 * replaces an earlier one, with a warning). Returns MESH_OK, or MESH_EINVAL
 * when this call recorded at least one error.
 */
int mesh_resource_load_buffer(struct mesh_resource_set *set, const char *buf, size_t len,
                              const char *name, unsigned flags);
/** One file; "-" reads standard input. MESH_EIO (also recorded) when unreadable. */
int mesh_resource_load_file(struct mesh_resource_set *set, const char *path, unsigned flags);
/** Every *.yaml, *.yml and *.json of a directory, in byte order of their names. */
int mesh_resource_load_dir(struct mesh_resource_set *set, const char *path, unsigned flags);
/** mesh_resource_load_dir() for a directory, mesh_resource_load_file() otherwise. */
int mesh_resource_load_path(struct mesh_resource_set *set, const char *path, unsigned flags);

/** The resource with identity <key> ("Kind/namespace/name"), or NULL. Borrowed. */
const struct mesh_resource *mesh_resource_set_find(const struct mesh_resource_set *set,
                                                   const char *key);

/**
 * Removes and frees the resource with identity <key>; false when there is none. Positions
 * in <items> of other resources may change (the compiler sorts what it reads).
 */
bool mesh_resource_set_remove(struct mesh_resource_set *set, const char *key);

/** Largest file the loaders read (config, not data). */
#define MESH_RESOURCE_MAX_FILE (64u << 20)

#endif /* MESH_CORE_RESOURCE_H */
