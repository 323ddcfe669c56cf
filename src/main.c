/* meshd: parse flags, pick a role, hand over. */
#include "core/common.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "roles/ctl.h"
#include "roles/role.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshd --role=ROLE [options]\n"
               "       meshd ctl COMMAND ...   (the operator's CLI: meshd ctl --help)\n\nroles:\n");
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
               "  --data-dir DIR       control: store and token (default ./meshd-data)\n"
               "  --listen ADDR:PORT   control: the resource API (default 127.0.0.1:15010);\n"
               "                       sidecar with --config-dir: the outbound listener (15001)\n"
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
    struct mesh_opts o = {.ready_fd = -1};
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return mesh_ctl_main(argc - 1, argv + 1);
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'},
        {"snapshot", required_argument, NULL, 's'},
        {"admin", required_argument, NULL, 'a'},
        {"concurrency", required_argument, NULL, 'c'},
        {"ready-fd", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'l'},
        {"check", no_argument, NULL, 't'},
        {"access-log", no_argument, NULL, 'A'},
        {"data-dir", required_argument, NULL, 'D'},
        {"config-dir", required_argument, NULL, 'C'},
        {"node", required_argument, NULL, 'N'},
        {"labels", required_argument, NULL, 'B'},
        {"listen", required_argument, NULL, 'L'},
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
        case 'D': o.data_dir = optarg; break;
        case 'C': o.config_dir = optarg; break;
        case 'N': o.node = optarg; break;
        case 'B': o.labels = optarg; break;
        case 'L': o.listen = optarg; break;
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
