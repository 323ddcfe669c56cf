/*
 * `meshd iptables`: generates Istio's nat rules (tools/istio-iptables) under
 * MESH_* chain names and applies them with `iptables-restore --noflush`, which
 * applies a whole table or nothing. --cleanup reads `iptables-save -t nat` and
 * removes only our jumps and chains, so it can run any number of times.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "roles/iptables.h"

extern char **environ;

/* Our chains, in the order they are declared; cleanup removes these names and no others. */
static const char *const chains[] = {
    "MESH_INBOUND", "MESH_REDIRECT", "MESH_IN_REDIRECT", "MESH_OUTPUT", "MESH_OUTPUT_DNS",
};

/* The sidecar's own ports (admin, health, stats, 15001/15006/15053...): never captured inbound. */
#define ADMIN_LO 15000
#define ADMIN_HI 15090

void mesh_ipt_cfg_init(struct mesh_ipt_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->proxy_uid = 1337;
    c->proxy_gid = 1337;
    c->outbound_port = 15001;
    c->inbound_port = 15006;
    c->dns_port = 15053;
    c->inbound_all = true;
    c->dns = true;
}

static int fail(char *err, size_t errsize, const char *fmt, ...) MESH_PRINTF(3, 4);
static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* "80,443,8000-8100" (":" also separates a range, as iptables writes it). */
static int parse_ports(const char *flag, const char *s, struct mesh_ipt_ports *p, char *err,
                       size_t errsize)
{
    p->n = 0;
    char buf[1024];
    if (strlen(s) >= sizeof(buf))
        return fail(err, errsize, "--%s: list too long", flag);
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (p->n == MESH_IPT_MAX_ITEMS)
            return fail(err, errsize, "--%s: at most %d entries", flag, MESH_IPT_MAX_ITEMS);
        char *dash = strpbrk(tok, "-:");
        unsigned long lo, hi;
        if (dash)
            *dash = '\0';
        if (!parse_ulong(tok, 65535, &lo) || lo == 0)
            return fail(err, errsize, "--%s: \"%s\" is not a port (1-65535)", flag, tok);
        hi = lo;
        if (dash && (!parse_ulong(dash + 1, 65535, &hi) || hi < lo))
            return fail(err, errsize, "--%s: \"%s-%s\" is not a port range LOW-HIGH", flag, tok,
                        dash + 1);
        p->r[p->n++] = (struct mesh_ipt_range){(uint16_t)lo, (uint16_t)hi};
    }
    return 0;
}

/* "10.0.0.0/8,fd00::/8,192.0.2.1": clears host bits so the text equals what iptables-save shows. */
static int parse_cidrs(const char *s, struct mesh_ipt_cfg *c, char *err, size_t errsize)
{
    c->n_cidrs = 0;
    char buf[4096];
    if (strlen(s) >= sizeof(buf))
        return fail(err, errsize, "--exclude-outbound-cidrs: list too long");
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (c->n_cidrs == MESH_IPT_MAX_ITEMS)
            return fail(err, errsize, "--exclude-outbound-cidrs: at most %d entries",
                        MESH_IPT_MAX_ITEMS);
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        uint8_t a[16];
        int family = strchr(tok, ':') ? AF_INET6 : AF_INET;
        unsigned long bits = family == AF_INET ? 32 : 128;
        if (inet_pton(family, tok, a) != 1)
            return fail(err, errsize, "--exclude-outbound-cidrs: \"%s\" is not an IP address",
                        tok);
        if (slash && !parse_ulong(slash + 1, bits, &bits))
            return fail(err, errsize, "--exclude-outbound-cidrs: \"%s/%s\": bad prefix length",
                        tok, slash + 1);
        size_t len = family == AF_INET ? 4 : 16;
        for (size_t i = 0; i < len; i++) {
            size_t keep = bits > i * 8 ? MESH_MIN(bits - i * 8, 8) : 0;
            a[i] &= (uint8_t)(0xff00u >> keep);
        }
        struct mesh_ipt_cidr *out = &c->exclude_cidrs[c->n_cidrs++];
        out->family = family;
        char host[INET6_ADDRSTRLEN];
        inet_ntop(family, a, host, sizeof(host));
        snprintf(out->text, sizeof(out->text), "%s/%lu", host, bits);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshd iptables [options]   (as root, inside the pod's network namespace)\n\n"
            "Installs the nat rules that send the application's traffic through its sidecar:\n"
            "outbound TCP -> 15001, inbound TCP -> 15006, DNS (udp/tcp 53) -> 15053.\n\n"
            "  --proxy-uid UID               the sidecar's uid, never captured (default 1337)\n"
            "  --proxy-gid GID               the sidecar's gid, never captured (default 1337)\n"
            "  --outbound-port PORT          outbound capture port (default 15001)\n"
            "  --inbound-port PORT           inbound capture port (default 15006)\n"
            "  --dns-port PORT               DNS proxy port (default 15053)\n"
            "  --no-dns                      leave DNS alone\n"
            "  --exclude-outbound-ports LIST destination ports never captured (80,8000-8100)\n"
            "  --exclude-inbound-ports LIST  ports never captured inbound (15000-15090 always)\n"
            "  --include-inbound-ports LIST  only these are captured inbound (default \"*\": all;\n"
            "                                \"\": no inbound capture)\n"
            "  --exclude-outbound-cidrs LIST destinations never captured (10.0.0.0/8,fd00::/8)\n"
            "  --ipv6                        also install the rules with ip6tables\n"
            "  --dry-run                     print the rules (iptables-restore input), change\n"
            "                                nothing\n"
            "  --cleanup                     remove every rule and chain this command installs\n");
}

