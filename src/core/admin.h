/* Admin HTTP endpoint (loopback only): readiness, stats, config dump, log level, shutdown. */
#ifndef MESH_CORE_ADMIN_H
#define MESH_CORE_ADMIN_H

#include <sys/socket.h>
#include "core/status.h"

struct event_base;
struct mesh_runtime;
struct mesh_admin;

/** Callback for /quitquitquit: the role starts its graceful shutdown. */
typedef void mesh_admin_quit_fn(void *arg);

/**
 * Binds the admin listener on <sa> (refused unless it is a loopback address)
 * and serves it on <base>. Returns NULL with <err> filled on failure.
 */
struct mesh_admin *mesh_admin_new(struct event_base *base, struct mesh_runtime *rt,
                                  const struct sockaddr *sa, socklen_t salen,
                                  mesh_admin_quit_fn *quit, void *quit_arg, struct mesh_err *err);
uint16_t mesh_admin_port(const struct mesh_admin *a);
void mesh_admin_free(struct mesh_admin *a);

#endif /* MESH_CORE_ADMIN_H */
