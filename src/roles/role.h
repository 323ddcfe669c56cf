/* Roles are thin: each wires core parts together. main.c picks one by name. */
#ifndef MESH_ROLES_ROLE_H
#define MESH_ROLES_ROLE_H

#include "core/common.h"

/* Options main.c parsed; a role reads what it needs. */
struct mesh_opts {
    const char *role;
    const char *snapshot;       /* --snapshot FILE */
    const char *config_dir;     /* --config-dir DIR: Istio YAML compiled locally (no control plane) */
    const char *node;           /* --node NS/WORKLOAD: the proxy compiled for (with --config-dir) */
    const char *labels;         /* --labels k=v,...: the workload's labels */
    const char *admin;          /* --admin ADDR:PORT, overrides the snapshot */
    unsigned concurrency;       /* --concurrency N, 0 = cores */
    int ready_fd;               /* --ready-fd N, -1 = none */
    bool check_only;            /* --check: validate the configuration and exit */
    bool access_log;            /* --access-log: one line per request on stderr */
    const char *data_dir;       /* --data-dir DIR (control): store and token */
    const char *listen;         /* --listen ADDR:PORT (control): the API listener */
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

struct mesh_err;
/**
 * --config-dir: validates and compiles the Istio YAML of o->config_dir for the
 * node of --node/--labels, printing errors and warnings with FILE:LINE:COL.
 * Returns the snapshot JSON text (caller frees) or NULL with <err> filled.
 */
char *mesh_config_dir_compile(const struct mesh_opts *o, struct mesh_err *err);
int mesh_role_control_run(const struct mesh_opts *o);

#endif /* MESH_ROLES_ROLE_H */