static int parse_port_flag(const char *flag, const char *s, uint16_t *out, char *err,
                           size_t errsize)
{
    unsigned long v;
    if (!parse_ulong(s, 65535, &v) || v == 0)
        return fail(err, errsize, "--%s: \"%s\" is not a port (1-65535)", flag, s);
    *out = (uint16_t)v;
    return 0;
}

int mesh_ipt_parse_args(int argc, char **argv, struct mesh_ipt_cfg *c, char *err,
                        size_t errsize)
{
    static const struct option longopts[] = {
        {"proxy-uid", required_argument, NULL, 'u'},
        {"proxy-gid", required_argument, NULL, 'g'},
        {"outbound-port", required_argument, NULL, 'o'},
        {"inbound-port", required_argument, NULL, 'i'},
        {"dns-port", required_argument, NULL, 'd'},
        {"no-dns", no_argument, NULL, 'n'},
        {"exclude-outbound-ports", required_argument, NULL, 'O'},
        {"exclude-inbound-ports", required_argument, NULL, 'I'},
        {"include-inbound-ports", required_argument, NULL, 'b'},
        {"exclude-outbound-cidrs", required_argument, NULL, 'x'},
        {"ipv6", no_argument, NULL, '6'},
        {"dry-run", no_argument, NULL, 'D'},
        {"cleanup", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    mesh_ipt_cfg_init(c);
    optind = 0; /* glibc: full reinitialisation (the caller may have used getopt) */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case 'u':
            if (!parse_ulong(optarg, 0xfffffffeUL, &c->proxy_uid))
                return fail(err, errsize, "--proxy-uid: \"%s\" is not a uid", optarg);
            break;
        case 'g':
            if (!parse_ulong(optarg, 0xfffffffeUL, &c->proxy_gid))
                return fail(err, errsize, "--proxy-gid: \"%s\" is not a gid", optarg);
            break;
        case 'o':
            rc = parse_port_flag("outbound-port", optarg, &c->outbound_port, err, errsize);
            break;
        case 'i':
            rc = parse_port_flag("inbound-port", optarg, &c->inbound_port, err, errsize);
            break;
        case 'd': rc = parse_port_flag("dns-port", optarg, &c->dns_port, err, errsize); break;
        case 'n': c->dns = false; break;
        case 'O':
            rc = parse_ports("exclude-outbound-ports", optarg, &c->exclude_outbound, err, errsize);
            break;
        case 'I':
            rc = parse_ports("exclude-inbound-ports", optarg, &c->exclude_inbound, err, errsize);
            break;
        case 'b':
            c->inbound_all = strcmp(optarg, "*") == 0;
            if (!c->inbound_all)
                rc = parse_ports("include-inbound-ports", optarg, &c->include_inbound, err,
                                 errsize);
            break;
        case 'x': rc = parse_cidrs(optarg, c, err, errsize); break;
        case '6': c->ipv6 = true; break;
        case 'D': c->dry_run = true; break;
        case 'C': c->cleanup = true; break;
        case 'h': usage(stdout); return 1;
        case ':':
            return fail(err, errsize, "%s needs a value (see --help)", argv[optind - 1]);
        default:
            return fail(err, errsize, "unknown option \"%s\" (see --help)", argv[optind - 1]);
        }
        if (rc)
            return rc;
    }
    if (optind < argc)
        return fail(err, errsize, "unexpected argument \"%s\" (see --help)", argv[optind]);
    return 0;
}

