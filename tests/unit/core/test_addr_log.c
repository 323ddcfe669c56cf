/*
 * addr.c (numeric "ADDR:PORT" for flags and config) and log.c (levels, one write a line).
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <regex.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/addr.h"
#include "core/log.h"
#include "../leakcheck.h"

Test(addr, splits_v4_and_bracketed_v6)
{
    char host[64];
    uint16_t port = 0;
    cr_assert_eq(mesh_addr_split("127.0.0.1:15000", host, sizeof(host), &port), 0);
    cr_expect_str_eq(host, "127.0.0.1");
    cr_expect_eq(port, 15000);
    cr_assert_eq(mesh_addr_split("[::1]:0", host, sizeof(host), &port), 0);
    cr_expect_str_eq(host, "::1", "the brackets go");
    cr_expect_eq(port, 0);
    cr_assert_eq(mesh_addr_split("10.244.0.1:65535", host, sizeof(host), &port), 0);
    cr_expect_eq(port, 65535);
}

Test(addr, refuses_what_is_not_a_numeric_address_and_port)
{
    static const char *const bad[] = {
        "",                 /* nothing */
        "127.0.0.1",        /* no port */
        ":80",              /* no host */
        "127.0.0.1:",       /* empty port */
        "127.0.0.1:65536",  /* out of range */
        "127.0.0.1:-1",
        "127.0.0.1:+80",    /* strtol would take these: a port is digits only */
        "127.0.0.1: 80",
        "127.0.0.1:80 ",
        "127.0.0.1:0x50",
        "localhost:80",     /* no DNS in the data plane */
        "[::1:80",          /* unclosed bracket */
        "[]:80",
        "300.1.1.1:80",
        "127.0.0.1:123456789012345678901234567890",
    };
    char host[64];
    uint16_t port;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(mesh_addr_split(bad[i], host, sizeof(host), &port), -1, "\"%s\"", bad[i]);
    /* a host longer than the caller's buffer is refused, not cut */
    cr_expect_eq(mesh_addr_split("127.0.0.1:80", host, 9, &port), -1);
}

Test(addr, parses_to_a_socket_address)
{
    struct sockaddr_storage ss;
    socklen_t len;
    cr_assert_eq(mesh_addr_parse("10.244.1.2:8080", &ss, &len), 0);
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
    cr_expect_eq(ss.ss_family, AF_INET);
    cr_expect_eq(len, sizeof(*a4));
    cr_expect_eq(ntohs(a4->sin_port), 8080);
    cr_expect_eq(ntohl(a4->sin_addr.s_addr), 0x0af40102u);
    cr_assert_eq(mesh_addr_parse("[fe80::1]:443", &ss, &len), 0);
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
    cr_expect_eq(ss.ss_family, AF_INET6);
    cr_expect_eq(len, sizeof(*a6));
    cr_expect_eq(ntohs(a6->sin6_port), 443);
    cr_expect_eq(mesh_addr_sockaddr("not-an-ip", 1, &ss, &len), -1);
}

Test(log, levels_parse_and_name)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(mesh_log_level_parse(names[i]), i);
        cr_expect_str_eq(mesh_log_level_name(i), names[i]);
    }
    cr_expect_eq(mesh_log_level_parse("warning"), MESH_LOG_WARN, "an alias people type");
    cr_expect_eq(mesh_log_level_parse("INFO"), -1, "names are lowercase");
    cr_expect_eq(mesh_log_level_parse(""), -1);
    cr_expect_str_eq(mesh_log_level_name(42), "?");
    cr_expect_str_eq(mesh_log_level_name(-1), "?");
    mesh_log_set_level(MESH_LOG_WARN);
    cr_expect(!mesh_log_enabled(MESH_LOG_INFO));
    cr_expect(mesh_log_enabled(MESH_LOG_WARN));
    cr_expect(mesh_log_enabled(MESH_LOG_ERROR));
    mesh_log_set_level(MESH_LOG_OFF);
    cr_expect(!mesh_log_enabled(MESH_LOG_ERROR), "off logs nothing");
}

/* What mesh_log() writes to stderr while <fn> runs: stderr goes to a pipe meanwhile. */
static size_t capture(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int saved = dup(STDERR_FILENO);
    cr_assert_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    size_t have = 0;
    ssize_t n;
    while (have < cap - 1 && (n = read(p[0], out + have, cap - 1 - have)) > 0)
        have += (size_t)n;
    close(p[0]);
    out[have] = '\0';
    return have;
}

static void two_lines(void)
{
    mesh_log_set_level(MESH_LOG_INFO);
    mesh_log(MESH_LOG_DEBUG, "not shown");
    mesh_log(MESH_LOG_INFO, "listener %s on port %d", "main", 15001);
    mesh_log(MESH_LOG_ERROR, "second");
}

Test(log, one_line_a_call_with_time_and_level)
{
    char out[4096];
    capture(two_lines, out, sizeof(out));
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z info  "
                         "listener main on port 15001\n"
                         "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z error second\n$",
                         REG_EXTENDED),
                 0);
    cr_expect_eq(regexec(&re, out, 0, NULL, 0), 0, "got: \"%s\"", out);
    regfree(&re);
}

static void long_line(void)
{
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    mesh_log_set_level(MESH_LOG_INFO);
    mesh_log(MESH_LOG_WARN, "%s", big);
}

Test(log, a_long_line_is_cut_and_still_ends_with_a_newline)
{
    char out[8192];
    size_t n = capture(long_line, out, sizeof(out));
    cr_expect_leq(n, 1024u, "one buffer's worth: %zu", n);
    cr_expect_gt(n, 1000u);
    cr_expect_eq(out[n - 1], '\n');
    cr_expect_null(memchr(out, '\n', n - 1), "one line");
}
