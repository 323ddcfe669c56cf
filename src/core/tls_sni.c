/*
 * The TLS ClientHello reader (tls_sni.h). Layout (RFC 8446 5.1, 4.1.2; RFC 6066 3):
 *
 *   record:      type(1)=22 version(2)=3.x length(2)=1..16384 fragment
 *   handshake:   msg_type(1)=1 length(3) ClientHello
 *   ClientHello: legacy_version(2) random(32) session_id<0..32>
 *                cipher_suites<2..2^16-2> compression_methods<1..2^8-1>
 *                [extensions<0..2^16-1>]
 *   extension:   type(2) data<0..2^16-1>;  server_name (0): server_name_list<1..2^16-1>
 *                of {name_type(1)=0 host_name<1..2^16-1>}
 *
 * Strict like BoringSSL: exactly one host_name, no repeated server_name
 * extension, every length consumed exactly.
 */
#include "core/common.h"
#include "core/tls_sni.h"
#include <stdlib.h>
#include <string.h>

#define REC_HEADER 5
#define REC_MAX 16384
#define HS_HEADER 4
#define TLS_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define NAME_TYPE_HOST 0

void mesh_sni_reader_init(struct mesh_sni_reader *r)
{
    memset(r, 0, sizeof(*r));
}

const char *mesh_sni_status_str(enum mesh_sni_status st)
{
    switch (st) {
    case MESH_SNI_MORE: return "more";
    case MESH_SNI_FOUND: return "found";
    case MESH_SNI_ABSENT: return "absent";
    case MESH_SNI_NOT_TLS: return "not-tls";
    case MESH_SNI_INVALID: return "invalid";
    case MESH_SNI_TOO_BIG: return "too-big";
    }
    return "?";
}

/* ---- A bounds-checked cursor over one contiguous message ---- */

struct cur {
    const uint8_t *p;
    size_t left;
    bool bad;              /* a read ran past the end: every later read fails too */
};

static uint32_t get_n(struct cur *c, size_t n)
{
    if (c->bad || c->left < n) {
        c->bad = true;
        return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | c->p[i];
    c->p += n;
    c->left -= n;
    return v;
}

/* A sub-cursor over the next <n> bytes (skipped in <c>). */
static struct cur take(struct cur *c, size_t n)
{
    struct cur sub = {c->p, n, false};
    if (c->bad || c->left < n) {
        c->bad = true;
        sub.left = 0;
        sub.bad = true;
        return sub;
    }
    c->p += n;
    c->left -= n;
    return sub;
}

/* A host name: LDH labels (and '_'), dot-separated, none empty; lowercased into <name>. */
static bool copy_host(const uint8_t *p, size_t n, char *name, size_t name_size)
{
    if (n == 0 || n > MESH_SNI_NAME_MAX || n >= name_size)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                   ch == '_') {
            label++;
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = (uint8_t)(ch - 'A' + 'a');
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
        name[i] = (char)ch;
    }
    if (label == 0)
        return false; /* trailing dot */
    name[n] = '\0';
    return true;
}

static enum mesh_sni_status server_name_ext(struct cur ext, char *name, size_t name_size)
{
    uint32_t list_len = get_n(&ext, 2);
    if (ext.bad || list_len != ext.left || list_len == 0)
        return MESH_SNI_INVALID;
    uint32_t type = get_n(&ext, 1);
    uint32_t n = get_n(&ext, 2);
    struct cur host = take(&ext, n);
    /* exactly one name, of type host_name */
    if (ext.bad || type != NAME_TYPE_HOST || ext.left != 0)
        return MESH_SNI_INVALID;
    return copy_host(host.p, host.left, name, name_size) ? MESH_SNI_FOUND : MESH_SNI_INVALID;
}