/* "--dport 80" or "--dport 8000:8100". */
static void dport(FILE *f, const struct mesh_ipt_range *r)
{
    fprintf(f, "--dport %u", r->lo);
    if (r->hi != r->lo)
        fprintf(f, ":%u", r->hi);
}

/*
 * Loopback and owner handling, as Istio writes it for each of uid and gid:
 * the proxy talking to its own pod address over lo is inbound traffic (to
 * 15006); the application talking over lo is left alone (but for DNS); the
 * proxy's own traffic elsewhere is left alone.
 */
static void owner_rules(FILE *f, const struct mesh_ipt_cfg *c, const char *kind,
                        unsigned long id, const char *lo_addr)
{
    const char *dns = c->dns ? " ! --dport 53" : "";
    fprintf(f, "-A MESH_OUTPUT -o lo ! -d %s -p tcp%s -m owner --%s-owner %lu "
               "-j MESH_IN_REDIRECT\n", lo_addr, dns, kind, id);
    fprintf(f, "-A MESH_OUTPUT -o lo%s%s -m owner ! --%s-owner %lu -j RETURN\n",
            c->dns ? " -p tcp" : "", dns, kind, id);
    fprintf(f, "-A MESH_OUTPUT -m owner --%s-owner %lu -j RETURN\n", kind, id);
}

char *mesh_ipt_rules(const struct mesh_ipt_cfg *c, int family)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    MESH_BUG_ON(!f);
    bool v6 = family == AF_INET6;
    const char *lo_addr = v6 ? "::1/128" : "127.0.0.1/32";
    /* Istio's inbound passthrough source: the sidecar's connections to the application */
    const char *passthrough = v6 ? "::6/128" : "127.0.0.6/32";

    fprintf(f, "*nat\n");
    for (size_t i = 0; i < MESH_ARRAY_LEN(chains); i++)
        if (c->dns || strcmp(chains[i], "MESH_OUTPUT_DNS") != 0)
            fprintf(f, ":%s - [0:0]\n", chains[i]);
    fprintf(f, "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports %u\n", c->outbound_port);
    fprintf(f, "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports %u\n", c->inbound_port);

    /* inbound: everything (or the included ports) but the sidecar's own ports */
    if (c->inbound_all || c->include_inbound.n) {
        fprintf(f, "-A PREROUTING -p tcp -j MESH_INBOUND\n");
        fprintf(f, "-A MESH_INBOUND -p tcp --dport %u:%u -j RETURN\n", ADMIN_LO, ADMIN_HI);
        if (c->inbound_all) {
            for (size_t i = 0; i < c->exclude_inbound.n; i++) {
                fprintf(f, "-A MESH_INBOUND -p tcp ");
                dport(f, &c->exclude_inbound.r[i]);
                fprintf(f, " -j RETURN\n");
            }
            fprintf(f, "-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT\n");
        } else {
            for (size_t i = 0; i < c->include_inbound.n; i++) {
                fprintf(f, "-A MESH_INBOUND -p tcp ");
                dport(f, &c->include_inbound.r[i]);
                fprintf(f, " -j MESH_IN_REDIRECT\n");
            }
        }
    }

    /* outbound */
    fprintf(f, "-A OUTPUT %s-j MESH_OUTPUT\n", c->dns ? "" : "-p tcp ");
    for (size_t i = 0; i < c->exclude_outbound.n; i++) {
        static const char *const protos[] = {"tcp", "udp"};
        for (size_t p = 0; p < 2; p++) {
            fprintf(f, "-A MESH_OUTPUT -p %s ", protos[p]);
            dport(f, &c->exclude_outbound.r[i]);
            fprintf(f, " -j RETURN\n");
        }
    }
    fprintf(f, "-A MESH_OUTPUT -o lo -s %s -j RETURN\n", passthrough);
    owner_rules(f, c, "uid", c->proxy_uid, lo_addr);
    owner_rules(f, c, "gid", c->proxy_gid, lo_addr);
    if (c->dns) {
        /* after the owner rules: the proxy's own upstream queries go out untouched */
        fprintf(f, "-A MESH_OUTPUT -j MESH_OUTPUT_DNS\n");
        fprintf(f, "-A MESH_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-ports %u\n",
                c->dns_port);
        fprintf(f, "-A MESH_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports %u\n",
                c->dns_port);
    }
    fprintf(f, "-A MESH_OUTPUT -d %s -j RETURN\n", lo_addr);
    for (size_t i = 0; i < c->n_cidrs; i++)
        if (c->exclude_cidrs[i].family == family)
            fprintf(f, "-A MESH_OUTPUT -d %s -j RETURN\n", c->exclude_cidrs[i].text);
    fprintf(f, "-A MESH_OUTPUT -j MESH_REDIRECT\n");
    fprintf(f, "COMMIT\n");
    fclose(f);
    return text;
}

