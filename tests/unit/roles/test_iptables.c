/*
 * `meshd iptables` (src/roles/iptables.c): the exact rules for given flags
 * (golden iptables-restore input), flag errors, and the cleanup computed from
 * a real `iptables-save -t nat` taken after an install next to a foreign chain.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <criterion/criterion.h>
#include "roles/iptables.h"
#include "../leakcheck.h"

#define ARGV(...) ((char *[]){"iptables", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"iptables", __VA_ARGS__}) / sizeof(char *)))

static void parse_ok(int argc, char **argv, struct mesh_ipt_cfg *c)
{
    char err[512] = "";
    int rc = mesh_ipt_parse_args(argc, argv, c, err, sizeof(err));
    cr_assert_eq(rc, 0, "parse failed: %s", err);
}

static void expect_rules(const struct mesh_ipt_cfg *c, int family, const char *want)
{
    char *got = mesh_ipt_rules(c, family);
    cr_assert_str_eq(got, want, "got:\n%s\nwant:\n%s", got, want);
    free(got);
}

/* The defaults: Istio's rules with DNS capture, uid and gid 1337. */
LEAK_TEST(iptables, default_rules)
{
    struct mesh_ipt_cfg c;
    parse_ok(ARGC("--dry-run"), ARGV("--dry-run"), &c);
    cr_assert(c.dry_run);
    expect_rules(&c, AF_INET,
                 "*nat\n"
                 ":MESH_INBOUND - [0:0]\n"
                 ":MESH_REDIRECT - [0:0]\n"
                 ":MESH_IN_REDIRECT - [0:0]\n"
                 ":MESH_OUTPUT - [0:0]\n"
                 ":MESH_OUTPUT_DNS - [0:0]\n"
                 "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
                 "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
                 "-A PREROUTING -p tcp -j MESH_INBOUND\n"
                 "-A MESH_INBOUND -p tcp --dport 15000:15090 -j RETURN\n"
                 "-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT\n"
                 "-A OUTPUT -j MESH_OUTPUT\n"
                 "-A MESH_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n"
                 "-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 53 -m owner --uid-owner 1337 -j MESH_IN_REDIRECT\n"
                 "-A MESH_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN\n"
                 "-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
                 "-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 53 -m owner --gid-owner 1337 -j MESH_IN_REDIRECT\n"
                 "-A MESH_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 1337 -j RETURN\n"
                 "-A MESH_OUTPUT -m owner --gid-owner 1337 -j RETURN\n"
                 "-A MESH_OUTPUT -j MESH_OUTPUT_DNS\n"
                 "-A MESH_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-ports 15053\n"
                 "-A MESH_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports 15053\n"
                 "-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
                 "-A MESH_OUTPUT -j MESH_REDIRECT\n"
                 "COMMIT\n");
}

