/*
 * Inside the snapshot loader: the parse context and the field helpers shared
 * by snapshot.c (root, admin, timeouts, the document), snapshot_listener.c,
 * snapshot_cluster.c, snapshot_route.c and snapshot_match.c. Each helper
 * reports a problem with its JSON path through mesh_snap_fail() and lets the
 * walk go on, so one run lists every error. Nothing outside the loader (and
 * the filter types' parse callbacks) includes this file.
 */
#ifndef MESH_CORE_SNAPSHOT_INT_H
#define MESH_CORE_SNAPSHOT_INT_H

#include <jansson.h>
#include "core/common.h"
#include "core/snapshot.h"
#include "core/status.h"

#define MESH_SNAP_PATH_MAX 160 /* = sizeof(struct mesh_err_entry.path) */

struct mesh_snap_ctx {
    struct mesh_err *err;
    struct mesh_arena *arena;      /* the snapshot's: everything parsed lives here */
    struct mesh_snapshot *snap;
    json_t *cluster_names;         /* name -> index into snapshot->clusters */
    json_t *rc_names;              /* name -> index into snapshot->route_configs */
};

/* Setup path: allocation failure aborts with a message. */
_Noreturn void mesh_snap_oom(void);
void mesh_snap_fail(struct mesh_snap_ctx *c, const char *path, const char *fmt, ...)
    MESH_PRINTF(3, 4);
/* "base.key" and "base[i]" into <dst> (MESH_SNAP_PATH_MAX bytes). */
void mesh_snap_path_key(char *dst, const char *base, const char *key);
void mesh_snap_path_idx(char *dst, const char *base, size_t i);
/* Arena allocations (zeroed); zalloc of 0 elements returns NULL. */
void *mesh_snap_zalloc(struct mesh_snap_ctx *c, size_t n, size_t size);
char *mesh_snap_sdup(struct mesh_snap_ctx *c, const char *s, size_t n);
/* Runs <fn>(<arg>) when the snapshot is freed (compiled regexes and the like). */
void mesh_snap_defer(struct mesh_snap_ctx *c, void (*fn)(void *), void *arg);

/* Every key of <obj> must be in the NULL-terminated <allowed> list. */
void mesh_snap_check_fields(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                            const char *const *allowed);
/*
 * Element <i> of array <arr> (at <path>), which must be an object whose keys
 * are all in <fields> (NULL: not checked). Its path goes to <pi>
 * (MESH_SNAP_PATH_MAX bytes). NULL after reporting one that is not an object.
 */
json_t *mesh_snap_array_object(struct mesh_snap_ctx *c, json_t *arr, size_t i, const char *path,
                               const char *const *fields, char *pi);
/* The member or NULL; reports a missing required one. */
json_t *mesh_snap_member(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                         bool required);
/* Typed members: NULL/false when absent (reported when required) or of the wrong type
 * (reported). get_object/get_array leave the member's path in <p>. */
json_t *mesh_snap_get_object(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                             const char *key, bool required, char *p);
json_t *mesh_snap_get_array(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                            const char *key, bool required, char *p);
const char *mesh_snap_get_string(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                                 const char *key, bool required, bool nonempty);
/* Integer in [min, max]; <out> keeps its default when absent or invalid. */
bool mesh_snap_get_uint(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                        bool required, json_int_t min, json_int_t max, uint32_t *out);
bool mesh_snap_get_duration(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                            const char *key, uint32_t *out);
/* Boolean; <out> keeps its default when absent or invalid. */
bool mesh_snap_get_bool(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                        bool *out);
/* Number (integer or real) in [min, max]; <out> keeps its default when absent or invalid. */
bool mesh_snap_get_number(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                          const char *key, double min, double max, double *out);
/* A percentage 0..100 (integer or real) as millionths of one (0..1000000): fault, mirror. */
bool mesh_snap_get_percent(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                           const char *key, uint32_t *out);

