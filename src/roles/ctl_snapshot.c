/* meshd ctl snapshot: compiles one proxy's snapshot offline, like istioctl proxy-config. */
#include "core/common.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "core/addr.h"
#include "core/compile.h"
#include "core/compile_check.h"
#include "core/diag.h"
#include "core/resource.h"
#include "core/status.h"
#include "roles/ctl_client.h"
#include "roles/ctl_snapshot.h"

static void snapshot_usage(FILE *f)
{
    fprintf(f,
            "usage: meshd ctl snapshot --node NS/WORKLOAD [-f FILE|DIR|-] [options]\n\n"
            "Compiles the snapshot (docs/snapshot.md) that the proxy of workload WORKLOAD in\n"
            "namespace NS would receive from the Istio and Kubernetes resources of the files,\n"
            "or, without -f, of the control plane (like istioctl proxy-config), and prints it\n"
            "as JSON. Warnings (fields not enforced yet, routes left out) go to\n"
            "stderr. docs/compile.md tells how each Istio field is compiled.\n\n"
            "options:\n"
            "  -f, --filename PATH    file, directory or - (stdin); repeatable\n"
            "  -R, --recursive        descend into subdirectories\n"
            "      --server URL       without -f: the control plane (MESHD_SERVER, "
            "http://127.0.0.1:15010)\n"
            "      --token-file F     its token (MESHD_TOKEN, ./meshd-data/token)\n"
            "      --node NS/WORKLOAD the proxy's namespace and workload name (required)\n"
            "  -l, --labels k=v,...   the workload's labels (Sidecar, Gateway, sourceLabels)\n"
            "      --role ROLE        sidecar (default) or gateway\n"
            "      --outbound ADDR:PORT  the sidecar's outbound listener (127.0.0.1:15001)\n"
            "      --inbound ADDR:PORT   its inbound listener (0.0.0.0:15006; with an outbound\n"
            "                            port 0, the outbound address and port 0)\n"
            "      --admin ADDR:PORT|none  the admin listener (127.0.0.1:15000)\n"
            "      --gateway-address ADDR  gateway listeners without a bind (0.0.0.0)\n"
            "      --locality R/Z/S   the proxy's region/zone/subzone for locality load\n"
            "                         balancing (default: from the topology labels)\n"
            "      --snapshot-version V  version string (default: a hash of the content)\n"
            "      --outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY  the mesh's default, as\n"
            "                         the control plane's flag of that name (ALLOW_ANY)\n"
            "  -q, --quiet            print errors only (no warnings, no notes)\n\n"
            "exit status: 0 printed, 1 the files have errors or no snapshot can be built, "
            "2 usage errors\n");
}

/* A compile warning the loader already gave (same resource and field) is said once. */
static bool said_by_loader(const struct mesh_diags *loader, const struct mesh_diag *e)
{
    if (!e->subject || !e->path)
        return false;
    for (size_t i = 0; i < loader->n; i++) {
        const struct mesh_diag *l = &loader->v[i];
        if (l->subject && l->path && strcmp(l->subject, e->subject) == 0 &&
            strcmp(l->path, e->path) == 0)
            return true;
    }
    return false;
}

/* "127.0.0.1:15001" or "[::1]:15001" into <addr> (a copy in <buf>) and <port>. */
/* "ADDR:PORT" into <buf>: the host text, which <addr> points at. */
static bool parse_addr_port(const char *s, char *buf, size_t size, const char **addr,
                            uint16_t *port)
{
    if (mesh_addr_split(s, buf, size, port))
        return false;
    *addr = buf;
    return true;
}

/* "region", "region/zone" or "region/zone/subzone", the region not empty. */
static bool valid_locality(const char *s)
{
    size_t slashes = 0;
    for (const char *p = s; *p; p++)
        slashes += *p == '/';
    return *s && *s != '/' && slashes <= 2;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "meshd ctl snapshot: %s%s%s%s\n", msg, arg ? " \"" : "", arg ? arg : "",
            arg ? "\"" : "");
    return 2;
}

