/*
 * --config-dir: the bare-metal mode. The YAML in DIR is validated and compiled
 * here, for the node given by --node/--labels, exactly as the control plane
 * compiles it. Kept apart from proxy.c so the engine's and the resource
 * model's headers never meet in one file.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/addr.h"
#include "core/compile.h"
#include "core/resource.h"
#include "core/status.h"
#include "roles/role.h"

char *mesh_config_dir_compile(const struct mesh_opts *o, struct mesh_err *err)
{
    struct mesh_node node;
    mesh_node_init(&node);
    char ns[256] = "default";
    const char *slash = o->node ? strchr(o->node, '/') : NULL;
    if (o->node) {
        size_t n = slash ? (size_t)(slash - o->node) : strlen(o->node);
        if (n == 0 || n >= sizeof(ns)) {
            mesh_err_add(err, 0, 0, "--node", "expected NAMESPACE/WORKLOAD, got \"%s\"", o->node);
            return NULL;
        }
        memcpy(ns, o->node, n);
        ns[n] = '\0';
    }
    node.namespace_ = ns;
    node.name = slash ? slash + 1 : NULL;
    node.role = strcmp(o->role, "gateway") == 0 ? MESH_NODE_GATEWAY : MESH_NODE_SIDECAR;
    struct mesh_kv *labels = NULL;
    if (o->labels && !mesh_compile_parse_labels(o->labels, &labels, &node.n_labels)) {
        mesh_err_add(err, 0, 0, "--labels", "expected k=v,k2=v2, got \"%s\"", o->labels);
        return NULL;
    }
    node.labels = labels;
    node.registry_only = o->registry_only; /* --outbound-traffic-policy */
    /* --listen moves the outbound listener (tests use port 0) */
    char addr[64];
    if (o->listen) {
        if (mesh_addr_split(o->listen, addr, sizeof(addr), &node.outbound_port)) {
            mesh_err_add(err, 0, 0, "--listen", "expected ADDR:PORT, got \"%s\"", o->listen);
            free(labels);
            return NULL;
        }
        node.outbound_address = addr;
    }
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    mesh_resource_load_path(&set, o->config_dir, 0);
    json_t *js = NULL;
    if (set.diags.n_errors == 0)
        mesh_compile(&set, &node, &js, &set.diags);
    mesh_diags_print(&set.diags, stderr, MESH_DIAG_WARNING);
    char *text = NULL;
    if (!js) {
        mesh_err_add(err, 0, 0, NULL, "%zu error(s) in the configuration: nothing applied",
                     set.diags.n_errors ? set.diags.n_errors : (size_t)1);
    } else {
        text = json_dumps(js, JSON_COMPACT);
        json_decref(js);
    }
    mesh_resource_set_free(&set);
    free(labels);
    return text;
}
