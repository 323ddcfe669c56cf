/* meshd: parse flags, pick a role, hand over. */
#include "core/common.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "core/io_batch.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/runtime.h"
#include "roles/ctl.h"
#include "roles/iptables.h"
#include "roles/role.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshd --role=ROLE [options]\n"
               "       meshd ctl COMMAND ...   (the operator's CLI: meshd ctl --help)\n"
               "       meshd iptables [...]    (the pod's init step: meshd iptables --help)\n\nroles:\n");
    for (size_t i = 0; mesh_roles[i]; i++)
        fprintf(f, "  %-10s %s\n", mesh_roles[i]->name, mesh_roles[i]->summary);
    fprintf(f, "\noptions:\n"
               "  --snapshot FILE      proxy configuration (JSON, see docs/snapshot.md)\n"
               "  --config-dir DIR     sidecar/gateway without a control plane: compile the Istio\n"
               "                       YAML in DIR locally (with --node NS/WORKLOAD, --labels k=v,...)\n"
               "  --check              validate the configuration and exit\n"
               "  --admin ADDR:PORT    admin listener (loopback only), overrides the snapshot\n"
               "  --concurrency N      worker threads (default: number of cores)\n"
               "  --ready-fd N         write \"ready admin=PORT NAME=PORT...\" to fd N once listening\n"
               "  --log-level LEVEL    trace, debug, info (default), warn, error, off\n"
               "  --access-log         one line per request on stderr (with response flags)\n"
               "  --io MODE            socket I/O: auto (io_uring when the kernel allows it),\n"
               "                       uring (or fail), syscalls (one system call per read/write)\n"
               "  --poll-spins N       after a busy turn a worker yields its CPU and polls again\n"
               "                       up to N times before it sleeps (default 16, 0 = never)\n"
               "  --data-dir DIR       control: store and token (default ./meshd-data)\n"
               "  --listen ADDR:PORT   control: the resource API (default 127.0.0.1:15010);\n"
               "                       sidecar with --config-dir: the outbound listener (15001)\n"
               "  --debounce-ms N      control: at most one push round per N ms (100)\n"
               "  --outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY  control, and sidecar with\n"
               "                       --config-dir: what sidecars do with unknown destinations\n"
               "                       unless a Sidecar resource says (ALLOW_ANY)\n"
               "  --control ADDR:PORT  sidecar/gateway: take snapshots from the control plane\n"
               "                       (with --node NS/NAME, --labels, --listen for the outbound)\n"
               "  --control-token FILE the control plane's token, for a non-loopback one\n"
               "  --health ADDR:PORT   /healthz/ready: 503 until the first snapshot (127.0.0.1:15021)\n"
               "  --exit-on-app-exit PID  drain and exit when process PID exits\n"
               "  --drain-grace-ms N   on SIGTERM serve on until the endpoint left every proxy\n"
               "                       (--register: at most N ms, default 5000) or for N ms\n"
               "                       (default 0), then drain\n"
               "  --dns ADDR:PORT|off  sidecar: the DNS proxy (default 127.0.0.1:15053 in a pod:\n"
               "                       outbound on 15001, else off); --dns-upstream ADDR:PORT\n"
               "                       instead of /etc/resolv.conf's nameserver\n"
               "  --register           sidecar: register the workload with --control (a lease;\n"
               "                       --node NS/NAME, --labels, --register-address IP,\n"
               "                       --register-service NAME, --register-port name=port,...,\n"
               "                       --register-ttl S (30), --locality R/Z/S)\n"
               "  --version, --help\n\n"
               "signals: SIGHUP reloads the snapshot (sidecar, gateway), SIGTERM drains and exits\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!*s || *s == '-')
        return false;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > max)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    mesh_mem_use_for_libevent(); /* before any other libevent call */
    struct mesh_opts o = {.ready_fd = -1, .debounce_ms = -1, .drain_grace_ms = -1, .poll_spins = -1};
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return mesh_ctl_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "iptables") == 0)
        return mesh_iptables_main(argc - 1, argv + 1);
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'},
        {"snapshot", required_argument, NULL, 's'},
        {"admin", required_argument, NULL, 'a'},
        {"concurrency", required_argument, NULL, 'c'},
        {"ready-fd", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'l'},
        {"check", no_argument, NULL, 't'},
        {"access-log", no_argument, NULL, 'A'},
        {"io", required_argument, NULL, 0x107},
        {"poll-spins", required_argument, NULL, 0x108},
        {"data-dir", required_argument, NULL, 'D'},
        {"config-dir", required_argument, NULL, 'C'},
        {"node", required_argument, NULL, 'N'},
        {"labels", required_argument, NULL, 'B'},
        {"listen", required_argument, NULL, 'L'},
        {"control", required_argument, NULL, 0x100},
        {"control-token", required_argument, NULL, 0x101},
        {"health", required_argument, NULL, 0x102},
        {"exit-on-app-exit", required_argument, NULL, 0x103},
        {"debounce-ms", required_argument, NULL, 0x104},
        {"outbound-traffic-policy", required_argument, NULL, 0x106},
        {"drain-grace-ms", required_argument, NULL, 0x105},
        {"dns", required_argument, NULL, 0x110},
        {"dns-upstream", required_argument, NULL, 0x111},
        {"register", no_argument, NULL, 0x120},
        {"register-service", required_argument, NULL, 0x121},
        {"register-port", required_argument, NULL, 0x122},
        {"register-address", required_argument, NULL, 0x123},
        {"register-ttl", required_argument, NULL, 0x124},
        {"locality", required_argument, NULL, 0x125},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    unsigned long v;
    while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': o.role = optarg; break;
        case 's': o.snapshot = optarg; break;
        case 'a': o.admin = optarg; break;
        case 't': o.check_only = true; break;
        case 'A': o.access_log = true; break;
        case 0x107:
            if ((o.io_mode = mesh_io_mode_parse(optarg)) < 0) {
                fprintf(stderr, "meshd: --io: expected auto, uring or syscalls, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 0x108:
            if (!parse_uint(optarg, MESH_POLL_SPINS_MAX, &v)) {
                fprintf(stderr, "meshd: --poll-spins: expected 0..%d, got \"%s\"\n",
                        MESH_POLL_SPINS_MAX, optarg);
                return 2;
            }
            o.poll_spins = (int)v;
            break;
        case 'D': o.data_dir = optarg; break;
        case 'C': o.config_dir = optarg; break;
        case 'N': o.node = optarg; break;
        case 'B': o.labels = optarg; break;
        case 'L': o.listen = optarg; break;
        case 0x100: o.control = optarg; break;
        case 0x120: o.register_ = true; break; /* sidecar_register.h */
        case 0x121: o.register_service = optarg; break;
        case 0x122: o.register_ports = optarg; break;
        case 0x123: o.register_address = optarg; break;
        case 0x124:
            if (!parse_uint(optarg, 86400, &v) || v < 3) {
                fprintf(stderr, "meshd: --register-ttl: expected 3..86400 seconds\n");
                return 2;
            }
            o.register_ttl = (unsigned)v;
            break;
        case 0x125: o.locality = optarg; break;
        case 0x101: o.control_token = optarg; break;
        case 0x102: o.health = optarg; break;
        case 0x110: o.dns = optarg; break;
        case 0x111: o.dns_upstream = optarg; break;
        case 0x103:
            if (!parse_uint(optarg, 0x7fffffff, &v) || v == 0) {
                fprintf(stderr, "meshd: --exit-on-app-exit: expected a process id\n");
                return 2;
            }
            o.exit_on_app_exit = (int)v;
            break;
        case 0x105:
            if (!parse_uint(optarg, 600000, &v)) {
                fprintf(stderr, "meshd: --drain-grace-ms: expected 0..600000\n");
                return 2;
            }
            o.drain_grace_ms = (int)v;
            break;
        case 0x106:
            if (strcmp(optarg, "ALLOW_ANY") != 0 && strcmp(optarg, "REGISTRY_ONLY") != 0) {
                fprintf(stderr, "meshd: --outbound-traffic-policy: expected ALLOW_ANY or "
                                "REGISTRY_ONLY, got \"%s\"\n", optarg);
                return 2;
            }
            o.registry_only = strcmp(optarg, "REGISTRY_ONLY") == 0;
            break;
        case 0x104:
            if (!parse_uint(optarg, 60000, &v)) {
                fprintf(stderr, "meshd: --debounce-ms: expected 0..60000\n");
                return 2;
            }
            o.debounce_ms = (int)v;
            break;
        case 'c':
            if (!parse_uint(optarg, 1024, &v) || v == 0) {
                fprintf(stderr, "meshd: --concurrency: expected 1..1024, got \"%s\"\n", optarg);
                return 2;
            }
            o.concurrency = (unsigned)v;
            break;
        case 'f':
            if (!parse_uint(optarg, 65535, &v)) {
                fprintf(stderr, "meshd: --ready-fd: expected a file descriptor number\n");
                return 2;
            }
            o.ready_fd = (int)v;
            break;
        case 'l': {
            int level = mesh_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "meshd: --log-level: expected trace, debug, info, warn, error "
                                "or off, got \"%s\"\n", optarg);
                return 2;
            }
            mesh_log_set_level(level);
            break;
        }
        case 'V': printf("meshd %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meshd: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!o.role) {
        usage(stderr);
        return 2;
    }
    const struct mesh_role *r = mesh_role_find(o.role);
    if (!r) {
        fprintf(stderr, "meshd: unknown role \"%s\" (sidecar, gateway, control, registry)\n", o.role);
        return 2;
    }
    if (!r->run) {
        fprintf(stderr, "meshd: the %s role is not built yet in this version\n", r->name);
        return 3;
    }
    return r->run(&o);
}
