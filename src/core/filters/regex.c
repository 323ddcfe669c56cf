/*
 * PCRE2 for the filters: patterns compiled into the snapshot (freed with it),
 * match data in the stream arena so a regex on the request path costs no malloc.
 */
#include "core/common.h"
#include "core/arena.h"
#include "core/filters/filters-int.h"
#include "core/snapshot-int.h"

static void free_code(void *p)
{
    pcre2_code_free(p);
}

const pcre2_code *mesh_filter_regex(struct mesh_snap_ctx *c, const char *re, uint32_t opts,
                                    const char *path)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *p = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | opts, &code,
                                  &off, NULL);
    if (!p) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(code, msg, sizeof(msg));
        mesh_snap_fail(c, path, "invalid regex at offset %zu: %s", (size_t)off, (char *)msg);
        return NULL;
    }
    mesh_snap_defer(c, free_code, p);
    (void)pcre2_jit_compile(p, PCRE2_JIT_COMPLETE); /* the interpreter serves when JIT is absent */
    return p;
}

static void *arena_malloc(PCRE2_SIZE n, void *a)
{
    return mesh_arena_alloc(a, n);
}

static void arena_free(void *p, void *a)
{
    (void)p, (void)a; /* the arena goes with the stream */
}

pcre2_match_data *mesh_filter_match_data(struct mesh_arena *a, const pcre2_code *re)
{
    pcre2_general_context *g = pcre2_general_context_create(arena_malloc, arena_free, a);
    return g ? pcre2_match_data_create_from_pattern(re, g) : NULL;
}
