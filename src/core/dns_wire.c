/*
 * DNS messages (RFC 1035 section 4): a strict reader that checks every length
 * against the bytes actually there, and the few answers the proxy writes.
 * Everything here reads attacker-controlled bytes (fuzz_dns.c).
 */
#include "core/common.h"
#include <string.h>
#include "core/dns.h"

const char *mesh_dns_strerror(enum mesh_dns_status st)
{
    switch (st) {
    case MESH_DNS_OK: return "ok";
    case MESH_DNS_ESHORT: return "message ends inside a header, name or record";
    case MESH_DNS_ELABEL: return "unknown label type";
    case MESH_DNS_EPTR: return "compression pointer does not point strictly backwards";
    case MESH_DNS_ELONG: return "name longer than 255 bytes";
    case MESH_DNS_ECOUNT: return "section counts do not match the message";
    case MESH_DNS_EBINARY: return "name with unprintable bytes";
    }
    return "unknown";
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

enum mesh_dns_status mesh_dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out,
                                        size_t outsz)
{
    size_t pos = *off, end = 0, wire = 0, o = 0;
    /* every pointer must land before the last one's target (and after the header): the
     * targets strictly decrease, so no chain of pointers can loop */
    size_t limit = pos;
    bool jumped = false;
    MESH_BUG_ON(out && outsz < MESH_DNS_NAME_MAX + 1);
    for (;;) {
        if (pos >= len)
            return MESH_DNS_ESHORT;
        uint8_t c = msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return MESH_DNS_ESHORT;
            size_t target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
            if (target < MESH_DNS_HEADER_LEN || target >= limit)
                return MESH_DNS_EPTR;
            if (!jumped)
                end = pos + 2;
            jumped = true;
            limit = target;
            pos = target;
            continue;
        }
        if (c & 0xc0)
            return MESH_DNS_ELABEL; /* 0x40, 0x80: extended and reserved label types */
        if (c == 0) {
            if (!jumped)
                end = pos + 1;
            break;
        }
        wire += 1u + c;
        if (wire + 1 > 255)
            return MESH_DNS_ELONG;
        if (c > len - pos - 1)
            return MESH_DNS_ESHORT;
        if (out) {
            if (o)
                out[o++] = '.';
            for (size_t i = 0; i < c; i++) {
                uint8_t b = msg[pos + 1 + i];
                if (b <= 0x20 || b >= 0x7f || b == '.')
                    return MESH_DNS_EBINARY;
                out[o++] = (char)b;
            }
        }
        pos += 1u + c;
    }
    if (out)
        out[o] = '\0';
    *off = end;
    return MESH_DNS_OK;
}

enum mesh_dns_status mesh_dns_parse(const uint8_t *msg, size_t len, struct mesh_dns_header *h,
                                    struct mesh_dns_question *q)
{
    if (len < MESH_DNS_HEADER_LEN)
        return MESH_DNS_ESHORT;
    h->id = get16(msg);
    h->flags = get16(msg + 2);
    h->qdcount = get16(msg + 4);
    h->ancount = get16(msg + 6);
    h->nscount = get16(msg + 8);
    h->arcount = get16(msg + 10);
    if (q) {
        q->name[0] = '\0';
        q->name_len = 0;
        q->binary = false;
        q->type = q->klass = 0;
        q->end = 0;
    }
    /* a question takes 5 bytes at least, a record 11: counts that cannot fit are lies */
    size_t rrs = (size_t)h->ancount + h->nscount + h->arcount;
    if ((size_t)h->qdcount * 5 + rrs * 11 > len - MESH_DNS_HEADER_LEN)
        return MESH_DNS_ECOUNT;
    size_t off = MESH_DNS_HEADER_LEN;
    for (unsigned i = 0; i < h->qdcount; i++) {
        enum mesh_dns_status st;
        if (i == 0 && q) {
            size_t start = off;
            st = mesh_dns_read_name(msg, len, &off, q->name, sizeof(q->name));
            if (st == MESH_DNS_EBINARY) {
                off = start;
                q->binary = true;
                q->name[0] = '\0';
                st = mesh_dns_read_name(msg, len, &off, NULL, 0);
            }
        } else {
            st = mesh_dns_read_name(msg, len, &off, NULL, 0);
        }
        if (st)
            return st;
        if (len - off < 4)
            return MESH_DNS_ESHORT;
        if (i == 0 && q) {
            q->name_len = strlen(q->name);
            q->type = get16(msg + off);
            q->klass = get16(msg + off + 2);
            q->end = off + 4;
        }
        off += 4;
    }
    for (size_t i = 0; i < rrs; i++) {
        enum mesh_dns_status st = mesh_dns_read_name(msg, len, &off, NULL, 0);
        if (st)
            return st;
        if (len - off < 10)
            return MESH_DNS_ESHORT;
        size_t rdlen = get16(msg + off + 8);
        off += 10;
        if (rdlen > len - off)
            return MESH_DNS_ESHORT;
        off += rdlen;
    }
    return off == len ? MESH_DNS_OK : MESH_DNS_ECOUNT;
}

