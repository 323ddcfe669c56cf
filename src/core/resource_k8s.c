#include "core/common.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include "core/resource-int.h"
#include "core/validate.h"

/*
 * Kubernetes objects meshd reads: ObjectMeta (every kind's metadata), Service,
 * Endpoints and EndpointSlice, with the apiserver's main validation rules.
 * Server-set metadata (uid, creationTimestamp, managedFields...) is accepted
 * and ignored so that `kubectl get -o yaml` output loads as is.
 */

#define ERR_AT mesh_resource__err_at

static const struct mesh_ynode *val(const struct mesh_ynode *map, const char *key)
{
    return mesh_resource__node(map, key);
}

static const struct mesh_ynode *item(const struct mesh_ynode *map, const char *key, size_t i)
{
    return mesh_resource__item(map, key, i);
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static void check_one_of(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s,
                         const char *const *list, const char *shown)
{
    if (!in_list(s, list))
        mesh_resource__err(c, n, "unsupported value \"%.100s\": must be one of %s", s, shown);
}

/* ---- ObjectMeta ---- */

/* Istio itself does not check it (its doc examples use "nsA"); Kubernetes would refuse it. */
static void check_namespace(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_dns1123_label(s);
    if (!*s)
        mesh_resource__err(c, n, "namespace must not be empty");
    else if (why)
        mesh_resource__warn(c, n, "\"%.100s\" is not a valid Kubernetes namespace name: %s", s,
                            why);
}

static void meta_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_metadata *m = msg;
    size_t total = 0;
    for (size_t i = 0; i < m->n_annotations; i++)
        total += (m->annotations[i].key ? strlen(m->annotations[i].key) : 0) +
                 (m->annotations[i].value ? strlen(m->annotations[i].value) : 0);
    if (total > 256 * 1024)
        ERR_AT(c, val(map, "annotations"), "annotations", "annotations must be at most 256 KiB in "
                                                        "total");
}

static const struct mesh_field meta_fields[] = {
    F_S("name", mesh_metadata, name, MESH_F_STRING),
    F_S("namespace", mesh_metadata, namespace_, MESH_F_STRING, .check = check_namespace),
    F_S("resourceVersion", mesh_metadata, resource_version, MESH_F_STRING),
    F_MAPS("labels", mesh_metadata, labels, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_MAPS("annotations", mesh_metadata, annotations, .key_check = mesh_check_annotation_key),
    F_IGN("generateName"),
    F_IGN("selfLink"),
    F_IGN("uid"),
    F_IGN("generation"),
    F_IGN("creationTimestamp"),
    F_IGN("deletionTimestamp"),
    F_IGN("deletionGracePeriodSeconds"),
    F_IGN("ownerReferences"),
    F_IGN("finalizers"),
    F_IGN("managedFields"),
    F_IGN("clusterName"),
};
MESH_SCHEMA(mesh_schema_object_meta, mesh_metadata, meta_fields, meta_post);

static const struct mesh_field object_ref_fields[] = {
    F_S("kind", mesh_k8s_object_ref, kind, MESH_F_STRING),
    F_S("namespace", mesh_k8s_object_ref, namespace_, MESH_F_STRING),
    F_S("name", mesh_k8s_object_ref, name, MESH_F_STRING),
    F_S("uid", mesh_k8s_object_ref, uid, MESH_F_STRING),
    F_S("apiVersion", mesh_k8s_object_ref, api_version, MESH_F_STRING),
    F_S("resourceVersion", mesh_k8s_object_ref, resource_version, MESH_F_STRING),
    F_S("fieldPath", mesh_k8s_object_ref, field_path, MESH_F_STRING),
};
static MESH_SCHEMA(object_ref_schema, mesh_k8s_object_ref, object_ref_fields, NULL);

/* ---- Service ---- */

static const char *const l4_protocols[] = {"TCP", "UDP", "SCTP", NULL};

static void check_l4_protocol(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    check_one_of(c, n, s, l4_protocols, "TCP, UDP, SCTP");
}

/* IANA service name: at most 15 of [a-z0-9-], a letter, no "--", no edge '-' */
static void check_target_port_name(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    size_t len = strlen(s);
    bool letter = false, ok = len >= 1 && len <= 15 && s[0] != '-' && s[len - 1] != '-' &&
                             !strstr(s, "--");
    for (size_t i = 0; ok && i < len; i++) {
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
        letter = letter || (s[i] >= 'a' && s[i] <= 'z');
    }
    if (!ok || !letter)
        mesh_resource__err(c, n, "invalid targetPort \"%.100s\": a port number or an IANA "
                                 "service name (at most 15 lower case letters, digits, '-')", s);
}

static void service_port_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_k8s_service_port *p = msg;
    const struct mesh_ynode *tn = val(map, "targetPort");
    if (tn && !p->target_port.str && (p->target_port.num < 1 || p->target_port.num > 65535))
        ERR_AT(c, tn, "targetPort", "must be between 1 and 65535");
}

