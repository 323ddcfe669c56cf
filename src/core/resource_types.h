/*
 * Typed specs of the resource kinds meshd reads (Istio networking/security and
 * Kubernetes Service/Endpoints/EndpointSlice), field for field.
 *
 * Conventions (the schema tables in resource_*.c fill these generically):
 *   - C names are the YAML names in snake_case; docs/config.md lists them.
 *   - const char * is NULL when absent; a repeated field is <x> + n_<x>.
 *   - a single message is a pointer, NULL when absent; repeated messages and
 *     map values are stored inline (arrays of structs).
 *   - enums are 0 when absent, which is the protobuf default (first value).
 *   - fields whose presence matters (protobuf wrappers, durations) use the
 *     mesh_opt_* types with a <set> flag.
 *   - durations are nanoseconds.
 * Everything is allocated in the resource's arena and is read-only.
 */
#ifndef MESH_CORE_RESOURCE_TYPES_H
#define MESH_CORE_RESOURCE_TYPES_H

#include "core/common.h"

struct mesh_duration {
    bool set;
    int64_t ns;
};
#define MESH_DURATION_MS(d) ((d).ns / 1000000)

struct mesh_opt_bool {
    bool set, v;
};
struct mesh_opt_u32 {
    bool set;
    uint32_t v;
};
struct mesh_opt_double {
    bool set;
    double v;
};

/* Kubernetes IntOrString (Service targetPort): <str> is NULL when it is a number. */
struct mesh_int_or_string {
    const char *str;
    int64_t num;
};

struct mesh_kv {
    const char *key, *value;
};
struct mesh_kv_u32 {
    const char *key;
    uint32_t value;
};

/* ---- Shared messages ---- */

struct mesh_percent {
    double value;
};

struct mesh_port_selector {
    uint32_t number;
};

struct mesh_destination {
    const char *host;
    const char *subset;
    struct mesh_port_selector *port;
};

/* networking WorkloadSelector */
struct mesh_workload_selector {
    struct mesh_kv *labels;
    size_t n_labels;
};

/* security / type.v1beta1 WorkloadSelector */
struct mesh_label_selector {
    struct mesh_kv *match_labels;
    size_t n_match_labels;
};

struct mesh_policy_target_ref {
    const char *group, *kind, *name, *namespace_;
};

/* exact / prefix / regex: at most one is non-NULL (none = presence match in header maps) */
struct mesh_string_match {
    const char *exact, *prefix, *regex;
};
struct mesh_string_match_entry {
    const char *key;
    struct mesh_string_match value;
};

/* ---- VirtualService ---- */

struct mesh_header_operations {
    struct mesh_kv *set;
    size_t n_set;
    struct mesh_kv *add;
    size_t n_add;
    const char **remove;
    size_t n_remove;
};

struct mesh_route_headers {
    struct mesh_header_operations *request, *response;
};

struct mesh_http_match {
    const char *name;
    struct mesh_string_match *uri, *scheme, *method, *authority;
    struct mesh_string_match_entry *headers;
    size_t n_headers;
    uint32_t port;
    struct mesh_kv *source_labels;
    size_t n_source_labels;
    const char **gateways;
    size_t n_gateways;
    struct mesh_string_match_entry *query_params;
    size_t n_query_params;
    bool ignore_uri_case;
    struct mesh_string_match_entry *without_headers;
    size_t n_without_headers;
    const char *source_namespace;
    const char *stat_prefix;
};

struct mesh_http_route_destination {
    struct mesh_destination *destination;
    int32_t weight;
    struct mesh_route_headers *headers;
};

struct mesh_route_destination {
    struct mesh_destination *destination;
    int32_t weight;
};

enum mesh_redirect_derive_port {
    MESH_REDIRECT_DERIVE_PORT_FROM_PROTOCOL_DEFAULT = 0,
    MESH_REDIRECT_DERIVE_PORT_FROM_REQUEST_PORT = 1,
};