int mesh_ctl_snapshot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"server", required_argument, NULL, 'S'},
        {"token-file", required_argument, NULL, 'T'},
        {"recursive", no_argument, NULL, 'R'},
        {"node", required_argument, NULL, 'n'},
        {"labels", required_argument, NULL, 'l'},
        {"role", required_argument, NULL, 'r'},
        {"snapshot-version", required_argument, NULL, 'V'},
        {"outbound", required_argument, NULL, 'o'},
        {"inbound", required_argument, NULL, 'i'},
        {"admin", required_argument, NULL, 'a'},
        {"gateway-address", required_argument, NULL, 'g'},
        {"locality", required_argument, NULL, 'L'},
        {"outbound-traffic-policy", required_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **paths = mesh_xcalloc((size_t)argc + 1, sizeof(*paths));
    size_t n_paths = 0;
    unsigned flags = 0;
    bool quiet = false;
    const char *node_arg = NULL, *labels_arg = NULL, *role = "sidecar", *version = NULL;
    const char *outbound = NULL, *admin = NULL, *gw_addr = NULL, *locality = NULL;
    const char *policy = NULL;
    const char *server = NULL, *token_file = NULL, *inbound = NULL;
    int ch, rc = 2;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":f:Rl:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': paths[n_paths++] = optarg; break;
        case 'S': server = optarg; break;
        case 'T': token_file = optarg; break;
        case 'R': flags |= MESH_LOAD_RECURSIVE; break;
        case 'n': node_arg = optarg; break;
        case 'l': labels_arg = optarg; break;
        case 'r': role = optarg; break;
        case 'V': version = optarg; break;
        case 'o': outbound = optarg; break;
        case 'i': inbound = optarg; break;
        case 'a': admin = optarg; break;
        case 'g': gw_addr = optarg; break;
        case 'L': locality = optarg; break;
        case 'P': policy = optarg; break;
        case 'q': quiet = true; break;
        case 'h':
            snapshot_usage(stdout);
            free(paths);
            return 0;
        case ':':
            free(paths);
            return usage_error("option needs a value:", argv[optind - 1]);
        default:
            snapshot_usage(stderr);
            free(paths);
            return usage_error("unknown option", argv[optind - 1]);
        }
    }

    char *node_copy = NULL;
    struct mesh_kv *labels = NULL;
    size_t n_labels = 0;
    struct mesh_node node;
    mesh_node_init(&node);
    if (optind < argc) {
        rc = usage_error("unexpected argument (use -f PATH)", argv[optind]);
        goto out;
    }
    const char *slash = node_arg ? strchr(node_arg, '/') : NULL;
    if (!slash || slash == node_arg || !slash[1] || strchr(slash + 1, '/')) {
        rc = usage_error("--node NS/WORKLOAD is required, got", node_arg ? node_arg : "nothing");
        goto out;
    }
    node_copy = mesh_xstrdup(node_arg);
    node_copy[slash - node_arg] = '\0';
    node.namespace_ = node_copy;
    node.name = node_copy + (slash - node_arg) + 1;
    if (!mesh_compile_parse_labels(labels_arg, &labels, &n_labels)) {
        rc = usage_error("--labels: expected k=v,k2=v2, got", labels_arg);
        goto out;
    }
    node.labels = labels;
    node.n_labels = n_labels;
    if (strcmp(role, "sidecar") == 0) {
        node.role = MESH_NODE_SIDECAR;
    } else if (strcmp(role, "gateway") == 0) {
        node.role = MESH_NODE_GATEWAY;
    } else {
        rc = usage_error("--role: expected sidecar or gateway, got", role);
        goto out;
    }
    node.version = version;
    char out_buf[64], admin_buf[64], in_buf[64];
    if (inbound && !parse_addr_port(inbound, in_buf, sizeof(in_buf), &node.inbound_address,
                                    &node.inbound_port)) {
        rc = usage_error("--inbound: expected ADDR:PORT, got", inbound);
        goto out;
    }
    if (outbound && !parse_addr_port(outbound, out_buf, sizeof(out_buf), &node.outbound_address,
                                     &node.outbound_port)) {
        rc = usage_error("--outbound: expected ADDR:PORT, got", outbound);
        goto out;
    }
    if (admin && strcmp(admin, "none") == 0) {
        node.admin_address = NULL;
    } else if (admin && !parse_addr_port(admin, admin_buf, sizeof(admin_buf),
                                         &node.admin_address, &node.admin_port)) {
        rc = usage_error("--admin: expected ADDR:PORT or none, got", admin);
        goto out;
    }
    if (gw_addr)
        node.gateway_address = gw_addr;
    if (locality && !valid_locality(locality)) {
        rc = usage_error("--locality: expected REGION[/ZONE[/SUBZONE]], got", locality);
        goto out;
    }
    node.locality = locality;
    if (policy && strcmp(policy, "ALLOW_ANY") != 0 && strcmp(policy, "REGISTRY_ONLY") != 0) {
        rc = usage_error("--outbound-traffic-policy: expected ALLOW_ANY or REGISTRY_ONLY, got",
                         policy);
        goto out;
    }
    node.registry_only = policy && strcmp(policy, "REGISTRY_ONLY") == 0;

    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    for (size_t i = 0; i < n_paths; i++)
        mesh_resource_load_path(&set, paths[i], flags);
    if (!n_paths) {
        /* no files: compile what the control plane holds, as it would for this proxy */
        int frc = 0;
        char *items = mesh_ctl_fetch_all(server, token_file, &frc);
        if (!items) {
            mesh_resource_set_free(&set);
            rc = frc;
            goto out;
        }
        mesh_resource_load_buffer(&set, items, strlen(items), "control-plane", 0);
        free(items);
    }
    enum mesh_diag_severity max_sev = quiet ? MESH_DIAG_ERROR : MESH_DIAG_NOTE;
    mesh_diags_print(&set.diags, stderr, max_sev);
    if (set.diags.n_errors) {
        fprintf(stderr, "meshd ctl snapshot: the files have errors: no snapshot\n");
        mesh_resource_set_free(&set);
        rc = 1;
        goto out;
    }

    struct mesh_diags cd;
    mesh_diags_init(&cd);
    json_t *snap = NULL;
    int st = mesh_compile(&set, &node, &snap, &cd);
    char buf[2048];
    for (size_t i = 0; i < cd.n; i++) {
        if (cd.v[i].severity > max_sev || said_by_loader(&set.diags, &cd.v[i]))
            continue;
        mesh_diag_format(&cd.v[i], buf, sizeof(buf));
        fprintf(stderr, "%s\n", buf);
    }
    rc = 1;
    if (st == MESH_OK) {
        /* the data plane must accept what we print: check it like a proxy would */
        struct mesh_err err;
        char *text = json_dumps(snap, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (text && mesh_compile_check(snap, &err, NULL)) {
            printf("%s\n", text);
            rc = 0;
        } else if (text) {
            char *msg = mesh_xmalloc(16384);
            mesh_err_format(&err, msg, 16384);
            fprintf(stderr, "meshd ctl snapshot: bug: the compiled snapshot is not valid:\n%s",
                    msg);
            free(msg);
        }
        free(text);
    }
    json_decref(snap);
    mesh_diags_free(&cd);
    mesh_resource_set_free(&set);
out:
    free(labels);
    free(node_copy);
    free(paths);
    return rc;
}
