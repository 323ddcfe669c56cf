/* meshd ctl proxy-status: every proxy connected to the control plane and its sync state. */
#ifndef MESH_ROLES_CTL_PROXY_STATUS_H
#define MESH_ROLES_CTL_PROXY_STATUS_H

/** <argv>[0] is "proxy-status"; returns the exit code (0 ok, 1 errors, 2 usage). */
int mesh_ctl_proxy_status(int argc, char **argv);

#endif /* MESH_ROLES_CTL_PROXY_STATUS_H */
