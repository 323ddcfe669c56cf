/*
 * Compression for text the process keeps but seldom reads: a snapshot's source document,
 * kept for /config_dump, is mostly the same few shapes over and over and shrinks more than
 * tenfold. A thin wrapper over zlib (deflate at its fastest level): the load pays a few
 * milliseconds once, a /config_dump a few more.
 */
#ifndef MESH_CORE_LZ_H
#define MESH_CORE_LZ_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Compresses <n> bytes of <src>. Returns a malloc'd buffer (caller frees) of
 * *out_len bytes, or NULL when out of memory.
 */
unsigned char *mesh_lz_compress(const void *src, size_t n, size_t *out_len);
/**
 * Decompresses <len> bytes of <src> into <dst>, which must come out exactly
 * <n> bytes long. False when <src> is not such a stream (<dst> is then
 * partly written).
 */
bool mesh_lz_decompress(const unsigned char *src, size_t len, void *dst, size_t n);

#endif /* MESH_CORE_LZ_H */