/* Every flag at once; the IPv4 and IPv6 sets each get their own CIDRs and loopback. */
LEAK_TEST(iptables, every_flag)
{
    struct mesh_ipt_cfg c;
    char *argv[] = {"iptables", "--no-dns", "--ipv6", "--proxy-uid", "5", "--proxy-gid", "6",
                    "--outbound-port", "16001", "--inbound-port", "16006",
                    "--exclude-outbound-cidrs", "10.1.2.3/8,fd00::1/8,192.0.2.9",
                    "--include-inbound-ports", "80,8000-8080",
                    "--exclude-outbound-ports", "443,5000:5002", NULL};
    parse_ok((int)MESH_ARRAY_LEN(argv) - 1, argv, &c);
    cr_assert(c.ipv6);
    const char *common_head =
        "*nat\n"
        ":MESH_INBOUND - [0:0]\n"
        ":MESH_REDIRECT - [0:0]\n"
        ":MESH_IN_REDIRECT - [0:0]\n"
        ":MESH_OUTPUT - [0:0]\n"
        "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n"
        "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n"
        "-A PREROUTING -p tcp -j MESH_INBOUND\n"
        "-A MESH_INBOUND -p tcp --dport 15000:15090 -j RETURN\n"
        "-A MESH_INBOUND -p tcp --dport 80 -j MESH_IN_REDIRECT\n"
        "-A MESH_INBOUND -p tcp --dport 8000:8080 -j MESH_IN_REDIRECT\n"
        "-A OUTPUT -p tcp -j MESH_OUTPUT\n"
        "-A MESH_OUTPUT -p tcp --dport 443 -j RETURN\n"
        "-A MESH_OUTPUT -p udp --dport 443 -j RETURN\n"
        "-A MESH_OUTPUT -p tcp --dport 5000:5002 -j RETURN\n"
        "-A MESH_OUTPUT -p udp --dport 5000:5002 -j RETURN\n";
    char want[4096];
    snprintf(want, sizeof(want), "%s%s", common_head,
             "-A MESH_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n"
             "-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m owner --uid-owner 5 -j MESH_IN_REDIRECT\n"
             "-A MESH_OUTPUT -o lo -m owner ! --uid-owner 5 -j RETURN\n"
             "-A MESH_OUTPUT -m owner --uid-owner 5 -j RETURN\n"
             "-A MESH_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m owner --gid-owner 6 -j MESH_IN_REDIRECT\n"
             "-A MESH_OUTPUT -o lo -m owner ! --gid-owner 6 -j RETURN\n"
             "-A MESH_OUTPUT -m owner --gid-owner 6 -j RETURN\n"
             "-A MESH_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
             "-A MESH_OUTPUT -d 10.0.0.0/8 -j RETURN\n"
             "-A MESH_OUTPUT -d 192.0.2.9/32 -j RETURN\n"
             "-A MESH_OUTPUT -j MESH_REDIRECT\n"
             "COMMIT\n");
    expect_rules(&c, AF_INET, want);
    snprintf(want, sizeof(want), "%s%s", common_head,
             "-A MESH_OUTPUT -o lo -s ::6/128 -j RETURN\n"
             "-A MESH_OUTPUT -o lo ! -d ::1/128 -p tcp -m owner --uid-owner 5 -j MESH_IN_REDIRECT\n"
             "-A MESH_OUTPUT -o lo -m owner ! --uid-owner 5 -j RETURN\n"
             "-A MESH_OUTPUT -m owner --uid-owner 5 -j RETURN\n"
             "-A MESH_OUTPUT -o lo ! -d ::1/128 -p tcp -m owner --gid-owner 6 -j MESH_IN_REDIRECT\n"
             "-A MESH_OUTPUT -o lo -m owner ! --gid-owner 6 -j RETURN\n"
             "-A MESH_OUTPUT -m owner --gid-owner 6 -j RETURN\n"
             "-A MESH_OUTPUT -d ::1/128 -j RETURN\n"
             "-A MESH_OUTPUT -d fd00::/8 -j RETURN\n"
             "-A MESH_OUTPUT -j MESH_REDIRECT\n"
             "COMMIT\n");
    expect_rules(&c, AF_INET6, want);
}

/* Excluded inbound ports come after the admin range, before the catch-all redirect. */
LEAK_TEST(iptables, exclude_inbound)
{
    struct mesh_ipt_cfg c;
    parse_ok(ARGC("--exclude-inbound-ports", "22,9000-9100"),
             ARGV("--exclude-inbound-ports", "22,9000-9100"), &c);
    char *got = mesh_ipt_rules(&c, AF_INET);
    const char *want = "-A MESH_INBOUND -p tcp --dport 15000:15090 -j RETURN\n"
                       "-A MESH_INBOUND -p tcp --dport 22 -j RETURN\n"
                       "-A MESH_INBOUND -p tcp --dport 9000:9100 -j RETURN\n"
                       "-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT\n";
    cr_assert_not_null(strstr(got, want), "%s", got);
    free(got);
}

