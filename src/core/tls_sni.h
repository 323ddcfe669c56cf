/*
 * A bounded, strict reader of the TLS ClientHello that opens a connection: it
 * finds the server name (SNI) for tcp_routes without terminating TLS. The
 * handshake message may span several records, and the records several reads:
 * the caller hands the same growing buffer (every byte received so far) on
 * each call, and the reader walks each record header once. It never reads past
 * a length it was given and never asks for more than MESH_SNI_MAX_INPUT bytes.
 */
#ifndef MESH_CORE_TLS_SNI_H
#define MESH_CORE_TLS_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes buffered at most while waiting for the ClientHello (records included). */
#define MESH_SNI_MAX_INPUT (20 * 1024)
/* Longest host name reported (RFC 6066: HostName is at most 2^8-1 bytes here). */
#define MESH_SNI_NAME_MAX 255

enum mesh_sni_status {
    MESH_SNI_MORE = 0,     /* a ClientHello so far: call again with at least *need bytes */
    MESH_SNI_FOUND,        /* complete ClientHello with a host name */
    MESH_SNI_ABSENT,       /* complete ClientHello without a server_name extension */
    MESH_SNI_NOT_TLS,      /* the bytes do not start a TLS handshake */
    MESH_SNI_INVALID,      /* a malformed record or ClientHello */
    MESH_SNI_TOO_BIG,      /* the ClientHello needs more than MESH_SNI_MAX_INPUT bytes */
};

struct mesh_sni_reader {
    size_t rec_off;        /* input offset of the first record header not yet walked */
    size_t hs_len;         /* handshake bytes in the records walked so far */
    size_t n_recs;         /* records walked */
    uint32_t msg_len;      /* ClientHello body length, once its 4-byte header is in */
    bool have_header;
};

void mesh_sni_reader_init(struct mesh_sni_reader *r);

/**
 * Reads the ClientHello at the start of <buf> (<len> bytes: everything received
 * so far; each call's buffer extends the previous one). On MESH_SNI_MORE, <*need>
 * is the total length worth calling again with. On MESH_SNI_FOUND, <name>
 * (<name_size> >= MESH_SNI_NAME_MAX + 1 bytes) holds the host name, lowercased
 * and NUL-terminated. Any other status is final: the caller stops calling.
 */
enum mesh_sni_status mesh_sni_read(struct mesh_sni_reader *r, const uint8_t *buf, size_t len,
                                   size_t *need, char *name, size_t name_size);

/** "found", "absent", ... for logs and tests. */
const char *mesh_sni_status_str(enum mesh_sni_status st);

#endif /* MESH_CORE_TLS_SNI_H */
