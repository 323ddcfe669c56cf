#include "core/common.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "roles/ctl.h"
#include "../leakcheck.h"

/* Runs "meshd ctl ARGS..." with stdout and stderr captured in files. */

static char dir[64];
static char out[1 << 16], err[1 << 16];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-ctl-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *file(const char *name, const char *text)
{
    static char path[8][192];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int run(int argc, char **argv)
{
    char op[128], ep[128];
    snprintf(op, sizeof(op), "%s/.out", dir);
    snprintf(ep, sizeof(ep), "%s/.err", dir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = mesh_ctl_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    slurp(op, out, sizeof(out));
    slurp(ep, err, sizeof(err));
    return rc;
}

#define RUN(...)                                                                                   \
    ({                                                                                             \
        char *argv_[] = {__VA_ARGS__, NULL};                                                       \
        run((int)MESH_ARRAY_LEN(argv_) - 1, argv_);                                                \
    })

static const char *good = "apiVersion: networking.istio.io/v1\n"
                          "kind: DestinationRule\n"
                          "metadata: {name: reviews}\n"
                          "spec:\n"
                          "  host: reviews\n"
                          "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n";

static const char *bad = "apiVersion: networking.istio.io/v1\n"
                         "kind: VirtualService\n"
                         "metadata: {name: r, namespace: prod}\n"
                         "spec:\n"
                         "  hosts: [r]\n"
                         "  http:\n"
                         "  - route:\n"
                         "    - destination: {host: r}\n"
                         "      weight: 101\n"
                         "---\n"
                         "apiVersion: apps/v1\n"
                         "kind: Deployment\n"
                         "metadata: {name: web}\n";

LEAK_TEST(ctl, help_lists_validate_and_what_comes_next)
{
    make_dir();
    cr_assert_eq(RUN("ctl", "--help"), 0);
    cr_assert(strstr(out, "validate"), "%s", out);
    cr_assert(strstr(out, "-f FILE|DIR|-"), "%s", out);
    cr_assert_eq(RUN("ctl"), 2);
    cr_assert_eq(RUN("ctl", "frobnicate"), 2);
    cr_assert(strstr(err, "unknown command \"frobnicate\""), "%s", err);
    cr_assert_eq(RUN("ctl", "validate", "--help"), 0);
    cr_assert(strstr(out, "-f, --filename"), "%s", out);
    remove_dir();
}

LEAK_TEST(ctl, validate_ok_with_warnings)
{
    make_dir();
    const char *f = file("good.yaml", good);
    cr_assert_eq(RUN("ctl", "validate", "-f", (char *)f), 0);
    cr_assert_str_eq(out, "1 resource valid, 0 errors, 1 warning\n");
    char want[512];
    snprintf(want, sizeof(want), "%s:6:19: DestinationRule default/reviews: warning: "
                                 "spec.trafficPolicy.tls: not enforced yet: meshd accepts this "
                                 "field but does not act on it\n", f);
    cr_assert_str_eq(err, want);
    cr_assert_eq(RUN("ctl", "validate", "-q", "-f", (char *)f), 0);
    cr_assert_str_eq(err, "", "-q prints errors only");
    remove_dir();
}

LEAK_TEST(ctl, validate_errors_exit_1)
{
    make_dir();
    const char *g = file("a.yaml", good);
    const char *b = file("b.yaml", bad);
    cr_assert_eq(RUN("ctl", "validate", "-f", (char *)g, "--filename", (char *)b), 1);
    cr_assert_str_eq(out, "1 resource valid, 1 error, 1 warning, 1 document skipped\n");
    char want[512];
    snprintf(want, sizeof(want), "%s:9:15: VirtualService prod/r: spec.http[0].route[0].weight: "
                                 "must be between 0 and 100\n", b);
    cr_assert(strstr(err, want), "%s", err);
    snprintf(want, sizeof(want), "%s:11:1: Deployment default/web: note: skipped: meshd does not "
                                 "read Deployment objects\n", b);
    cr_assert(strstr(err, want), "%s", err);
    /* the directory form reads both files */
    cr_assert_eq(RUN("ctl", "validate", "-f", dir), 1);
    cr_assert_str_eq(out, "1 resource valid, 1 error, 1 warning, 1 document skipped\n");
    remove_dir();
}

LEAK_TEST(ctl, validate_usage_errors)
{
    make_dir();
    cr_assert_eq(RUN("ctl", "validate"), 2);
    cr_assert(strstr(err, "give -f FILE|DIR|-"), "%s", err);
    cr_assert_eq(RUN("ctl", "validate", "-f"), 2);
    cr_assert(strstr(err, "needs a value"), "%s", err);
    cr_assert_eq(RUN("ctl", "validate", "--bogus"), 2);
    cr_assert_eq(RUN("ctl", "validate", "extra.yaml"), 2);
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/missing.yaml", dir);
    cr_assert_eq(RUN("ctl", "validate", "-f", missing), 1);
    cr_assert(strstr(err, "cannot open: No such file or directory"), "%s", err);
    remove_dir();
}

LEAK_TEST(ctl, validate_stdin)
{
    make_dir();
    const char *f = file("in.yaml", bad);
    int fd = open(f, O_RDONLY);
    int saved = dup(0);
    dup2(fd, 0);
    int rc = RUN("ctl", "validate", "-f", "-");
    dup2(saved, 0);
    close(saved);
    close(fd);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "<stdin>:9:15: VirtualService prod/r: spec.http[0].route[0].weight"),
              "%s", err);
    remove_dir();
}
