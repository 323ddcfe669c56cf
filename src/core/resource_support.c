#include "core/common.h"
#include <string.h>
#include "core/resource-int.h"

/*
 * THE list of fields meshd acts on. Every other field of a supported kind is
 * accepted (and validated) but produces the warning "not enforced yet", so a
 * user is never silently ignored. An entry covers the field and everything
 * below it; the parents of an entry are walked into, not warned about. Paths
 * are normalized: "[]" for any list index, ".*" for any map key.
 * docs/config.md mirrors this list: change both together.
 */

struct acted {
    const char *kind; /* "*" = every kind */
    const char *path;
};

static const struct acted acted[] = {
    /* the envelope: read by the loader itself */
    {"*", "apiVersion"},
    {"*", "kind"},
    {"*", "metadata"},
    {"*", "status"},

    {"VirtualService", "spec.hosts"},
    {"VirtualService", "spec.gateways"},
    {"VirtualService", "spec.exportTo"},
    {"VirtualService", "spec.http[].name"},
    {"VirtualService", "spec.http[].match[].name"},
    {"VirtualService", "spec.http[].match[].uri"},
    {"VirtualService", "spec.http[].match[].authority"},
    {"VirtualService", "spec.http[].match[].headers"},
    {"VirtualService", "spec.http[].match[].scheme"},
    {"VirtualService", "spec.http[].match[].method"},
    {"VirtualService", "spec.http[].match[].queryParams"},
    {"VirtualService", "spec.http[].match[].ignoreUriCase"},
    {"VirtualService", "spec.http[].match[].withoutHeaders"},
    {"VirtualService", "spec.http[].match[].port"},
    {"VirtualService", "spec.http[].match[].sourceLabels"},
    {"VirtualService", "spec.http[].match[].sourceNamespace"},
    {"VirtualService", "spec.http[].match[].gateways"},
    {"VirtualService", "spec.http[].route[].destination"},
    {"VirtualService", "spec.http[].route[].weight"},
    {"VirtualService", "spec.http[].route[].headers"},
    {"VirtualService", "spec.http[].timeout"},
    {"VirtualService", "spec.http[].retries"},
    {"VirtualService", "spec.http[].fault"},
    {"VirtualService", "spec.http[].mirror"},
    {"VirtualService", "spec.http[].mirrorPercentage"},
    {"VirtualService", "spec.http[].mirrorPercent"},
    {"VirtualService", "spec.http[].mirror_percent"},
    {"VirtualService", "spec.http[].redirect"},
    {"VirtualService", "spec.http[].rewrite"},
    {"VirtualService", "spec.http[].directResponse"},
    {"VirtualService", "spec.http[].headers"},
    {"VirtualService", "spec.http[].corsPolicy"},
    {"VirtualService", "spec.http[].mirrors"},
    {"VirtualService", "spec.tcp[].match[].destinationSubnets"},
    {"VirtualService", "spec.tcp[].match[].port"},
    {"VirtualService", "spec.tcp[].match[].sourceLabels"},
    {"VirtualService", "spec.tcp[].match[].gateways"},
    {"VirtualService", "spec.tcp[].match[].sourceNamespace"},
    {"VirtualService", "spec.tcp[].route"},
    {"VirtualService", "spec.tls[].match[].sniHosts"},
    {"VirtualService", "spec.tls[].match[].destinationSubnets"},
    {"VirtualService", "spec.tls[].match[].port"},
    {"VirtualService", "spec.tls[].match[].sourceLabels"},
    {"VirtualService", "spec.tls[].match[].gateways"},
    {"VirtualService", "spec.tls[].match[].sourceNamespace"},
    {"VirtualService", "spec.tls[].route"},

    {"DestinationRule", "spec.host"},
    {"DestinationRule", "spec.exportTo"},
    {"DestinationRule", "spec.workloadSelector"},
    {"DestinationRule", "spec.subsets[].name"},
    {"DestinationRule", "spec.subsets[].labels"},
    {"DestinationRule", "spec.trafficPolicy.loadBalancer"},
    {"DestinationRule", "spec.trafficPolicy.connectionPool"},
    {"DestinationRule", "spec.trafficPolicy.outlierDetection"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.loadBalancer"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.connectionPool"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.outlierDetection"},
    {"DestinationRule", "spec.trafficPolicy.portLevelSettings[].port"},
    {"DestinationRule", "spec.trafficPolicy.portLevelSettings[].loadBalancer"},
    {"DestinationRule", "spec.trafficPolicy.portLevelSettings[].connectionPool"},
    {"DestinationRule", "spec.trafficPolicy.portLevelSettings[].outlierDetection"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.portLevelSettings[].port"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.portLevelSettings[].loadBalancer"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.portLevelSettings[].connectionPool"},
    {"DestinationRule", "spec.subsets[].trafficPolicy.portLevelSettings[].outlierDetection"},

    {"Gateway", "spec.selector"},
    {"Gateway", "spec.servers[].port"},
    {"Gateway", "spec.servers[].hosts"},
    {"Gateway", "spec.servers[].bind"},
    {"Gateway", "spec.servers[].name"},
    {"Gateway", "spec.servers[].tls.mode"},

    {"ServiceEntry", "spec.hosts"},
    {"ServiceEntry", "spec.addresses"},
    {"ServiceEntry", "spec.ports"},
    {"ServiceEntry", "spec.endpoints"},
    {"ServiceEntry", "spec.resolution"},
    {"ServiceEntry", "spec.location"},
    {"ServiceEntry", "spec.exportTo"},

    {"WorkloadEntry", "spec"},

    {"Sidecar", "spec.workloadSelector"},
    {"Sidecar", "spec.egress[].hosts"},
    {"Sidecar", "spec.outboundTrafficPolicy"}, /* egressProxy: the compiler warns */

    {"Service", "spec"},
    {"Endpoints", "subsets"},
    {"EndpointSlice", "addressType"},
    {"EndpointSlice", "endpoints"},
    {"EndpointSlice", "ports"},
};

enum mesh_support mesh_resource__support(const char *kind, const char *npath)
{
    size_t len = strlen(npath);
    bool parent = false;
    if (strcmp(npath, "spec") == 0)
        return MESH_SUPPORT_PARTIAL; /* warn about each spec field, not the whole spec */
    for (size_t i = 0; i < MESH_ARRAY_LEN(acted); i++) {
        const struct acted *a = &acted[i];
        if (strcmp(a->kind, "*") != 0 && strcmp(a->kind, kind) != 0)
            continue;
        size_t alen = strlen(a->path);
        /* the entry itself or anything below it */
        if (len >= alen && strncmp(npath, a->path, alen) == 0 &&
            (npath[alen] == '\0' || npath[alen] == '.' || npath[alen] == '['))
            return MESH_SUPPORT_ACTED;
        /* a container of the entry */
        if (alen > len && strncmp(a->path, npath, len) == 0 &&
            (a->path[len] == '.' || a->path[len] == '['))
            parent = true;
    }
    return parent ? MESH_SUPPORT_PARTIAL : MESH_SUPPORT_NONE;
}