/* The ClientHello body (after the 4-byte handshake header). */
static enum mesh_sni_status parse_hello(const uint8_t *p, size_t n, char *name, size_t name_size)
{
    struct cur c = {p, n, false};
    uint32_t major = get_n(&c, 1);
    get_n(&c, 1);                                  /* legacy_version minor */
    take(&c, 32);                                  /* random */
    uint32_t sid = get_n(&c, 1);
    take(&c, sid);
    uint32_t suites = get_n(&c, 2);
    take(&c, suites);
    uint32_t comp = get_n(&c, 1);
    take(&c, comp);
    if (c.bad || major != 3 || sid > 32 || suites < 2 || suites % 2 || comp < 1)
        return MESH_SNI_INVALID;
    if (c.left == 0)
        return MESH_SNI_ABSENT;                    /* no extensions at all (TLS 1.0 style) */
    uint32_t ext_len = get_n(&c, 2);
    if (c.bad || ext_len != c.left)
        return MESH_SNI_INVALID;
    enum mesh_sni_status st = MESH_SNI_ABSENT;
    while (c.left > 0) {
        uint32_t type = get_n(&c, 2);
        uint32_t len = get_n(&c, 2);
        struct cur ext = take(&c, len);
        if (c.bad)
            return MESH_SNI_INVALID;
        if (type != EXT_SERVER_NAME)
            continue;
        if (st == MESH_SNI_FOUND)
            return MESH_SNI_INVALID;               /* server_name twice */
        st = server_name_ext(ext, name, name_size);
        if (st != MESH_SNI_FOUND)
            return st;
    }
    return st;
}

/* Copies <n> handshake bytes from offset <skip> of the handshake stream (records walked). */
static void hs_copy(const uint8_t *buf, size_t skip, size_t n, uint8_t *out)
{
    size_t off = 0;
    while (n > 0) {
        size_t rl = (size_t)buf[off + 3] << 8 | buf[off + 4];
        const uint8_t *frag = buf + off + REC_HEADER;
        off += REC_HEADER + rl;
        if (skip >= rl) {
            skip -= rl;
            continue;
        }
        size_t k = MESH_MIN(rl - skip, n);
        memcpy(out, frag + skip, k);
        out += k;
        n -= k;
        skip = 0;
    }
}

enum mesh_sni_status mesh_sni_read(struct mesh_sni_reader *r, const uint8_t *buf, size_t len,
                                   size_t *need, char *name, size_t name_size)
{
    /* decide "not TLS" from the first bytes, before a whole record header is in */
    if (len >= 1 && buf[0] != TLS_HANDSHAKE)
        return MESH_SNI_NOT_TLS;
    if (len >= 2 && buf[1] != 3)
        return MESH_SNI_NOT_TLS;
    for (;;) {
        size_t want = r->have_header ? HS_HEADER + (size_t)r->msg_len : HS_HEADER;
        if (r->hs_len >= want)
            break;
        size_t off = r->rec_off;
        if (len < off + REC_HEADER) {
            *need = off + REC_HEADER;
            return MESH_SNI_MORE;
        }
        const uint8_t *h = buf + off;
        size_t rl = (size_t)h[3] << 8 | h[4];
        if (h[0] != TLS_HANDSHAKE || h[1] != 3 || rl == 0 || rl > REC_MAX)
            return MESH_SNI_INVALID; /* the first two bytes were checked above */
        if (off + REC_HEADER + rl > MESH_SNI_MAX_INPUT)
            return MESH_SNI_TOO_BIG;
        if (len < off + REC_HEADER + rl) {
            *need = off + REC_HEADER + rl;
            return MESH_SNI_MORE;
        }
        r->rec_off = off + REC_HEADER + rl;
        r->hs_len += rl;
        r->n_recs++;
        if (!r->have_header && r->hs_len >= HS_HEADER) {
            uint8_t hh[HS_HEADER];
            hs_copy(buf, 0, HS_HEADER, hh);
            if (hh[0] != HS_CLIENT_HELLO)
                return MESH_SNI_INVALID;
            r->msg_len = (uint32_t)hh[1] << 16 | (uint32_t)hh[2] << 8 | hh[3];
            r->have_header = true;
            /* the message and at least one record header must fit the budget */
            if ((size_t)r->msg_len + HS_HEADER + REC_HEADER > MESH_SNI_MAX_INPUT)
                return MESH_SNI_TOO_BIG;
        }
    }
    /* the whole ClientHello is in: in place when one record holds it, else gathered */
    size_t first = (size_t)buf[3] << 8 | buf[4];
    if (first >= HS_HEADER + (size_t)r->msg_len)
        return parse_hello(buf + REC_HEADER + HS_HEADER, r->msg_len, name, name_size);
    uint8_t *msg = malloc(r->msg_len ? r->msg_len : 1);
    if (!msg)
        return MESH_SNI_TOO_BIG;
    hs_copy(buf, HS_HEADER, r->msg_len, msg);
    enum mesh_sni_status st = parse_hello(msg, r->msg_len, name, name_size);
    free(msg);
    return st;
}
