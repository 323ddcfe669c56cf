/*
 * A delta from the control plane (docs/control.md "Push"): after a change of endpoints only,
 * the proxy gets the clusters that changed, {"clusters": [...]}, each a whole cluster object
 * of the snapshot schema, and the version the snapshot has with them in place.
 */
#ifndef MESH_CORE_SNAPSHOT_DELTA_H
#define MESH_CORE_SNAPSHOT_DELTA_H

#include "core/common.h"

struct mesh_snapshot;
struct mesh_err;

/**
 * A new snapshot (one reference, caller owns): <cur> with the clusters of the delta
 * <json> (<len> bytes) in place of those of the same name, and version <version>. NULL
 * with <err> filled when the delta is malformed, names a cluster <cur> does not have, or
 * the result does not load. <cur> is unchanged.
 */
struct mesh_snapshot *mesh_snapshot_apply_delta(const struct mesh_snapshot *cur,
                                                const char *json, size_t len,
                                                const char *version, struct mesh_err *err);

#endif /* MESH_CORE_SNAPSHOT_DELTA_H */
