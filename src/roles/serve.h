/* What every serving role does once it has its runtime: admin, signals, ready line, drain. */
#ifndef MESH_ROLES_SERVE_H
#define MESH_ROLES_SERVE_H

#include <sys/socket.h>
#include "core/common.h"

struct event;
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
    int io_mode;                       /* enum mesh_io_mode: how workers do socket I/O */
    int poll_spins;                    /* polls spun before sleeping, -1 = default (runtime.h) */
    const char *what;                  /* "sidecar", "control": for log lines */
    void (*on_hup)(void *arg);         /* SIGHUP */
    void *hup_arg;
    void (*on_drain)(void *arg);       /* optional: the drain starts (main thread) */
    void *drain_arg;
    const char *ready_extra;           /* optional: appended to the ready line ("health=N") */
    /*
     * Graceful stop (docs/sidecar.md "Shutdown"): readiness turns 503 at once; then
     * on_leave, when set, takes the endpoint out of the other proxies' load balancing while
     * everything keeps serving (it deregisters and waits until the control plane says every
     * proxy applied that, at most drain_grace_ms) and calls mesh_serve_left(sv) exactly once
     * when done, never from inside the call; without on_leave the proxy serves on for
     * drain_grace_ms. Then the drain: on_drain, accepting stops, requests in flight finish.
     */
    void (*on_leave)(struct mesh_serve *sv, void *arg);
    void *leave_arg;
    unsigned drain_grace_ms;
    /* private: zero in the caller's initialiser */
    bool stopping, left;
    struct event *grace_timer;
};

/**
 * Starts the graceful stop (what SIGTERM does): leave (or the grace), then drain; the main
 * loop ends once the drain is done. A second call before the drain drains at once (a second
 * SIGTERM is an impatient operator).
 */
void mesh_serve_drain(struct mesh_serve *sv);
/** on_leave is done (the endpoint left, or the wait gave up): the drain starts. */
void mesh_serve_left(struct mesh_serve *sv);
/** Whether a stop has begun (readiness says 503 from then on). */
bool mesh_serve_stopping(const struct mesh_serve *sv);

/**
 * Binds admin, installs SIGTERM/SIGINT (the graceful stop) and SIGHUP, starts the workers,
 * writes "ready admin=PORT NAME=PORT..." to ready_fd, runs the main loop until
 * every worker has drained, then frees the runtime. Returns the exit code:
 * 0 after a clean drain, 1 when something could not start.
 */
int mesh_serve_run(struct mesh_serve *sv);

#endif /* MESH_ROLES_SERVE_H */
