/*
 * Fuzzes the DNS message reader and writer (src/core/dns_wire.c): any input is
 * parsed as a whole message and every offset in it is read as a name. When the
 * input is a valid query, the answer and the error built for it must parse
 * again with the same question. The copy is exactly sized, so AddressSanitizer
 * sees any read past the end.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name, size_t len)
{
    if (len > MESH_DNS_NAME_MAX || strlen(name) != len)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct mesh_dns_header h;
    struct mesh_dns_question q;
    enum mesh_dns_status st = mesh_dns_parse(buf, size, &h, &q);
    if (st == MESH_DNS_OK && h.qdcount >= 1) {
        check_name(q.name, q.name_len);
        if (q.end < MESH_DNS_HEADER_LEN || q.end > size)
            abort();
        static const uint8_t addrs[3][16] = {{240, 240, 0, 1}, {240, 240, 0, 2}, {1}};
        uint8_t out[512];
        size_t n = mesh_dns_build_answer(out, sizeof(out), buf, &h, &q, addrs, 16, 3, 30);
        if (n) {
            struct mesh_dns_header h2;
            struct mesh_dns_question q2;
            /* the first question's name holds no pointer, so its copy stands alone */
            if (mesh_dns_parse(out, n, &h2, &q2) != MESH_DNS_OK || h2.id != h.id ||
                strcmp(q2.name, q.name) != 0 || q2.type != q.type || q2.binary != q.binary)
                abort();
        }
        n = mesh_dns_build_error(out, sizeof(out), buf, &h, &q, MESH_DNS_SERVFAIL);
        if (n && mesh_dns_parse(out, n, &h, NULL) != MESH_DNS_OK)
            abort();
    }
    /* every offset as the start of a name: bounded, never out of the buffer */
    char name[MESH_DNS_NAME_MAX + 1];
    for (size_t off = 0; off < size && off < 512; off++) {
        size_t o = off;
        if (mesh_dns_read_name(buf, size, &o, name, sizeof(name)) == MESH_DNS_OK) {
            check_name(name, strlen(name));
            if (o <= off || o > size)
                abort();
        }
    }
    free(buf);
    return 0;
}
