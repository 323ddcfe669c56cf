/*
 * The control plane's self-registration registry (docs/control.md, "Registry").
 *
 * A sidecar started with --register announces its workload with
 *   POST   /v1/register          {"namespace", "name", "address", "service", "ports",
 *                                  "labels", "locality", "weight", "serviceAccount", "ttl_s"}
 *   DELETE /v1/register/NS/NAME  (or a POST with "ttl_s": 0)
 *   GET    /v1/registry          every lease: its workload and the seconds left
 * and renews the lease by posting again. Each lease is a WorkloadEntry in the store, named
 * NS/NAME, labelled meshd.io/registered=true (Istio's auto-registration does the same): the
 * compiler sees it like any WorkloadEntry (Services and ServiceEntries select it by labels),
 * `meshd ctl get workloadentries` shows it, and a restarted control plane finds it again.
 * Only a new or changed registration writes the store; a renewal moves a deadline in memory.
 * A lease not renewed within its TTL is deleted from the store.
 *
 * Threads: everything runs on the control role's single worker (the store's thread).
 */
#ifndef MESH_ROLES_CONTROL_REGISTRY_H
#define MESH_ROLES_CONTROL_REGISTRY_H

#include <jansson.h>
#include "core/common.h"

struct mesh_registry;
struct mesh_store;
struct event_base;

#define MESH_REGISTRY_LABEL "meshd.io/registered"
#define MESH_REGISTRY_TTL_ANNOTATION "meshd.io/lease-ttl-s"
#define MESH_REGISTRY_SERVICE_ANNOTATION "meshd.io/service"
#define MESH_REGISTRY_DEFAULT_TTL_S 30u
#define MESH_REGISTRY_MAX_TTL_S 86400u

struct mesh_registry_opts {
    /* the clock, in ms (monotonic); NULL = CLOCK_MONOTONIC. Tests pass a fake one. */
    int64_t (*now_ms)(void *arg);
    void *clock_arg;
};

/**
 * A registry over <st> (borrowed; it must outlive the registry). <opts> may be NULL.
 * Reads back the leases a previous run left in the store: each gets a full TTL from now,
 * so a restart never drops a live workload (it re-registers within ttl/3) and a dead one
 * leaves at most one TTL later. NULL with <err> filled when the store cannot be read.
 */
struct mesh_registry *mesh_registry_new(struct mesh_store *st,
                                        const struct mesh_registry_opts *opts,
                                        struct mesh_err *err);
/** Frees the registry (not the store, nothing in it). Call after the worker's base is freed. */
void mesh_registry_free(struct mesh_registry *r);

/**
 * <fn>(<arg>) runs after every change the registry made to the store (a new, changed,
 * deregistered or expired lease), on the worker, once the store is written: the push
 * recompiles then. One callback; a second call replaces it.
 */
void mesh_registry_on_change(struct mesh_registry *r, void (*fn)(void *arg), void *arg);
/** How many changes the registry made since it was created (a counter for pollers, tests). */
uint64_t mesh_registry_changes(const struct mesh_registry *r);

/**
 * Reviews the leases once a second on <base> (the worker's, before it runs). The event lives
 * inside the registry and is never touched again after the base is freed.
 */
void mesh_registry_start(struct mesh_registry *r, struct event_base *base);
/** Deletes every lease past its deadline now; returns how many. */
size_t mesh_registry_expire(struct mesh_registry *r);
/** Number of live leases. */
size_t mesh_registry_count(const struct mesh_registry *r);

/**
 * Serves /v1/register, /v1/register/NS/NAME and /v1/registry (<segs> the decoded path
 * segments, "v1" first; the caller checked the token). Returns the HTTP status and sets
 * *<answer> to a new JSON object (caller owns): the lease, or {"error", "details"}.
 */
int mesh_registry_serve(struct mesh_registry *r, const char *method, char *const *segs,
                        size_t n_segs, const char *body, size_t body_len, json_t **answer);

#endif /* MESH_ROLES_CONTROL_REGISTRY_H */