struct mesh_http_redirect {
    const char *uri, *authority;
    const char *prefix_rewrite;           /* replaces the matched prefix of the path */
    struct mesh_opt_u32 port;             /* oneof with derive_port */
    bool has_derive_port;
    enum mesh_redirect_derive_port derive_port;
    const char *scheme;
    uint32_t redirect_code;               /* 0 = 301 */
};

struct mesh_http_body {
    const char *string;
    const char *bytes;                    /* base64, as written */
};

struct mesh_http_direct_response {
    uint32_t status;
    struct mesh_http_body *body;
};

struct mesh_delegate {
    const char *name, *namespace_;
};

struct mesh_regex_rewrite {
    const char *match, *rewrite;
};

struct mesh_http_rewrite {
    const char *uri, *authority;
    struct mesh_regex_rewrite *uri_regex_rewrite;
};

struct mesh_http_retry {
    int32_t attempts;
    struct mesh_duration per_try_timeout;
    const char *retry_on;
    struct mesh_opt_bool retry_remote_localities;
    struct mesh_opt_bool retry_ignore_previous_hosts;
    struct mesh_duration backoff;
};

enum mesh_cors_unmatched_preflights {
    MESH_CORS_UNMATCHED_UNSPECIFIED = 0,
    MESH_CORS_UNMATCHED_FORWARD = 1,
    MESH_CORS_UNMATCHED_IGNORE = 2,
};

struct mesh_cors_policy {
    const char **allow_origin;            /* deprecated */
    size_t n_allow_origin;
    struct mesh_string_match *allow_origins;
    size_t n_allow_origins;
    const char **allow_methods;
    size_t n_allow_methods;
    const char **allow_headers;
    size_t n_allow_headers;
    const char **expose_headers;
    size_t n_expose_headers;
    struct mesh_duration max_age;
    struct mesh_opt_bool allow_credentials;
    enum mesh_cors_unmatched_preflights unmatched_preflights;
};

struct mesh_fault_delay {
    int32_t percent;                      /* deprecated */
    struct mesh_percent *percentage;
    struct mesh_duration fixed_delay;     /* oneof */
    struct mesh_duration exponential_delay;
};

struct mesh_fault_abort {
    bool has_http_status;
    int32_t http_status;                  /* oneof http_status / grpc_status / http2_error */
    const char *grpc_status;
    const char *http2_error;
    struct mesh_percent *percentage;
};

struct mesh_http_fault {
    struct mesh_fault_delay *delay;
    struct mesh_fault_abort *abort;
};

struct mesh_http_mirror_policy {
    struct mesh_destination *destination;
    struct mesh_percent *percentage;
};

struct mesh_http_route {
    const char *name;
    struct mesh_http_match *match;
    size_t n_match;
    struct mesh_http_route_destination *route;
    size_t n_route;
    struct mesh_http_redirect *redirect;
    struct mesh_http_direct_response *direct_response;
    struct mesh_delegate *delegate;
    struct mesh_http_rewrite *rewrite;
    struct mesh_duration timeout;
    struct mesh_http_retry *retries;
    struct mesh_http_fault *fault;
    struct mesh_destination *mirror;
    struct mesh_http_mirror_policy *mirrors;
    size_t n_mirrors;
    struct mesh_opt_u32 mirror_percent;   /* deprecated (also "mirror_percent") */
    struct mesh_percent *mirror_percentage;
    struct mesh_cors_policy *cors_policy;
    struct mesh_route_headers *headers;
};

struct mesh_l4_match {
    const char **destination_subnets;
    size_t n_destination_subnets;
    uint32_t port;
    const char *source_subnet;            /* deprecated */
    struct mesh_kv *source_labels;
    size_t n_source_labels;
    const char **gateways;
    size_t n_gateways;
    const char *source_namespace;
};

struct mesh_tls_match {
    const char **sni_hosts;
    size_t n_sni_hosts;
    const char **destination_subnets;
    size_t n_destination_subnets;
    uint32_t port;
    struct mesh_kv *source_labels;
    size_t n_source_labels;
    const char **gateways;
    size_t n_gateways;
    const char *source_namespace;
};

