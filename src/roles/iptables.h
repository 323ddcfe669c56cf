/*
 * `meshd iptables`: the pod's init step. Installs the nat rules that send the
 * application's TCP to the sidecar (outbound 15001, inbound 15006) and its DNS
 * to the sidecar's DNS proxy (15053), Istio's rules under MESH_* chain names.
 * See docs/sidecar.md for the rules and where they differ from Istio's.
 */
#ifndef MESH_ROLES_IPTABLES_H
#define MESH_ROLES_IPTABLES_H

#include "core/common.h"

#define MESH_IPT_MAX_ITEMS 64

struct mesh_ipt_range {
    uint16_t lo, hi;            /* one port: lo == hi */
};

struct mesh_ipt_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    char text[64];              /* canonical "network/prefix" (host bits cleared) */
};

struct mesh_ipt_ports {
    size_t n;
    struct mesh_ipt_range r[MESH_IPT_MAX_ITEMS];
};

struct mesh_ipt_cfg {
    unsigned long proxy_uid, proxy_gid;       /* default 1337 both */
    uint16_t outbound_port, inbound_port, dns_port;   /* 15001, 15006, 15053 */
    struct mesh_ipt_ports exclude_outbound;   /* tcp and udp destination ports left alone */
    struct mesh_ipt_ports exclude_inbound;    /* besides 15000-15090, always left alone */
    bool inbound_all;                         /* include-inbound-ports "*" (the default) */
    struct mesh_ipt_ports include_inbound;    /* when !inbound_all; empty: no inbound capture */
    size_t n_cidrs;
    struct mesh_ipt_cidr exclude_cidrs[MESH_IPT_MAX_ITEMS];
    bool dns;                                 /* capture udp/tcp 53 (default on, --no-dns) */
    bool ipv6;                                /* also ip6tables */
    bool dry_run, cleanup;
};

/** The defaults above. */
void mesh_ipt_cfg_init(struct mesh_ipt_cfg *c);

/**
 * Parses `meshd iptables` flags (argv[0] is "iptables"). Returns 0, 1 after
 * --help (printed to stdout), or -1 with a message in <err> (<errsize> bytes).
 */
int mesh_ipt_parse_args(int argc, char **argv, struct mesh_ipt_cfg *c, char *err,
                        size_t errsize);

/**
 * The iptables-restore input (nat table, for `--noflush`) that installs the
 * rules for <family> (AF_INET or AF_INET6). Caller frees.
 */
char *mesh_ipt_rules(const struct mesh_ipt_cfg *c, int family);

/**
 * The iptables-restore input that removes exactly what mesh_ipt_rules()
 * installed, given the current `iptables-save -t nat` text <saved>: the jumps
 * from PREROUTING/OUTPUT into our chains, then our chains. NULL when nothing
 * of ours is there (so cleanup is idempotent). Caller frees.
 */
char *mesh_ipt_cleanup_rules(const char *saved);

/** `meshd iptables ...`: returns the process exit code. */
int mesh_iptables_main(int argc, char **argv);

#endif /* MESH_ROLES_IPTABLES_H */