static bool is_ours(const char *name, size_t len)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(chains); i++)
        if (strlen(chains[i]) == len && memcmp(chains[i], name, len) == 0)
            return true;
    return false;
}

/* The target of "-A CHAIN ... -j TARGET ..." when it is one of ours. */
static bool jumps_to_ours(const char *line, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(line + i, " -j ", 4) != 0)
            continue;
        size_t s = i + 4, e = s;
        while (e < len && line[e] != ' ')
            e++;
        if (is_ours(line + s, e - s))
            return true;
    }
    return false;
}

char *mesh_ipt_cleanup_rules(const char *saved)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    MESH_BUG_ON(!f);
    bool in_nat = false, any = false;
    char found[MESH_ARRAY_LEN(chains)] = {0};
    fprintf(f, "*nat\n");
    for (const char *p = saved; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 4 && memcmp(p, "*nat", 4) == 0)
            in_nat = true;
        else if (n && p[0] == '*')
            in_nat = false;
        else if (in_nat && n > 1 && p[0] == ':') {
            size_t e = 1;
            while (e < n && p[e] != ' ')
                e++;
            for (size_t i = 0; i < MESH_ARRAY_LEN(chains); i++)
                if (strlen(chains[i]) == e - 1 && memcmp(chains[i], p + 1, e - 1) == 0)
                    found[i] = 1;
        } else if (in_nat && n > 3 && memcmp(p, "-A ", 3) == 0) {
            size_t e = 3;
            while (e < n && p[e] != ' ')
                e++;
            /* a jump into our chains from a chain that is not ours (PREROUTING, OUTPUT) */
            if (!is_ours(p + 3, e - 3) && jumps_to_ours(p, n)) {
                fprintf(f, "-D%.*s\n", (int)(n - 2), p + 2);
                any = true;
            }
        }
        p += n;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    for (size_t i = 0; i < MESH_ARRAY_LEN(chains); i++)
        if (found[i]) {
            fprintf(f, "-F %s\n", chains[i]);
            any = true;
        }
    for (size_t i = 0; i < MESH_ARRAY_LEN(chains); i++)
        if (found[i])
            fprintf(f, "-X %s\n", chains[i]);
    fprintf(f, "COMMIT\n");
    fclose(f);
    if (!any) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- running iptables-restore / iptables-save ----------------------------------- */

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/sbin:/usr/bin:/sbin:/bin";
    char buf[4096];
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? path : ".", prog) <
                (int)sizeof(buf) &&
            access(buf, X_OK) == 0)
            return true;
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/*
 * Runs <prog> <arg>, writing <input> (may be NULL) to its stdin and, when
 * <output> is set, reading its stdout into *output (caller frees). Its stderr
 * is ours, or /dev/null when <quiet>. Returns its exit status, or -1 when it
 * could not run.
 */