static const struct mesh_field k8s_service_port_fields[] = {
    F_S("name", mesh_k8s_service_port, name, MESH_F_STRING, .check = mesh_check_dns1123_label),
    F_S("protocol", mesh_k8s_service_port, protocol, MESH_F_STRING, .check = check_l4_protocol),
    F_S("appProtocol", mesh_k8s_service_port, app_protocol, MESH_F_STRING),
    F_S("port", mesh_k8s_service_port, port, MESH_F_INT32, .flags = MESH_FF_REQUIRED, .min = 1,
        .max = 65535),
    F_S("targetPort", mesh_k8s_service_port, target_port, MESH_F_INTSTR,
        .check = check_target_port_name),
    F_S("nodePort", mesh_k8s_service_port, node_port, MESH_F_INT32, .min = 0, .max = 65535),
};
static MESH_SCHEMA(k8s_service_port_schema, mesh_k8s_service_port, k8s_service_port_fields,
                   service_port_post);

static const char *const service_types[] = {"ClusterIP", "NodePort", "LoadBalancer",
                                            "ExternalName", NULL};

static void check_service_type(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    check_one_of(c, n, s, service_types, "ClusterIP, NodePort, LoadBalancer, ExternalName");
}

static void check_cluster_ip(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (*s && strcmp(s, "None") != 0 && mesh_validate_ip(s))
        mesh_resource__err(c, n, "clusterIP must be \"None\", empty or an IP address");
}

static void check_session_affinity(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const v[] = {"None", "ClientIP", NULL};
    check_one_of(c, n, s, v, "None, ClientIP");
}

static void check_traffic_policy(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const v[] = {"Cluster", "Local", NULL};
    check_one_of(c, n, s, v, "Cluster, Local");
}

static void check_ip_family(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const v[] = {"IPv4", "IPv6", NULL};
    check_one_of(c, n, s, v, "IPv4, IPv6");
}

static void check_ip_family_policy(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const v[] = {"SingleStack", "PreferDualStack", "RequireDualStack", NULL};
    check_one_of(c, n, s, v, "SingleStack, PreferDualStack, RequireDualStack");
}

