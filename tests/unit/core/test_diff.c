#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/diff.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define EXPECT_NO_LEAKS() cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see LSan")
#else
#define EXPECT_NO_LEAKS() ((void)0)
#endif

/* The unified diff of two strings (caller frees). */
static char *udiff(const char *a, const char *b, int context)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert_not_null(f);
    mesh_diff_unified(f, a, strlen(a), b, strlen(b), "a", "b", context);
    fclose(f);
    return buf;
}

#define EXPECT_DIFF(a, b, want)                                                                    \
    do {                                                                                           \
        char *out_ = udiff(a, b, 3);                                                               \
        cr_expect_str_eq(out_, want);                                                              \
        free(out_);                                                                                \
    } while (0)

/* Expected outputs below are what GNU `diff -u` prints for the same files. */
Test(diff, equal_texts_print_nothing)
{
    EXPECT_DIFF("", "", "");
    EXPECT_DIFF("a\nb\n", "a\nb\n", "");
    EXPECT_NO_LEAKS();
}

Test(diff, one_change_with_context)
{
    EXPECT_DIFF("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
                "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
    EXPECT_NO_LEAKS();
}

Test(diff, from_and_to_empty)
{
    EXPECT_DIFF("", "x\ny\n", "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
    EXPECT_DIFF("x\n", "", "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n");
    EXPECT_NO_LEAKS();
}

Test(diff, distant_changes_make_separate_hunks)
{
    const char *a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n";
    const char *b = "A\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nN\n";
    EXPECT_DIFF(a, b,
                "--- a\n+++ b\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n d\n"
                "@@ -11,4 +11,4 @@\n k\n l\n m\n-n\n+N\n");
    /* gaps of up to 2 * context lines join one hunk */
    EXPECT_DIFF("a\nb\nc\nd\ne\nf\ng\nh\n", "A\nb\nc\nd\ne\nf\ng\nH\n",
                "--- a\n+++ b\n@@ -1,8 +1,8 @@\n-a\n+A\n b\n c\n d\n e\n f\n g\n-h\n+H\n");
    EXPECT_NO_LEAKS();
}

Test(diff, insertion_in_the_middle_and_no_newline_at_end)
{
    EXPECT_DIFF("a\nb\nc\n", "a\nb\nnew\nc\n", "--- a\n+++ b\n@@ -1,3 +1,4 @@\n a\n b\n+new\n c\n");
    EXPECT_DIFF("a\nb", "a\nb\n",
                "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
    EXPECT_NO_LEAKS();
}

/* ---- property test: minimal, and the patch rebuilds the second text ---- */

static size_t split(char *s, char **lines)
{
    size_t n = 0;
    for (char *p = s; *p;) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

static size_t lcs(char **a, size_t na, char **b, size_t nb)
{
    static size_t t[64][64];
    for (size_t i = 0; i <= na; i++)
        for (size_t j = 0; j <= nb; j++)
            t[i][j] = (!i || !j)                          ? 0
                      : strcmp(a[i - 1], b[j - 1]) == 0   ? t[i - 1][j - 1] + 1
                      : MESH_MAX(t[i - 1][j], t[i][j - 1]);
    return t[na][nb];
}

/* Applies unified diff <d> to lines <a>; appends the result to <out> as text. */
static void patch(char **a, size_t na, char *d, char *out)
{
    size_t ai = 0;
    char *line = strtok(d, "\n");
    out[0] = '\0';
    line = strtok(NULL, "\n"); /* skip "--- a" */
    line = strtok(NULL, "\n"); /* skip "+++ b" */
    for (; line; line = strtok(NULL, "\n")) {
        if (line[0] == '@') {
            long start, count = 1;
            cr_assert(sscanf(line, "@@ -%ld,%ld", &start, &count) >= 1, "%s", line);
            size_t first = count == 0 ? (size_t)start : (size_t)start - 1;
            for (; ai < first; ai++)
                strcat(strcat(out, a[ai]), "\n");
        } else if (line[0] == ' ') {
            cr_assert_str_eq(line + 1, a[ai]);
            strcat(strcat(out, a[ai++]), "\n");
        } else if (line[0] == '-') {
            cr_assert_str_eq(line + 1, a[ai]);
            ai++;
        } else {
            cr_assert_eq(line[0], '+', "%s", line);
            strcat(strcat(out, line + 1), "\n");
        }
    }
    for (; ai < na; ai++)
        strcat(strcat(out, a[ai]), "\n");
}

Test(diff, random_inputs_give_minimal_diffs_that_apply)
{
    srand(12345);
    for (int round = 0; round < 2000; round++) {
        char a[256] = "", b[256] = "", ca[256], cb[256];
        size_t na = (size_t)(rand() % 40), nb = (size_t)(rand() % 40);
        int alphabet = 2 + rand() % 4;
        for (size_t i = 0; i < na; i++)
            snprintf(a + strlen(a), sizeof(a) - strlen(a), "%c\n", 'a' + rand() % alphabet);
        for (size_t i = 0; i < nb; i++)
            snprintf(b + strlen(b), sizeof(b) - strlen(b), "%c\n", 'a' + rand() % alphabet);
        int context = rand() % 4;
        char *d = udiff(a, b, context);
        size_t minus = 0, plus = 0;
        for (char *p = d; (p = strchr(p, '\n')) && p[1]; p++) {
            minus += p[1] == '-' && p[2] != '-';
            plus += p[1] == '+' && p[2] != '+';
        }
        char *la[64], *lb[64];
        strcpy(ca, a);
        strcpy(cb, b);
        size_t l = lcs(la, split(ca, la), lb, split(cb, lb));
        cr_assert_eq(minus, na - l, "round %d: not minimal:\n%s---\n%s===\n%s", round, a, b, d);
        cr_assert_eq(plus, nb - l, "round %d: not minimal:\n%s---\n%s===\n%s", round, a, b, d);
        char out[512];
        strcpy(ca, a);
        size_t n = split(ca, la);
        if (*d)
            patch(la, n, d, out);
        else
            strcpy(out, a);
        cr_assert_str_eq(out, b, "round %d: patch does not rebuild b:\n%s---\n%s===\n%s", round, a,
                         b, d);
        free(d);
    }
    EXPECT_NO_LEAKS();
}
