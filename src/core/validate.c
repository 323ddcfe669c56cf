#include "core/common.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "core/validate.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..len), optionally case-insensitive */
static bool label_ok(const char *s, size_t len, bool upper_ok)
{
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = upper_ok ? is_alnum(c) : is_lower_alnum(c);
        if (!ok && !(c == '-' && i > 0 && i + 1 < len))
            return false;
    }
    return true;
}

const char *mesh_validate_dns1123_label(const char *s)
{
    if (!*s)
        return "must not be empty";
    if (strlen(s) > 63)
        return "must be at most 63 characters";
    if (!label_ok(s, strlen(s), false))
        return "must be a DNS-1123 label: lower case letters, digits and '-', starting and "
               "ending with a letter or digit";
    return NULL;
}

const char *mesh_validate_dns1035_label(const char *s)
{
    const char *why = mesh_validate_dns1123_label(s);
    if (why)
        return why;
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return "must start with a lower case letter (DNS-1035 label)";
    return NULL;
}

const char *mesh_validate_istio_label(const char *s)
{
    if (!*s)
        return "must not be empty";
    if (!label_ok(s, strlen(s), true))
        return "must be a DNS label: letters, digits and '-', at most 63, starting and ending "
               "with a letter or digit";
    return NULL;
}

const char *mesh_validate_dns1123_subdomain(const char *s)
{
    size_t len = strlen(s);
    if (!len)
        return "must not be empty";
    if (len > 253)
        return "must be at most 253 characters";
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, n, false))
            return "must be a DNS-1123 subdomain: lower case letters, digits, '-' and '.', each "
                   "part starting and ending with a letter or digit";
        if (!dot)
            return NULL;
        p = dot + 1;
    }
}

static bool all_digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Istio ValidateDNS1123Labels: labels may be upper case; a trailing dot is fine. */
static const char *dns_labels(const char *s)
{
    const char *last = strrchr(s, '.');
    const char *tld = last ? last + 1 : s;
    if (all_digits(tld, strlen(tld)))
        return "top level domain cannot be all-numeric";
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!dot && n == 0 && p != s)
            return NULL; /* "istio.io." */
        if (!label_ok(p, n, true))
            return "invalid domain name: each label must be letters, digits and '-', at most "
                   "63, starting and ending with a letter or digit";
        if (!dot)
            return NULL;
        p = dot + 1;
    }
}

static const char *dns_preconditions(const char *s)
{
    if (!*s)
        return "empty domain name not allowed";
    if (strlen(s) > 255)
        return "domain name too long (max 255)";
    return NULL;
}

const char *mesh_validate_fqdn(const char *s)
{
    const char *why = dns_preconditions(s);
    return why ? why : dns_labels(s);
}

/* Istio IsWildcardDNS1123Label: "*", "*label", "*-label" or a label. */
static bool wildcard_label_ok(const char *s, size_t n)
{
    if (n == 1 && s[0] == '*')
        return true;
    if (n > 1 && s[0] == '*') {
        s++;
        n--;
        if (s[0] == '-') {
            s++;
            n--;
        }
    }
    return label_ok(s, n, true);
}

const char *mesh_validate_wildcard_domain(const char *s)
{
    const char *why = dns_preconditions(s);
    if (why)
        return why;
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (!wildcard_label_ok(s, n))
        return "invalid host: the first label may be a wildcard (\"*\" or \"*.example.com\"), "
               "the others letters, digits and '-'";
    if (dot)
        return dns_labels(dot + 1);
    return NULL;
}

static const char *partial_wildcard(const char *h)
{
    if (strchr(h, '*') && strlen(h) != 1 && strncmp(h, "*.", 2) != 0)
        return "partial wildcard not allowed";
    return NULL;
}

static const char *hostname_part(const char *h, bool gateway)
{
    if (strcmp(h, "*") != 0 && !strchr(h, '.'))
        return "short names (non FQDN) are not allowed";
    const char *why = mesh_validate_wildcard_domain(h);
    if (why && !(gateway && !mesh_validate_ip(h)))
        return why;
    return partial_wildcard(h);
}

