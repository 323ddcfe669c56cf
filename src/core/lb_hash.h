/*
 * Hashing for the load balancers (lb_hash.c): the key hash, and the ring
 * hash and Maglev tables built once per snapshot (at load, in the snapshot's
 * arena) so that a pick is a binary search (ring) or one index (Maglev).
 */
#ifndef MESH_CORE_LB_HASH_H
#define MESH_CORE_LB_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "core/snapshot_cluster.h"

/* 64-bit hash of <n> bytes: stable across runs and builds (tables depend on it). */
uint64_t mesh_lb_hash(const void *p, size_t n);

/* Final mixer (MurmurHash3's fmix64): spreads a value over 64 bits. */
static inline uint64_t mesh_lb_mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* Allocator for the tables: zeroed memory that lives as long as the cluster. NULL on failure. */
typedef void *mesh_lb_alloc_fn(void *ctx, size_t n, size_t size);

/*
 * Fills cl->levels (endpoints grouped by priority, most preferred first) and,
 * for ring_hash and maglev, each level's table. cl->endpoints must be
 * complete and maglev_table_size a prime above the endpoint count. Returns
 * false when an allocation failed.
 */
bool mesh_lb_build_levels(struct mesh_cluster *cl, mesh_lb_alloc_fn *alloc, void *ctx);

/* Endpoint index of <lv> for hash <h>. The level must have a table and endpoints. */
uint32_t mesh_lb_ring_lookup(const struct mesh_lb_level *lv, uint64_t h);
static inline uint32_t mesh_lb_maglev_lookup(const struct mesh_lb_level *lv, uint32_t table_size,
                                             uint64_t h)
{
    return lv->maglev[h % table_size];
}

#endif /* MESH_CORE_LB_HASH_H */