size_t mesh_dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name,
                            uint16_t type, bool recursion)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (n > MESH_DNS_NAME_MAX || cap < MESH_DNS_HEADER_LEN + n + 2 + 4)
        return 0;
    memset(out, 0, MESH_DNS_HEADER_LEN);
    put16(out, id);
    put16(out + 2, recursion ? MESH_DNS_RD : 0);
    put16(out + 4, 1);
    size_t off = MESH_DNS_HEADER_LEN;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && name[j] != '.')
            j++;
        if (j == i || j - i > 63)
            return 0;
        out[off++] = (uint8_t)(j - i);
        memcpy(out + off, name + i, j - i);
        off += j - i;
        i = j + 1;
        if (j + 1 == n)
            return 0; /* "a..": an empty label at the end */
    }
    out[off++] = 0;
    put16(out + off, type);
    put16(out + off + 2, MESH_DNS_CLASS_IN);
    return off + 4;
}

/* Header of an answer to <h>: QR, its opcode and RD, RA; AA when we answer it ourselves. */
static void answer_header(uint8_t *out, const struct mesh_dns_header *h, bool aa, int rcode,
                          uint16_t qd, uint16_t an)
{
    uint16_t flags = (uint16_t)(MESH_DNS_QR | (h->flags & 0x7800) | (h->flags & MESH_DNS_RD) |
                                MESH_DNS_RA | (aa ? MESH_DNS_AA : 0) | (rcode & 0xf));
    put16(out, h->id);
    put16(out + 2, flags);
    put16(out + 4, qd);
    put16(out + 6, an);
    put16(out + 8, 0);
    put16(out + 10, 0);
}

size_t mesh_dns_build_answer(uint8_t *out, size_t cap, const uint8_t *qmsg,
                             const struct mesh_dns_header *h, const struct mesh_dns_question *q,
                             const void *rdata, size_t rdlen, size_t n, uint32_t ttl)
{
    /* the first question's name cannot hold a pointer (nothing but the header before it):
     * its bytes are copied as sent, case included (clients using 0x20 compare it) */
    size_t qlen = q->end - MESH_DNS_HEADER_LEN;
    if (cap < MESH_DNS_HEADER_LEN + qlen)
        return 0;
    memcpy(out + MESH_DNS_HEADER_LEN, qmsg + MESH_DNS_HEADER_LEN, qlen);
    size_t off = MESH_DNS_HEADER_LEN + qlen, an = 0;
    const uint8_t *rd = rdata;
    for (size_t i = 0; i < n && an < 0xffff && cap - off >= 12 + rdlen; i++) {
        put16(out + off, 0xc000 | MESH_DNS_HEADER_LEN); /* the question's name */
        put16(out + off + 2, q->type);
        put16(out + off + 4, MESH_DNS_CLASS_IN);
        put16(out + off + 6, (uint16_t)(ttl >> 16));
        put16(out + off + 8, (uint16_t)ttl);
        put16(out + off + 10, (uint16_t)rdlen);
        memcpy(out + off + 12, rd + i * rdlen, rdlen);
        off += 12 + rdlen;
        an++;
    }
    answer_header(out, h, true, MESH_DNS_NOERROR, 1, (uint16_t)an);
    if (an < n) /* not all fit: the client asks again over TCP (RFC 7766) */
        put16(out + 2, (uint16_t)(get16(out + 2) | MESH_DNS_TC));
    return off;
}

size_t mesh_dns_build_error(uint8_t *out, size_t cap, const uint8_t *qmsg,
                            const struct mesh_dns_header *h, const struct mesh_dns_question *q,
                            int rcode)
{
    size_t qlen = q ? q->end - MESH_DNS_HEADER_LEN : 0;
    if (cap < MESH_DNS_HEADER_LEN + qlen)
        return 0;
    if (qlen)
        memcpy(out + MESH_DNS_HEADER_LEN, qmsg + MESH_DNS_HEADER_LEN, qlen);
    answer_header(out, h, false, rcode, q ? 1 : 0, 0);
    return MESH_DNS_HEADER_LEN + qlen;
}
