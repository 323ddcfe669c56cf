/* Numeric "ADDR:PORT" / "[V6]:PORT" parsing for flags and config (no DNS: the data plane never resolves names). */
#ifndef MESH_CORE_ADDR_H
#define MESH_CORE_ADDR_H

#include <sys/socket.h>
#include "core/common.h"

/**
 * Splits <s> ("127.0.0.1:15010", "[::1]:15010") into the host text (into
 * <host>, <hsize> bytes, brackets removed) and the port. Returns 0, or -1
 * when malformed or the host is not a numeric IPv4/IPv6 address.
 */
int mesh_addr_split(const char *s, char *host, size_t hsize, uint16_t *port);
/** Numeric <host> and <port> -> a socket address. Returns 0, or -1. */
int mesh_addr_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len);
/** Both: "ADDR:PORT" -> a socket address. Returns 0, or -1. */
int mesh_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif /* MESH_CORE_ADDR_H */
