/*
 * The compiler: Istio and Kubernetes resources -> the snapshot of one proxy.
 *
 * Input is a loaded, validated resource set (resource.h) and a description of
 * the proxy (its namespace, workload labels, role); output is the snapshot
 * JSON of docs/snapshot.md, which mesh_snapshot_parse() accepts. Everything
 * the compiler cannot express in a snapshot yet is reported as a warning that
 * names the resource and the field; nothing is dropped silently.
 * docs/compile.md maps each Istio field to its snapshot field and lists the
 * limits.
 */
#ifndef MESH_CORE_COMPILE_H
#define MESH_CORE_COMPILE_H

#include <jansson.h>
#include "core/common.h"
#include "core/diag.h"
#include "core/resource.h"

enum mesh_node_role {
    MESH_NODE_SIDECAR = 0,
    MESH_NODE_GATEWAY = 1,
};

/* The proxy a snapshot is compiled for. Every pointer is borrowed. */
struct mesh_node {
    const char *namespace_;        /* required */
    const char *name;              /* workload name (logs, default version); may be NULL */
    const struct mesh_kv *labels;  /* the workload's labels: Sidecar, Gateway and subset choice */
    size_t n_labels;
    enum mesh_node_role role;
    const char *outbound_address;  /* sidecar outbound listener; default "127.0.0.1" */
    uint16_t outbound_port;        /* default 15001; 0 = ephemeral (tests) */
    /*
     * Sidecar inbound listener (iptables sends inbound TCP there; docs/compile.md
     * "Inbound"): NULL = "0.0.0.0":15006, or <outbound_address>:0 when the outbound
     * port is 0 (tests on loopback: several sidecars on one host).
     */
    const char *inbound_address;
    uint16_t inbound_port;         /* with inbound_address; 0 = ephemeral */
    const char *admin_address;     /* default "127.0.0.1"; NULL = no admin listener */
    uint16_t admin_port;           /* default 15000 */
    const char *gateway_address;   /* gateway listeners without Server.bind; default "0.0.0.0" */
    const char *version;           /* snapshot version; NULL = a hash of the content */
    /*
     * "region/zone/subzone" (parts may be empty or absent) for locality load
     * balancing; NULL = from the labels topology.kubernetes.io/region,
     * topology.kubernetes.io/zone and topology.istio.io/subzone (or
     * istio-locality "region.zone.subzone"); none of them = unknown.
     */
    const char *locality;
    /*
     * The mesh-wide outbound traffic policy (Istio's meshConfig
     * outboundTrafficPolicy.mode) for sidecars whose Sidecar resource sets none:
     * false = ALLOW_ANY (Istio's default), true = REGISTRY_ONLY.
     */
    bool registry_only;
};

/** Fills <node> with the defaults above (no namespace, no labels, sidecar). */
void mesh_node_init(struct mesh_node *node);

/**
 * Compiles the snapshot of <node> from <set>. On success returns MESH_OK and
 * stores a new JSON object in <*snapshot> (caller owns: json_decref). Warnings
 * (fields not enforced yet, routes left out, unresolved names) and notes go
 * to <diags>, which the caller initialised; they never make the call fail.
 * Returns MESH_EINVAL with at least one error in <diags> and <*snapshot> NULL
 * when no valid snapshot can be built (a gateway no Gateway resource selects,
 * a node without a namespace). The result is deterministic: the same set and
 * node give byte-identical JSON whatever the order the resources were loaded in,
 * and when node->version is NULL the version is a hash of everything else.
 */
int mesh_compile(const struct mesh_resource_set *set, const struct mesh_node *node,
                 json_t **snapshot, struct mesh_diags *diags);

/*
 * Services whose endpoints changed, for mesh_compile_clusters(): each entry is
 * "NAMESPACE/NAME" (a Kubernetes Service) or "NAMESPACE/" + "*" (every service of the
 * namespace, ServiceEntries included: a WorkloadEntry there changed).
 */
struct mesh_compile_only {
    const char *const *services;
    size_t n;
};

/**
 * The control plane's endpoint path (EDS-like, docs/control.md "Push"): only the
 * clusters of the sidecar <node> that belong to the services of <only>, as
 * mesh_compile() would write them (same names, same content), in a new JSON array
 * (caller owns) sorted by name. Nothing else is compiled: the caller knows that only
 * endpoints changed. Returns MESH_EINVAL for a gateway or an invalid node.
 */
int mesh_compile_clusters(const struct mesh_resource_set *set, const struct mesh_node *node,
                          const struct mesh_compile_only *only, json_t **clusters,
                          struct mesh_diags *diags);

/*
 * The version of a compiled snapshot is "c-" and 16 hex digits of
 *     hash(every member but "clusters") + the sum of hash(cluster) over the clusters
 * (64-bit wrap-around), so that replacing some clusters changes it by their hashes alone:
 * the control plane's endpoint path computes the version a full compile would give.
 */
uint64_t mesh_compile_hash(json_t *v);
/** The first term above, of a snapshot object (its "version", if any, is left out). */
uint64_t mesh_compile_rest_hash(json_t *snapshot);
/** Writes the version text for the sum <h> into <out> (24 bytes). */
void mesh_compile_version_text(uint64_t h, char out[24]);

/**
 * Parses "k=v,k2=v2" into labels allocated in one block (free(*out) frees them;
 * the strings point into the block). Returns false on a syntax error (an item
 * without '=' or with an empty key). For CLI flags.
 */
bool mesh_compile_parse_labels(const char *text, struct mesh_kv **out, size_t *n);

#endif /* MESH_CORE_COMPILE_H */
