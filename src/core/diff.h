/* Line diff (Myers' O(ND) algorithm, linear space) printed as a unified diff, like `diff -u`. */
#ifndef MESH_CORE_DIFF_H
#define MESH_CORE_DIFF_H

#include <stdio.h>
#include "core/common.h"

/**
 * Appends to <out> the unified diff of texts <a> and <b> (lengths <alen>, <blen>; a final
 * line without '\n' is marked "\ No newline at end of file"): the "--- <label_a>" and
 * "+++ <label_b>" headers, then hunks with <context> lines of context (3 in `diff -u`).
 * Writes nothing when the texts are equal. Returns true when they differ.
 * Main thread or any: no shared state.
 */
bool mesh_diff_unified(FILE *out, const char *a, size_t alen, const char *b, size_t blen,
                       const char *label_a, const char *label_b, int context);

#endif /* MESH_CORE_DIFF_H */