/* An empty include list captures nothing inbound: no jump from PREROUTING at all. */
LEAK_TEST(iptables, no_inbound)
{
    struct mesh_ipt_cfg c;
    parse_ok(ARGC("--include-inbound-ports", ""), ARGV("--include-inbound-ports", ""), &c);
    char *got = mesh_ipt_rules(&c, AF_INET);
    cr_assert_null(strstr(got, "PREROUTING"), "%s", got);
    cr_assert_null(strstr(got, "-A MESH_INBOUND"), "%s", got);
    cr_assert_not_null(strstr(got, "-A OUTPUT -j MESH_OUTPUT\n"), "%s", got);
    free(got);
    /* "*" is the default: everything */
    parse_ok(ARGC("--include-inbound-ports", "*"), ARGV("--include-inbound-ports", "*"), &c);
    cr_assert(c.inbound_all);
}

static void parse_fails(int argc, char **argv, const char *want)
{
    struct mesh_ipt_cfg c;
    char err[512] = "";
    cr_assert_eq(mesh_ipt_parse_args(argc, argv, &c, err, sizeof(err)), -1, "%s accepted",
                 argv[1]);
    cr_assert_str_eq(err, want);
}

LEAK_TEST(iptables, bad_flags)
{
    parse_fails(ARGC("--proxy-uid", "x"), ARGV("--proxy-uid", "x"),
                "--proxy-uid: \"x\" is not a uid");
    parse_fails(ARGC("--proxy-gid", "-1"), ARGV("--proxy-gid", "-1"),
                "--proxy-gid: \"-1\" is not a gid");
    parse_fails(ARGC("--proxy-uid"), ARGV("--proxy-uid"),
                "--proxy-uid needs a value (see --help)");
    parse_fails(ARGC("--exclude-outbound-ports", "80,0"),
                ARGV("--exclude-outbound-ports", "80,0"),
                "--exclude-outbound-ports: \"0\" is not a port (1-65535)");
    parse_fails(ARGC("--exclude-inbound-ports", "65536"),
                ARGV("--exclude-inbound-ports", "65536"),
                "--exclude-inbound-ports: \"65536\" is not a port (1-65535)");
    parse_fails(ARGC("--include-inbound-ports", "90-80"),
                ARGV("--include-inbound-ports", "90-80"),
                "--include-inbound-ports: \"90-80\" is not a port range LOW-HIGH");
    parse_fails(ARGC("--exclude-outbound-cidrs", "10.0.0.0/33"),
                ARGV("--exclude-outbound-cidrs", "10.0.0.0/33"),
                "--exclude-outbound-cidrs: \"10.0.0.0/33\": bad prefix length");
    parse_fails(ARGC("--exclude-outbound-cidrs", "example.com/8"),
                ARGV("--exclude-outbound-cidrs", "example.com/8"),
                "--exclude-outbound-cidrs: \"example.com\" is not an IP address");
    parse_fails(ARGC("--exclude-outbound-cidrs", "fd00::/129"),
                ARGV("--exclude-outbound-cidrs", "fd00::/129"),
                "--exclude-outbound-cidrs: \"fd00::/129\": bad prefix length");
    parse_fails(ARGC("--inbound-port", "0"), ARGV("--inbound-port", "0"),
                "--inbound-port: \"0\" is not a port (1-65535)");
    parse_fails(ARGC("--frobnicate"), ARGV("--frobnicate"),
                "unknown option \"--frobnicate\" (see --help)");
    parse_fails(ARGC("extra"), ARGV("extra"), "unexpected argument \"extra\" (see --help)");
}

/* More than 64 entries is refused, not silently cut. */
LEAK_TEST(iptables, too_many_ports)
{
    char list[1024] = "";
    for (int i = 1; i <= 65; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i > 1 ? "," : "",
                 i);
    parse_fails(ARGC("--exclude-outbound-ports", list), ARGV("--exclude-outbound-ports", list),
                "--exclude-outbound-ports: at most 64 entries");
}