static void service_spec_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_k8s_service_spec *s = msg;
    bool external = s->type && strcmp(s->type, "ExternalName") == 0;
    bool headless = s->cluster_ip && strcmp(s->cluster_ip, "None") == 0;
    if (external && (!s->external_name || !*s->external_name))
        ERR_AT(c, map, "externalName", "is required for type ExternalName");
    if (external && s->external_name && mesh_validate_dns1123_subdomain(s->external_name))
        ERR_AT(c, val(map, "externalName"), "externalName", "must be a DNS name");
    if (!external && !headless && !s->n_ports && !val(map, "ports"))
        ERR_AT(c, map, "ports", "at least one port is required");
    for (size_t i = 0; i < s->n_ports; i++) {
        const struct mesh_k8s_service_port *p = &s->ports[i];
        const struct mesh_ynode *pn = item(map, "ports", i);
        char sub[48];
        snprintf(sub, sizeof(sub), "ports[%zu]", i);
        if (s->n_ports > 1 && (!p->name || !*p->name))
            ERR_AT(c, pn, sub, "name is required when a Service has more than one port");
        for (size_t j = 0; j < i; j++) {
            const struct mesh_k8s_service_port *q = &s->ports[j];
            if (p->name && q->name && *p->name && strcmp(p->name, q->name) == 0)
                ERR_AT(c, pn, sub, "duplicate port name \"%.100s\"", p->name);
            const char *pp = p->protocol ? p->protocol : "TCP";
            const char *qp = q->protocol ? q->protocol : "TCP";
            if (p->port && p->port == q->port && strcmp(pp, qp) == 0)
                ERR_AT(c, pn, sub, "duplicate port %d/%s", p->port, pp);
        }
    }
}

static const struct mesh_field service_spec_fields[] = {
    F_LM("ports", mesh_k8s_service_spec, ports, mesh_k8s_service_port, k8s_service_port_schema),
    F_MAPS("selector", mesh_k8s_service_spec, selector, .key_check = mesh_check_label_key,
           .check = mesh_check_label_value),
    F_S("clusterIP", mesh_k8s_service_spec, cluster_ip, MESH_F_STRING, .check = check_cluster_ip),
    F_LS("clusterIPs", mesh_k8s_service_spec, cluster_ips, MESH_F_STRING,
         .check = check_cluster_ip),
    F_S("type", mesh_k8s_service_spec, type, MESH_F_STRING, .check = check_service_type),
    F_LS("externalIPs", mesh_k8s_service_spec, external_ips, MESH_F_STRING,
         .check = mesh_check_ip),
    F_S("sessionAffinity", mesh_k8s_service_spec, session_affinity, MESH_F_STRING,
        .check = check_session_affinity),
    F_S("loadBalancerIP", mesh_k8s_service_spec, load_balancer_ip, MESH_F_STRING),
    F_LS("loadBalancerSourceRanges", mesh_k8s_service_spec, load_balancer_source_ranges,
         MESH_F_STRING, .check = mesh_check_ip_or_cidr),
    F_S("externalName", mesh_k8s_service_spec, external_name, MESH_F_STRING),
    F_S("externalTrafficPolicy", mesh_k8s_service_spec, external_traffic_policy, MESH_F_STRING,
        .check = check_traffic_policy),
    F_S("healthCheckNodePort", mesh_k8s_service_spec, health_check_node_port, MESH_F_INT32,
        .min = 0, .max = 65535),
    F_S("publishNotReadyAddresses", mesh_k8s_service_spec, publish_not_ready_addresses,
        MESH_F_BOOL),
    F_IGN("sessionAffinityConfig"),
    F_LS("ipFamilies", mesh_k8s_service_spec, ip_families, MESH_F_STRING,
         .check = check_ip_family),
    F_S("ipFamilyPolicy", mesh_k8s_service_spec, ip_family_policy, MESH_F_STRING,
        .check = check_ip_family_policy),
    F_S("allocateLoadBalancerNodePorts", mesh_k8s_service_spec,
        allocate_load_balancer_node_ports, MESH_F_OBOOL),
    F_S("loadBalancerClass", mesh_k8s_service_spec, load_balancer_class, MESH_F_STRING),
    F_S("internalTrafficPolicy", mesh_k8s_service_spec, internal_traffic_policy, MESH_F_STRING,
        .check = check_traffic_policy),
    F_S("trafficDistribution", mesh_k8s_service_spec, traffic_distribution, MESH_F_STRING),
};
MESH_SCHEMA(mesh_schema_k8s_service_spec, mesh_k8s_service_spec, service_spec_fields,
            service_spec_post);

/* ---- Endpoints ---- */

