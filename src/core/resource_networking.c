#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "core/resource-int.h"
#include "core/validate.h"

/*
 * networking.istio.io: VirtualService, DestinationRule, Gateway, ServiceEntry,
 * WorkloadEntry, Sidecar. Schema tables first (bottom-up: a table may only
 * name schemas above it), then the kinds. The post checks follow Istio's
 * pkg/config/validation (ValidateVirtualService, ValidateDestinationRule...)
 * so that meshd accepts what istioctl accepts and refuses what it refuses.
 */

#define ERR_AT mesh_resource__err_at
#define WARN_AT mesh_resource__warn_at

/* Key node of <key> in <map> for positions, else the map. */
static const struct mesh_ynode *key_at(const struct mesh_ynode *map, const char *key)
{
    const struct mesh_ynode *k = mesh_yaml_get_key(map, key);
    return k ? k : map;
}

static const struct mesh_ynode *val(const struct mesh_ynode *map, const char *key)
{
    return mesh_resource__node(map, key);
}

static const struct mesh_ynode *item(const struct mesh_ynode *map, const char *key, size_t i)
{
    return mesh_resource__item(map, key, i);
}

/* Istio protocol classes (pkg/config/protocol). */
static bool proto_is_http(const char *p)
{
    return p && (strcasecmp(p, "HTTP") == 0 || strcasecmp(p, "HTTP2") == 0 ||
                 strcasecmp(p, "GRPC") == 0 || strcasecmp(p, "GRPC-WEB") == 0 ||
                 strcasecmp(p, "HTTP_PROXY") == 0);
}

static bool proto_is_tls(const char *p)
{
    return p && (strcasecmp(p, "HTTPS") == 0 || strcasecmp(p, "TLS") == 0);
}

static bool proto_is_tcp(const char *p)
{
    return p && (strcasecmp(p, "TCP") == 0 || strcasecmp(p, "MONGO") == 0 ||
                 strcasecmp(p, "REDIS") == 0 || strcasecmp(p, "MYSQL") == 0 ||
                 proto_is_tls(p));
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Istio host.Name.Matches: either side may be a wildcard. */
static bool host_matches(const char *a, const char *b)
{
    bool aw = a[0] == '*', bw = b[0] == '*';
    if (aw && bw)
        return strlen(a) < strlen(b) ? has_suffix(b + 1, a + 1) : has_suffix(a + 1, b + 1);
    if (aw)
        return has_suffix(b, a + 1);
    if (bw)
        return has_suffix(a, b + 1);
    return strcmp(a, b) == 0;
}

/* Istio host.Name.SubsetOf */
static bool host_subset_of(const char *n, const char *o)
{
    if (n[0] == '*')
        return o[0] == '*' && has_suffix(n + 1, o + 1);
    if (o[0] == '*')
        return has_suffix(n, o + 1);
    return strcmp(n, o) == 0;
}

/* ---- Value checks ---- */

static void check_wildcard_host(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_wildcard_domain(s);
    if (why)
        mesh_resource__err(c, n, "invalid host \"%.100s\": %s", s, why);
}

static void check_dest_host(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (strcmp(s, "*") == 0)
        mesh_resource__err(c, n, "invalid destination host \"*\"");
    else
        check_wildcard_host(c, n, s);
}

static void check_subset_name(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_istio_label(s);
    if (why)
        mesh_resource__err(c, n, "invalid subset name \"%.100s\": %s", s, why);
}

static void check_gateway_name(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash) {
        if (strchr(s, '.')) {
            /* legacy "name.namespace[.svc.cluster.local]" */
            char ns[64] = "";
            const char *dot = strchr(s, '.');
            const char *end = strchr(dot + 1, '.');
            size_t nl = end ? (size_t)(end - dot - 1) : strlen(dot + 1);
            snprintf(ns, sizeof(ns), "%.*s", (int)MESH_MIN(nl, 60), dot + 1);
            mesh_resource__warn(c, n, "using legacy gateway name format \"%.100s\"; prefer "
                                      "<namespace>/<name>: \"%s/%.*s\"",
                                s, ns, (int)MESH_MIN((size_t)(dot - s), 60), s);
        }
        const char *why = mesh_validate_fqdn(s);
        if (why)
            mesh_resource__err(c, n, "invalid gateway name \"%.100s\": %s", s, why);
        return;
    }
    size_t nslen = (size_t)(slash - s);
    char ns[256];
    if (!nslen || !slash[1] || nslen >= sizeof(ns)) {
        mesh_resource__err(c, n, "gateway namespace and name cannot be empty");
        return;
    }
    memcpy(ns, s, nslen);
    ns[nslen] = '\0';
    if (mesh_validate_istio_label(ns))
        mesh_resource__err(c, n, "invalid namespace \"%.100s\" in gateway name", ns);
    if (mesh_validate_istio_label(slash + 1))
        mesh_resource__err(c, n, "invalid gateway name \"%.100s\"", slash + 1);
}

static void check_source_namespace(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (mesh_validate_istio_label(s))
        mesh_resource__err(c, n, "sourceNamespace \"%.100s\" is not a valid namespace", s);
}

static void check_cors_header(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (strcmp(s, "*") != 0)
        mesh_check_header_name(c, n, s);
}

static void check_http_method(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_http_method(s);
    if (why)
        mesh_resource__err(c, n, "\"%.100s\": %s", s, why);
}

static bool is_internal_header(const char *h)
{
    return h[0] == ':' || strcasecmp(h, "host") == 0;
}

static bool is_authority_header(const char *h)
{
    return strcasecmp(h, ":authority") == 0 || strcasecmp(h, "host") == 0;
}

/* request set/add: ":authority" and "host" rewrite the authority, other pseudo-headers no */
static void check_req_header_op(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s)
        mesh_resource__err(c, n, "header name cannot be empty");
    else if (is_internal_header(s) && !is_authority_header(s))
        mesh_resource__err(c, n, "invalid header \"%.100s\": header cannot have \":\" prefix", s);
}

/* request remove, response set/add/remove */
static void check_header_op(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s)
        mesh_resource__err(c, n, "header name cannot be empty");
    else if (strcasecmp(s, "host") == 0)
        mesh_resource__err(c, n, "invalid header \"%.100s\": cannot set Host header", s);
    else if (s[0] == ':')
        mesh_resource__err(c, n, "invalid header \"%.100s\": header cannot have \":\" prefix", s);
}

static void check_port_string_name(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_istio_label(s);
    if (why)
        mesh_resource__err(c, n, "invalid port name \"%.100s\": %s", s, why);
}

static void check_unix_address(struct mesh_rctx *c, const struct mesh_ynode *n, const char *sub,
                               const char *addr)
{
    if (!*addr)
        ERR_AT(c, n, sub, "unix address must not be empty");
    else if (addr[0] != '@' && (addr[0] != '/' || has_suffix(addr, "/")))
        ERR_AT(c, n, sub, "%.100s is not an absolute path to a file", addr);
}

static void check_bind(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (strncmp(s, "unix://", 7) == 0)
        check_unix_address(c, n, NULL, s + 7);
    else if (*s && mesh_validate_ip(s))
        mesh_resource__err(c, n, "%.100s is not a valid IP", s);
}

/* ---- Shared messages ---- */

static const struct mesh_field percent_fields[] = {
    F_S("value", mesh_percent, value, MESH_F_DOUBLE, .min = 0, .max = 100),
};
static void percent_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_percent *p = msg;
    if (p->value > 0 && p->value < 0.0001)
        ERR_AT(c, val(map, "value"), "value", "percentage %g is neither 0.0, nor in range "
                                            "[0.0001, 100.0]", p->value);
}
static MESH_SCHEMA(percent_schema, mesh_percent, percent_fields, percent_post);

static const struct mesh_field port_selector_fields[] = {
    F_S("number", mesh_port_selector, number, MESH_F_UINT32, .min = 1, .max = 65535,
        .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(port_selector_schema, mesh_port_selector, port_selector_fields, NULL);

static const struct mesh_field destination_fields[] = {
    F_S("host", mesh_destination, host, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = check_dest_host),
    F_S("subset", mesh_destination, subset, MESH_F_STRING, .check = check_subset_name),
    F_M("port", mesh_destination, port, port_selector_schema),
};
static MESH_SCHEMA(destination_schema, mesh_destination, destination_fields, NULL);

static const struct mesh_field workload_selector_fields[] = {
    F_MAPS("labels", mesh_workload_selector, labels, .key_check = mesh_check_selector_key,
           .check = mesh_check_selector_value),
};
static void workload_selector_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                   void *msg)
{
    const struct mesh_workload_selector *s = msg;
    if (!s->n_labels)
        mesh_resource__warn(c, map, "workload selector specified without labels: it applies "
                                    "to every workload in the namespace");
}
static MESH_SCHEMA(workload_selector_schema, mesh_workload_selector, workload_selector_fields,
                   workload_selector_post);

static const struct mesh_field label_selector_fields[] = {
    F_MAPS("matchLabels", mesh_label_selector, match_labels,
           .key_check = mesh_check_selector_key, .check = mesh_check_selector_value),
};
static void label_selector_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                void *msg)
{
    const struct mesh_label_selector *s = msg;
    if (!s->n_match_labels)
        mesh_resource__warn(c, map, "workload selector specified without labels");
}
MESH_SCHEMA(mesh_schema_label_selector, mesh_label_selector, label_selector_fields,
            label_selector_post);

