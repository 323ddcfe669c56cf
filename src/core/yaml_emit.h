/* JSON value -> YAML text with libyaml's emitter: keys sorted, so the output is stable. */
#ifndef MESH_CORE_YAML_EMIT_H
#define MESH_CORE_YAML_EMIT_H

#include <jansson.h>
#include "core/common.h"

/**
 * Renders <v> (borrowed) as one YAML document without "---", block style, object keys
 * sorted by byte value, no line folding. Strings that YAML would read as another type
 * ("true", "80", "null", "") are single-quoted and strings with newlines use the literal
 * style, so the text reads back to the same JSON. On success *<out> is a NUL-terminated
 * malloc'd string the caller frees, *<len> its length (<len> may be NULL).
 * Returns MESH_OK, or MESH_EINVAL when libyaml refuses (message logged).
 */
int mesh_yaml_emit_json(json_t *v, char **out, size_t *len);

#endif /* MESH_CORE_YAML_EMIT_H */