static const struct mesh_field endpoint_address_fields[] = {
    F_S("ip", mesh_k8s_endpoint_address, ip, MESH_F_STRING, .flags = MESH_FF_REQUIRED,
        .check = mesh_check_ip),
    F_S("hostname", mesh_k8s_endpoint_address, hostname, MESH_F_STRING,
        .check = mesh_check_dns1123_label),
    F_S("nodeName", mesh_k8s_endpoint_address, node_name, MESH_F_STRING),
    F_M("targetRef", mesh_k8s_endpoint_address, target_ref, object_ref_schema),
};
static MESH_SCHEMA(endpoint_address_schema, mesh_k8s_endpoint_address, endpoint_address_fields,
                   NULL);

static const struct mesh_field endpoint_port_fields[] = {
    F_S("name", mesh_k8s_endpoint_port, name, MESH_F_STRING),
    F_S("port", mesh_k8s_endpoint_port, port, MESH_F_INT32, .flags = MESH_FF_REQUIRED, .min = 1,
        .max = 65535),
    F_S("protocol", mesh_k8s_endpoint_port, protocol, MESH_F_STRING, .check = check_l4_protocol),
    F_S("appProtocol", mesh_k8s_endpoint_port, app_protocol, MESH_F_STRING),
};
static MESH_SCHEMA(endpoint_port_schema, mesh_k8s_endpoint_port, endpoint_port_fields, NULL);

static const struct mesh_field endpoint_subset_fields[] = {
    F_LM("addresses", mesh_k8s_endpoint_subset, addresses, mesh_k8s_endpoint_address,
         endpoint_address_schema),
    F_LM("notReadyAddresses", mesh_k8s_endpoint_subset, not_ready_addresses,
         mesh_k8s_endpoint_address, endpoint_address_schema),
    F_LM("ports", mesh_k8s_endpoint_subset, ports, mesh_k8s_endpoint_port, endpoint_port_schema),
};
static MESH_SCHEMA(endpoint_subset_schema, mesh_k8s_endpoint_subset, endpoint_subset_fields,
                   NULL);

static const struct mesh_field endpoints_fields[] = {
    F_IGN("apiVersion"),
    F_IGN("kind"),
    F_IGN("metadata"),
    F_LM("subsets", mesh_k8s_endpoints, subsets, mesh_k8s_endpoint_subset,
         endpoint_subset_schema),
};
MESH_SCHEMA(mesh_schema_k8s_endpoints, mesh_k8s_endpoints, endpoints_fields, NULL);

/* ---- EndpointSlice ---- */

static const struct mesh_field conditions_fields[] = {
    F_S("ready", mesh_k8s_endpoint_conditions, ready, MESH_F_OBOOL),
    F_S("serving", mesh_k8s_endpoint_conditions, serving, MESH_F_OBOOL),
    F_S("terminating", mesh_k8s_endpoint_conditions, terminating, MESH_F_OBOOL),
};
static MESH_SCHEMA(conditions_schema, mesh_k8s_endpoint_conditions, conditions_fields, NULL);

