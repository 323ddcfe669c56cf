/*
 * The route index of a virtual host (built at load by mesh_snap_index_vhost,
 * stored in vh->index): the routes whose path part could match a request
 * path, found by walking two radix trees over the path (one exact, one with
 * ASCII case folded) instead of scanning the table. It only narrows the
 * candidates; router.c decides, and "first matching route wins" is kept
 * exactly because candidates are tried in route order.
 */
#ifndef MESH_CORE_ROUTE_INDEX_H
#define MESH_CORE_ROUTE_INDEX_H

#include "core/snapshot.h"

/*
 * Does route <i> of the virtual host accept the request? <path_known>: its
 * path part is already known to match (exact and prefix entries); otherwise
 * (regex entries) the path must be checked too.
 */
typedef bool (*mesh_route_accept_fn)(void *arg, size_t i, bool path_known);

/*
 * The smallest route index i among the candidates for <path> (<len> bytes,
 * the query already cut off) for which <accept> holds; <none> when there is
 * none. Allocates nothing.
 */
size_t mesh_route_index_find(const struct mesh_route_index *ix, const char *path, size_t len,
                             mesh_route_accept_fn accept, void *arg, size_t none);

/*
 * The literal text every string matched by the regex <re> starts with, into
 * <out> (at most <cap> bytes; lowercase when <caseless>); returns its length,
 * 0 when there is none or the pattern is beyond this simple scan (top-level
 * alternation, option groups, \Q...\E). Conservative: a shorter answer is
 * always allowed, a longer one never.
 */
size_t mesh_route_regex_literal(const char *re, bool caseless, char *out, size_t cap);

#endif /* MESH_CORE_ROUTE_INDEX_H */
