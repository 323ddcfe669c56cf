/* meshd ctl snapshot: the snapshot a proxy would receive, compiled offline from files. */
#ifndef MESH_ROLES_CTL_SNAPSHOT_H
#define MESH_ROLES_CTL_SNAPSHOT_H

/** Runs "meshd ctl snapshot ARGS..." (<argv>[0] is "snapshot"); returns the exit code. */
int mesh_ctl_snapshot(int argc, char **argv);

#endif /* MESH_ROLES_CTL_SNAPSHOT_H */