struct mesh_tcp_route {
    struct mesh_l4_match *match;
    size_t n_match;
    struct mesh_route_destination *route;
    size_t n_route;
};

struct mesh_tls_route {
    struct mesh_tls_match *match;
    size_t n_match;
    struct mesh_route_destination *route;
    size_t n_route;
};

struct mesh_virtual_service {
    const char **hosts;
    size_t n_hosts;
    const char **gateways;
    size_t n_gateways;
    struct mesh_http_route *http;
    size_t n_http;
    struct mesh_tls_route *tls;
    size_t n_tls;
    struct mesh_tcp_route *tcp;
    size_t n_tcp;
    const char **export_to;
    size_t n_export_to;
};

/* ---- DestinationRule ---- */

enum mesh_lb_simple {
    MESH_LB_UNSPECIFIED = 0,
    MESH_LB_LEAST_CONN = 1,
    MESH_LB_RANDOM = 2,
    MESH_LB_PASSTHROUGH = 3,
    MESH_LB_ROUND_ROBIN = 4,
    MESH_LB_LEAST_REQUEST = 5,
};

struct mesh_cookie_attribute {
    const char *name, *value;
};

struct mesh_http_cookie {
    const char *name, *path;
    struct mesh_duration ttl;
    struct mesh_cookie_attribute *attributes;
    size_t n_attributes;
};

struct mesh_ring_hash {
    uint64_t minimum_ring_size;
};

struct mesh_maglev {
    uint64_t table_size;
};

struct mesh_consistent_hash {
    const char *http_header_name;         /* oneof hash key */
    struct mesh_http_cookie *http_cookie;
    bool use_source_ip;
    const char *http_query_parameter_name;
    struct mesh_ring_hash *ring_hash;     /* oneof hash algorithm */
    struct mesh_maglev *maglev;
    uint64_t minimum_ring_size;           /* deprecated */
};

struct mesh_locality_distribute {
    const char *from;
    struct mesh_kv_u32 *to;
    size_t n_to;
};

struct mesh_locality_failover {
    const char *from, *to;
};

struct mesh_locality_lb {
    struct mesh_locality_distribute *distribute;
    size_t n_distribute;
    struct mesh_locality_failover *failover;
    size_t n_failover;
    const char **failover_priority;
    size_t n_failover_priority;
    struct mesh_opt_bool enabled;
};

struct mesh_zone_aware_lb {
    struct mesh_opt_bool enabled;
    struct mesh_locality_failover *failover;
    size_t n_failover;
    const char **failover_priority;
    size_t n_failover_priority;
    struct mesh_opt_u32 min_cluster_size;
};

struct mesh_warmup {
    struct mesh_duration duration;
    struct mesh_opt_double minimum_percent;
    struct mesh_opt_double aggression;
};

struct mesh_load_balancer {
    bool has_simple;
    enum mesh_lb_simple simple;           /* oneof with consistent_hash */
    struct mesh_consistent_hash *consistent_hash;
    struct mesh_locality_lb *locality_lb_setting;
    struct mesh_zone_aware_lb *zone_aware_lb_setting;
    struct mesh_duration warmup_duration_secs; /* deprecated */
    struct mesh_warmup *warmup;
};

struct mesh_tcp_keepalive {
    uint32_t probes;
    struct mesh_duration time, interval;
};

struct mesh_tcp_pool {
    int32_t max_connections;
    struct mesh_duration connect_timeout;
    struct mesh_tcp_keepalive *tcp_keepalive;
    struct mesh_duration max_connection_duration;
    struct mesh_duration idle_timeout;
};

enum mesh_h2_upgrade_policy {
    MESH_H2_UPGRADE_DEFAULT = 0,
    MESH_H2_UPGRADE_DO_NOT_UPGRADE = 1,
    MESH_H2_UPGRADE_UPGRADE = 2,
};

