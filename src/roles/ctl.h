/* meshd ctl: the operator's CLI (istioctl / kubectl habits). */
#ifndef MESH_ROLES_CTL_H
#define MESH_ROLES_CTL_H

/** Runs "meshd ctl ARGS..." (<argv>[0] is "ctl"); returns the exit code. */
int mesh_ctl_main(int argc, char **argv);

#endif /* MESH_ROLES_CTL_H */
