/*
 * Leak checks for Criterion tests. Criterion ignores a worker's exit status once
 * the test body has returned, so LeakSanitizer's report at exit fails nothing:
 * a test that allocates asks LeakSanitizer itself before it returns.
 *
 *   #include <criterion/criterion.h>
 *   #include "../leakcheck.h"        (path relative to the test)
 *   LEAK_TEST(yaml, parses_a_mapping) { ... }
 *
 * Without AddressSanitizer the check compiles to nothing.
 */
#ifndef MESH_TESTS_LEAKCHECK_H
#define MESH_TESTS_LEAKCHECK_H

#if defined(__SANITIZE_ADDRESS__)
#define MESH_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MESH_HAVE_LSAN 1
#endif
#endif
#ifdef MESH_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static inline void mesh_assert_no_leaks(void)
{
#ifdef MESH_HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see the LeakSanitizer report");
#endif
}

/* A Criterion test whose body must not leak. */
#define LEAK_TEST(suite, name)                                                                     \
    static void suite##_##name##_body(void);                                                       \
    Test(suite, name)                                                                              \
    {                                                                                              \
        suite##_##name##_body();                                                                   \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void suite##_##name##_body(void)

/* The same with Criterion test options: LEAK_TEST_OPTS(s, n, .init = setup). */
#define LEAK_TEST_OPTS(suite, name, ...)                                                           \
    static void suite##_##name##_body(void);                                                       \
    Test(suite, name, __VA_ARGS__)                                                                 \
    {                                                                                              \
        suite##_##name##_body();                                                                   \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void suite##_##name##_body(void)

#endif /* MESH_TESTS_LEAKCHECK_H */