static void target_ref_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_policy_target_ref *r = msg;
    if (r->namespace_ && *r->namespace_)
        ERR_AT(c, key_at(map, "namespace"), "namespace",
               "targetRef namespace must not be set; cross "
               "namespace referencing is not supported");
    if (!r->kind)
        return;
    const char *g = r->group ? r->group : "";
    bool ok = (strcmp(r->kind, "Service") == 0 && !*g) ||
              (strcmp(r->kind, "ServiceEntry") == 0 && strcmp(g, "networking.istio.io") == 0) ||
              (strcmp(r->kind, "Gateway") == 0 && strcmp(g, "gateway.networking.k8s.io") == 0);
    if (!ok)
        ERR_AT(c, key_at(map, "kind"), "kind",
               "targetRef must be to a Service, a networking.istio.io "
               "ServiceEntry or a gateway.networking.k8s.io Gateway, "
               "not %.60s/%.60s",
               g, r->kind);
}
static const struct mesh_field target_ref_fields[] = {
    F_S("group", mesh_policy_target_ref, group, MESH_F_STRING),
    F_S("kind", mesh_policy_target_ref, kind, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("name", mesh_policy_target_ref, name, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("namespace", mesh_policy_target_ref, namespace_, MESH_F_STRING),
};
MESH_SCHEMA(mesh_schema_policy_target_ref, mesh_policy_target_ref, target_ref_fields,
            target_ref_post);

static const struct mesh_field string_match_fields[] = {
    F_S("exact", mesh_string_match, exact, MESH_F_STRING, .oneof = "match"),
    F_S("prefix", mesh_string_match, prefix, MESH_F_STRING, .oneof = "match"),
    F_S("regex", mesh_string_match, regex, MESH_F_STRING, .oneof = "match",
        .check = mesh_check_regex),
};
static MESH_SCHEMA(string_match_schema, mesh_string_match, string_match_fields, NULL);

/* uri, scheme, method, authority: one of the three must be set */
static void string_match_one_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                  void *msg)
{
    const struct mesh_string_match *m = msg;
    if (!m->exact && !m->prefix && !m->regex)
        mesh_resource__err(c, map, "must set one of \"exact\", \"prefix\" or \"regex\"");
}
static MESH_SCHEMA(string_match_one_schema, mesh_string_match, string_match_fields,
                   string_match_one_post);

/* ---- ConnectionPool, TLS (DestinationRule, Sidecar, Gateway) ---- */

static const struct mesh_field tcp_keepalive_fields[] = {
    F_S("probes", mesh_tcp_keepalive, probes, MESH_F_UINT32),
    F_S("time", mesh_tcp_keepalive, time, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
    F_S("interval", mesh_tcp_keepalive, interval, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
};
static MESH_SCHEMA(tcp_keepalive_schema, mesh_tcp_keepalive, tcp_keepalive_fields, NULL);

static const struct mesh_field tcp_pool_fields[] = {
    F_S("maxConnections", mesh_tcp_pool, max_connections, MESH_F_INT32, .min = 0,
        .max = INT32_MAX),
    F_S("connectTimeout", mesh_tcp_pool, connect_timeout, MESH_F_DURATION,
        .flags = MESH_FF_MIN_1MS),
    F_M("tcpKeepalive", mesh_tcp_pool, tcp_keepalive, tcp_keepalive_schema),
    F_S("maxConnectionDuration", mesh_tcp_pool, max_connection_duration, MESH_F_DURATION,
        .flags = MESH_FF_MIN_1MS),
    F_S("idleTimeout", mesh_tcp_pool, idle_timeout, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
};
static MESH_SCHEMA(tcp_pool_schema, mesh_tcp_pool, tcp_pool_fields, NULL);

static const char *const h2_upgrade_names[] = {"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE", NULL};

static void http_pool_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_http_pool *h = msg;
    if (h->h2_upgrade_policy == MESH_H2_UPGRADE_UPGRADE && h->use_client_protocol)
        ERR_AT(c, key_at(map, "useClientProtocol"), "useClientProtocol",
               "use client protocol must not be true when h2UpgradePolicy is UPGRADE");
}
static const struct mesh_field http_pool_fields[] = {
    F_S("http1MaxPendingRequests", mesh_http_pool, http1_max_pending_requests, MESH_F_INT32,
        .min = 0, .max = INT32_MAX),
    F_S("http2MaxRequests", mesh_http_pool, http2_max_requests, MESH_F_INT32, .min = 0,
        .max = INT32_MAX),
    F_S("maxRequestsPerConnection", mesh_http_pool, max_requests_per_connection, MESH_F_INT32,
        .min = 0, .max = INT32_MAX),
    F_S("maxRetries", mesh_http_pool, max_retries, MESH_F_INT32, .min = 0, .max = INT32_MAX),
    F_S("idleTimeout", mesh_http_pool, idle_timeout, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
    F_S("h2UpgradePolicy", mesh_http_pool, h2_upgrade_policy, MESH_F_ENUM,
        .enums = h2_upgrade_names),
    F_S("useClientProtocol", mesh_http_pool, use_client_protocol, MESH_F_BOOL),
    F_S("maxConcurrentStreams", mesh_http_pool, max_concurrent_streams, MESH_F_INT32, .min = 0,
        .max = INT32_MAX),
};
static MESH_SCHEMA(http_pool_schema, mesh_http_pool, http_pool_fields, http_pool_post);

static void connection_pool_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                 void *msg)
{
    const struct mesh_connection_pool *p = msg;
    if (!p->tcp && !p->http && !val(map, "tcp") && !val(map, "http"))
        mesh_resource__err(c, map, "connection pool must have at least one field");
}
static const struct mesh_field connection_pool_fields[] = {
    F_M("tcp", mesh_connection_pool, tcp, tcp_pool_schema),
    F_M("http", mesh_connection_pool, http, http_pool_schema),
};
static MESH_SCHEMA(connection_pool_schema, mesh_connection_pool, connection_pool_fields,
                   connection_pool_post);

static const char *const client_tls_names[] = {"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL",
                                               NULL};

/* Istio ValidateTLS (client side) */
static void client_tls_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_client_tls *t = msg;
    if (t->insecure_skip_verify.set && t->insecure_skip_verify.v) {
        if (t->mode == MESH_CLIENT_TLS_SIMPLE &&
            (t->ca_certificates || t->credential_name || val(map, "subjectAltNames")))
            mesh_resource__err(c, map, "cannot specify caCertificates, credentialName or "
                                       "subjectAltNames when insecureSkipVerify is true");
        if (t->mode == MESH_CLIENT_TLS_MUTUAL &&
            (t->ca_certificates || val(map, "subjectAltNames")))
            mesh_resource__err(c, map, "cannot specify caCertificates or subjectAltNames when "
                                       "insecureSkipVerify is true");
    }
    if ((t->mode == MESH_CLIENT_TLS_SIMPLE || t->mode == MESH_CLIENT_TLS_MUTUAL) &&
        t->credential_name && *t->credential_name) {
        if (t->client_certificate || t->ca_certificates || t->private_key || t->ca_crl)
            mesh_resource__err(c, map, "cannot specify client certificates, CA certificate or "
                                       "CA CRL if credentialName is set");
        return;
    }
    if (t->mode == MESH_CLIENT_TLS_MUTUAL) {
        if (!t->client_certificate || !*t->client_certificate)
            ERR_AT(c, map, "clientCertificate", "client certificate required for mutual tls");
        if (!t->private_key || !*t->private_key)
            ERR_AT(c, map, "privateKey", "private key required for mutual tls");
    }
}
static const struct mesh_field client_tls_fields[] = {
    F_S("mode", mesh_client_tls, mode, MESH_F_ENUM, .enums = client_tls_names),
    F_S("clientCertificate", mesh_client_tls, client_certificate, MESH_F_STRING),
    F_S("privateKey", mesh_client_tls, private_key, MESH_F_STRING),
    F_S("caCertificates", mesh_client_tls, ca_certificates, MESH_F_STRING),
    F_S("credentialName", mesh_client_tls, credential_name, MESH_F_STRING),
    F_LS("subjectAltNames", mesh_client_tls, subject_alt_names, MESH_F_STRING),
    F_S("sni", mesh_client_tls, sni, MESH_F_STRING),
    F_S("insecureSkipVerify", mesh_client_tls, insecure_skip_verify, MESH_F_OBOOL),
    F_S("caCrl", mesh_client_tls, ca_crl, MESH_F_STRING),
};
static MESH_SCHEMA(client_tls_schema, mesh_client_tls, client_tls_fields, client_tls_post);

static const char *const server_tls_names[] = {"PASSTHROUGH", "SIMPLE", "MUTUAL",
                                               "AUTO_PASSTHROUGH", "ISTIO_MUTUAL",
                                               "OPTIONAL_MUTUAL", NULL};
static const char *const tls_protocol_names[] = {"TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2",
                                                 "TLSV1_3", NULL};

static const struct mesh_field tls_certificate_fields[] = {
    F_S("serverCertificate", mesh_tls_certificate, server_certificate, MESH_F_STRING),
    F_S("privateKey", mesh_tls_certificate, private_key, MESH_F_STRING),
    F_S("caCertificates", mesh_tls_certificate, ca_certificates, MESH_F_STRING),
};
static MESH_SCHEMA(tls_certificate_schema, mesh_tls_certificate, tls_certificate_fields, NULL);

static bool set(const char *s)
{
    return s && *s;
}

/* Istio validateTLSOptions (server side) */
static void server_tls_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_server_tls *t = msg;
    if ((t->min_protocol_version == MESH_TLSV1_0 || t->min_protocol_version == MESH_TLSV1_1) &&
        !t->n_cipher_suites)
        WARN_AT(c, key_at(map, "minProtocolVersion"), "minProtocolVersion",
                "TLS versions below TLSV1_2 need compatible cipherSuites set: the default ones "
                "no longer include them");
    for (size_t i = 0; i < t->n_cipher_suites; i++)
        for (size_t j = 0; j < i; j++)
            if (t->cipher_suites[i] && t->cipher_suites[j] &&
                strcmp(t->cipher_suites[i], t->cipher_suites[j]) == 0)
                WARN_AT(c, item(map, "cipherSuites", i), "cipherSuites",
                        "ignoring duplicate cipher suite %.100s", t->cipher_suites[i]);
    int creds = (t->credential_name != NULL) + (t->n_credential_names > 0) +
                (t->n_tls_certificates > 0);
    if (creds > 1)
        mesh_resource__err(c, map, "only one of credentialName, credentialNames or "
                                   "tlsCertificates can be set");
    bool remote = set(t->credential_name) || t->n_credential_names || t->n_tls_certificates;
    if (t->mode == MESH_SERVER_TLS_ISTIO_MUTUAL) {
        if (set(t->server_certificate))
            ERR_AT(c, key_at(map, "serverCertificate"), "serverCertificate",
                   "ISTIO_MUTUAL TLS cannot have associated server certificate");
        if (set(t->private_key))
            ERR_AT(c, key_at(map, "privateKey"), "privateKey",
                   "ISTIO_MUTUAL TLS cannot have associated private key");
        if (set(t->ca_certificates))
            ERR_AT(c, key_at(map, "caCertificates"), "caCertificates",
                   "ISTIO_MUTUAL TLS cannot have associated CA bundle");
        if (set(t->credential_name))
            ERR_AT(c, key_at(map, "credentialName"), "credentialName",
                   "ISTIO_MUTUAL TLS cannot have associated credentialName");
        return;
    }
    if (t->mode == MESH_SERVER_TLS_PASSTHROUGH || t->mode == MESH_SERVER_TLS_AUTO_PASSTHROUGH) {
        if (set(t->ca_crl) || set(t->server_certificate) || set(t->private_key) ||
            set(t->ca_certificates) || set(t->credential_name))
            mesh_resource__warn(c, map, "%s mode does not use certificates, they will be ignored",
                                server_tls_names[t->mode]);
    }
    bool mutual = t->mode == MESH_SERVER_TLS_MUTUAL || t->mode == MESH_SERVER_TLS_OPTIONAL_MUTUAL;
    if ((t->mode == MESH_SERVER_TLS_SIMPLE || mutual) && remote)
        return; /* certificates come from the credential */
    if (t->mode == MESH_SERVER_TLS_SIMPLE || mutual) {
        const char *m = mutual ? "MUTUAL" : "SIMPLE";
        if (!set(t->server_certificate))
            ERR_AT(c, map, "serverCertificate", "%s TLS requires a server certificate", m);
        if (!set(t->private_key))
            ERR_AT(c, map, "privateKey", "%s TLS requires a private key", m);
        if (mutual && !set(t->ca_certificates))
            ERR_AT(c, map, "caCertificates", "MUTUAL TLS requires a client CA bundle");
    }
    if (set(t->ca_crl) && t->mode == MESH_SERVER_TLS_SIMPLE)
        ERR_AT(c, key_at(map, "caCrl"), "caCrl", "CRL is not supported with SIMPLE TLS");
}
static const struct mesh_field server_tls_fields[] = {
    F_S("httpsRedirect", mesh_server_tls, https_redirect, MESH_F_BOOL),
    F_S("mode", mesh_server_tls, mode, MESH_F_ENUM, .enums = server_tls_names),
    F_S("serverCertificate", mesh_server_tls, server_certificate, MESH_F_STRING),
    F_S("privateKey", mesh_server_tls, private_key, MESH_F_STRING),
    F_S("caCertificates", mesh_server_tls, ca_certificates, MESH_F_STRING),
    F_S("caCrl", mesh_server_tls, ca_crl, MESH_F_STRING),
    F_S("credentialName", mesh_server_tls, credential_name, MESH_F_STRING),
    F_LS("credentialNames", mesh_server_tls, credential_names, MESH_F_STRING),
    F_S("caCertCredentialName", mesh_server_tls, ca_cert_credential_name, MESH_F_STRING),
    F_LM("tlsCertificates", mesh_server_tls, tls_certificates, mesh_tls_certificate,
         tls_certificate_schema),
    F_LS("subjectAltNames", mesh_server_tls, subject_alt_names, MESH_F_STRING),
    F_LS("verifyCertificateSpki", mesh_server_tls, verify_certificate_spki, MESH_F_STRING),
    F_LS("verifyCertificateHash", mesh_server_tls, verify_certificate_hash, MESH_F_STRING),
    F_S("minProtocolVersion", mesh_server_tls, min_protocol_version, MESH_F_ENUM,
        .enums = tls_protocol_names),
    F_S("maxProtocolVersion", mesh_server_tls, max_protocol_version, MESH_F_ENUM,
        .enums = tls_protocol_names),
    F_LS("cipherSuites", mesh_server_tls, cipher_suites, MESH_F_STRING),
};
static MESH_SCHEMA(server_tls_schema, mesh_server_tls, server_tls_fields, server_tls_post);

/* ---- VirtualService ---- */

static void header_ops_check_values(struct mesh_rctx *c, const struct mesh_ynode *map,
                                    const char *field, const struct mesh_kv *kv, size_t n)
{
    const struct mesh_ynode *m = val(map, field);
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && kv[i].value) {
            const char *why = mesh_validate_header_value(kv[i].value);
            if (why) {
                char sub[200];
                snprintf(sub, sizeof(sub), "%s.%.120s", field, kv[i].key);
                ERR_AT(c, m && i < m->n ? m->pairs[i].value : map, sub, "%s", why);
            }
        }
}

static void header_ops_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_header_operations *h = msg;
    header_ops_check_values(c, map, "set", h->set, h->n_set);
    header_ops_check_values(c, map, "add", h->add, h->n_add);
}

static const struct mesh_field header_ops_req_fields[] = {
    F_MAPS("set", mesh_header_operations, set, .key_check = check_req_header_op),
    F_MAPS("add", mesh_header_operations, add, .key_check = check_req_header_op),
    F_LS("remove", mesh_header_operations, remove, MESH_F_STRING, .check = check_header_op),
};
static MESH_SCHEMA(header_ops_req_schema, mesh_header_operations, header_ops_req_fields,
                   header_ops_post);

static const struct mesh_field header_ops_resp_fields[] = {
    F_MAPS("set", mesh_header_operations, set, .key_check = check_header_op),
    F_MAPS("add", mesh_header_operations, add, .key_check = check_header_op),
    F_LS("remove", mesh_header_operations, remove, MESH_F_STRING, .check = check_header_op),
};
static MESH_SCHEMA(header_ops_resp_schema, mesh_header_operations, header_ops_resp_fields,
                   header_ops_post);

static const struct mesh_field headers_fields[] = {
    F_M("request", mesh_route_headers, request, header_ops_req_schema),
    F_M("response", mesh_route_headers, response, header_ops_resp_schema),
};
static MESH_SCHEMA(headers_schema, mesh_route_headers, headers_fields, NULL);

static void check_match_header(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_header_name(s);
    if (why)
        mesh_resource__err(c, n, "header name \"%.100s\": %s", s, why);
}

