#include "core/common.h"
#include <string.h>
#include "roles/role.h"

static const struct mesh_role sidecar = {
    "sidecar", "proxy beside a workload (outbound 15001, inbound 15006)", mesh_role_proxy_run};
static const struct mesh_role gateway = {"gateway", "edge proxy for Gateway resources",
                                         mesh_role_proxy_run};
static const struct mesh_role control = {
    "control", "control plane: config store and resource API (push, CA: later)",
    mesh_role_control_run};
static const struct mesh_role registry = {
    "registry", "joins clusters into one mesh (not built yet)", NULL};

const struct mesh_role *const mesh_roles[] = {&sidecar, &gateway, &control, &registry, NULL};

const struct mesh_role *mesh_role_find(const char *name)
{
    for (size_t i = 0; mesh_roles[i]; i++)
        if (strcmp(mesh_roles[i]->name, name) == 0)
            return mesh_roles[i];
    return NULL;
}