struct mesh_http_pool {
    int32_t http1_max_pending_requests;
    int32_t http2_max_requests;
    int32_t max_requests_per_connection;
    int32_t max_retries;
    struct mesh_duration idle_timeout;
    enum mesh_h2_upgrade_policy h2_upgrade_policy;
    bool use_client_protocol;
    int32_t max_concurrent_streams;
};

struct mesh_connection_pool {
    struct mesh_tcp_pool *tcp;
    struct mesh_http_pool *http;
};

struct mesh_outlier_detection {
    int32_t consecutive_errors;           /* deprecated */
    bool split_external_local_origin_errors;
    struct mesh_opt_u32 consecutive_local_origin_failures;
    struct mesh_opt_u32 consecutive_gateway_errors;
    struct mesh_opt_u32 consecutive_5xx_errors;
    struct mesh_duration interval;
    struct mesh_duration base_ejection_time;
    int32_t max_ejection_percent;
    int32_t min_health_percent;
};

enum mesh_client_tls_mode {
    MESH_CLIENT_TLS_DISABLE = 0,
    MESH_CLIENT_TLS_SIMPLE = 1,
    MESH_CLIENT_TLS_MUTUAL = 2,
    MESH_CLIENT_TLS_ISTIO_MUTUAL = 3,
};

struct mesh_client_tls {
    enum mesh_client_tls_mode mode;
    const char *client_certificate, *private_key, *ca_certificates, *credential_name;
    const char **subject_alt_names;
    size_t n_subject_alt_names;
    const char *sni;
    struct mesh_opt_bool insecure_skip_verify;
    const char *ca_crl;
};

struct mesh_port_traffic_policy {
    struct mesh_port_selector *port;
    struct mesh_load_balancer *load_balancer;
    struct mesh_connection_pool *connection_pool;
    struct mesh_outlier_detection *outlier_detection;
    struct mesh_client_tls *tls;
};

struct mesh_tunnel_settings {
    const char *protocol;
    const char *target_host;
    uint32_t target_port;
};

enum mesh_proxy_protocol_version {
    MESH_PROXY_PROTOCOL_V1 = 0,
    MESH_PROXY_PROTOCOL_V2 = 1,
};

struct mesh_proxy_protocol {
    enum mesh_proxy_protocol_version version;
};

struct mesh_retry_budget {
    struct mesh_opt_double percent;
    uint32_t min_retry_concurrency;
};

struct mesh_traffic_policy {
    struct mesh_load_balancer *load_balancer;
    struct mesh_connection_pool *connection_pool;
    struct mesh_outlier_detection *outlier_detection;
    struct mesh_client_tls *tls;
    struct mesh_port_traffic_policy *port_level_settings;
    size_t n_port_level_settings;
    struct mesh_tunnel_settings *tunnel;
    struct mesh_proxy_protocol *proxy_protocol;
    struct mesh_retry_budget *retry_budget;
};

struct mesh_subset {
    const char *name;
    struct mesh_kv *labels;
    size_t n_labels;
    struct mesh_traffic_policy *traffic_policy;
};

struct mesh_destination_rule {
    const char *host;
    struct mesh_traffic_policy *traffic_policy;
    struct mesh_subset *subsets;
    size_t n_subsets;
    const char **export_to;
    size_t n_export_to;
    struct mesh_label_selector *workload_selector;
};

/* ---- Gateway ---- */

struct mesh_port {
    uint32_t number;
    const char *protocol, *name;
    uint32_t target_port;                 /* deprecated */
};

enum mesh_server_tls_mode {
    MESH_SERVER_TLS_PASSTHROUGH = 0,
    MESH_SERVER_TLS_SIMPLE = 1,
    MESH_SERVER_TLS_MUTUAL = 2,
    MESH_SERVER_TLS_AUTO_PASSTHROUGH = 3,
    MESH_SERVER_TLS_ISTIO_MUTUAL = 4,
    MESH_SERVER_TLS_OPTIONAL_MUTUAL = 5,
};

