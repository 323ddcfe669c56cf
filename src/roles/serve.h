/* What every serving role does once it has its runtime: admin, signals, ready line, drain. */
#ifndef MESH_ROLES_SERVE_H
#define MESH_ROLES_SERVE_H

#include <sys/socket.h>
#include "core/common.h"

struct event_base;
struct mesh_runtime;
struct mesh_snapshot;

/** The main event base, made after threading is on (workers wake it) and SIGPIPE ignored. */
struct event_base *mesh_serve_base(void);

struct mesh_serve {
    struct event_base *base;           /* from mesh_serve_base() */
    struct mesh_runtime *rt;           /* built, not started; freed by mesh_serve_run() */
    const struct mesh_snapshot *snap;  /* borrowed: names the listeners in the ready line */
    const struct sockaddr *admin_sa;   /* NULL: no admin listener */
    socklen_t admin_len;
    int ready_fd;                      /* -1: none */
    bool access_log;
    const char *what;                  /* "sidecar", "control": for log lines */
    void (*on_hup)(void *arg);         /* SIGHUP */
    void *hup_arg;
    void (*on_drain)(void *arg);       /* optional: the drain starts (main thread) */
    void *drain_arg;
    const char *ready_extra;           /* optional: appended to the ready line ("health=N") */
};

/** Starts the graceful drain (what SIGTERM does); the main loop ends once it is done. */
void mesh_serve_drain(struct mesh_serve *sv);

/**
 * Binds admin, installs SIGTERM/SIGINT (drain) and SIGHUP, starts the workers,
 * writes "ready admin=PORT NAME=PORT..." to ready_fd, runs the main loop until
 * every worker has drained, then frees the runtime. Returns the exit code:
 * 0 after a clean drain, 1 when something could not start.
 */
int mesh_serve_run(struct mesh_serve *sv);

#endif /* MESH_ROLES_SERVE_H */
