/* Helpers for the resource tests: load inline YAML, look for exact diagnostics. */
#ifndef MESH_TESTS_RESOURCE_FIXTURE_H
#define MESH_TESTS_RESOURCE_FIXTURE_H

#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/diag.h"
#include "core/resource.h"

static struct mesh_resource_set set;

/* Loads <text> as file "f.yaml" into a fresh set. */
static inline int load_flags(const char *text, unsigned flags)
{
    mesh_resource_set_init(&set);
    return mesh_resource_load_buffer(&set, text, strlen(text), "f.yaml", flags);
}

static inline int load(const char *text)
{
    return load_flags(text, 0);
}

static inline void unload(void)
{
    mesh_resource_set_free(&set);
}

static inline const char *diag_at(size_t i)
{
    static char buf[2048];
    cr_assert_lt(i, set.diags.n, "no diagnostic %zu (have %zu)", i, set.diags.n);
    mesh_diag_format(&set.diags.v[i], buf, sizeof(buf));
    return buf;
}

static inline void dump_diags(void)
{
    for (size_t i = 0; i < set.diags.n; i++)
        fprintf(stderr, "  [%zu] %s\n", i, diag_at(i));
}

/* True when some diagnostic formats exactly as <line>. */
static inline bool has_diag(const char *line)
{
    for (size_t i = 0; i < set.diags.n; i++)
        if (strcmp(diag_at(i), line) == 0)
            return true;
    return false;
}

/* True when some diagnostic contains <part>. */
static inline bool has_diag_part(const char *part)
{
    for (size_t i = 0; i < set.diags.n; i++)
        if (strstr(diag_at(i), part))
            return true;
    return false;
}

#define expect_diag(line)                                                                          \
    do {                                                                                           \
        if (!has_diag(line))                                                                       \
            dump_diags();                                                                          \
        cr_expect(has_diag(line), "missing diagnostic: %s", line);                                 \
    } while (0)

#define expect_diag_part(part)                                                                     \
    do {                                                                                           \
        if (!has_diag_part(part))                                                                  \
            dump_diags();                                                                          \
        cr_expect(has_diag_part(part), "no diagnostic contains: %s", part);                        \
    } while (0)

/* The whole set loaded without errors (warnings allowed). */
#define expect_clean()                                                                             \
    do {                                                                                           \
        if (set.diags.n_errors)                                                                    \
            dump_diags();                                                                          \
        cr_expect_eq(set.diags.n_errors, 0, "unexpected errors");                                  \
    } while (0)

#define VS_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: VirtualService\n"                                                                       \
    "metadata:\n"                                                                                  \
    "  name: reviews\n"                                                                            \
    "spec:\n"

#define DR_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1beta1\n"                                                    \
    "kind: DestinationRule\n"                                                                      \
    "metadata:\n"                                                                                  \
    "  name: reviews\n"                                                                            \
    "spec:\n"

#endif /* MESH_TESTS_RESOURCE_FIXTURE_H */