static const struct mesh_field http_match_fields[] = {
    F_S("name", mesh_http_match, name, MESH_F_STRING),
    F_M("uri", mesh_http_match, uri, string_match_one_schema),
    F_M("scheme", mesh_http_match, scheme, string_match_one_schema),
    F_M("method", mesh_http_match, method, string_match_one_schema),
    F_M("authority", mesh_http_match, authority, string_match_one_schema),
    F_MAPM("headers", mesh_http_match, headers, mesh_string_match_entry, string_match_schema,
           .key_check = check_match_header),
    F_S("port", mesh_http_match, port, MESH_F_UINT32, .min = 0, .max = 65535),
    F_MAPS("sourceLabels", mesh_http_match, source_labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_LS("gateways", mesh_http_match, gateways, MESH_F_STRING, .check = check_gateway_name),
    F_MAPM("queryParams", mesh_http_match, query_params, mesh_string_match_entry,
           string_match_schema),
    F_S("ignoreUriCase", mesh_http_match, ignore_uri_case, MESH_F_BOOL),
    F_MAPM("withoutHeaders", mesh_http_match, without_headers, mesh_string_match_entry,
           string_match_schema, .key_check = check_match_header),
    F_S("sourceNamespace", mesh_http_match, source_namespace, MESH_F_STRING,
        .check = check_source_namespace),
    F_S("statPrefix", mesh_http_match, stat_prefix, MESH_F_STRING),
};
static MESH_SCHEMA(http_match_schema, mesh_http_match, http_match_fields, NULL);

static const struct mesh_field http_route_dest_fields[] = {
    F_M("destination", mesh_http_route_destination, destination, destination_schema,
        .flags = MESH_FF_REQUIRED),
    F_S("weight", mesh_http_route_destination, weight, MESH_F_INT32, .min = 0, .max = 100),
    F_M("headers", mesh_http_route_destination, headers, headers_schema),
};
static MESH_SCHEMA(http_route_dest_schema, mesh_http_route_destination, http_route_dest_fields,
                   NULL);

static const struct mesh_field route_dest_fields[] = {
    F_M("destination", mesh_route_destination, destination, destination_schema,
        .flags = MESH_FF_REQUIRED),
    F_S("weight", mesh_route_destination, weight, MESH_F_INT32, .min = 0, .max = 100),
};
static MESH_SCHEMA(route_dest_schema, mesh_route_destination, route_dest_fields, NULL);

static const char *const derive_port_names[] = {"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT",
                                                NULL};

static void redirect_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    struct mesh_http_redirect *r = msg;
    if (val(map, "derivePort"))
        r->has_derive_port = true;
    if (!set(r->uri) && !set(r->authority) && !r->port.set && !r->has_derive_port &&
        !set(r->scheme) && !set(r->prefix_rewrite))
        mesh_resource__err(c, map, "redirect must specify uri, prefixRewrite, authority, scheme, "
                                   "port or derivePort");
    if (set(r->uri) && set(r->prefix_rewrite))
        mesh_resource__err(c, map, "redirect may only contain one of uri or prefixRewrite");
    if (r->redirect_code && (r->redirect_code < 300 || r->redirect_code > 399))
        ERR_AT(c, val(map, "redirectCode"), "redirectCode",
               "%u is not a valid redirect code, must be 3xx", r->redirect_code);
    if (set(r->scheme) && strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0)
        ERR_AT(c, val(map, "scheme"), "scheme", "invalid redirect scheme, must be \"http\" or "
                                              "\"https\"");
}
static const struct mesh_field redirect_fields[] = {
    F_S("uri", mesh_http_redirect, uri, MESH_F_STRING),
    F_S("authority", mesh_http_redirect, authority, MESH_F_STRING),
    F_S("prefixRewrite", mesh_http_redirect, prefix_rewrite, MESH_F_STRING),
    F_S("port", mesh_http_redirect, port, MESH_F_OUINT32, .min = 1, .max = 65535,
        .oneof = "redirect_port"),
    F_S("derivePort", mesh_http_redirect, derive_port, MESH_F_ENUM, .enums = derive_port_names,
        .oneof = "redirect_port"),
    F_S("scheme", mesh_http_redirect, scheme, MESH_F_STRING),
    F_S("redirectCode", mesh_http_redirect, redirect_code, MESH_F_UINT32),
};
static MESH_SCHEMA(redirect_schema, mesh_http_redirect, redirect_fields, redirect_post);

static const struct mesh_field http_body_fields[] = {
    F_S("string", mesh_http_body, string, MESH_F_STRING, .oneof = "body"),
    F_S("bytes", mesh_http_body, bytes, MESH_F_BYTES, .oneof = "body"),
};
static MESH_SCHEMA(http_body_schema, mesh_http_body, http_body_fields, NULL);

static void direct_response_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                 void *msg)
{
    const struct mesh_http_direct_response *d = msg;
    if (val(map, "status") && (d->status < 200 || d->status > 599))
        ERR_AT(c, val(map, "status"), "status", "HTTP status %u is not in range 200-599",
               d->status);
    if (d->body) {
        size_t size = d->body->string ? strlen(d->body->string)
                                      : d->body->bytes ? strlen(d->body->bytes) * 3 / 4 : 0;
        if (size > 1024 * 1024)
            ERR_AT(c, key_at(map, "body"), "body", "direct response body must be less than 1MB");
        else if (size > 100 * 1024)
            WARN_AT(c, key_at(map, "body"), "body",
                    "large direct responses may impact control plane "
                    "performance");
    }
}
static const struct mesh_field direct_response_fields[] = {
    F_S("status", mesh_http_direct_response, status, MESH_F_UINT32, .flags = MESH_FF_REQUIRED),
    F_M("body", mesh_http_direct_response, body, http_body_schema),
};
static MESH_SCHEMA(direct_response_schema, mesh_http_direct_response, direct_response_fields,
                   direct_response_post);

static const struct mesh_field delegate_fields[] = {
    F_S("name", mesh_delegate, name, MESH_F_STRING),
    F_S("namespace", mesh_delegate, namespace_, MESH_F_STRING),
};
static MESH_SCHEMA(delegate_schema, mesh_delegate, delegate_fields, NULL);

static void regex_rewrite_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                               void *msg)
{
    const struct mesh_regex_rewrite *r = msg;
    if (!set(r->match) || !set(r->rewrite))
        mesh_resource__err(c, map, "uriRegexRewrite requires both rewrite and match fields");
}
static const struct mesh_field regex_rewrite_fields[] = {
    F_S("match", mesh_regex_rewrite, match, MESH_F_STRING, .check = mesh_check_regex),
    F_S("rewrite", mesh_regex_rewrite, rewrite, MESH_F_STRING),
};
static MESH_SCHEMA(regex_rewrite_schema, mesh_regex_rewrite, regex_rewrite_fields,
                   regex_rewrite_post);

static void rewrite_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_http_rewrite *r = msg;
    bool rx = val(map, "uriRegexRewrite") != NULL;
    if (set(r->uri) && rx)
        mesh_resource__err(c, map, "rewrite may only contain one of uri or uriRegexRewrite");
    if (!set(r->uri) && !rx && !set(r->authority))
        mesh_resource__err(c, map, "rewrite must specify at least one of uri, uriRegexRewrite or "
                                   "authority");
}
static const struct mesh_field rewrite_fields[] = {
    F_S("uri", mesh_http_rewrite, uri, MESH_F_STRING),
    F_S("authority", mesh_http_rewrite, authority, MESH_F_STRING),
    F_M("uriRegexRewrite", mesh_http_rewrite, uri_regex_rewrite, regex_rewrite_schema),
};
static MESH_SCHEMA(rewrite_schema, mesh_http_rewrite, rewrite_fields, rewrite_post);

static bool http_status_text(long code)
{
    /* the codes Go's http.StatusText knows, as Istio checks retryOn with it */
    static const short known[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207,
                                  208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401,
                                  402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413,
                                  414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428,
                                  429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508,
                                  510, 511};
    for (size_t i = 0; i < MESH_ARRAY_LEN(known); i++)
        if (known[i] == code)
            return true;
    return false;
}

static void check_retry_on(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const policies[] = {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
        "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
        "envoy-ratelimited", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
        "internal", "resource-exhausted", "unavailable"};
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool ok = false;
        for (size_t i = 0; i < MESH_ARRAY_LEN(policies) && !ok; i++)
            ok = strlen(policies[i]) == len && memcmp(policies[i], p, len) == 0;
        if (!ok && len && len <= 3) {
            char num[4];
            memcpy(num, p, len);
            num[len] = '\0';
            char *end;
            long code = strtol(num, &end, 10);
            ok = !*end && http_status_text(code);
        }
        if (!ok)
            mesh_resource__err(c, n, "\"%.*s\" is not a valid retryOn policy",
                               (int)MESH_MIN(len, 100), p);
        if (!comma)
            break;
        p = comma + 1;
    }
}

static void retry_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_http_retry *r = msg;
    if (r->attempts < 0)
        ERR_AT(c, val(map, "attempts"), "attempts", "attempts cannot be negative");
    if (r->attempts == 0 &&
        (r->per_try_timeout.set || set(r->retry_on) || r->retry_remote_localities.set))
        mesh_resource__err(c, map, "http retry policy configured when attempts are set to 0 "
                                   "(disabled)");
}
static const struct mesh_field retry_fields[] = {
    F_S("attempts", mesh_http_retry, attempts, MESH_F_INT32),
    F_S("perTryTimeout", mesh_http_retry, per_try_timeout, MESH_F_DURATION,
        .flags = MESH_FF_MIN_1MS),
    F_S("retryOn", mesh_http_retry, retry_on, MESH_F_STRING, .check = check_retry_on),
    F_S("retryRemoteLocalities", mesh_http_retry, retry_remote_localities, MESH_F_OBOOL),
    F_S("retryIgnorePreviousHosts", mesh_http_retry, retry_ignore_previous_hosts, MESH_F_OBOOL),
    F_S("backoff", mesh_http_retry, backoff, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
};
static MESH_SCHEMA(retry_schema, mesh_http_retry, retry_fields, retry_post);

static void cors_origin_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_string_match *m = msg;
    const char *v = m->exact ? m->exact : m->prefix ? m->prefix : m->regex;
    if (!v || !*v)
        mesh_resource__err(c, map, "empty string is not a valid match for CORS allow origins");
}
static MESH_SCHEMA(cors_origin_schema, mesh_string_match, string_match_fields, cors_origin_post);

static const char *const unmatched_preflights_names[] = {"UNSPECIFIED", "FORWARD", "IGNORE",
                                                         NULL};

static void cors_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_cors_policy *p = msg;
    if (p->max_age.set && p->max_age.ns % 1000000000)
        ERR_AT(c, val(map, "maxAge"), "maxAge", "maxAge is accurate only to seconds precision");
}
static const struct mesh_field cors_fields[] = {
    F_LS("allowOrigin", mesh_cors_policy, allow_origin, MESH_F_STRING,
         .flags = MESH_FF_DEPRECATED, .note = "use \"allowOrigins\""),
    F_LM("allowOrigins", mesh_cors_policy, allow_origins, mesh_string_match, cors_origin_schema),
    F_LS("allowMethods", mesh_cors_policy, allow_methods, MESH_F_STRING,
         .check = check_http_method),
    F_LS("allowHeaders", mesh_cors_policy, allow_headers, MESH_F_STRING,
         .check = check_cors_header),
    F_LS("exposeHeaders", mesh_cors_policy, expose_headers, MESH_F_STRING,
         .check = check_cors_header),
    F_S("maxAge", mesh_cors_policy, max_age, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
    F_S("allowCredentials", mesh_cors_policy, allow_credentials, MESH_F_OBOOL),
    F_S("unmatchedPreflights", mesh_cors_policy, unmatched_preflights, MESH_F_ENUM,
        .enums = unmatched_preflights_names),
};
static MESH_SCHEMA(cors_schema, mesh_cors_policy, cors_fields, cors_post);

static void delay_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_fault_delay *d = msg;
    if (d->exponential_delay.set)
        ERR_AT(c, key_at(map, "exponentialDelay"), "exponentialDelay",
               "exponentialDelay not supported yet");
}
static const struct mesh_field delay_fields[] = {
    F_S("percent", mesh_fault_delay, percent, MESH_F_INT32, .min = 0, .max = 100,
        .flags = MESH_FF_DEPRECATED, .note = "use \"percentage\""),
    F_M("percentage", mesh_fault_delay, percentage, percent_schema),
    F_S("fixedDelay", mesh_fault_delay, fixed_delay, MESH_F_DURATION, .oneof = "delay",
        .flags = MESH_FF_MIN_1MS),
    F_S("exponentialDelay", mesh_fault_delay, exponential_delay, MESH_F_DURATION,
        .oneof = "delay", .flags = MESH_FF_MIN_1MS),
};
static MESH_SCHEMA(delay_schema, mesh_fault_delay, delay_fields, delay_post);

static void check_grpc_status(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const codes[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(codes); i++)
        if (strcmp(codes[i], s) == 0)
            return;
    mesh_resource__err(c, n, "gRPC status \"%.100s\" is not supported (use a name such as "
                             "NOT_FOUND or UNAVAILABLE)", s);
}