bool mesh_snap_is_unspecified(const struct sockaddr_storage *ss);
/* "127.0.0.1:8080" / "[::1]:8080", in the arena. */
const char *mesh_snap_sockaddr_key(struct mesh_snap_ctx *c, const struct sockaddr_storage *ss);
/* "address" and "port" members of a listener, admin or endpoint object. */
bool mesh_snap_get_addr(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                        bool allow_zero_port, const char **address, uint16_t *port,
                        struct sockaddr_storage *ss, socklen_t *salen);
/* Registers <name> -> <index> in <names>; a duplicate is reported with both positions. */
bool mesh_snap_register_name(struct mesh_snap_ctx *c, json_t *names, const char *name,
                             size_t index, const char *path, const char *what);
/* Cluster named <name> (clusters are parsed first), or NULL with an error at path.key. */
const struct mesh_cluster *mesh_snap_find_cluster(struct mesh_snap_ctx *c, const char *name,
                                                  const char *path, const char *key);

/* The parts, in the order the root parses them (referenced objects first). */
void mesh_snap_parse_clusters(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                              const char *path);
/* One cluster object into <cl>, whose index is set (a delta: snapshot_delta.c). */
void mesh_snap_parse_cluster(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *o,
                             const char *path);                     /* snapshot_cluster.c */
void mesh_snap_parse_route_configs(struct mesh_snap_ctx *c, struct mesh_snapshot *s,
                                   json_t *arr, const char *path);   /* snapshot_route.c */
void mesh_snap_parse_match(struct mesh_snap_ctx *c, struct mesh_route_match *m, json_t *o,
                           const char *path);                       /* snapshot_match.c */
/*
 * Element <i> of a "weighted_clusters" array <arr> at <path> (routes and tcp
 * routes): {"name": a cluster, "weight": 0..1000000} plus what else <fields>
 * allows, which the caller reads from the returned object (path in <pi>).
 * Fills <cluster> (NULL when unknown) and <weight>; NULL after reporting an
 * element that is not an object. (snapshot_route.c)
 */
json_t *mesh_snap_weighted_entry(struct mesh_snap_ctx *c, json_t *arr, size_t i, const char *path,
                                 const char *const *fields, char *pi,
                                 const struct mesh_cluster **cluster, uint32_t *weight);

/* Regexes and string matches, shared with the filters (CORS, rewrite). snapshot_match.c */
#define MESH_SNAP_RE_WHOLE 1u      /* the whole value: anchored at both ends */
#define MESH_SNAP_RE_CASELESS 2u
/*
 * Compiles <src> (PCRE2, UTF-8: a subject that is not valid UTF-8 simply
 * does not match; JIT when available) with MESH_SNAP_RE_* <flags>. Reports a
 * bad pattern at <path> with PCRE2's message and offset ("invalid regex: ...").
 * The code is freed with the snapshot.
 */
const struct mesh_regex *mesh_snap_compile_regex(struct mesh_snap_ctx *c, const char *src,
                                                 unsigned flags, const char *path);
/*
 * The string match in <o> (exactly one of exact/prefix/regex, plus present:
 * true when <allow_present>) into <m>; a regex matches the whole value.
 * False after reporting a problem. Evaluated by mesh_str_match_holds (router.h).
 */
bool mesh_snap_parse_str_match(struct mesh_snap_ctx *c, struct mesh_str_match *m, json_t *o,
                               const char *path, bool allow_present);
/* route.retry and route.mirrors (snapshot_retry.c); NULL after reporting a problem. */
const struct mesh_retry_policy *mesh_snap_parse_retry(struct mesh_snap_ctx *c, json_t *v,
                                                      const char *path);
struct mesh_mirror *mesh_snap_parse_mirrors(struct mesh_snap_ctx *c, json_t *v, const char *path,
                                            size_t *n);
/* After a virtual host's routes are parsed: builds its route index (router.c). */
void mesh_snap_index_vhost(struct mesh_snap_ctx *c, struct mesh_vhost *vh);
void mesh_snap_parse_listeners(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                               const char *path);                   /* snapshot_listener.c */
void mesh_snap_parse_dns(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                         const char *path);                         /* snapshot_dns.c */

#endif /* MESH_CORE_SNAPSHOT_INT_H */
