/*
 * Fuzzes the TLS ClientHello reader (src/core/tls_sni.c). The input's last byte
 * picks the size of the reads; the rest is what the client sends. The reader
 * runs once over everything and once read by read (called only when it has
 * what it asked for, as tcp_proxy.c calls it): both must reach the same answer
 * and name, never ask for more than MESH_SNI_MAX_INPUT bytes, and never read
 * outside the buffer (the copy is exactly sized, so AddressSanitizer sees it).
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/tls_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MESH_SNI_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[size - 1] + 1;
    size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    struct mesh_sni_reader r;
    char whole_name[MESH_SNI_NAME_MAX + 1] = "";
    size_t need = 0;
    mesh_sni_reader_init(&r);
    enum mesh_sni_status whole = mesh_sni_read(&r, buf, size, &need, whole_name, sizeof(whole_name));
    if (whole == MESH_SNI_MORE && (need <= size || need > MESH_SNI_MAX_INPUT))
        abort();
    if (whole == MESH_SNI_FOUND && !name_ok(whole_name))
        abort();

    char name[MESH_SNI_NAME_MAX + 1] = "";
    enum mesh_sni_status st = MESH_SNI_MORE;
    size_t len = 0;
    need = 0;
    mesh_sni_reader_init(&r);
    while (st == MESH_SNI_MORE && len < size) {
        len = MESH_MIN(size, len + step);
        if (len < need && len < size)
            continue;
        st = mesh_sni_read(&r, buf, len, &need, name, sizeof(name));
        if (st == MESH_SNI_MORE && (need <= len || need > MESH_SNI_MAX_INPUT))
            abort();
    }
    if (size == 0)
        st = mesh_sni_read(&r, buf, 0, &need, name, sizeof(name));
    if (st != whole) {
        fprintf(stderr, "whole: %s, in reads of %zu: %s\n", mesh_sni_status_str(whole), step,
                mesh_sni_status_str(st));
        abort();
    }
    if (st == MESH_SNI_FOUND && strcmp(name, whole_name) != 0)
        abort();
    free(buf);
    return 0;
}