static void abort_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    struct mesh_fault_abort *a = msg;
    const struct mesh_ynode *hs = val(map, "httpStatus");
    if (hs)
        a->has_http_status = true;
    if (hs && (a->http_status < 200 || a->http_status > 599))
        ERR_AT(c, hs, "httpStatus", "HTTP status %d is not in range 200-599", a->http_status);
    if (a->http2_error)
        ERR_AT(c, key_at(map, "http2Error"), "http2Error",
               "HTTP/2 abort fault injection not supported yet");
    if (!hs && !a->grpc_status && !a->http2_error)
        mesh_resource__warn(c, map, "abort configured, but no httpStatus or grpcStatus set");
}
static const struct mesh_field abort_fields[] = {
    F_S("httpStatus", mesh_fault_abort, http_status, MESH_F_INT32, .oneof = "error"),
    F_S("grpcStatus", mesh_fault_abort, grpc_status, MESH_F_STRING, .oneof = "error",
        .check = check_grpc_status),
    F_S("http2Error", mesh_fault_abort, http2_error, MESH_F_STRING, .oneof = "error"),
    F_M("percentage", mesh_fault_abort, percentage, percent_schema),
};
static MESH_SCHEMA(abort_schema, mesh_fault_abort, abort_fields, abort_post);

static void fault_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    (void)msg;
    if (!val(map, "delay") && !val(map, "abort"))
        mesh_resource__err(c, map, "HTTP fault injection must have an abort and/or a delay");
}
static const struct mesh_field fault_fields[] = {
    F_M("delay", mesh_http_fault, delay, delay_schema),
    F_M("abort", mesh_http_fault, abort, abort_schema),
};
static MESH_SCHEMA(fault_schema, mesh_http_fault, fault_fields, fault_post);

static const struct mesh_field mirror_policy_fields[] = {
    F_M("destination", mesh_http_mirror_policy, destination, destination_schema,
        .flags = MESH_FF_REQUIRED),
    F_M("percentage", mesh_http_mirror_policy, percentage, percent_schema),
};
static MESH_SCHEMA(mirror_policy_schema, mesh_http_mirror_policy, mirror_policy_fields, NULL);