static const struct mesh_field for_zone_fields[] = {
    F_S("name", mesh_k8s_for_zone, name, MESH_F_STRING, .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(for_zone_schema, mesh_k8s_for_zone, for_zone_fields, NULL);

static const struct mesh_field for_node_fields[] = {
    F_S("name", mesh_k8s_for_node, name, MESH_F_STRING, .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(for_node_schema, mesh_k8s_for_node, for_node_fields, NULL);

static const struct mesh_field hints_fields[] = {
    F_LM("forZones", mesh_k8s_endpoint_hints, for_zones, mesh_k8s_for_zone, for_zone_schema),
    F_LM("forNodes", mesh_k8s_endpoint_hints, for_nodes, mesh_k8s_for_node, for_node_schema),
};
static MESH_SCHEMA(hints_schema, mesh_k8s_endpoint_hints, hints_fields, NULL);

static void slice_endpoint_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_k8s_slice_endpoint *e = msg;
    if (e->n_addresses > 100)
        ERR_AT(c, val(map, "addresses"), "addresses", "at most 100 addresses per endpoint");
}
static const struct mesh_field slice_endpoint_fields[] = {
    F_LS("addresses", mesh_k8s_slice_endpoint, addresses, MESH_F_STRING,
         .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_M("conditions", mesh_k8s_slice_endpoint, conditions, conditions_schema),
    F_S("hostname", mesh_k8s_slice_endpoint, hostname, MESH_F_STRING,
        .check = mesh_check_dns1123_label),
    F_M("targetRef", mesh_k8s_slice_endpoint, target_ref, object_ref_schema),
    F_MAPS("deprecatedTopology", mesh_k8s_slice_endpoint, deprecated_topology),
    F_S("nodeName", mesh_k8s_slice_endpoint, node_name, MESH_F_STRING),
    F_S("zone", mesh_k8s_slice_endpoint, zone, MESH_F_STRING),
    F_M("hints", mesh_k8s_slice_endpoint, hints, hints_schema),
};
static MESH_SCHEMA(slice_endpoint_schema, mesh_k8s_slice_endpoint, slice_endpoint_fields,
                   slice_endpoint_post);

static const struct mesh_field slice_port_fields[] = {
    F_S("name", mesh_k8s_slice_port, name, MESH_F_STRING),
    F_S("protocol", mesh_k8s_slice_port, protocol, MESH_F_STRING, .check = check_l4_protocol),
    F_S("appProtocol", mesh_k8s_slice_port, app_protocol, MESH_F_STRING),
    F_S("port", mesh_k8s_slice_port, port, MESH_F_OUINT32, .min = 1, .max = 65535),
};
static MESH_SCHEMA(slice_port_schema, mesh_k8s_slice_port, slice_port_fields, NULL);

static void check_address_type(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    static const char *const v[] = {"IPv4", "IPv6", "FQDN", NULL};
    check_one_of(c, n, s, v, "IPv4, IPv6, FQDN");
}

static void slice_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_k8s_endpoint_slice *s = msg;
    if (!s->address_type)
        return;
    for (size_t i = 0; i < s->n_endpoints; i++) {
        const struct mesh_k8s_slice_endpoint *e = &s->endpoints[i];
        for (size_t j = 0; j < e->n_addresses; j++) {
            const char *a = e->addresses[j];
            if (!a)
                continue;
            unsigned char buf[16];
            const char *why = NULL;
            if (strcmp(s->address_type, "IPv4") == 0 && inet_pton(AF_INET, a, buf) != 1)
                why = "not an IPv4 address";
            else if (strcmp(s->address_type, "IPv6") == 0 && inet_pton(AF_INET6, a, buf) != 1)
                why = "not an IPv6 address";
            else if (strcmp(s->address_type, "FQDN") == 0)
                why = mesh_validate_dns1123_subdomain(a);
            if (why) {
                char sub[64];
                snprintf(sub, sizeof(sub), "endpoints[%zu].addresses[%zu]", i, j);
                ERR_AT(c, item(item(map, "endpoints", i), "addresses", j), sub,
                       "invalid address \"%.100s\" for addressType %s: %s", a, s->address_type,
                       why);
            }
        }
    }
}
static const struct mesh_field slice_fields[] = {
    F_IGN("apiVersion"),
    F_IGN("kind"),
    F_IGN("metadata"),
    F_S("addressType", mesh_k8s_endpoint_slice, address_type, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED, .check = check_address_type),
    F_LM("endpoints", mesh_k8s_endpoint_slice, endpoints, mesh_k8s_slice_endpoint,
         slice_endpoint_schema),
    F_LM("ports", mesh_k8s_endpoint_slice, ports, mesh_k8s_slice_port, slice_port_schema),
};
MESH_SCHEMA(mesh_schema_k8s_endpoint_slice, mesh_k8s_endpoint_slice, slice_fields, slice_post);
