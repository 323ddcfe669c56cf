/*
 * The sidecar's side of self-registration (docs/control.md, "Registry"): posts the workload
 * to the control plane's /v1/register, renews the lease at a third of its TTL (with +-10%
 * jitter, so a fleet started together does not renew together), retries a failed post after
 * 1 s, 2 s, 4 s... (at most ttl/3), and deregisters on the way out.
 *
 * Non-blocking: libevent's HTTP client on the main event base; nothing here runs on a worker.
 */
#ifndef MESH_ROLES_SIDECAR_REGISTER_H
#define MESH_ROLES_SIDECAR_REGISTER_H

#include "core/common.h"

struct event_base;
struct mesh_register;

struct mesh_register_opts {
    const char *control;           /* ADDR:PORT of the control plane's API */
    const char *token;             /* bearer token (copied); NULL = none (rejected: it writes) */
    const char *ns, *name;         /* the workload, from --node NS/NAME */
    const char *service;           /* --register-service, may be NULL */
    const char *address;           /* --register-address: the workload's IP */
    const char *ports;             /* --register-port "http=8080,grpc=9090", may be NULL */
    const char *labels;            /* --labels "k=v,...", may be NULL */
    const char *locality;          /* --locality, may be NULL */
    unsigned ttl_s;                /* 0 = MESH_REGISTRY_DEFAULT_TTL_S */
};

/**
 * Validates <o> (errors printed to stderr, NULL returned) and starts registering on <base>
 * at once. Every string is copied.
 */
struct mesh_register *mesh_register_start(struct event_base *base,
                                          const struct mesh_register_opts *o);
/** Whether the control plane has acknowledged the lease (and it was not lost since). */
bool mesh_register_active(const struct mesh_register *r);
/**
 * Stops renewing and deregisters; <done>(<arg>) runs once the control plane answered, or
 * after <timeout_ms>, whichever is first (never synchronously from this call).
 */
void mesh_register_leave(struct mesh_register *r, unsigned timeout_ms, void (*done)(void *arg),
                         void *arg);
/** Frees it (a request in flight is cancelled). NULL is fine. */
void mesh_register_free(struct mesh_register *r);

#endif /* MESH_ROLES_SIDECAR_REGISTER_H */
