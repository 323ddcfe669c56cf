/*
 * The sidecar's side of self-registration (docs/control.md, "Registry"): posts the workload
 * to the control plane's /v1/register, renews the lease at a third of its TTL (with +-10%
 * jitter, so a fleet started together does not renew together), retries a failed post after
 * 1 s, 2 s, 4 s... (at most ttl/3), and on the way out deregisters and waits until every
 * other proxy has applied that before the sidecar drains (serve.h), so no proxy still picks
 * the endpoint when it stops accepting.
 *
 * Non-blocking: libevent's HTTP client on the main event base; nothing here runs on a worker.
 */
#ifndef MESH_ROLES_SIDECAR_REGISTER_H
#define MESH_ROLES_SIDECAR_REGISTER_H

#include "core/common.h"

struct event_base;
struct mesh_register;

/* The least a stopping sidecar waits for the control plane to answer its deregistration. */
#define MESH_REGISTER_LEAVE_TIMEOUT_MS 2000u
/*
 * The most it then waits, still serving, for the control plane to confirm that every proxy
 * applied a snapshot without it (--drain-grace-ms; usually done within the push, tens of
 * milliseconds, or up to the control plane's debounce, 100 ms, more when a round just ran).
 * Istio's drain duration is 5 s too.
 */
#define MESH_REGISTER_DRAIN_GRACE_MS 5000u

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
 * Validates <o> (errors printed to stderr, NULL returned) and prepares the registration on
 * <base> without sending anything: a sidecar checks its flags before it serves, and
 * registers once it does (mesh_register_begin). Every string is copied.
 */
struct mesh_register *mesh_register_new(struct event_base *base,
                                        const struct mesh_register_opts *o);
/** Sends the first registration; the lease is renewed from then on. */
void mesh_register_begin(struct mesh_register *r);
/** mesh_register_new() then mesh_register_begin(). */
struct mesh_register *mesh_register_start(struct event_base *base,
                                          const struct mesh_register_opts *o);
/** Whether the control plane has acknowledged the lease (and it was not lost since). */
bool mesh_register_active(const struct mesh_register *r);
/**
 * Stops renewing, deregisters, and waits (serving goes on meanwhile) until the control plane
 * reports that every other connected proxy applied a snapshot without this workload
 * (GET /v1/proxies: pushedRevision at or past the deregistration's revision, none STALE),
 * plus 100 ms for their workers to swap. <done>(<arg>) runs then, or once <budget_ms> has
 * passed (at least 2 s for the DELETE to be answered), whichever is first; never
 * synchronously from this call. A budget of 0 only waits for the DELETE's answer.
 */
void mesh_register_leave(struct mesh_register *r, unsigned budget_ms, void (*done)(void *arg),
                         void *arg);
/** After a leave: whether the control plane confirmed that every proxy applied it. */
bool mesh_register_confirmed(const struct mesh_register *r);
/** Frees it (a request in flight is cancelled). NULL is fine. */
void mesh_register_free(struct mesh_register *r);

#endif /* MESH_ROLES_SIDECAR_REGISTER_H */