static const struct mesh_field http_route_fields[] = {
    F_S("name", mesh_http_route, name, MESH_F_STRING),
    F_LM("match", mesh_http_route, match, mesh_http_match, http_match_schema),
    F_LM("route", mesh_http_route, route, mesh_http_route_destination, http_route_dest_schema),
    F_M("redirect", mesh_http_route, redirect, redirect_schema),
    F_M("directResponse", mesh_http_route, direct_response, direct_response_schema),
    F_M("delegate", mesh_http_route, delegate, delegate_schema),
    F_M("rewrite", mesh_http_route, rewrite, rewrite_schema),
    F_S("timeout", mesh_http_route, timeout, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
    F_M("retries", mesh_http_route, retries, retry_schema),
    F_M("fault", mesh_http_route, fault, fault_schema),
    F_M("mirror", mesh_http_route, mirror, destination_schema),
    F_LM("mirrors", mesh_http_route, mirrors, mesh_http_mirror_policy, mirror_policy_schema),
    F_S("mirrorPercent", mesh_http_route, mirror_percent, MESH_F_OUINT32, .min = 0, .max = 100,
        .oneof = "mirror_percent", .flags = MESH_FF_DEPRECATED,
        .note = "use \"mirrorPercentage\""),
    F_S("mirror_percent", mesh_http_route, mirror_percent, MESH_F_OUINT32, .min = 0, .max = 100,
        .oneof = "mirror_percent", .flags = MESH_FF_DEPRECATED,
        .note = "use \"mirrorPercentage\""),
    F_M("mirrorPercentage", mesh_http_route, mirror_percentage, percent_schema),
    F_M("corsPolicy", mesh_http_route, cors_policy, cors_schema),
    F_M("headers", mesh_http_route, headers, headers_schema),
};
static MESH_SCHEMA(http_route_schema, mesh_http_route, http_route_fields, NULL);

static const struct mesh_field l4_match_fields[] = {
    F_LS("destinationSubnets", mesh_l4_match, destination_subnets, MESH_F_STRING,
         .check = mesh_check_ip_or_cidr),
    F_S("port", mesh_l4_match, port, MESH_F_UINT32, .min = 0, .max = 65535),
    F_S("sourceSubnet", mesh_l4_match, source_subnet, MESH_F_STRING,
        .flags = MESH_FF_DEPRECATED, .check = mesh_check_ip_or_cidr),
    F_MAPS("sourceLabels", mesh_l4_match, source_labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_LS("gateways", mesh_l4_match, gateways, MESH_F_STRING, .check = check_gateway_name),
    F_S("sourceNamespace", mesh_l4_match, source_namespace, MESH_F_STRING,
        .check = check_source_namespace),
};
static MESH_SCHEMA(l4_match_schema, mesh_l4_match, l4_match_fields, NULL);

static const struct mesh_field tls_match_fields[] = {
    F_LS("sniHosts", mesh_tls_match, sni_hosts, MESH_F_STRING,
         .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_LS("destinationSubnets", mesh_tls_match, destination_subnets, MESH_F_STRING,
         .check = mesh_check_ip_or_cidr),
    F_S("port", mesh_tls_match, port, MESH_F_UINT32, .min = 0, .max = 65535),
    F_MAPS("sourceLabels", mesh_tls_match, source_labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_LS("gateways", mesh_tls_match, gateways, MESH_F_STRING, .check = check_gateway_name),
    F_S("sourceNamespace", mesh_tls_match, source_namespace, MESH_F_STRING,
        .check = check_source_namespace),
};
static MESH_SCHEMA(tls_match_schema, mesh_tls_match, tls_match_fields, NULL);

static const struct mesh_field tcp_route_fields[] = {
    F_LM("match", mesh_tcp_route, match, mesh_l4_match, l4_match_schema),
    F_LM("route", mesh_tcp_route, route, mesh_route_destination, route_dest_schema),
};
static MESH_SCHEMA(tcp_route_schema, mesh_tcp_route, tcp_route_fields, NULL);

static const struct mesh_field tls_route_fields[] = {
    F_LM("match", mesh_tls_route, match, mesh_tls_match, tls_match_schema,
         .flags = MESH_FF_REQUIRED),
    F_LM("route", mesh_tls_route, route, mesh_route_destination, route_dest_schema),
};
static MESH_SCHEMA(tls_route_schema, mesh_tls_route, tls_route_fields, NULL);

/*
 * Weights: each 0..100 (schema); with several destinations they must add up to 100.
 * Summed from the document so that an out-of-range weight still counts as written.
 */
static void check_weights(struct mesh_rctx *c, const struct mesh_ynode *route_node,
                          const char *sub)
{
    if (!route_node || route_node->type != MESH_YNODE_SEQ || route_node->n < 2)
        return;
    long long sum = 0;
    for (size_t i = 0; i < route_node->n; i++) {
        int64_t w;
        if (mesh_yaml_int(mesh_yaml_get(route_node->items[i], "weight"), &w))
            sum += w;
    }
    if (sum != 100)
        ERR_AT(c, route_node, sub, "weights of the destinations must sum to 100, got %lld", sum);
}

static bool sm_regex(const struct mesh_string_match *m)
{
    return m && m->regex;
}

static void validate_http_route(struct mesh_rctx *c, const struct mesh_ynode *rn,
                                const struct mesh_http_route *h, bool delegate_vs)
{
    bool root = h->delegate != NULL;
    const char *nm = h->name ? h->name : "";
    if (root) {
        if (delegate_vs)
            ERR_AT(c, key_at(rn, "delegate"), "delegate", "delegate HTTP route cannot contain "
                                                     "delegate");
        if (h->redirect)
            ERR_AT(c, key_at(rn, "redirect"), "redirect", "root HTTP route %s must not specify "
                                                     "redirect", nm);
        if (val(rn, "route"))
            ERR_AT(c, key_at(rn, "route"), "route", "root HTTP route %s must not specify route",
                   nm);
        if (h->direct_response)
            ERR_AT(c, key_at(rn, "directResponse"), "directResponse",
                   "root HTTP route %s must not specify directResponse", nm);
    } else if (h->redirect) {
        if (h->n_route)
            mesh_resource__err(c, key_at(rn, "redirect"),
                               "HTTP route cannot contain both route and "
                               "redirect");
        if (h->fault)
            mesh_resource__err(c, key_at(rn, "fault"), "HTTP route cannot contain both fault and "
                                                  "redirect");
        if (h->rewrite)
            mesh_resource__err(c, key_at(rn, "rewrite"), "HTTP route rule cannot contain both "
                                                    "rewrite and redirect");
        if (h->direct_response)
            mesh_resource__err(c, key_at(rn, "directResponse"), "HTTP route cannot contain both "
                                                           "redirect and directResponse");
    } else if (h->direct_response) {
        if (h->n_route)
            mesh_resource__err(c, key_at(rn, "directResponse"), "HTTP route cannot contain both "
                                                           "route and directResponse");
        if (h->fault)
            mesh_resource__err(c, key_at(rn, "fault"), "HTTP route cannot contain both fault and "
                                                  "directResponse");
        if (h->rewrite)
            mesh_resource__err(c, key_at(rn, "rewrite"), "HTTP route rule cannot contain both "
                                                    "rewrite and directResponse");
    } else if (!h->n_route) {
        mesh_resource__err(c, rn, "HTTP route must do one of route, redirect, directResponse "
                                  "or delegate");
    }
    /* delegation does not support regex matches */
    if (root || delegate_vs) {
        for (size_t i = 0; i < h->n_match; i++) {
            const struct mesh_http_match *m = &h->match[i];
            const struct mesh_ynode *mn = item(rn, "match", i);
            char sub[48];
            snprintf(sub, sizeof(sub), "match[%zu]", i);
            if (sm_regex(m->uri) || sm_regex(m->scheme) || sm_regex(m->method) ||
                sm_regex(m->authority))
                ERR_AT(c, mn, sub, "regex matches are not supported with delegation");
            for (size_t j = 0; j < m->n_headers; j++)
                if (m->headers[j].value.regex)
                    ERR_AT(c, mn, sub, "header match %s does not support regex match for "
                                       "delegating", m->headers[j].key);
            for (size_t j = 0; j < m->n_query_params; j++)
                if (m->query_params[j].value.regex)
                    ERR_AT(c, mn, sub, "query param match %s does not support regex match for "
                                       "delegating", m->query_params[j].key);
            for (size_t j = 0; j < m->n_without_headers; j++)
                if (m->without_headers[j].value.regex)
                    ERR_AT(c, mn, sub, "withoutHeaders match %s does not support regex match "
                                       "for delegating", m->without_headers[j].key);
        }
    }
    check_weights(c, val(rn, "route"), "route");
    /* the authority may be rewritten in one place only */
    int authority = h->rewrite && set(h->rewrite->authority);
    const struct mesh_header_operations *req = h->headers ? h->headers->request : NULL;
    for (size_t i = 0; req && i < req->n_set; i++)
        authority += req->set[i].key && is_authority_header(req->set[i].key);
    for (size_t i = 0; req && i < req->n_add; i++)
        authority += req->add[i].key && is_authority_header(req->add[i].key);
    if (authority > 1)
        mesh_resource__err(c, key_at(rn, "headers"),
                           "authority header cannot be set multiple times");
    if (h->mirror && h->n_mirrors)
        mesh_resource__warn(c, key_at(rn, "mirrors"), "both mirror and mirrors are set");
}

static bool applies_to_gateway(const struct mesh_virtual_service *vs)
{
    if (!vs->n_gateways)
        return false;
    for (size_t i = 0; i < vs->n_gateways; i++)
        if (vs->gateways[i] && strcmp(vs->gateways[i], "mesh") == 0)
            return false;
    return true;
}

/* Istio ValidateWildcardDomainForVirtualServiceBoundToGateway: also SNI "outbound_.PORT_..." */
static const char *gateway_vs_host(bool sni, const char *h)
{
    if (sni && strncmp(h, "outbound_.", 10) == 0)
        return h[10] >= '0' && h[10] <= '8' ? NULL : "invalid outbound_ SNI host";
    return mesh_validate_wildcard_domain(h);
}

static void vs_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_virtual_service *vs = msg;
    bool delegate_vs = vs->n_hosts == 0;
    bool gw = applies_to_gateway(vs);
    bool sni = false;
    for (size_t i = 0; i < vs->n_tls; i++)
        for (size_t j = 0; j < vs->tls[i].n_match; j++)
            sni = sni || vs->tls[i].match[j].n_sni_hosts;

    if (delegate_vs) {
        if (vs->n_gateways)
            ERR_AT(c, key_at(map, "gateways"), "gateways",
                   "delegate virtual service (no hosts) must "
                   "have no gateways specified");
        if (vs->n_tls)
            ERR_AT(c, key_at(map, "tls"), "tls", "delegate virtual service (no hosts) must have no "
                                            "tls route specified");
        if (vs->n_tcp)
            ERR_AT(c, key_at(map, "tcp"), "tcp", "delegate virtual service (no hosts) must have no "
                                            "tcp route specified");
    }
    bool hosts_ok = true;
    for (size_t i = 0; i < vs->n_hosts; i++) {
        const char *h = vs->hosts[i];
        if (!h)
            continue;
        const struct mesh_ynode *hn = item(map, "hosts", i);
        char sub[32];
        snprintf(sub, sizeof(sub), "hosts[%zu]", i);
        const char *why = gw ? gateway_vs_host(sni, h) : mesh_validate_wildcard_domain(h);
        if (why && mesh_validate_ip(h)) {
            ERR_AT(c, hn, sub, "invalid host \"%.100s\": %s", h, why);
            hosts_ok = false;
        } else if (!why && !gw && strcmp(h, "*") == 0) {
            ERR_AT(c, hn, sub, "wildcard host * is not allowed for virtual services bound to the "
                               "mesh gateway");
            hosts_ok = false;
        }
    }
    for (size_t i = 0; hosts_ok && i < vs->n_hosts; i++)
        for (size_t j = i + 1; j < vs->n_hosts; j++)
            if (vs->hosts[i] && vs->hosts[j] && host_matches(vs->hosts[i], vs->hosts[j])) {
                char sub[32];
                snprintf(sub, sizeof(sub), "hosts[%zu]", j);
                ERR_AT(c, item(map, "hosts", j), sub, "duplicate hosts in virtual service: %.100s "
                                                      "& %.100s", vs->hosts[i], vs->hosts[j]);
            }
    if (!vs->n_http && !vs->n_tcp && !vs->n_tls)
        mesh_resource__err(c, map, "http, tcp or tls must be provided in virtual service");

    bool catch_all = false;
    for (size_t i = 0; i < vs->n_http; i++) {
        const struct mesh_ynode *rn = item(map, "http", i);
        if (!rn || rn->type != MESH_YNODE_MAP)
            continue; /* already reported: not a mapping */
        struct mesh_rpath_mark m = mesh_resource__push_key(c, "http");
        mesh_resource__push_index(c, i);
        validate_http_route(c, rn, &vs->http[i], delegate_vs);
        const struct mesh_http_route *h = &vs->http[i];
        if (!gw) {
            for (size_t j = 0; j < h->n_match; j++)
                for (size_t k = 0; k < h->match[j].n_headers; k++)
                    if (h->match[j].headers[k].key &&
                        strncmp(h->match[j].headers[k].key, "@request.auth.claims", 20) == 0)
                        mesh_resource__err(c, item(rn, "match", j), "JWT claim based routing "
                                                                    "(%.100s) is only supported "
                                                                    "for gateways",
                                           h->match[j].headers[k].key);
        }
        if (!h->n_match) {
            if (catch_all)
                mesh_resource__warn(c, rn, "rule not used (only the last rule can have no "
                                           "matches)");
            catch_all = true;
        }
        mesh_resource__pop(c, m);
    }
    for (size_t i = 0; i < vs->n_tls; i++) {
        const struct mesh_tls_route *t = &vs->tls[i];
        const struct mesh_ynode *tn = item(map, "tls", i);
        if (!tn || tn->type != MESH_YNODE_MAP)
            continue;
        char sub[48];
        snprintf(sub, sizeof(sub), "tls[%zu]", i);
        if (!t->n_route)
            ERR_AT(c, tn, sub, "TLS route is required (\"route\" is empty)");
        char rsub[64];
        snprintf(rsub, sizeof(rsub), "%s.route", sub);
        check_weights(c, val(tn, "route"), rsub);
        for (size_t j = 0; j < t->n_match; j++) {
            const struct mesh_tls_match *m = &t->match[j];
            for (size_t k = 0; k < m->n_sni_hosts; k++) {
                const char *h = m->sni_hosts[k];
                if (!h)
                    continue;
                char ssub[96];
                snprintf(ssub, sizeof(ssub), "tls[%zu].match[%zu].sniHosts[%zu]", i, j, k);
                const struct mesh_ynode *sn = item(item(tn, "match", j), "sniHosts", k);
                const char *why = gw ? gateway_vs_host(true, h) : mesh_validate_wildcard_domain(h);
                if (why) {
                    if (!mesh_validate_ip(h))
                        WARN_AT(c, sn, ssub, "using an IP address (\"%.100s\") goes against SNI "
                                             "spec and most clients do not support this", h);
                    else
                        ERR_AT(c, sn, ssub, "invalid SNI host \"%.100s\": %s", h, why);
                    continue;
                }
                bool ok = false;
                for (size_t x = 0; x < vs->n_hosts && !ok; x++)
                    ok = vs->hosts[x] && host_subset_of(h, vs->hosts[x]);
                if (!ok)
                    ERR_AT(c, sn, ssub, "SNI host \"%.100s\" is not a compatible subset of any of "
                                        "the virtual service hosts", h);
            }
        }
    }
    for (size_t i = 0; i < vs->n_tcp; i++) {
        const struct mesh_tcp_route *t = &vs->tcp[i];
        const struct mesh_ynode *tn = item(map, "tcp", i);
        if (!tn || tn->type != MESH_YNODE_MAP)
            continue;
        char sub[48];
        snprintf(sub, sizeof(sub), "tcp[%zu]", i);
        if (!t->n_route)
            ERR_AT(c, tn, sub, "TCP route is required (\"route\" is empty)");
        char rsub[64];
        snprintf(rsub, sizeof(rsub), "%s.route", sub);
        check_weights(c, val(tn, "route"), rsub);
    }
    mesh_check_export_to(c, map, vs->export_to, vs->n_export_to, false);
}

static const struct mesh_field vs_fields[] = {
    F_LS("hosts", mesh_virtual_service, hosts, MESH_F_STRING),
    F_LS("gateways", mesh_virtual_service, gateways, MESH_F_STRING, .check = check_gateway_name),
    F_LM("http", mesh_virtual_service, http, mesh_http_route, http_route_schema),
    F_LM("tls", mesh_virtual_service, tls, mesh_tls_route, tls_route_schema),
    F_LM("tcp", mesh_virtual_service, tcp, mesh_tcp_route, tcp_route_schema),
    F_LS("exportTo", mesh_virtual_service, export_to, MESH_F_STRING),
};
MESH_SCHEMA(mesh_schema_virtual_service, mesh_virtual_service, vs_fields, vs_post);

/* ---- DestinationRule ---- */

static const struct mesh_field cookie_attr_fields[] = {
    F_S("name", mesh_cookie_attribute, name, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("value", mesh_cookie_attribute, value, MESH_F_STRING),
};
static MESH_SCHEMA(cookie_attr_schema, mesh_cookie_attribute, cookie_attr_fields, NULL);

static const struct mesh_field http_cookie_fields[] = {
    F_S("name", mesh_http_cookie, name, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("path", mesh_http_cookie, path, MESH_F_STRING),
    F_S("ttl", mesh_http_cookie, ttl, MESH_F_DURATION),
    F_LM("attributes", mesh_http_cookie, attributes, mesh_cookie_attribute, cookie_attr_schema),
};
static MESH_SCHEMA(http_cookie_schema, mesh_http_cookie, http_cookie_fields, NULL);

static const struct mesh_field ring_hash_fields[] = {
    F_S("minimumRingSize", mesh_ring_hash, minimum_ring_size, MESH_F_UINT64),
};
static MESH_SCHEMA(ring_hash_schema, mesh_ring_hash, ring_hash_fields, NULL);

static void maglev_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_maglev *m = msg;
    const struct mesh_ynode *n = val(map, "tableSize");
    if (!m->table_size)
        ERR_AT(c, n ? n : map, "tableSize", "tableSize must be set for maglev");
    else if (m->table_size >= 5000011)
        ERR_AT(c, n, "tableSize", "tableSize must be less than 5000011 for maglev");
    else if (!mesh_validate_is_prime(m->table_size))
        ERR_AT(c, n, "tableSize", "tableSize must be a prime number for maglev");
}
static const struct mesh_field maglev_fields[] = {
    F_S("tableSize", mesh_maglev, table_size, MESH_F_UINT64),
};
static MESH_SCHEMA(maglev_schema, mesh_maglev, maglev_fields, maglev_post);

static void consistent_hash_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                 void *msg)
{
    const struct mesh_consistent_hash *h = msg;
    if (h->minimum_ring_size && (val(map, "ringHash") || val(map, "maglev")))
        ERR_AT(c, key_at(map, "minimumRingSize"), "minimumRingSize",
               "only one of minimumRingSize or maglev/ringHash can be specified");
}
static const struct mesh_field consistent_hash_fields[] = {
    F_S("httpHeaderName", mesh_consistent_hash, http_header_name, MESH_F_STRING,
        .oneof = "hash_key"),
    F_M("httpCookie", mesh_consistent_hash, http_cookie, http_cookie_schema, .oneof = "hash_key"),
    F_S("useSourceIp", mesh_consistent_hash, use_source_ip, MESH_F_BOOL, .oneof = "hash_key"),
    F_S("httpQueryParameterName", mesh_consistent_hash, http_query_parameter_name, MESH_F_STRING,
        .oneof = "hash_key"),
    F_M("ringHash", mesh_consistent_hash, ring_hash, ring_hash_schema, .oneof = "algorithm"),
    F_M("maglev", mesh_consistent_hash, maglev, maglev_schema, .oneof = "algorithm"),
    F_S("minimumRingSize", mesh_consistent_hash, minimum_ring_size, MESH_F_UINT64,
        .flags = MESH_FF_DEPRECATED, .note = "use \"ringHash.minimumRingSize\""),
};
static MESH_SCHEMA(consistent_hash_schema, mesh_consistent_hash, consistent_hash_fields,
                   consistent_hash_post);

static const struct mesh_field locality_distribute_fields[] = {
    F_S("from", mesh_locality_distribute, from, MESH_F_STRING),
    F_MAPU("to", mesh_locality_distribute, to),
};
static MESH_SCHEMA(locality_distribute_schema, mesh_locality_distribute,
                   locality_distribute_fields, NULL);

static const struct mesh_field locality_failover_fields[] = {
    F_S("from", mesh_locality_failover, from, MESH_F_STRING),
    F_S("to", mesh_locality_failover, to, MESH_F_STRING),
};
static MESH_SCHEMA(locality_failover_schema, mesh_locality_failover, locality_failover_fields,
                   NULL);

/* "region[/zone[/subzone]]", a single trailing "*" allowed, no empty part */
static const char *locality_syntax(const char *l)
{
    const char *star = strchr(l, '*');
    if (star && (star[1] || strchr(l, '*') != strrchr(l, '*')))
        return "wildcard '*' can appear only once, at the end";
    const char *p = l;
    int parts = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!n)
            return "must not contain empty region/zone/subzone";
        if (++parts > 3)
            return "has more than region/zone/subzone";
        if (!slash)
            return NULL;
        p = slash + 1;
    }
}

static void locality_lb_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_locality_lb *l = msg;
    if (l->n_distribute && l->n_failover) {
        mesh_resource__err(c, map, "can not simultaneously specify \"distribute\" and "
                                   "\"failover\"");
        return;
    }
    if (l->n_failover) {
        for (size_t i = 0; i < l->n_failover_priority; i++) {
            const char *p = l->failover_priority[i];
            if (p && (strcmp(p, "topology.kubernetes.io/region") == 0 ||
                      strcmp(p, "topology.kubernetes.io/zone") == 0 ||
                      strcmp(p, "topology.istio.io/subzone") == 0))
                ERR_AT(c, item(map, "failoverPriority", i), "failoverPriority",
                       "can not simultaneously set \"failover\" and topology label \"%s\" in "
                       "\"failoverPriority\"", p);
        }
    }
    for (size_t i = 0; i < l->n_distribute; i++) {
        const struct mesh_locality_distribute *d = &l->distribute[i];
        const struct mesh_ynode *dn = item(map, "distribute", i);
        char sub[48];
        snprintf(sub, sizeof(sub), "distribute[%zu]", i);
        unsigned long total = 0;
        for (size_t j = 0; j < d->n_to; j++) {
            if (d->to[j].value < 1 || d->to[j].value > 100)
                ERR_AT(c, dn, sub, "locality weight must be in range [1, 100]");
            total += d->to[j].value;
            const char *why = d->to[j].key ? locality_syntax(d->to[j].key) : NULL;
            if (why)
                ERR_AT(c, dn, sub, "locality \"%.100s\" %s", d->to[j].key, why);
        }
        if (total != 100)
            ERR_AT(c, dn, sub, "total locality weight %lu != 100", total);
        const char *why = d->from ? locality_syntax(d->from) : NULL;
        if (why)
            ERR_AT(c, dn, sub, "locality \"%.100s\" %s", d->from, why);
    }
    for (size_t i = 0; i < l->n_failover; i++) {
        const struct mesh_locality_failover *f = &l->failover[i];
        const struct mesh_ynode *fn = item(map, "failover", i);
        char sub[48];
        snprintf(sub, sizeof(sub), "failover[%zu]", i);
        const char *from = f->from ? f->from : "", *to = f->to ? f->to : "";
        if (strcmp(from, to) == 0)
            ERR_AT(c, fn, sub, "locality lb failover settings must specify different regions");
        if (strchr(from, '/') || strchr(to, '/'))
            ERR_AT(c, fn, sub, "locality lb failover only specifies regions");
        if (strchr(from, '*') || strchr(to, '*'))
            ERR_AT(c, fn, sub, "locality lb failover region should not contain '*' wildcard");
    }
}
static const struct mesh_field locality_lb_fields[] = {
    F_LM("distribute", mesh_locality_lb, distribute, mesh_locality_distribute,
         locality_distribute_schema),
    F_LM("failover", mesh_locality_lb, failover, mesh_locality_failover,
         locality_failover_schema),
    F_LS("failoverPriority", mesh_locality_lb, failover_priority, MESH_F_STRING),
    F_S("enabled", mesh_locality_lb, enabled, MESH_F_OBOOL),
};
static MESH_SCHEMA(locality_lb_schema, mesh_locality_lb, locality_lb_fields, locality_lb_post);

