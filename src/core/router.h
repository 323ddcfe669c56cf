/* Route selection: virtual host by authority, then the first matching route. */
#ifndef MESH_CORE_ROUTER_H
#define MESH_CORE_ROUTER_H

#include "core/snapshot.h"

/**
 * Virtual host for <authority> (<len> bytes, any case, an optional ":port" is
 * ignored). Order: exact domain, longest "*.suffix", longest "prefix.*", "*".
 * Returns NULL when none matches. Borrowed from <rc>.
 */
const struct mesh_vhost *mesh_router_vhost(const struct mesh_route_config *rc,
                                           const char *authority, size_t len);

/**
 * First route of <vh> whose match accepts <path> (<len> bytes; the query
 * string, if any, is not part of the match). NULL when none matches.
 */
const struct mesh_route *mesh_router_route(const struct mesh_vhost *vh, const char *path,
                                           size_t len);

/** Both steps. NULL when no virtual host or no route matches. */
const struct mesh_route *mesh_router_match(const struct mesh_route_config *rc,
                                           const char *authority, size_t alen, const char *path,
                                           size_t plen);

#endif /* MESH_CORE_ROUTER_H */