static int run(const char *prog, const char *arg, const char *input, char **output,
               bool quiet)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe(in) || (output && pipe(out))) {
        fprintf(stderr, "meshd iptables: pipe: %s\n", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    if (output) {
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, out[0]);
    }
    if (quiet)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *const argv[] = {(char *)prog, (char *)arg, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    if (output)
        close(out[1]);
    if (rc) {
        fprintf(stderr, "meshd iptables: cannot run %s: %s\n", prog, strerror(rc));
        close(in[1]);
        if (output)
            close(out[0]);
        return -1;
    }
    /* the inputs are a few KiB, below the pipe buffer; write errors show as the child's exit */
    size_t left = input ? strlen(input) : 0;
    while (left) {
        ssize_t w = write(in[1], input, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        input += w;
        left -= (size_t)w;
    }
    close(in[1]);
    if (output) {
        size_t cap = 8192, n = 0;
        char *buf = mesh_xmalloc(cap);
        for (;;) {
            if (n + 1 == cap)
                buf = mesh_xrealloc(buf, cap *= 2);
            ssize_t r = read(out[0], buf + n, cap - n - 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        buf[n] = '\0';
        close(out[0]);
        *output = buf;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

struct family_tools {
    int family;
    const char *restore, *save;
};

static const struct family_tools tools[] = {
    {AF_INET, "iptables-restore", "iptables-save"},
    {AF_INET6, "ip6tables-restore", "ip6tables-save"},
};

/* <optional>: a failure is silent (IPv6 cleanup without --ipv6, where IPv6 nat may not exist) */
static int save_nat(const struct family_tools *t, char **saved, bool optional)
{
    /* "-tnat": one argument, so run() stays a two-argument helper */
    int rc = run(t->save, "-tnat", NULL, saved, optional);
    if (rc != 0) {
        free(*saved);
        *saved = NULL;
        if (!optional)
            fprintf(stderr, "meshd iptables: %s failed (exit %d)\n", t->save, rc);
        return -1;
    }
    return 0;
}

static int apply(const struct family_tools *t, const char *input, const char *what)
{
    int rc = run(t->restore, "--noflush", input, NULL, false);
    if (rc != 0) {
        fprintf(stderr,
                "meshd iptables: %s --noflush failed (exit %d) while %s; it applies a table "
                "all or nothing, so nothing changed. Its input was:\n%s",
                t->restore, rc, what, input);
        return -1;
    }
    return 0;
}

static int cleanup_family(const struct family_tools *t, bool dry_run, bool quiet, bool optional)
{
    char *saved = NULL;
    if (save_nat(t, &saved, optional))
        return optional ? 0 : -1;
    char *input = mesh_ipt_cleanup_rules(saved);
    free(saved);
    int rc = 0;
    if (!input) {
        if (!quiet && !optional)
            fprintf(dry_run ? stdout : stderr, "# %s: no meshd rules to remove\n", t->restore);
    } else if (dry_run) {
        printf("# %s --noflush\n%s", t->restore, input);
    } else {
        rc = apply(t, input, "removing the meshd rules");
        if (!rc && !quiet)
            fprintf(stderr, "meshd iptables: removed the meshd rules (%s)\n", t->restore);
    }
    free(input);
    return rc;
}

int mesh_iptables_main(int argc, char **argv)
{
    struct mesh_ipt_cfg c;
    char err[512];
    int prc = mesh_ipt_parse_args(argc, argv, &c, err, sizeof(err));
    if (prc > 0)
        return 0;
    if (prc < 0) {
        fprintf(stderr, "meshd iptables: %s\n", err);
        return 2;
    }
    size_t nfam = c.ipv6 ? 2 : 1;
    if (c.dry_run && !c.cleanup) {
        for (size_t i = 0; i < nfam; i++) {
            char *text = mesh_ipt_rules(&c, tools[i].family);
            printf("# %s --noflush\n%s", tools[i].restore, text);
            free(text);
        }
        return 0;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "meshd iptables: changing the nat table needs root (CAP_NET_ADMIN) in "
                        "the pod's network namespace; --dry-run prints the rules without it\n");
        return 1;
    }
    for (size_t i = 0; i < nfam; i++) {
        if (!in_path(tools[i].restore) || !in_path(tools[i].save)) {
            fprintf(stderr, "meshd iptables: %s or %s not found in PATH (Debian: apt-get "
                            "install iptables)\n", tools[i].restore, tools[i].save);
            return 1;
        }
    }
    if (c.cleanup) {
        /* IPv6 rules go too when they may be there, --ipv6 or not (not an error otherwise) */
        bool v6 = c.ipv6 || (in_path(tools[1].restore) && in_path(tools[1].save));
        for (size_t i = 0; i < (v6 ? 2u : 1u); i++)
            if (cleanup_family(&tools[i], c.dry_run, false, i == 1 && !c.ipv6))
                return 1;
        return 0;
    }
    for (size_t i = 0; i < nfam; i++) {
        /* a second install replaces the first instead of doubling the jumps */
        if (cleanup_family(&tools[i], false, true, false))
            return 1;
        char *text = mesh_ipt_rules(&c, tools[i].family);
        int rc = apply(&tools[i], text, "installing the meshd rules");
        free(text);
        if (rc)
            return 1;
        char dns[16] = "left alone";
        if (c.dns)
            snprintf(dns, sizeof(dns), "%u", c.dns_port);
        fprintf(stderr, "meshd iptables: installed (%s): outbound tcp -> %u, inbound tcp -> "
                        "%u, dns -> %s, uid %lu and gid %lu left alone\n", tools[i].restore,
                c.outbound_port, c.inbound_port, dns, c.proxy_uid, c.proxy_gid);
    }
    return 0;
}