static void zone_aware_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_zone_aware_lb *z = msg;
    for (size_t i = 0; i < z->n_failover_priority; i++) {
        const char *p = z->failover_priority[i];
        if (p && (strcmp(p, "topology.kubernetes.io/region") == 0 ||
                  strcmp(p, "topology.kubernetes.io/zone") == 0 ||
                  strcmp(p, "topology.istio.io/subzone") == 0))
            ERR_AT(c, item(map, "failoverPriority", i), "failoverPriority",
                   "failoverPriority must not include the topology label \"%s\": zone-aware load "
                   "balancing handles regions and zones itself", p);
    }
    for (size_t i = 0; i < z->n_failover; i++) {
        const struct mesh_locality_failover *f = &z->failover[i];
        const char *from = f->from ? f->from : "", *to = f->to ? f->to : "";
        char sub[48];
        snprintf(sub, sizeof(sub), "failover[%zu]", i);
        if (strcmp(from, to) == 0)
            ERR_AT(c, item(map, "failover", i), sub, "failover must specify different regions");
        if (strchr(from, '/') || strchr(to, '/') || strchr(from, '*') || strchr(to, '*'))
            ERR_AT(c, item(map, "failover", i), sub, "failover only specifies regions, without "
                                                      "'/' or '*'");
    }
}
static const struct mesh_field zone_aware_fields[] = {
    F_S("enabled", mesh_zone_aware_lb, enabled, MESH_F_OBOOL),
    F_LM("failover", mesh_zone_aware_lb, failover, mesh_locality_failover,
         locality_failover_schema),
    F_LS("failoverPriority", mesh_zone_aware_lb, failover_priority, MESH_F_STRING),
    F_S("minClusterSize", mesh_zone_aware_lb, min_cluster_size, MESH_F_OUINT32),
};
static MESH_SCHEMA(zone_aware_schema, mesh_zone_aware_lb, zone_aware_fields, zone_aware_post);

static const struct mesh_field warmup_fields[] = {
    F_S("duration", mesh_warmup, duration, MESH_F_DURATION,
        .flags = MESH_FF_REQUIRED | MESH_FF_MIN_1MS),
    F_S("minimumPercent", mesh_warmup, minimum_percent, MESH_F_ODOUBLE, .min = 0, .max = 100),
    F_S("aggression", mesh_warmup, aggression, MESH_F_ODOUBLE, .min = 0, .max = INT32_MAX),
};
static MESH_SCHEMA(warmup_schema, mesh_warmup, warmup_fields, NULL);

static const char *const lb_simple_names[] = {"UNSPECIFIED", "LEAST_CONN",  "RANDOM",
                                              "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST",
                                              NULL};

static void load_balancer_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    struct mesh_load_balancer *lb = msg;
    (void)c;
    if (val(map, "simple"))
        lb->has_simple = true;
}
static const struct mesh_field load_balancer_fields[] = {
    F_S("simple", mesh_load_balancer, simple, MESH_F_ENUM, .enums = lb_simple_names,
        .oneof = "lb_policy"),
    F_M("consistentHash", mesh_load_balancer, consistent_hash, consistent_hash_schema,
        .oneof = "lb_policy"),
    F_M("localityLbSetting", mesh_load_balancer, locality_lb_setting, locality_lb_schema),
    F_M("zoneAwareLbSetting", mesh_load_balancer, zone_aware_lb_setting, zone_aware_schema),
    F_S("warmupDurationSecs", mesh_load_balancer, warmup_duration_secs, MESH_F_DURATION,
        .flags = MESH_FF_MIN_1MS | MESH_FF_DEPRECATED, .note = "use \"warmup\""),
    F_M("warmup", mesh_load_balancer, warmup, warmup_schema),
};
static MESH_SCHEMA(load_balancer_schema, mesh_load_balancer, load_balancer_fields,
                   load_balancer_post);

static void outlier_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_outlier_detection *o = msg;
    if (o->consecutive_errors)
        WARN_AT(c, key_at(map, "consecutiveErrors"), "consecutiveErrors",
                "deprecated: use \"consecutiveGatewayErrors\" or \"consecutive5xxErrors\"");
    if (!o->split_external_local_origin_errors && o->consecutive_local_origin_failures.v > 0)
        ERR_AT(c, key_at(map, "consecutiveLocalOriginFailures"), "consecutiveLocalOriginFailures",
               "consecutiveLocalOriginFailures is set, but splitExternalLocalOriginErrors is "
               "false");
}
static const struct mesh_field outlier_fields[] = {
    F_S("consecutiveErrors", mesh_outlier_detection, consecutive_errors, MESH_F_INT32),
    F_S("splitExternalLocalOriginErrors", mesh_outlier_detection,
        split_external_local_origin_errors, MESH_F_BOOL),
    F_S("consecutiveLocalOriginFailures", mesh_outlier_detection,
        consecutive_local_origin_failures, MESH_F_OUINT32),
    F_S("consecutiveGatewayErrors", mesh_outlier_detection, consecutive_gateway_errors,
        MESH_F_OUINT32),
    F_S("consecutive5xxErrors", mesh_outlier_detection, consecutive_5xx_errors, MESH_F_OUINT32),
    F_S("interval", mesh_outlier_detection, interval, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
    F_S("baseEjectionTime", mesh_outlier_detection, base_ejection_time, MESH_F_DURATION,
        .flags = MESH_FF_MIN_1MS),
    F_S("maxEjectionPercent", mesh_outlier_detection, max_ejection_percent, MESH_F_INT32,
        .min = 0, .max = 100),
    F_S("minHealthPercent", mesh_outlier_detection, min_health_percent, MESH_F_INT32, .min = 0,
        .max = 100),
};
static MESH_SCHEMA(outlier_schema, mesh_outlier_detection, outlier_fields, outlier_post);

static void port_traffic_policy_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                     void *msg)
{
    (void)msg;
    if (!val(map, "outlierDetection") && !val(map, "connectionPool") && !val(map, "loadBalancer") &&
        !val(map, "tls"))
        mesh_resource__err(c, map, "port traffic policy must have at least one field");
}
static const struct mesh_field port_traffic_policy_fields[] = {
    F_M("port", mesh_port_traffic_policy, port, port_selector_schema, .flags = MESH_FF_REQUIRED),
    F_M("loadBalancer", mesh_port_traffic_policy, load_balancer, load_balancer_schema),
    F_M("connectionPool", mesh_port_traffic_policy, connection_pool, connection_pool_schema),
    F_M("outlierDetection", mesh_port_traffic_policy, outlier_detection, outlier_schema),
    F_M("tls", mesh_port_traffic_policy, tls, client_tls_schema),
};
static MESH_SCHEMA(port_traffic_policy_schema, mesh_port_traffic_policy,
                   port_traffic_policy_fields, port_traffic_policy_post);

