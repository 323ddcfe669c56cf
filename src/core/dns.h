/*
 * The sidecar's DNS proxy (15053, UDP and TCP): A and AAAA queries for mesh
 * names are answered from a table with the services' virtual IPs; every other
 * query is relayed to the pod's resolver over the protocol it came by. Also the strict DNS message reader
 * and writer it uses (RFC 1035; dns_wire.c), fuzzed by tests/fuzz/fuzz_dns.c.
 */
#ifndef MESH_CORE_DNS_H
#define MESH_CORE_DNS_H

#include <netinet/in.h>
#include <sys/socket.h>
#include "core/common.h"

/* ---- messages (dns_wire.c) ----------------------------------------------- */

#define MESH_DNS_HEADER_LEN 12
#define MESH_DNS_NAME_MAX 253          /* text form, no trailing dot (255 on the wire) */
#define MESH_DNS_MSG_MAX 65535

#define MESH_DNS_QR 0x8000
#define MESH_DNS_AA 0x0400
#define MESH_DNS_TC 0x0200
#define MESH_DNS_RD 0x0100
#define MESH_DNS_RA 0x0080

enum {
    MESH_DNS_TYPE_A = 1,
    MESH_DNS_TYPE_AAAA = 28,
    MESH_DNS_CLASS_IN = 1,
};

/* response codes (RFC 1035 4.1.1) */
enum {
    MESH_DNS_NOERROR = 0,
    MESH_DNS_FORMERR = 1,
    MESH_DNS_SERVFAIL = 2,
    MESH_DNS_NXDOMAIN = 3,
    MESH_DNS_NOTIMP = 4,
    MESH_DNS_REFUSED = 5,
};

enum mesh_dns_status {
    MESH_DNS_OK = 0,
    MESH_DNS_ESHORT,    /* the message ends inside a header, name or record */
    MESH_DNS_ELABEL,    /* a label type other than plain length or pointer */
    MESH_DNS_EPTR,      /* a compression pointer that does not go strictly backwards */
    MESH_DNS_ELONG,     /* a name longer than 255 bytes on the wire */
    MESH_DNS_ECOUNT,    /* the section counts do not match the content (bytes left over) */
    MESH_DNS_EBINARY,   /* a name byte we do not print ('.', space, control, >0x7e) */
};

const char *mesh_dns_strerror(enum mesh_dns_status st);

struct mesh_dns_header {
    uint16_t id, flags, qdcount, ancount, nscount, arcount;
};

struct mesh_dns_question {
    char name[MESH_DNS_NAME_MAX + 1];  /* as sent (case kept), no trailing dot; "" = root */
    size_t name_len;
    bool binary;                       /* the name has bytes not in <name>: never ours */
    uint16_t type, klass;
    size_t end;                        /* offset just past the first question */
};

/**
 * Reads the name at *off (following compression pointers, each strictly
 * before the last: no loop can last) into <out> (<outsz> >= MESH_DNS_NAME_MAX
 * + 1; NULL only validates). Moves *off past the name as stored at *off.
 */
enum mesh_dns_status mesh_dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out,
                                        size_t outsz);

/**
 * Walks the whole message: header, every question and resource record, each
 * length checked against the bytes there. Fills <h>, and <q> (may be NULL)
 * with the first question when there is one.
 */
enum mesh_dns_status mesh_dns_parse(const uint8_t *msg, size_t len, struct mesh_dns_header *h,
                                    struct mesh_dns_question *q);

/** A query for <name> (text, trailing dot optional) into <out>; returns its length or 0. */
size_t mesh_dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name,
                            uint16_t type, bool recursion);

/**
 * The answer to the query <qmsg> (parsed into <h>, <q>): its question copied,
 * then <n> records of <q>->type, each <rdlen> bytes of <rdata> in a row, TTL
 * <ttl>, as many as fit in <cap> (with TC set when some do not: the client
 * retries over TCP). Returns the length, or 0 when even the question does not
 * fit.
 */
size_t mesh_dns_build_answer(uint8_t *out, size_t cap, const uint8_t *qmsg,
                             const struct mesh_dns_header *h, const struct mesh_dns_question *q,
                             const void *rdata, size_t rdlen, size_t n, uint32_t ttl);

/** An error answer (<rcode>) to <qmsg>: with its question when <q> is set, else without. */
size_t mesh_dns_build_error(uint8_t *out, size_t cap, const uint8_t *qmsg,
                            const struct mesh_dns_header *h, const struct mesh_dns_question *q,
                            int rcode);

/* ---- the proxy (dns.c) ---------------------------------------------------- */

/** The addresses of one mesh name; the arrays belong to the table. */
struct mesh_dns_addrs {
    size_t n_v4, n_v6;
    const struct in_addr *v4;
    const struct in6_addr *v6;
};

/**
 * The table: <name> is lower-case, without the trailing dot, <len> bytes.
 * Returns true and fills <out> when it is a mesh name (even with no address
 * of the asked family: the answer is then empty, not forwarded).
 */
typedef bool (*mesh_dns_lookup_fn)(void *arg, const char *name, size_t len,
                                   struct mesh_dns_addrs *out);

#define MESH_DNS_MAX_SEARCH 6

struct mesh_dns_config {
    struct sockaddr_storage listen;     /* UDP and TCP, same port (0: any free one) */
    socklen_t listen_len;
    struct sockaddr_storage upstream;   /* where other names go */
    socklen_t upstream_len;
    mesh_dns_lookup_fn lookup;
    void *lookup_arg;
    /* suffixes tried after the name itself: "default.svc.cluster.local"... */
    size_t n_search;
    char search[MESH_DNS_MAX_SEARCH][MESH_DNS_NAME_MAX + 1];
    uint32_t ttl;                       /* 30 */
    unsigned timeout_ms;                /* 5000: then SERVFAIL */
    unsigned max_inflight;              /* 1024 forwarded queries (<= 65536); beyond: SERVFAIL */
    unsigned max_tcp_conns;             /* 128 */
};

/** Defaults; listen 127.0.0.1:15053, no upstream (set it, or mesh_dns_read_resolv_conf). */
void mesh_dns_config_init(struct mesh_dns_config *c);

/**
 * Reads <path> (/etc/resolv.conf): the first "nameserver" becomes the upstream
 * (port 53) unless one is set already, "search" fills the suffixes when there
 * are none. Returns 0, or -1 with <err> filled when no nameserver is found.
 */
struct mesh_err;
int mesh_dns_read_resolv_conf(struct mesh_dns_config *c, const char *path, struct mesh_err *err);

struct mesh_dns_stats {
    uint64_t queries, answered, nodata, forwarded, relayed, servfail, timeouts, malformed,
        dropped_answers, tcp_conns;
    uint64_t forwarded_tcp;         /* of <forwarded>: TCP queries, forwarded over TCP */
    uint64_t upstream_tcp_conns;    /* TCP connections opened to the upstream */
};

struct event_base;
struct mesh_dns;

/** Binds UDP and TCP and serves on <base> (never blocks it). NULL with <err> on failure. */
struct mesh_dns *mesh_dns_start(struct event_base *base, const struct mesh_dns_config *c,
                                struct mesh_err *err);
/** Closes everything; queries in flight get no answer. NULL is fine. */
void mesh_dns_stop(struct mesh_dns *d);
/** The port bound (useful with port 0). */
uint16_t mesh_dns_port(const struct mesh_dns *d);
void mesh_dns_get_stats(const struct mesh_dns *d, struct mesh_dns_stats *out);

#endif /* MESH_CORE_DNS_H */