/* `iptables-save -t nat` (nf_tables backend) after `meshd iptables` beside a DOCKER chain. */
static const char saved[] =
    "# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 10:20:12 2026\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    ":DOCKER - [0:0]\n"
    ":MESH_INBOUND - [0:0]\n"
    ":MESH_IN_REDIRECT - [0:0]\n"
    ":MESH_OTHER - [0:0]\n"
    ":MESH_OUTPUT - [0:0]\n"
    ":MESH_OUTPUT_DNS - [0:0]\n"
    ":MESH_REDIRECT - [0:0]\n"
    "-A PREROUTING -p tcp -j MESH_INBOUND\n"
    "-A OUTPUT -j DOCKER\n"
    "-A OUTPUT -j MESH_OUTPUT\n"
    "-A DOCKER -j MESH_OTHER\n"
    "-A MESH_INBOUND -p tcp -m tcp --dport 15000:15090 -j RETURN\n"
    "-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT\n"
    "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
    "-A MESH_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n"
    "-A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
    "-A MESH_OUTPUT -j MESH_OUTPUT_DNS\n"
    "-A MESH_OUTPUT -j MESH_REDIRECT\n"
    "-A MESH_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053\n"
    "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
    "COMMIT\n"
    "# Completed on Fri Nov 27 10:20:12 2026\n"
    "*filter\n"
    ":MESH_OUTPUT - [0:0]\n"
    "-A OUTPUT -j MESH_OUTPUT\n"
    "COMMIT\n";

/* Only our jumps and our chains, in the nat table; DOCKER and MESH_OTHER stay. */
LEAK_TEST(iptables, cleanup_from_save)
{
    char *got = mesh_ipt_cleanup_rules(saved);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, "*nat\n"
                          "-D PREROUTING -p tcp -j MESH_INBOUND\n"
                          "-D OUTPUT -j MESH_OUTPUT\n"
                          "-F MESH_INBOUND\n"
                          "-F MESH_REDIRECT\n"
                          "-F MESH_IN_REDIRECT\n"
                          "-F MESH_OUTPUT\n"
                          "-F MESH_OUTPUT_DNS\n"
                          "-X MESH_INBOUND\n"
                          "-X MESH_REDIRECT\n"
                          "-X MESH_IN_REDIRECT\n"
                          "-X MESH_OUTPUT\n"
                          "-X MESH_OUTPUT_DNS\n"
                          "COMMIT\n");
    free(got);
}

/* Nothing of ours: nothing to do (cleanup runs twice without failing). */
LEAK_TEST(iptables, cleanup_nothing)
{
    cr_assert_null(mesh_ipt_cleanup_rules(""));
    cr_assert_null(mesh_ipt_cleanup_rules("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT "
                                          "[0:0]\n-A OUTPUT -j DOCKER\nCOMMIT\n"));
    /* a jump left behind without its chain (half-removed by hand) is still removed */
    char *got = mesh_ipt_cleanup_rules("*nat\r\n-A OUTPUT -p tcp -j MESH_OUTPUT\r\nCOMMIT\r\n");
    cr_assert_str_eq(got, "*nat\n-D OUTPUT -p tcp -j MESH_OUTPUT\nCOMMIT\n");
    free(got);
}

/* Install text fed back as a "save": cleanup removes every chain the install declared. */
LEAK_TEST(iptables, cleanup_inverts_install)
{
    struct mesh_ipt_cfg c;
    mesh_ipt_cfg_init(&c);
    char *rules = mesh_ipt_rules(&c, AF_INET);
    char *got = mesh_ipt_cleanup_rules(rules);
    cr_assert_not_null(strstr(got, "-D PREROUTING -p tcp -j MESH_INBOUND\n"));
    cr_assert_not_null(strstr(got, "-D OUTPUT -j MESH_OUTPUT\n"));
    cr_assert_not_null(strstr(got, "-X MESH_OUTPUT_DNS\n"));
    free(rules);
    free(got);
}