static void tunnel_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_tunnel_settings *t = msg;
    if (set(t->protocol) && strcmp(t->protocol, "CONNECT") != 0 &&
        strcmp(t->protocol, "POST") != 0)
        ERR_AT(c, val(map, "protocol"), "protocol", "tunnel protocol must be \"CONNECT\" or "
                                                  "\"POST\"");
    if (t->target_host && mesh_validate_fqdn(t->target_host) && mesh_validate_ip(t->target_host))
        ERR_AT(c, val(map, "targetHost"), "targetHost", "tunnel target host must be a valid FQDN "
                                                      "or IP address");
}
static const struct mesh_field tunnel_fields[] = {
    F_S("protocol", mesh_tunnel_settings, protocol, MESH_F_STRING),
    F_S("targetHost", mesh_tunnel_settings, target_host, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED),
    F_S("targetPort", mesh_tunnel_settings, target_port, MESH_F_UINT32, .min = 1, .max = 65535,
        .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(tunnel_schema, mesh_tunnel_settings, tunnel_fields, tunnel_post);

static const char *const proxy_protocol_names[] = {"V1", "V2", NULL};
static const struct mesh_field proxy_protocol_fields[] = {
    F_S("version", mesh_proxy_protocol, version, MESH_F_ENUM, .enums = proxy_protocol_names),
};
static MESH_SCHEMA(proxy_protocol_schema, mesh_proxy_protocol, proxy_protocol_fields, NULL);

static const struct mesh_field retry_budget_fields[] = {
    F_S("percent", mesh_retry_budget, percent, MESH_F_ODOUBLE, .min = 0, .max = 100),
    F_S("minRetryConcurrency", mesh_retry_budget, min_retry_concurrency, MESH_F_UINT32),
};
static MESH_SCHEMA(retry_budget_schema, mesh_retry_budget, retry_budget_fields, NULL);

static void traffic_policy_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                void *msg)
{
    const struct mesh_traffic_policy *p = msg;
    static const char *const any[] = {"outlierDetection", "connectionPool", "loadBalancer",
                                      "tls", "portLevelSettings", "tunnel", "proxyProtocol",
                                      "retryBudget"};
    bool some = false;
    for (size_t i = 0; i < MESH_ARRAY_LEN(any) && !some; i++)
        some = mesh_yaml_get(map, any[i]) != NULL;
    if (!some)
        mesh_resource__err(c, map, "traffic policy must have at least one field");
    if (val(map, "tunnel") && val(map, "proxyProtocol"))
        mesh_resource__err(c, key_at(map, "tunnel"), "tunnel and proxyProtocol must not be set "
                                                "together");
    const struct mesh_locality_lb *l = p->load_balancer ? p->load_balancer->locality_lb_setting
                                                        : NULL;
    if (l && (l->n_failover || l->n_failover_priority) && !p->outlier_detection)
        WARN_AT(c, key_at(map, "loadBalancer"), "loadBalancer.localityLbSetting",
                "outlier detection policy must be provided for failover");
}
static const struct mesh_field traffic_policy_fields[] = {
    F_M("loadBalancer", mesh_traffic_policy, load_balancer, load_balancer_schema),
    F_M("connectionPool", mesh_traffic_policy, connection_pool, connection_pool_schema),
    F_M("outlierDetection", mesh_traffic_policy, outlier_detection, outlier_schema),
    F_M("tls", mesh_traffic_policy, tls, client_tls_schema),
    F_LM("portLevelSettings", mesh_traffic_policy, port_level_settings, mesh_port_traffic_policy,
         port_traffic_policy_schema),
    F_M("tunnel", mesh_traffic_policy, tunnel, tunnel_schema),
    F_M("proxyProtocol", mesh_traffic_policy, proxy_protocol, proxy_protocol_schema),
    F_M("retryBudget", mesh_traffic_policy, retry_budget, retry_budget_schema),
};
static MESH_SCHEMA(traffic_policy_schema, mesh_traffic_policy, traffic_policy_fields,
                   traffic_policy_post);

static const struct mesh_field subset_fields[] = {
    F_S("name", mesh_subset, name, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = check_subset_name),
    F_MAPS("labels", mesh_subset, labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_M("trafficPolicy", mesh_subset, traffic_policy, traffic_policy_schema),
};
static MESH_SCHEMA(subset_schema, mesh_subset, subset_fields, NULL);

static void dr_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_destination_rule *dr = msg;
    for (size_t i = 0; i < dr->n_subsets; i++)
        for (size_t j = 0; j < i; j++)
            if (dr->subsets[i].name && dr->subsets[j].name &&
                strcmp(dr->subsets[i].name, dr->subsets[j].name) == 0) {
                char sub[48];
                snprintf(sub, sizeof(sub), "subsets[%zu].name", i);
                ERR_AT(c, val(item(map, "subsets", i), "name"), sub, "duplicate subset name %.100s",
                       dr->subsets[i].name);
                break;
            }
    mesh_check_export_to(c, map, dr->export_to, dr->n_export_to, false);
    if (dr->workload_selector && dr->n_export_to) {
        const char *own = c->res ? c->res->meta.namespace_ : "default";
        bool only_own = true;
        for (size_t i = 0; i < dr->n_export_to; i++)
            only_own = only_own && dr->export_to[i] &&
                       (strcmp(dr->export_to[i], ".") == 0 || strcmp(dr->export_to[i], own) == 0);
        if (!only_own || dr->n_export_to > 1)
            ERR_AT(c, key_at(map, "exportTo"), "exportTo",
                   "destination rule with workload selector "
                   "cannot have exportTo beyond the current "
                   "namespace");
    }
}
static const struct mesh_field dr_fields[] = {
    F_S("host", mesh_destination_rule, host, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = check_wildcard_host),
    F_M("trafficPolicy", mesh_destination_rule, traffic_policy, traffic_policy_schema),
    F_LM("subsets", mesh_destination_rule, subsets, mesh_subset, subset_schema),
    F_LS("exportTo", mesh_destination_rule, export_to, MESH_F_STRING),
    F_M("workloadSelector", mesh_destination_rule, workload_selector,
        mesh_schema_label_selector),
};
MESH_SCHEMA(mesh_schema_destination_rule, mesh_destination_rule, dr_fields, dr_post);

/* ---- Gateway ---- */

static const struct mesh_field port_fields[] = {
    F_S("number", mesh_port, number, MESH_F_UINT32, .flags = MESH_FF_REQUIRED, .min = 0,
        .max = 65535),
    F_S("protocol", mesh_port, protocol, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = mesh_check_protocol),
    F_S("name", mesh_port, name, MESH_F_STRING, .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("targetPort", mesh_port, target_port, MESH_F_UINT32, .flags = MESH_FF_DEPRECATED,
        .note = "targetPort has no effect here"),
};
static MESH_SCHEMA(gateway_port_schema, mesh_port, port_fields, NULL);

static void check_gateway_host(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_ns_host(s, true);
    if (why)
        mesh_resource__err(c, n, "invalid host \"%.100s\": %s", s, why);
}

static void server_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_server *s = msg;
    bool unix_bind = s->bind && strncmp(s->bind, "unix://", 7) == 0;
    if (s->port) {
        if (s->port->number == 0 && !unix_bind)
            ERR_AT(c, val(val(map, "port"), "number"), "port.number",
                   "port number 0 must be in the "
                   "range 1..65535");
        if (unix_bind && s->port->number)
            ERR_AT(c, val(map, "bind"), "bind", "port number must be 0 for unix domain socket");
        if (s->port->target_port)
            ERR_AT(c, key_at(val(map, "port"), "targetPort"), "port.targetPort",
                   "targetPort has no impact on Gateways");
        const char *p = s->port->protocol;
        if (p && !mesh_validate_protocol(p)) {
            if (proto_is_tls(p) && !s->tls)
                mesh_resource__err(c, map, "server must have TLS settings for HTTPS/TLS "
                                           "protocols");
            else if (!proto_is_tls(p) && s->tls) {
                bool passthrough = s->tls->mode == MESH_SERVER_TLS_PASSTHROUGH ||
                                   s->tls->mode == MESH_SERVER_TLS_AUTO_PASSTHROUGH;
                if (proto_is_http(p)) {
                    if (!passthrough || set(s->tls->ca_certificates) ||
                        set(s->tls->private_key) || set(s->tls->server_certificate))
                        ERR_AT(c, key_at(map, "tls"), "tls", "server cannot have TLS settings for "
                                                        "plain text HTTP ports");
                } else {
                    ERR_AT(c, key_at(map, "tls"), "tls", "server cannot have TLS settings for non "
                                                    "HTTPS/TLS ports");
                }
            }
            if (!proto_is_http(p) && s->tls && s->tls->https_redirect)
                WARN_AT(c, key_at(val(map, "tls"), "httpsRedirect"), "tls.httpsRedirect",
                        "tls.httpsRedirect should only be used with http servers");
        }
    }
}
static const struct mesh_field server_fields[] = {
    F_M("port", mesh_server, port, gateway_port_schema, .flags = MESH_FF_REQUIRED),
    F_S("bind", mesh_server, bind, MESH_F_STRING, .check = check_bind),
    F_LS("hosts", mesh_server, hosts, MESH_F_STRING, .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY,
         .check = check_gateway_host),
    F_M("tls", mesh_server, tls, server_tls_schema),
    F_S("defaultEndpoint", mesh_server, default_endpoint, MESH_F_STRING),
    F_S("name", mesh_server, name, MESH_F_STRING),
};
static MESH_SCHEMA(server_schema, mesh_server, server_fields, server_post);

static void gateway_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_gateway *g = msg;
    if (!g->n_servers && !val(map, "servers"))
        ERR_AT(c, map, "servers", "gateway must have at least one server");
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct mesh_port *p = g->servers[i].port;
        for (size_t j = 0; p && p->name && j < i; j++) {
            const struct mesh_port *q = g->servers[j].port;
            if (q && q->name && strcmp(p->name, q->name) == 0) {
                char sub[48];
                snprintf(sub, sizeof(sub), "servers[%zu].port.name", i);
                ERR_AT(c, val(val(item(map, "servers", i), "port"), "name"), sub,
                       "port names in servers must be unique: duplicate name %.100s", p->name);
                break;
            }
        }
    }
    if (c->res && c->res->meta.name && mesh_validate_istio_label(c->res->meta.name))
        mesh_resource__err(c, NULL, "invalid gateway name \"%.100s\": a Gateway name must be a "
                                    "DNS label (no dots)", c->res->meta.name);
}
static const struct mesh_field gateway_fields[] = {
    F_LM("servers", mesh_gateway, servers, mesh_server, server_schema,
         .flags = MESH_FF_NONEMPTY),
    F_MAPS("selector", mesh_gateway, selector, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
};
MESH_SCHEMA(mesh_schema_gateway, mesh_gateway, gateway_fields, gateway_post);

/* ---- WorkloadEntry / ServiceEntry ---- */

static void check_we_ports(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    check_port_string_name(c, n, s);
}

static const struct mesh_field workload_entry_fields[] = {
    F_S("address", mesh_workload_entry, address, MESH_F_STRING),
    F_MAPU("ports", mesh_workload_entry, ports, .key_check = check_we_ports, .min = 1,
           .max = 65535),
    F_MAPS("labels", mesh_workload_entry, labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_S("network", mesh_workload_entry, network, MESH_F_STRING),
    F_S("locality", mesh_workload_entry, locality, MESH_F_STRING),
    F_S("weight", mesh_workload_entry, weight, MESH_F_UINT32),
    F_S("serviceAccount", mesh_workload_entry, service_account, MESH_F_STRING),
};

/* Istio validateWorkloadEntry; <allow_fqdn> for standalone entries and DNS resolution */
static void validate_workload_entry(struct mesh_rctx *c, const struct mesh_ynode *map,
                                    const struct mesh_workload_entry *we, bool allow_fqdn)
{
    const char *addr = we->address ? we->address : "";
    if (!*addr) {
        if (!set(we->network)) {
            ERR_AT(c, map, "address", "address is required");
            return;
        }
        mesh_resource__warn(c, map, "address is unset with network %.100s", we->network);
    }
    if (strncmp(addr, "unix://", 7) == 0) {
        check_unix_address(c, val(map, "address"), "address", addr + 7);
        if (we->n_ports)
            ERR_AT(c, key_at(map, "ports"), "ports", "unix endpoint %.100s must not include ports",
                   addr);
    } else if (*addr && mesh_validate_ip(addr)) {
        if (!allow_fqdn)
            ERR_AT(c, val(map, "address"), "address", "endpoint address \"%.100s\" is not a valid "
                                                    "IP address", addr);
        else if (mesh_validate_fqdn(addr))
            ERR_AT(c, val(map, "address"), "address", "endpoint address \"%.100s\" is not a valid "
                                                    "FQDN or an IP address", addr);
    }
}

static void workload_entry_post(struct mesh_rctx *c, const struct mesh_ynode *map,
                                void *msg)
{
    validate_workload_entry(c, map, msg, true);
}
MESH_SCHEMA(mesh_schema_workload_entry, mesh_workload_entry, workload_entry_fields,
            workload_entry_post);
/* inline ServiceEntry endpoints: checked by the ServiceEntry, which knows the resolution */
static MESH_SCHEMA(se_endpoint_schema, mesh_workload_entry, workload_entry_fields, NULL);

static const struct mesh_field service_port_fields[] = {
    F_S("number", mesh_service_port, number, MESH_F_UINT32, .flags = MESH_FF_REQUIRED, .min = 1,
        .max = 65535),
    F_S("protocol", mesh_service_port, protocol, MESH_F_STRING, .check = mesh_check_protocol),
    F_S("name", mesh_service_port, name, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = check_port_string_name),
    F_S("targetPort", mesh_service_port, target_port, MESH_F_UINT32, .min = 1, .max = 65535),
};
static MESH_SCHEMA(service_port_schema, mesh_service_port, service_port_fields, NULL);

static const char *const se_location_names[] = {"MESH_EXTERNAL", "MESH_INTERNAL", NULL};
static const char *const se_resolution_names[] = {"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN",
                                                  "DYNAMIC_DNS", NULL};

static bool se_has_port(const struct mesh_service_entry *se, const char *name)
{
    for (size_t i = 0; i < se->n_ports; i++)
        if (se->ports[i].name && strcmp(se->ports[i].name, name) == 0)
            return true;
    return false;
}

static void se_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_service_entry *se = msg;
    const char *res = se_resolution_names[se->resolution];
    if (val(map, "workloadSelector") && val(map, "endpoints"))
        mesh_resource__err(c, key_at(map, "endpoints"), "only one of workloadSelector or endpoints "
                                                   "is allowed in a ServiceEntry");
    for (size_t i = 0; i < se->n_hosts; i++) {
        const char *h = se->hosts[i];
        if (!h)
            continue;
        char sub[32];
        snprintf(sub, sizeof(sub), "hosts[%zu]", i);
        const struct mesh_ynode *hn = item(map, "hosts", i);
        if (strcmp(h, "*") == 0) {
            ERR_AT(c, hn, sub, "invalid host \"*\"");
            continue;
        }
        const char *why = mesh_validate_wildcard_domain(h);
        if (why)
            ERR_AT(c, hn, sub, "invalid host \"%.100s\": %s", h, why);
        else if (strchr(h, '*') && strncmp(h, "*.", 2) != 0)
            WARN_AT(c, hn, sub, "partial wildcard \"%.100s\" not allowed", h);
    }
    bool cidr = false;
    for (size_t i = 0; i < se->n_addresses; i++)
        cidr = cidr || (se->addresses[i] && strchr(se->addresses[i], '/'));
    if (cidr && se->resolution != MESH_SE_RESOLUTION_NONE &&
        se->resolution != MESH_SE_RESOLUTION_STATIC)
        ERR_AT(c, key_at(map, "addresses"), "addresses", "CIDR addresses are allowed only for "
                                                    "NONE/STATIC resolution types");
    for (size_t i = 0; i < se->n_ports; i++) {
        const struct mesh_service_port *p = &se->ports[i];
        const struct mesh_ynode *pn = item(map, "ports", i);
        char sub[32];
        snprintf(sub, sizeof(sub), "ports[%zu]", i);
        for (size_t j = 0; j < i; j++) {
            if (p->name && se->ports[j].name && strcmp(p->name, se->ports[j].name) == 0)
                ERR_AT(c, pn, sub, "service entry port name \"%.100s\" already defined", p->name);
            if (p->number && p->number == se->ports[j].number)
                ERR_AT(c, pn, sub, "service entry port %u already defined", p->number);
        }
        if (p->target_port && se->resolution == MESH_SE_RESOLUTION_NONE)
            WARN_AT(c, pn, sub, "targetPort has no effect when resolution mode is NONE");
    }
    bool dns = se->resolution == MESH_SE_RESOLUTION_DNS ||
               se->resolution == MESH_SE_RESOLUTION_DNS_ROUND_ROBIN;
    switch (se->resolution) {
    case MESH_SE_RESOLUTION_NONE:
        if (se->n_endpoints)
            ERR_AT(c, key_at(map, "endpoints"), "endpoints", "no endpoints should be provided for "
                                                        "resolution type NONE");
        if (se->workload_selector)
            WARN_AT(c, key_at(map, "workloadSelector"), "workloadSelector",
                    "workloadSelector should not be set when resolution mode is NONE");
        break;
    case MESH_SE_RESOLUTION_DNS:
    case MESH_SE_RESOLUTION_DNS_ROUND_ROBIN:
        if (!se->n_endpoints)
            for (size_t i = 0; i < se->n_hosts; i++)
                if (se->hosts[i] && mesh_validate_fqdn(se->hosts[i])) {
                    char sub[32];
                    snprintf(sub, sizeof(sub), "hosts[%zu]", i);
                    ERR_AT(c, item(map, "hosts", i), sub, "hosts must be FQDN if no endpoints "
                                                          "are provided for resolution mode %s",
                           res);
                }
        if (se->resolution == MESH_SE_RESOLUTION_DNS_ROUND_ROBIN && se->n_endpoints > 1)
            ERR_AT(c, key_at(map, "endpoints"), "endpoints",
                   "there must only be 0 or 1 endpoint for "
                   "resolution mode %s",
                   res);
        if (se->workload_selector)
            WARN_AT(c, key_at(map, "workloadSelector"), "workloadSelector",
                    "workloadSelector should not be set when resolution mode is %s", res);
        break;
    default: break;
    }
    for (size_t i = 0; i < se->n_endpoints; i++) {
        const struct mesh_workload_entry *ep = &se->endpoints[i];
        const struct mesh_ynode *en = item(map, "endpoints", i);
        struct mesh_rpath_mark m = mesh_resource__push_key(c, "endpoints");
        mesh_resource__push_index(c, i);
        if (se->resolution == MESH_SE_RESOLUTION_STATIC) {
            validate_workload_entry(c, en, ep, false);
            if (ep->address && strncmp(ep->address, "unix://", 7) == 0 && se->n_ports != 1)
                mesh_resource__err(c, en, "exactly 1 service port required for unix endpoints");
        } else if (dns) {
            if (ep->address && mesh_validate_ip(ep->address) && mesh_validate_fqdn(ep->address))
                ERR_AT(c, val(en, "address"), "address", "endpoint address \"%.100s\" is not a "
                                                       "valid FQDN or an IP address", ep->address);
        }
        for (size_t j = 0; j < ep->n_ports; j++)
            if (ep->ports[j].key && !se_has_port(se, ep->ports[j].key)) {
                char sub[160];
                snprintf(sub, sizeof(sub), "ports.%.120s", ep->ports[j].key);
                ERR_AT(c, val(en, "ports"), sub, "endpoint port %.100s is not defined by the "
                                               "service entry", ep->ports[j].key);
            }
        mesh_resource__pop(c, m);
    }
    if (dns && se->n_addresses && se->n_hosts > 1)
        for (size_t i = 0; i < se->n_ports; i++)
            if (proto_is_tcp(se->ports[i].protocol)) {
                mesh_resource__warn(c, key_at(map, "hosts"), "service entry can not have more than "
                                                        "one host specified simultaneously with "
                                                        "address and tcp port");
                break;
            }
    if (se->resolution != MESH_SE_RESOLUTION_NONE && se->n_hosts > 1)
        for (size_t i = 0; i < se->n_ports; i++)
            if (!proto_is_http(se->ports[i].protocol) && !proto_is_tls(se->ports[i].protocol)) {
                char sub[32];
                snprintf(sub, sizeof(sub), "ports[%zu]", i);
                ERR_AT(c, item(map, "ports", i), sub, "multiple hosts provided with non-HTTP, "
                                                      "non-TLS ports");
                break;
            }
    mesh_check_export_to(c, map, se->export_to, se->n_export_to, true);
}
static const struct mesh_field se_fields[] = {
    F_LS("hosts", mesh_service_entry, hosts, MESH_F_STRING,
         .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_LS("addresses", mesh_service_entry, addresses, MESH_F_STRING,
         .check = mesh_check_ip_or_cidr),
    F_LM("ports", mesh_service_entry, ports, mesh_service_port, service_port_schema),
    F_S("location", mesh_service_entry, location, MESH_F_ENUM, .enums = se_location_names),
    F_S("resolution", mesh_service_entry, resolution, MESH_F_ENUM, .enums = se_resolution_names),
    F_LM("endpoints", mesh_service_entry, endpoints, mesh_workload_entry, se_endpoint_schema),
    F_M("workloadSelector", mesh_service_entry, workload_selector, workload_selector_schema),
    F_LS("exportTo", mesh_service_entry, export_to, MESH_F_STRING),
    F_LS("subjectAltNames", mesh_service_entry, subject_alt_names, MESH_F_STRING),
};
MESH_SCHEMA(mesh_schema_service_entry, mesh_service_entry, se_fields, se_post);

/* ---- Sidecar ---- */

static const char *const capture_mode_names[] = {"DEFAULT", "IPTABLES", "NONE", NULL};

static void sidecar_port_name(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (*s)
        check_port_string_name(c, n, s);
}
static const struct mesh_field sidecar_port_fields[] = {
    F_S("number", mesh_port, number, MESH_F_UINT32, .min = 0, .max = 65535),
    F_S("protocol", mesh_port, protocol, MESH_F_STRING, .check = mesh_check_protocol),
    F_S("name", mesh_port, name, MESH_F_STRING, .check = sidecar_port_name),
    F_S("targetPort", mesh_port, target_port, MESH_F_UINT32),
};
static MESH_SCHEMA(sidecar_port_schema, mesh_port, sidecar_port_fields, NULL);

static void ingress_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_ingress_listener *l = msg;
    if (l->port) {
        if (l->port->target_port)
            ERR_AT(c, key_at(val(map, "port"), "targetPort"), "port.targetPort",
                   "targetPort has no impact on Sidecars");
        if (l->port->number == 0)
            ERR_AT(c, val(map, "port"), "port.number", "port number must be in the range 1..65535");
    }
    const char *de = l->default_endpoint;
    if (set(de)) {
        const struct mesh_ynode *dn = val(map, "defaultEndpoint");
        if (strncmp(de, "unix://", 7) == 0) {
            check_unix_address(c, dn, "defaultEndpoint", de + 7);
        } else {
            const char *colon = strrchr(de, ':');
            char host[64] = "";
            if (colon) {
                size_t hl = (size_t)(colon - de);
                if (hl >= 2 && de[0] == '[' && de[hl - 1] == ']')
                    snprintf(host, sizeof(host), "%.*s", (int)MESH_MIN(hl - 2, 60), de + 1);
                else
                    snprintf(host, sizeof(host), "%.*s", (int)MESH_MIN(hl, 60), de);
            }
            char *end = NULL;
            long port = colon ? strtol(colon + 1, &end, 10) : 0;
            if (!colon || !colon[1] || *end || port < 1 || port > 65535)
                ERR_AT(c, dn, "defaultEndpoint", "defaultEndpoint must end with a port 1..65535");
            else if (*host && strcmp(host, "127.0.0.1") != 0 && strcmp(host, "0.0.0.0") != 0 &&
                     strcmp(host, "::1") != 0 && strcmp(host, "::") != 0)
                ERR_AT(c, dn, "defaultEndpoint", "defaultEndpoint must be of form "
                                                 "127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, "
                                                 "[::]:<port>, unix://filepath or unset");
        }
    }
    if (l->tls) {
        const struct mesh_ynode *tn = val(map, "tls");
        if (l->tls->n_subject_alt_names)
            ERR_AT(c, tn, "tls", "subjectAltNames is not supported in ingress tls");
        if (l->tls->https_redirect)
            ERR_AT(c, tn, "tls", "httpsRedirect is not supported");
        if (set(l->tls->credential_name))
            ERR_AT(c, tn, "tls", "credentialName is not currently supported");
        if (l->tls->mode == MESH_SERVER_TLS_ISTIO_MUTUAL ||
            l->tls->mode == MESH_SERVER_TLS_AUTO_PASSTHROUGH)
            ERR_AT(c, tn, "tls", "cannot set mode to %s in sidecar ingress tls",
                   server_tls_names[l->tls->mode]);
    }
    if (l->connection_pool && l->connection_pool->http && l->port &&
        !proto_is_http(l->port->protocol))
        WARN_AT(c, key_at(map, "connectionPool"), "connectionPool",
                "HTTP connection pool settings are configured for port %u but its protocol is "
                "not HTTP: only TCP settings will apply", l->port->number);
}
static const struct mesh_field ingress_fields[] = {
    F_M("port", mesh_ingress_listener, port, sidecar_port_schema, .flags = MESH_FF_REQUIRED),
    F_S("bind", mesh_ingress_listener, bind, MESH_F_STRING, .check = check_bind),
    F_S("captureMode", mesh_ingress_listener, capture_mode, MESH_F_ENUM,
        .enums = capture_mode_names),
    F_S("defaultEndpoint", mesh_ingress_listener, default_endpoint, MESH_F_STRING),
    F_M("tls", mesh_ingress_listener, tls, server_tls_schema),
    F_M("connectionPool", mesh_ingress_listener, connection_pool, connection_pool_schema),
};
static MESH_SCHEMA(ingress_schema, mesh_ingress_listener, ingress_fields, ingress_post);

static void check_sidecar_host(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_ns_host(s, false);
    if (why)
        mesh_resource__err(c, n, "invalid host \"%.100s\": %s", s, why);
}

static void egress_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_egress_listener *l = msg;
    if (!l->port)
        return;
    const struct mesh_ynode *pn = val(map, "port");
    if (l->port->target_port)
        ERR_AT(c, key_at(pn, "targetPort"), "port.targetPort",
               "targetPort has no impact on Sidecars");
    bool unix_bind = l->bind && strncmp(l->bind, "unix://", 7) == 0;
    if (l->port->number == 0) {
        if (!unix_bind)
            ERR_AT(c, pn, "port", "ports with 0 value must have a unix domain socket bind "
                                  "address");
        if (l->capture_mode != MESH_CAPTURE_DEFAULT && l->capture_mode != MESH_CAPTURE_NONE)
            ERR_AT(c, key_at(map, "captureMode"), "captureMode",
                   "captureMode must be DEFAULT/NONE for unix domain socket listeners");
    }
}
static const struct mesh_field egress_fields[] = {
    F_M("port", mesh_egress_listener, port, sidecar_port_schema),
    F_S("bind", mesh_egress_listener, bind, MESH_F_STRING, .check = check_bind),
    F_S("captureMode", mesh_egress_listener, capture_mode, MESH_F_ENUM,
        .enums = capture_mode_names),
    F_LS("hosts", mesh_egress_listener, hosts, MESH_F_STRING,
         .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY, .check = check_sidecar_host),
};
static MESH_SCHEMA(egress_schema, mesh_egress_listener, egress_fields, egress_post);

