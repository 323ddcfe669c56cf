/* Roles are thin: each wires core parts together. main.c picks one by name. */
#ifndef MESH_ROLES_ROLE_H
#define MESH_ROLES_ROLE_H

#include "core/common.h"

/* Options main.c parsed; a role reads what it needs. */
struct mesh_opts {
    const char *role;
    const char *snapshot;       /* --snapshot FILE */
    const char *admin;          /* --admin ADDR:PORT, overrides the snapshot */
    unsigned concurrency;       /* --concurrency N, 0 = cores */
    int ready_fd;               /* --ready-fd N, -1 = none */
    bool check_only;            /* --check: validate the configuration and exit */
    bool access_log;            /* --access-log: one line per request on stderr */
};

struct mesh_role {
    const char *name;
    const char *summary;
    /** Runs the role until it stops; returns the process exit code. NULL: not built yet. */
    int (*run)(const struct mesh_opts *o);
};

/** The role called <name>, or NULL. */
const struct mesh_role *mesh_role_find(const char *name);
/** NULL-terminated table of every role, for --help. */
extern const struct mesh_role *const mesh_roles[];

int mesh_role_proxy_run(const struct mesh_opts *o);

#endif /* MESH_ROLES_ROLE_H */
