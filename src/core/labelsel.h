/* Kubernetes label selectors ("app=x,env!=prod,tier in (a,b),!legacy") parsed and matched. */
#ifndef MESH_CORE_LABELSEL_H
#define MESH_CORE_LABELSEL_H

#include <jansson.h>
#include "core/common.h"
#include "core/status.h"

struct mesh_labelsel;

/**
 * Parses <text>, the subset of the Kubernetes selector syntax: `k=v`, `k==v`, `k!=v`,
 * `k in (a,b)`, `k notin (a,b)`, `k` (exists) and `!k` (does not exist), joined by commas
 * (all must hold). NULL or "" selects everything. On a syntax error records one entry in
 * <err> (initialised; may be NULL) naming the position and returns NULL.
 * Caller owns the result; free with mesh_labelsel_free().
 */
struct mesh_labelsel *mesh_labelsel_parse(const char *text, struct mesh_err *err);
void mesh_labelsel_free(struct mesh_labelsel *sel);

/**
 * True when <labels> (a JSON object of strings, borrowed; NULL = no labels) satisfies every
 * requirement. As in Kubernetes, `!=` and `notin` also match objects without the key.
 */
bool mesh_labelsel_match(const struct mesh_labelsel *sel, json_t *labels);

#endif /* MESH_CORE_LABELSEL_H */
