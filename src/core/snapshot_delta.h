/*
 * A delta from the control plane (docs/control.md "Push"): after a change of endpoints only,
 * the proxy gets the clusters that changed, {"clusters": [...]}, each a whole cluster object
 * of the snapshot schema, and the version the snapshot has with them in place.
 *
 * The new snapshot is derived, not loaded: it gets a clusters array of its own (the
 * unchanged entries copied, the changed ones parsed by the loader's own cluster parser) and
 * shares the listeners, routes and everything else with the snapshot it came from, which it
 * holds a reference to. Routes name clusters by index (mesh_snapshot_cluster), so they
 * reach the new clusters. Applying a delta thus costs what its clusters cost, not what the
 * whole snapshot costs (bench/converge: ~70 ms to load a 1,000-service snapshot).
 */
#ifndef MESH_CORE_SNAPSHOT_DELTA_H
#define MESH_CORE_SNAPSHOT_DELTA_H

#include "core/common.h"

struct mesh_snapshot;
struct mesh_err;

/* Derivations in a row before a delta is applied by a whole load instead (the chain of
 * parents, each with its clusters array, stays short; mesh_snapshot_flatten resets it). */
#define MESH_SNAPSHOT_MAX_DEPTH 8

/**
 * A new snapshot (one reference, caller owns): <cur> with the clusters of the delta <json>
 * (<len> bytes) in place of those of the same name, and version <version>. NULL with <err>
 * filled when the delta is malformed, names a cluster <cur> does not have (or one twice), or
 * a cluster does not load; <cur> is unchanged. Takes a reference to <cur> unless <cur> is
 * MESH_SNAPSHOT_MAX_DEPTH deltas deep, when the result is a whole load of the patched
 * document.
 */
struct mesh_snapshot *mesh_snapshot_apply_delta(struct mesh_snapshot *cur, const char *json,
                                                size_t len, const char *version,
                                                struct mesh_err *err);

/** mesh_snapshot_dump() of a derived snapshot: the parent's document with the delta. */
char *mesh_snapshot_delta_dump(const struct mesh_snapshot *s, bool indent);

/**
 * The same snapshot loaded whole from its document (depth 0, no parent), to let the chain
 * of a derived one go; NULL with <err> on failure (cannot happen for what loaded once).
 */
struct mesh_snapshot *mesh_snapshot_flatten(const struct mesh_snapshot *s, struct mesh_err *err);

#endif /* MESH_CORE_SNAPSHOT_DELTA_H */