enum mesh_tls_protocol {
    MESH_TLS_AUTO = 0,
    MESH_TLSV1_0 = 1,
    MESH_TLSV1_1 = 2,
    MESH_TLSV1_2 = 3,
    MESH_TLSV1_3 = 4,
};

struct mesh_tls_certificate {
    const char *server_certificate, *private_key, *ca_certificates;
};

struct mesh_server_tls {
    bool https_redirect;
    enum mesh_server_tls_mode mode;
    const char *server_certificate, *private_key, *ca_certificates, *ca_crl;
    const char *credential_name;
    const char **credential_names;
    size_t n_credential_names;
    const char *ca_cert_credential_name;
    struct mesh_tls_certificate *tls_certificates;
    size_t n_tls_certificates;
    const char **subject_alt_names;
    size_t n_subject_alt_names;
    const char **verify_certificate_spki;
    size_t n_verify_certificate_spki;
    const char **verify_certificate_hash;
    size_t n_verify_certificate_hash;
    enum mesh_tls_protocol min_protocol_version, max_protocol_version;
    const char **cipher_suites;
    size_t n_cipher_suites;
};

struct mesh_server {
    struct mesh_port *port;
    const char *bind;
    const char **hosts;
    size_t n_hosts;
    struct mesh_server_tls *tls;
    const char *default_endpoint;
    const char *name;
};

struct mesh_gateway {
    struct mesh_server *servers;
    size_t n_servers;
    struct mesh_kv *selector;
    size_t n_selector;
};

/* ---- ServiceEntry / WorkloadEntry ---- */

struct mesh_service_port {
    uint32_t number;
    const char *protocol, *name;
    uint32_t target_port;
};

enum mesh_se_location {
    MESH_SE_MESH_EXTERNAL = 0,
    MESH_SE_MESH_INTERNAL = 1,
};

enum mesh_se_resolution {
    MESH_SE_RESOLUTION_NONE = 0,
    MESH_SE_RESOLUTION_STATIC = 1,
    MESH_SE_RESOLUTION_DNS = 2,
    MESH_SE_RESOLUTION_DNS_ROUND_ROBIN = 3,
    MESH_SE_RESOLUTION_DYNAMIC_DNS = 4,
};

struct mesh_workload_entry {
    const char *address;
    struct mesh_kv_u32 *ports;
    size_t n_ports;
    struct mesh_kv *labels;
    size_t n_labels;
    const char *network, *locality;
    uint32_t weight;
    const char *service_account;
};

struct mesh_service_entry {
    const char **hosts;
    size_t n_hosts;
    const char **addresses;
    size_t n_addresses;
    struct mesh_service_port *ports;
    size_t n_ports;
    enum mesh_se_location location;
    enum mesh_se_resolution resolution;
    struct mesh_workload_entry *endpoints;
    size_t n_endpoints;
    struct mesh_workload_selector *workload_selector;
    const char **export_to;
    size_t n_export_to;
    const char **subject_alt_names;
    size_t n_subject_alt_names;
};

/* ---- Sidecar ---- */

enum mesh_capture_mode {
    MESH_CAPTURE_DEFAULT = 0,
    MESH_CAPTURE_IPTABLES = 1,
    MESH_CAPTURE_NONE = 2,
};

struct mesh_ingress_listener {
    struct mesh_port *port;
    const char *bind;
    enum mesh_capture_mode capture_mode;
    const char *default_endpoint;
    struct mesh_server_tls *tls;
    struct mesh_connection_pool *connection_pool;
};

struct mesh_egress_listener {
    struct mesh_port *port;
    const char *bind;
    enum mesh_capture_mode capture_mode;
    const char **hosts;
    size_t n_hosts;
};

enum mesh_outbound_mode {
    MESH_OUTBOUND_REGISTRY_ONLY = 0,
    MESH_OUTBOUND_ALLOW_ANY = 1,
};

struct mesh_outbound_traffic_policy {
    enum mesh_outbound_mode mode;
    struct mesh_destination *egress_proxy;
};

