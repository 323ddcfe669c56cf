/*
 * Route matches of a snapshot (docs/snapshot.md, "match"): what a request
 * must look like for a route to apply. Parsed by snapshot_match.c, evaluated
 * by router.c, indexed by route_index.c. Everything lives in the snapshot's
 * arena; compiled patterns are freed with the snapshot.
 */
#ifndef MESH_CORE_SNAPSHOT_MATCH_H
#define MESH_CORE_SNAPSHOT_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mesh_path_match {
    MESH_MATCH_PREFIX = 0,
    MESH_MATCH_EXACT = 1,
    MESH_MATCH_REGEX = 2,
};

struct pcre2_real_code_8; /* pcre2_code with PCRE2_CODE_UNIT_WIDTH 8 */

/* A PCRE2 pattern compiled at load (JIT when available), anchored at both ends. */
struct mesh_regex {
    const char *source;
    struct pcre2_real_code_8 *code;
};

enum mesh_str_kind {
    MESH_STR_EXACT = 0,
    MESH_STR_PREFIX = 1,
    MESH_STR_REGEX = 2,
    MESH_STR_PRESENT = 3,          /* headers and query parameters only */
};

/* A string match: exactly one of exact, prefix, regex, present. Case-sensitive. */
struct mesh_str_match {
    enum mesh_str_kind kind;
    const char *value;             /* exact or prefix text, the regex source; "" for present */
    size_t len;
    const struct mesh_regex *re;   /* MESH_STR_REGEX */
};

struct mesh_header_match {
    const char *name;              /* lowercase, never a pseudo header */
    size_t name_len;
    struct mesh_str_match m;
    bool invert;                   /* holds when <m> does not (Istio's withoutHeaders) */
};

struct mesh_query_match {
    const char *name;              /* as in the query string, not percent-decoded */
    size_t name_len;
    struct mesh_str_match m;
};

struct mesh_route_match {
    enum mesh_path_match kind;
    const char *path;              /* prefix, exact path or regex source, as written */
    size_t path_len;
    const struct mesh_regex *regex; /* MESH_MATCH_REGEX (compiled caseless with ignore_case) */
    bool ignore_case;              /* path compared without regard to ASCII case */
    /* NULL: any value */
    const struct mesh_str_match *method;
    const struct mesh_str_match *scheme;
    const struct mesh_str_match *authority;
    const struct mesh_header_match *headers; /* all must hold */
    size_t n_headers;
    const struct mesh_query_match *query_params; /* all must hold */
    size_t n_query_params;
    uint16_t dst_port;             /* the connection's original destination port; 0 = any */
};

#endif /* MESH_CORE_SNAPSHOT_MATCH_H */
