/*
 * The snapshot's DNS table (docs/snapshot.md "dns"): the mesh service names a
 * sidecar's DNS proxy answers, each with its addresses (virtual IPs, or a
 * headless service's endpoints).
 *
 * Loaded by snapshot_dns.c into the snapshot's arena: immutable, freed with
 * the snapshot. Lookups are a binary search over names stored lowercase
 * without a trailing dot: O(log n) string compares, no allocation, safe from
 * any thread that holds a reference to the snapshot.
 */
#ifndef MESH_CORE_SNAPSHOT_DNS_H
#define MESH_CORE_SNAPSHOT_DNS_H

#include <netinet/in.h>
#include "core/common.h"

struct mesh_dns_entry {
    const char *name;              /* lowercase, no trailing dot: "reviews.default.svc.cluster.local" */
    size_t name_len;
    const struct in_addr *v4;      /* A records, in the snapshot's order */
    size_t n_v4;
    const struct in6_addr *v6;     /* AAAA records */
    size_t n_v6;
};

struct mesh_dns_table {
    const struct mesh_dns_entry *entries; /* sorted by name (byte order), names unique */
    size_t n;
};

/**
 * The entry for <name> (<len> bytes, any case, one trailing dot allowed: a DNS
 * query's name as text), or NULL. <t> may be NULL (a snapshot without "dns").
 */
const struct mesh_dns_entry *mesh_dns_lookup(const struct mesh_dns_table *t, const char *name,
                                             size_t len);

#endif /* MESH_CORE_SNAPSHOT_DNS_H */