struct mesh_sidecar {
    struct mesh_workload_selector *workload_selector;
    struct mesh_ingress_listener *ingress;
    size_t n_ingress;
    struct mesh_egress_listener *egress;
    size_t n_egress;
    struct mesh_connection_pool *inbound_connection_pool;
    struct mesh_outbound_traffic_policy *outbound_traffic_policy;
};

/* ---- PeerAuthentication ---- */

enum mesh_mtls_mode {
    MESH_MTLS_UNSET = 0,
    MESH_MTLS_DISABLE = 1,
    MESH_MTLS_PERMISSIVE = 2,
    MESH_MTLS_STRICT = 3,
};

struct mesh_mutual_tls {
    enum mesh_mtls_mode mode;
};

struct mesh_port_mtls {
    const char *key;                      /* the port number as written */
    struct mesh_mutual_tls value;
};

struct mesh_peer_authentication {
    struct mesh_label_selector *selector;
    struct mesh_mutual_tls *mtls;
    struct mesh_port_mtls *port_level_mtls;
    size_t n_port_level_mtls;
};

/* ---- AuthorizationPolicy ---- */

struct mesh_authz_source {
    const char **principals, **not_principals;
    size_t n_principals, n_not_principals;
    const char **request_principals, **not_request_principals;
    size_t n_request_principals, n_not_request_principals;
    const char **namespaces, **not_namespaces;
    size_t n_namespaces, n_not_namespaces;
    const char **ip_blocks, **not_ip_blocks;
    size_t n_ip_blocks, n_not_ip_blocks;
    const char **remote_ip_blocks, **not_remote_ip_blocks;
    size_t n_remote_ip_blocks, n_not_remote_ip_blocks;
    const char **service_accounts, **not_service_accounts;
    size_t n_service_accounts, n_not_service_accounts;
};

struct mesh_authz_operation {
    const char **hosts, **not_hosts;
    size_t n_hosts, n_not_hosts;
    const char **ports, **not_ports;
    size_t n_ports, n_not_ports;
    const char **methods, **not_methods;
    size_t n_methods, n_not_methods;
    const char **paths, **not_paths;
    size_t n_paths, n_not_paths;
};

struct mesh_authz_from {
    struct mesh_authz_source *source;
};

struct mesh_authz_to {
    struct mesh_authz_operation *operation;
};

struct mesh_authz_condition {
    const char *key;
    const char **values, **not_values;
    size_t n_values, n_not_values;
};

struct mesh_authz_rule {
    struct mesh_authz_from *from;
    size_t n_from;
    struct mesh_authz_to *to;
    size_t n_to;
    struct mesh_authz_condition *when;
    size_t n_when;
};

enum mesh_authz_action {
    MESH_AUTHZ_ALLOW = 0,
    MESH_AUTHZ_DENY = 1,
    MESH_AUTHZ_AUDIT = 2,
    MESH_AUTHZ_CUSTOM = 3,
};

struct mesh_authz_provider {
    const char *name;
};

struct mesh_authorization_policy {
    struct mesh_label_selector *selector;
    struct mesh_policy_target_ref *target_ref;
    struct mesh_policy_target_ref *target_refs;
    size_t n_target_refs;
    struct mesh_authz_rule *rules;
    size_t n_rules;
    enum mesh_authz_action action;
    struct mesh_authz_provider *provider;
};

/* ---- RequestAuthentication ---- */

struct mesh_jwt_header {
    const char *name, *prefix;
};

struct mesh_claim_to_header {
    const char *header, *claim;
};

struct mesh_jwt_rule {
    const char *issuer;
    const char **audiences;
    size_t n_audiences;
    const char *jwks_uri;                 /* also read from "jwks_uri" */
    const char *jwks;
    struct mesh_jwt_header *from_headers;
    size_t n_from_headers;
    const char **from_params;
    size_t n_from_params;
    const char **from_cookies;
    size_t n_from_cookies;
    const char *output_payload_to_header;
    bool forward_original_token;
    struct mesh_claim_to_header *output_claim_to_headers;
    size_t n_output_claim_to_headers;
    const char **space_delimited_claims;
    size_t n_space_delimited_claims;
    struct mesh_duration timeout;
};