static const char *const outbound_mode_names[] = {"REGISTRY_ONLY", "ALLOW_ANY", NULL};

static void outbound_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_outbound_traffic_policy *p = msg;
    if (!val(map, "egressProxy"))
        return;
    if (p->mode != MESH_OUTBOUND_ALLOW_ANY)
        ERR_AT(c, key_at(map, "egressProxy"), "egressProxy",
               "egressProxy must be set only with the ALLOW_ANY outboundTrafficPolicy mode");
    if (p->egress_proxy) {
        if (p->egress_proxy->host && mesh_validate_fqdn(p->egress_proxy->host))
            ERR_AT(c, key_at(map, "egressProxy"), "egressProxy.host", "egressProxy host must be an "
                                                                 "FQDN");
        if (!p->egress_proxy->port)
            ERR_AT(c, val(map, "egressProxy"), "egressProxy.port", "egressProxy port is required");
    }
}
static const struct mesh_field outbound_fields[] = {
    F_S("mode", mesh_outbound_traffic_policy, mode, MESH_F_ENUM, .enums = outbound_mode_names),
    F_M("egressProxy", mesh_outbound_traffic_policy, egress_proxy, destination_schema),
};
static MESH_SCHEMA(outbound_schema, mesh_outbound_traffic_policy, outbound_fields,
                   outbound_post);

static void sidecar_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_sidecar *s = msg;
    if (!val(map, "egress") && !val(map, "ingress") && !val(map, "outboundTrafficPolicy") &&
        !val(map, "inboundConnectionPool")) {
        mesh_resource__err(c, map, "sidecar: empty configuration provided");
        return;
    }
    for (size_t i = 0; i < s->n_ingress; i++) {
        const struct mesh_port *p = s->ingress[i].port;
        for (size_t j = 0; p && p->number && j < i; j++)
            if (s->ingress[j].port && s->ingress[j].port->number == p->number) {
                char sub[48];
                snprintf(sub, sizeof(sub), "ingress[%zu].port", i);
                ERR_AT(c, item(map, "ingress", i), sub, "ports on IP bound listeners must be "
                                                        "unique");
                break;
            }
    }
    bool catch_all = false;
    for (size_t i = 0; i < s->n_egress; i++) {
        const struct mesh_egress_listener *e = &s->egress[i];
        const struct mesh_ynode *en = item(map, "egress", i);
        char sub[48];
        snprintf(sub, sizeof(sub), "egress[%zu]", i);
        if (!e->port) {
            if (catch_all)
                ERR_AT(c, en, sub, "egress can have only one listener with empty port");
            else if (i != s->n_egress - 1)
                ERR_AT(c, en, sub, "the egress listener with empty port should be the last "
                                   "listener in the list");
            catch_all = true;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            const struct mesh_egress_listener *o = &s->egress[j];
            if (!o->port)
                continue;
            bool dup = e->port->number ? o->port->number == e->port->number
                                       : (!o->port->number && o->bind && e->bind &&
                                          strcmp(o->bind, e->bind) == 0);
            if (dup) {
                ERR_AT(c, en, sub, e->port->number ? "ports on IP bound listeners must be unique"
                                                   : "unix domain socket values for listeners "
                                                     "must be unique");
                break;
            }
        }
    }
}
static const struct mesh_field sidecar_fields[] = {
    F_M("workloadSelector", mesh_sidecar, workload_selector, workload_selector_schema),
    F_LM("ingress", mesh_sidecar, ingress, mesh_ingress_listener, ingress_schema),
    F_LM("egress", mesh_sidecar, egress, mesh_egress_listener, egress_schema),
    F_M("inboundConnectionPool", mesh_sidecar, inbound_connection_pool, connection_pool_schema),
    F_M("outboundTrafficPolicy", mesh_sidecar, outbound_traffic_policy, outbound_schema),
};
MESH_SCHEMA(mesh_schema_sidecar, mesh_sidecar, sidecar_fields, sidecar_post);
