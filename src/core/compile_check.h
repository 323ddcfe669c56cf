/*
 * Checks a compiled snapshot the way a proxy loads it. A header of its own:
 * snapshot.h and resource_types.h both define MESH_LB_ROUND_ROBIN and
 * MESH_LB_RANDOM, so no file can include both; callers of the compiler include
 * this one instead of snapshot.h.
 */
#ifndef MESH_CORE_COMPILE_CHECK_H
#define MESH_CORE_COMPILE_CHECK_H

#include <jansson.h>
#include "core/common.h"
#include "core/status.h"

/**
 * Serialises <snapshot> and parses it with mesh_snapshot_parse(). Returns true
 * when a proxy would accept it; otherwise false with the reasons in <err>
 * (initialised here). <n_endpoints> (may be NULL) receives the number of
 * endpoints over all clusters of the loaded snapshot.
 */
bool mesh_compile_check(json_t *snapshot, struct mesh_err *err, size_t *n_endpoints);

#endif /* MESH_CORE_COMPILE_CHECK_H */
