/* Route selection: virtual host by authority, then the first matching route. */
#ifndef MESH_CORE_ROUTER_H
#define MESH_CORE_ROUTER_H

#include <sys/socket.h>
#include "core/snapshot.h"

struct mesh_arena;
struct mesh_headers; /* proxy-int.h */
struct pcre2_real_match_data_8; /* pcre2_match_data with PCRE2_CODE_UNIT_WIDTH 8 */

/*
 * What the router sees of a request. Every pointer is borrowed for the call;
 * a NULL string is an absent value (a method/scheme/authority match then
 * fails).
 */
struct mesh_router_req {
    const char *method;
    size_t method_len;
    const char *scheme;            /* "http" / "https" */
    size_t scheme_len;
    const char *authority;         /* :authority or Host, as sent (port included) */
    size_t authority_len;
    const char *path;              /* origin form with the query: "/a/b?x=1" */
    size_t path_len;
    const struct mesh_headers *headers; /* NULL: none */
    /* The connection's original destination port (SO_ORIGINAL_DST, else the listener's):
     * match.destination_port. 0 = unknown (a route with destination_port then fails). */
    uint16_t dst_port;
    /* Scratch for regex match data and a header sent several times (its values joined
     * with ","): the stream arena. NULL: malloc, freed before the call returns. */
    struct mesh_arena *arena;
};

/**
 * Virtual host for <authority> (<len> bytes, any case, an optional ":port" is
 * ignored). Order: exact domain, longest "*.suffix", longest "prefix.*", "*".
 * Returns NULL when none matches. Borrowed from <rc>.
 */
const struct mesh_vhost *mesh_router_vhost(const struct mesh_route_config *rc,
                                           const char *authority, size_t len);

/**
 * First route of <vh> whose match accepts <rq> (path, method, scheme,
 * authority, headers, query parameters; docs/snapshot.md "match"), through
 * the virtual host's route index when it has one. NULL when none matches.
 */
const struct mesh_route *mesh_router_route(const struct mesh_vhost *vh,
                                           const struct mesh_router_req *rq);

/** The same by trying every route in order, without the index: the reference for tests. */
const struct mesh_route *mesh_router_route_scan(const struct mesh_vhost *vh,
                                                const struct mesh_router_req *rq);

/** Does route <r> accept <rq>? (Every condition of its match.) */
bool mesh_router_accepts(const struct mesh_route *r, const struct mesh_router_req *rq);

/** The port of a connection's destination <dst> (<len> 0: unknown): 0 when unknown. */
uint16_t mesh_router_dst_port(const struct sockaddr_storage *dst, socklen_t len);

/** Both steps: the virtual host by rq->authority, then the route. NULL when either fails. */
const struct mesh_route *mesh_router_match(const struct mesh_route_config *rc,
                                           const struct mesh_router_req *rq);

/**
 * Does string match <m> (snapshot_match.h, parsed by mesh_snap_parse_str_match)
 * accept the <n> bytes of <v>? A regex's match data comes from <a> (the
 * stream arena: no malloc per request), or malloc (freed here) when NULL.
 */
bool mesh_str_match_holds(const struct mesh_str_match *m, const char *v, size_t n,
                          struct mesh_arena *a);

/**
 * Match data for <re> (room for all its groups; NULL: one pair, enough to
 * say whether any pattern matches) allocated in <a>, released with it. With
 * <a> NULL: malloc, the caller frees it with pcre2_match_data_free. NULL when
 * out of memory.
 */
struct pcre2_real_match_data_8 *mesh_regex_match_data(struct mesh_arena *a,
                                                      const struct mesh_regex *re);

#endif /* MESH_CORE_ROUTER_H */
