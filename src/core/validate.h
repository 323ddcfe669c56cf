/* Value syntax checks shared by the resource validator, the store and the CLI. */
#ifndef MESH_CORE_VALIDATE_H
#define MESH_CORE_VALIDATE_H

#include "core/common.h"

/*
 * Each mesh_validate_* returns NULL when <s> is valid, else a static message
 * saying what is wrong (without the value, which the caller usually prints).
 * The rules follow Kubernetes (metadata, labels) and Istio's validation
 * package (hosts, ports, protocols, headers, durations).
 */

/** Kubernetes DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63. */
const char *mesh_validate_dns1123_label(const char *s);
/** Kubernetes DNS-1123 subdomain: labels joined by dots, lower case, at most 253. */
const char *mesh_validate_dns1123_subdomain(const char *s);
/** Kubernetes DNS-1035 label (Service names): like a DNS-1123 label, starting with a letter. */
const char *mesh_validate_dns1035_label(const char *s);
/** Istio's DNS-1123 label: also allows upper case (port and subset names). */
const char *mesh_validate_istio_label(const char *s);
/** Istio ValidateFQDN: DNS labels, at most 255, last label not all digits, trailing dot allowed. */
const char *mesh_validate_fqdn(const char *s);
/** Istio ValidateWildcardDomain: an FQDN or short name whose first label may be "*" or "*x". */
const char *mesh_validate_wildcard_domain(const char *s);
/** "ns/host" of Gateway servers (<gateway>) or Sidecar egress listeners. */
const char *mesh_validate_ns_host(const char *s, bool gateway);
/** Kubernetes label / annotation key: [prefix/]name, name 1..63, prefix a DNS subdomain. */
const char *mesh_validate_label_key(const char *s);
/** Kubernetes label value: empty, or at most 63 of [-_.A-Za-z0-9] starting and ending alnum. */
const char *mesh_validate_label_value(const char *s);
/** IPv4 or IPv6 address. */
const char *mesh_validate_ip(const char *s);
/** Address or CIDR block (a.b.c.d/n, x::/n). */
const char *mesh_validate_ip_or_cidr(const char *s);
/** Istio protocol names, case-insensitive: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS... */
const char *mesh_validate_protocol(const char *s);
/** HTTP header name for matching: [-_A-Za-z0-9]+ (or an "@request.auth.claims." route). */
const char *mesh_validate_header_name(const char *s);
/** Header value Envoy accepts: no control characters, "%" only as "%%" or "%VAR%". */
const char *mesh_validate_header_value(const char *s);
/** One of GET HEAD POST PUT PATCH DELETE CONNECT OPTIONS TRACE. */
const char *mesh_validate_http_method(const char *s);
/** Standard base64 (padding optional). */
const char *mesh_validate_base64(const char *s);
/** An absolute http:// or https:// URL with a host. */
const char *mesh_validate_http_url(const char *s);
/** Port as a decimal string (AuthorizationPolicy ports), 1..65535. */
const char *mesh_validate_port_string(const char *s);

/**
 * Compiles <re> with PCRE2 (Istio uses RE2; the syntax overlaps for what
 * routes use). Returns true when it compiles, else writes the reason to <why>.
 * Regexes longer than 1024 bytes are refused, as Istio does.
 */
bool mesh_validate_regex(const char *re, char *why, size_t why_len);

/** Whether <x> is prime (Maglev table sizes), as Envoy computes it. */
bool mesh_validate_is_prime(uint64_t x);

#endif /* MESH_CORE_VALIDATE_H */
