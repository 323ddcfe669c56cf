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
    int io_mode;                /* --io auto|uring|syscalls: enum mesh_io_mode (io_batch.h) */
    int poll_spins;             /* --poll-spins N: -1 = the default (runtime.h) */
    const char *data_dir;       /* --data-dir DIR (control): store and token */
    const char *listen;         /* --listen ADDR:PORT (control): the API listener */
    /* push (docs/control.md "Push") */
    const char *control;        /* --control ADDR:PORT (sidecar, gateway): the control plane */
    const char *control_token;  /* --control-token FILE: bearer token for the watch and acks */
    const char *health;         /* --health ADDR:PORT: /healthz/ready (default 127.0.0.1:15021) */
    int exit_on_app_exit;       /* --exit-on-app-exit PID: drain and exit when it ends; 0 none */
    int debounce_ms;            /* --debounce-ms N (control): -1 = the default (100) */
    bool registry_only;         /* --outbound-traffic-policy REGISTRY_ONLY (control, --config-dir):
                                   the mesh's default for proxies whose Sidecar sets none */
    int drain_grace_ms;         /* --drain-grace-ms N (proxies): -1 = default (serve.h) */
    const char *dns;            /* --dns ADDR:PORT (sidecar): the DNS proxy (docs/sidecar.md) */
    const char *dns_upstream;   /* --dns-upstream ADDR:PORT: instead of /etc/resolv.conf's */
    /* self-registration (docs/control.md "Registry", sidecar_register.h) */
    bool register_;             /* --register: announce the workload to --control */
    const char *register_service; /* --register-service NAME */
    const char *register_ports; /* --register-port name=port,... */
    const char *register_address; /* --register-address IP */
    unsigned register_ttl;      /* --register-ttl S; 0 = 30 */
    const char *locality;       /* --locality REGION/ZONE/SUBZONE */
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