struct mesh_request_authentication {
    struct mesh_label_selector *selector;
    struct mesh_policy_target_ref *target_ref;
    struct mesh_policy_target_ref *target_refs;
    size_t n_target_refs;
    struct mesh_jwt_rule *jwt_rules;
    size_t n_jwt_rules;
};

/* ---- Kubernetes ---- */

struct mesh_k8s_object_ref {
    const char *kind, *namespace_, *name, *uid, *api_version, *resource_version, *field_path;
};

struct mesh_k8s_service_port {
    const char *name, *protocol, *app_protocol;
    int32_t port;
    struct mesh_int_or_string target_port;
    int32_t node_port;
};

struct mesh_k8s_service_spec {
    struct mesh_k8s_service_port *ports;
    size_t n_ports;
    struct mesh_kv *selector;
    size_t n_selector;
    const char *cluster_ip;
    const char **cluster_ips;
    size_t n_cluster_ips;
    const char *type;                     /* ClusterIP (default), NodePort, LoadBalancer,
                                             ExternalName */
    const char **external_ips;
    size_t n_external_ips;
    const char *session_affinity;
    const char *load_balancer_ip;
    const char **load_balancer_source_ranges;
    size_t n_load_balancer_source_ranges;
    const char *external_name;
    const char *external_traffic_policy;
    int32_t health_check_node_port;
    bool publish_not_ready_addresses;
    const char **ip_families;
    size_t n_ip_families;
    const char *ip_family_policy;
    struct mesh_opt_bool allocate_load_balancer_node_ports;
    const char *load_balancer_class;
    const char *internal_traffic_policy;
    const char *traffic_distribution;
};

struct mesh_k8s_endpoint_address {
    const char *ip, *hostname, *node_name;
    struct mesh_k8s_object_ref *target_ref;
};

struct mesh_k8s_endpoint_port {
    const char *name, *protocol, *app_protocol;
    int32_t port;
};

struct mesh_k8s_endpoint_subset {
    struct mesh_k8s_endpoint_address *addresses;
    size_t n_addresses;
    struct mesh_k8s_endpoint_address *not_ready_addresses;
    size_t n_not_ready_addresses;
    struct mesh_k8s_endpoint_port *ports;
    size_t n_ports;
};

struct mesh_k8s_endpoints {
    struct mesh_k8s_endpoint_subset *subsets;
    size_t n_subsets;
};

struct mesh_k8s_endpoint_conditions {
    struct mesh_opt_bool ready, serving, terminating;
};

struct mesh_k8s_for_zone {
    const char *name;
};

struct mesh_k8s_for_node {
    const char *name;
};

struct mesh_k8s_endpoint_hints {
    struct mesh_k8s_for_zone *for_zones;
    size_t n_for_zones;
    struct mesh_k8s_for_node *for_nodes;
    size_t n_for_nodes;
};

struct mesh_k8s_slice_endpoint {
    const char **addresses;
    size_t n_addresses;
    struct mesh_k8s_endpoint_conditions *conditions;
    const char *hostname;
    struct mesh_k8s_object_ref *target_ref;
    struct mesh_kv *deprecated_topology;
    size_t n_deprecated_topology;
    const char *node_name, *zone;
    struct mesh_k8s_endpoint_hints *hints;
};

struct mesh_k8s_slice_port {
    const char *name, *protocol, *app_protocol;
    struct mesh_opt_u32 port;
};

struct mesh_k8s_endpoint_slice {
    const char *address_type;             /* IPv4, IPv6, FQDN */
    struct mesh_k8s_slice_endpoint *endpoints;
    size_t n_endpoints;
    struct mesh_k8s_slice_port *ports;
    size_t n_ports;
};

#endif /* MESH_CORE_RESOURCE_TYPES_H */
