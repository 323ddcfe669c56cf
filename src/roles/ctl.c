/* meshd ctl: the operator's CLI. One row per subcommand in the table below. */
#include "core/common.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "core/diag.h"
#include "core/resource.h"
#include "roles/ctl.h"
#include "roles/ctl_client.h"
#include "roles/ctl_proxy_status.h"
#include "roles/ctl_snapshot.h"

struct ctl_cmd {
    const char *name;
    const char *usage;   /* arguments, for the help text */
    const char *summary;
    /** Runs the subcommand; <argv>[0] is its name. Returns the exit code. */
    int (*run)(int argc, char **argv);
};

static int cmd_validate(int argc, char **argv);

/*
 * Subcommands. A row with no <run> is announced in --help but not built yet:
 * those come with the control plane (store, API server, compiler).
 */
static const struct ctl_cmd cmds[] = {
    {"validate", "-f FILE|DIR|- [-R] [--fragments] [-q]",
     "check Istio and Kubernetes YAML/JSON offline, like istioctl validate", cmd_validate},
    {"apply", "-f FILE|DIR|- [-R] [--dry-run] [--note TEXT]",
     "create or update resources in the control plane (one revision)", mesh_ctl_apply},
    {"get", "KIND|all [NAME] [-n NS|-A] [-l SELECTOR] [-o yaml|json|wide|name]",
     "list or show resources", mesh_ctl_get},
    {"delete", "KIND NAME... [-n NS] | -f FILE|DIR|-", "delete resources", mesh_ctl_delete},
    {"history", "[KIND[/NAME]] [-n NS|-A]", "revisions of the configuration", mesh_ctl_history},
    {"diff", "REV [REV]", "unified YAML diff between revisions", mesh_ctl_diff},
    {"rollback", "REV", "make a new revision equal to an old one", mesh_ctl_rollback},
    {"snapshot", "--node NS/WORKLOAD [-f FILE|DIR|-] [--labels k=v,...] [--role sidecar|gateway]",
     "print the snapshot a proxy would receive (from files or the control plane)", mesh_ctl_snapshot},
    {"proxy-status", "[NS/NAME] [-o table|json]",
     "every proxy watching the control plane: SYNCED, STALE or NACK", mesh_ctl_proxy_status},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: meshd ctl COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < MESH_ARRAY_LEN(cmds); i++)
        if (cmds[i].run)
            fprintf(f, "  %-9s %s\n            %s\n", cmds[i].name, cmds[i].summary,
                    cmds[i].usage);
    size_t pending = 0;
    for (size_t i = 0; i < MESH_ARRAY_LEN(cmds); i++)
        pending += !cmds[i].run;
    if (pending) {
        fprintf(f, "\nnot built yet:");
        for (size_t i = 0, n = 0; i < MESH_ARRAY_LEN(cmds); i++)
            if (!cmds[i].run)
                fprintf(f, "%s %s", n++ ? "," : "", cmds[i].name);
        fprintf(f, "\n");
    }
    fprintf(f, "\n\nRun \"meshd ctl COMMAND --help\" for the options of a command.\n");
}

int mesh_ctl_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < MESH_ARRAY_LEN(cmds); i++) {
        if (strcmp(cmds[i].name, name) != 0)
            continue;
        if (!cmds[i].run) {
            fprintf(stderr, "meshd ctl %s: not available yet (it comes with the control plane)\n",
                    name);
            return 2;
        }
        return cmds[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "meshd ctl: unknown command \"%s\"\n\n", name);
    usage(stderr);
    return 2;
}

/* ---- validate ---- */

static void validate_usage(FILE *f)
{
    fprintf(f,
            "usage: meshd ctl validate -f FILE|DIR|- [-f ...] [options]\n\n"
            "Reads Istio (networking.istio.io, security.istio.io) and Kubernetes (Service,\n"
            "Endpoints, EndpointSlice) resources and reports every problem as\n"
            "FILE:LINE:COL: KIND NAMESPACE/NAME: FIELD.PATH: MESSAGE. Other kinds are skipped.\n"
            "A directory means its *.yaml, *.yml and *.json files.\n\n"
            "options:\n"
            "  -f, --filename PATH  file, directory or - (stdin); repeatable\n"
            "  -R, --recursive      descend into subdirectories\n"
            "      --fragments      skip documents without a kind instead of failing\n"
            "  -q, --quiet          print errors only (no warnings, no notes)\n\n"
            "exit status: 0 when there is no error (warnings are fine), 1 on errors, 2 on "
            "usage errors\n");
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static int cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"fragments", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **paths = mesh_xcalloc((size_t)argc + 1, sizeof(*paths));
    size_t n_paths = 0;
    unsigned flags = 0;
    bool quiet = false;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":f:Rqh", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': paths[n_paths++] = optarg; break;
        case 'R': flags |= MESH_LOAD_RECURSIVE; break;
        case 'F': flags |= MESH_LOAD_FRAGMENTS; break;
        case 'q': quiet = true; break;
        case 'h':
            validate_usage(stdout);
            free(paths);
            return 0;
        case ':':
            fprintf(stderr, "meshd ctl validate: option %s needs a value\n", argv[optind - 1]);
            free(paths);
            return 2;
        default:
            fprintf(stderr, "meshd ctl validate: unknown option \"%s\"\n\n", argv[optind - 1]);
            validate_usage(stderr);
            free(paths);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meshd ctl validate: unexpected argument \"%s\" (use -f PATH)\n",
                argv[optind]);
        free(paths);
        return 2;
    }
    if (!n_paths) {
        fprintf(stderr, "meshd ctl validate: nothing to validate: give -f FILE|DIR|-\n");
        free(paths);
        return 2;
    }

    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    for (size_t i = 0; i < n_paths; i++)
        mesh_resource_load_path(&set, paths[i], flags);
    free(paths);

    fflush(stdout);
    mesh_diags_sort(&set.diags);
    mesh_diags_print(&set.diags, stderr, quiet ? MESH_DIAG_ERROR : MESH_DIAG_NOTE);
    fflush(stderr);
    size_t errors = set.diags.n_errors, warnings = set.diags.n_warnings;
    printf("%zu %s valid, %zu %s, %zu %s", set.n_valid,
           plural(set.n_valid, "resource", "resources"), errors,
           plural(errors, "error", "errors"), warnings, plural(warnings, "warning", "warnings"));
    if (set.n_skipped)
        printf(", %zu %s skipped", set.n_skipped, plural(set.n_skipped, "document", "documents"));
    printf("\n");
    fflush(stdout);
    mesh_resource_set_free(&set);
    return errors ? 1 : 0;
}
