/*
 * Route matches of a snapshot (docs/snapshot.md, "match"): what a request
 * must look like for a route to apply. Parsed by snapshot_match.c, evaluated
 * by router.c.
 */
#ifndef MESH_CORE_SNAPSHOT_MATCH_H
#define MESH_CORE_SNAPSHOT_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mesh_path_match {
    MESH_MATCH_PREFIX = 0,
    MESH_MATCH_EXACT = 1,
};

struct mesh_route_match {
    enum mesh_path_match kind;
    const char *path;              /* prefix or exact path */
    size_t path_len;
};

#endif /* MESH_CORE_SNAPSHOT_MATCH_H */