const char *mesh_validate_ns_host(const char *s, bool gateway)
{
    const char *slash = strchr(s, '/');
    if (!slash) {
        if (gateway)
            return hostname_part(s, true);
        return "host must be of form namespace/dnsName";
    }
    size_t nslen = (size_t)(slash - s);
    const char *host = slash + 1;
    if (!nslen || !*host)
        return "namespace and dnsName in a host entry cannot be empty";
    char ns[254];
    if (nslen >= sizeof(ns))
        return "invalid namespace";
    memcpy(ns, s, nslen);
    ns[nslen] = '\0';
    bool special = strcmp(ns, "*") == 0 || strcmp(ns, ".") == 0 ||
                   (!gateway && strcmp(ns, "~") == 0);
    /* sidecars: "~ns/host" excludes hosts that the other entries select */
    bool excluded = !gateway && ns[0] == '~' && nslen > 1 && label_ok(ns + 1, nslen - 1, true);
    if (!special && !excluded && !label_ok(ns, nslen, true))
        return gateway ? "invalid namespace in gateway host (use \"*\", \".\" or a namespace)"
                       : "invalid namespace in sidecar host (use \"*\", \".\", \"~\" or a "
                         "namespace)";
    return hostname_part(host, gateway);
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool qualified_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

const char *mesh_validate_label_key(const char *s)
{
    if (!*s)
        return "key must not be empty";
    const char *slash = strchr(s, '/');
    const char *name = s;
    if (slash) {
        size_t plen = (size_t)(slash - s);
        char prefix[254];
        if (plen == 0 || plen >= sizeof(prefix))
            return "key prefix must be a DNS subdomain of at most 253 characters";
        memcpy(prefix, s, plen);
        prefix[plen] = '\0';
        if (mesh_validate_dns1123_subdomain(prefix))
            return "key prefix must be a DNS-1123 subdomain (lower case, e.g. example.com)";
        name = slash + 1;
    }
    if (!qualified_name_ok(name, strlen(name)))
        return "key name must be at most 63 characters of [-_.A-Za-z0-9], starting and ending "
               "with a letter or digit";
    return NULL;
}

const char *mesh_validate_label_value(const char *s)
{
    if (!*s)
        return NULL;
    if (!qualified_name_ok(s, strlen(s)))
        return "label value must be at most 63 characters of [-_.A-Za-z0-9], starting and "
               "ending with a letter or digit";
    return NULL;
}

const char *mesh_validate_ip(const char *s)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
        return NULL;
    return "not a valid IP address";
}

const char *mesh_validate_ip_or_cidr(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return mesh_validate_ip(s);
    char addr[64];
    size_t alen = (size_t)(slash - s);
    if (alen == 0 || alen >= sizeof(addr) || strchr(slash + 1, '/'))
        return "not a valid CIDR block";
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    unsigned char buf[16];
    int maxbits;
    if (inet_pton(AF_INET, addr, buf) == 1)
        maxbits = 32;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        maxbits = 128;
    else
        return "not a valid CIDR block";
    const char *bits = slash + 1;
    size_t blen = strlen(bits);
    if (!all_digits(bits, blen) || blen > 3 || (blen > 1 && bits[0] == '0') ||
        strtol(bits, NULL, 10) > maxbits)
        return "not a valid CIDR block";
    return NULL;
}

const char *mesh_validate_protocol(const char *s)
{
    static const char *const known[] = {"tcp", "udp", "grpc", "grpc-web", "http", "http_proxy",
                                        "http2", "https", "tls", "mongo", "redis", "mysql"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(known); i++)
        if (strcasecmp(s, known[i]) == 0)
            return NULL;
    return "unsupported protocol (use HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, "
           "REDIS, MYSQL or UDP)";
}

const char *mesh_validate_header_name(const char *s)
{
    if (!*s)
        return "header name cannot be empty";
    if (strncmp(s, "@request.auth.claims.", 21) == 0 && s[21])
        return NULL; /* JWT claim based routing (gateways) */
    for (const char *p = s; *p; p++)
        if (!is_alnum(*p) && *p != '-' && *p != '_')
            return "not a valid header name ([-_A-Za-z0-9]+)";
    return NULL;
}

const char *mesh_validate_header_value(const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "header value must not contain control characters";
    }
    for (const char *p = s; *p;) {
        if (*p != '%') {
            p++;
            continue;
        }
        if (p[1] == '%') {
            p += 2;
            continue;
        }
        const char *end = strchr(p + 1, '%');
        if (!end)
            return "invalid header value: a '%' must be written \"%%\" or start a %VARIABLE%";
        p = end + 1;
    }
    return NULL;
}

const char *mesh_validate_http_method(const char *s)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST",    "PUT",  "PATCH",
                                          "DELETE", "CONNECT", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(methods); i++)
        if (strcmp(s, methods[i]) == 0)
            return NULL;
    return "not a supported HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, "
           "TRACE)";
}

const char *mesh_validate_base64(const char *s)
{
    size_t n = strlen(s), pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || !(is_alnum(c) || c == '+' || c == '/'))
            return "not valid base64";
    }
    if (pad > 2 || (pad && n % 4))
        return "not valid base64";
    if (!pad && n % 4 == 1)
        return "not valid base64";
    return NULL;
}

const char *mesh_validate_http_url(const char *s)
{
    const char *host;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return "must be an http:// or https:// URL";
    if (!*host || *host == '/' || *host == ':' || *host == '?')
        return "URL has no host";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "URL must not contain spaces or control characters";
    return NULL;
}

const char *mesh_validate_port_string(const char *s)
{
    size_t n = strlen(s);
    long v = n && n <= 5 && all_digits(s, n) ? strtol(s, NULL, 10) : 0;
    if (v < 1 || v > 65535)
        return "must be a port number 1..65535";
    return NULL;
}

bool mesh_validate_regex(const char *re, char *why, size_t why_len)
{
    if (strlen(re) > 1024) {
        snprintf(why, why_len, "regex is too large, max length allowed is 1024");
        return false;
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *p = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off,
                                  NULL);
    if (p) {
        pcre2_code_free(p);
        return true;
    }
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "error %d", code);
    snprintf(why, why_len, "invalid regex: %s at offset %zu", (const char *)msg, (size_t)off);
    return false;
}

bool mesh_validate_is_prime(uint64_t x)
{
    if (x != 0 && x < 4)
        return true;
    if ((x & 1) == 0)
        return false;
    for (uint64_t f = 3; f <= x / f; f += 2)
        if (x % f == 0)
            return false;
    return true;
}
