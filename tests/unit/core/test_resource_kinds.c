#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include "core/resource.h"
#include "resource_fixture.h"
#include "../leakcheck.h"

/* One valid document and the main errors of each kind. */

#define HEAD(api, kind, name) "apiVersion: " api "\nkind: " kind "\nmetadata:\n  name: " name "\n"

LEAK_TEST(kinds, destination_rule)
{
    load(HEAD("networking.istio.io/v1", "DestinationRule", "r") "spec:\n"
         "  host: r.prod.svc.cluster.local\n"
         "  trafficPolicy:\n"
         "    loadBalancer:\n"
         "      consistentHash:\n"
         "        httpCookie: {name: user, ttl: 0s}\n"
         "        ringHash: {minimumRingSize: 1024}\n"
         "    connectionPool:\n"
         "      tcp: {maxConnections: 100, connectTimeout: 30ms,\n"
         "            tcpKeepalive: {time: 7200s, interval: 75s}}\n"
         "      http: {http2MaxRequests: 1000, maxRequestsPerConnection: 10}\n"
         "    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}\n"
         "  subsets:\n"
         "  - name: v1\n"
         "    labels: {version: v1}\n"
         "    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n");
    expect_clean();
    cr_assert_eq(set.n, 1);
    const struct mesh_destination_rule *dr = set.items[0]->typed.destination_rule;
    const struct mesh_traffic_policy *tp = dr->traffic_policy;
    cr_assert_str_eq(tp->load_balancer->consistent_hash->http_cookie->name, "user");
    cr_assert(tp->load_balancer->consistent_hash->http_cookie->ttl.set);
    cr_assert_eq(tp->load_balancer->consistent_hash->ring_hash->minimum_ring_size, 1024);
    cr_assert_eq(tp->connection_pool->tcp->max_connections, 100);
    cr_assert_eq(MESH_DURATION_MS(tp->connection_pool->tcp->connect_timeout), 30);
    cr_assert(tp->outlier_detection->consecutive_5xx_errors.set);
    cr_assert_eq(tp->outlier_detection->consecutive_5xx_errors.v, 7);
    cr_assert(dr->subsets[0].traffic_policy->load_balancer->has_simple);
    cr_assert_eq(dr->subsets[0].traffic_policy->load_balancer->simple, MESH_LB_ROUND_ROBIN);
    unload();

    load(HEAD("networking.istio.io/v1", "DestinationRule", "r") "spec:\n"
         "  host: r\n"
         "  trafficPolicy:\n"
         "    loadBalancer:\n"
         "      simple: RANDOM\n"
         "      consistentHash: {useSourceIp: true, httpHeaderName: x, maglev: {tableSize: 1000}}\n"
         "    connectionPool: {}\n"
         "    outlierDetection: {maxEjectionPercent: 101, consecutiveLocalOriginFailures: 2}\n"
         "    tls: {mode: MUTUAL}\n"
         "  subsets:\n"
         "  - name: v1\n"
         "    trafficPolicy: {}\n");
    expect_diag_part("spec.trafficPolicy.loadBalancer.consistentHash: only one of \"simple\" and "
                     "\"consistentHash\" may be set");
    expect_diag_part("spec.trafficPolicy.connectionPool: connection pool must have at least one "
                     "field");
    expect_diag_part("spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 "
                     "and 100");
    expect_diag_part("consecutiveLocalOriginFailures is set, but splitExternalLocalOriginErrors "
                     "is false");
    expect_diag_part("spec.trafficPolicy.tls.clientCertificate: client certificate required for "
                     "mutual tls");
    expect_diag_part("spec.subsets[0].trafficPolicy: traffic policy must have at least one field");
    cr_assert_eq(set.n, 0);
    unload();

    load(HEAD("networking.istio.io/v1", "DestinationRule", "r") "spec:\n"
         "  host: r\n"
         "  trafficPolicy:\n"
         "    loadBalancer:\n"
         "      consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}\n"
         "      localityLbSetting:\n"
         "        distribute: [{from: us/a/*, to: {\"us/a/*\": 60, \"us/b/*\": 30}}]\n"
         "        failover: [{from: us, to: us}]\n");
    expect_diag_part("spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize "
                     "must be a prime number for maglev");
    expect_diag_part("localityLbSetting: can not simultaneously specify \"distribute\" and "
                     "\"failover\"");
    unload();
}

LEAK_TEST(kinds, gateway)
{
    load(HEAD("networking.istio.io/v1beta1", "Gateway", "gw") "  namespace: edge\nspec:\n"
         "  selector: {istio: ingressgateway}\n"
         "  servers:\n"
         "  - port: {number: 80, name: http, protocol: HTTP}\n"
         "    hosts: [\"*/bookinfo.example.com\"]\n"
         "    tls: {httpsRedirect: true}\n"
         "  - port: {number: 443, name: https, protocol: HTTPS}\n"
         "    hosts: [\"./*.example.com\"]\n"
         "    tls: {mode: SIMPLE, credentialName: bookinfo-cert}\n");
    expect_clean();
    cr_assert_eq(set.n, 1);
    const struct mesh_gateway *g = set.items[0]->typed.gateway;
    cr_assert_eq(g->n_servers, 2);
    cr_assert_eq(g->servers[1].tls->mode, MESH_SERVER_TLS_SIMPLE);
    cr_assert(has_diag_part("warning: spec.servers[1].tls.credentialName: not enforced yet"));
    unload();

    load(HEAD("networking.istio.io/v1", "Gateway", "gw.bad") "spec:\n"
         "  servers:\n"
         "  - port: {number: 443, name: https, protocol: HTTPS}\n"
         "    hosts: [\"bad/host/x\", shortname]\n"
         "  - port: {number: 8443, name: https, protocol: FTP}\n"
         "    hosts: [\"*\"]\n"
         "    tls: {mode: SIMPLE}\n");
    expect_diag_part("spec.servers[0]: server must have TLS settings for HTTPS/TLS protocols");
    expect_diag_part("spec.servers[0].hosts[1]: invalid host \"shortname\": short names (non FQDN) "
                     "are not allowed");
    expect_diag_part("spec.servers[1].port.protocol: invalid protocol \"FTP\"");
    expect_diag_part("spec.servers[1].port.name: port names in servers must be unique");
    expect_diag_part("spec.servers[1].tls.serverCertificate: SIMPLE TLS requires a server "
                     "certificate");
    expect_diag_part("spec: invalid gateway name \"gw.bad\"");
    unload();

    load(HEAD("networking.istio.io/v1", "Gateway", "gw") "spec:\n  servers: []\n");
    expect_diag_part("spec.servers: must not be empty");
    unload();
}

LEAK_TEST(kinds, service_entry_and_workload_entry)
{
    load(HEAD("networking.istio.io/v1", "ServiceEntry", "ext") "spec:\n"
         "  hosts: [api.example.com]\n"
         "  addresses: [10.1.0.0/16, \"2001:db8::1\"]\n"
         "  ports: [{number: 443, name: https, protocol: TLS}]\n"
         "  location: MESH_EXTERNAL\n"
         "  resolution: STATIC\n"
         "  endpoints:\n"
         "  - address: 10.1.2.3\n"
         "    ports: {https: 8443}\n"
         "    labels: {zone: a}\n"
         "---\n"
         HEAD("networking.istio.io/v1", "WorkloadEntry", "vm1") "spec:\n"
         "  address: vm1.example.com\n"
         "  ports: {http: 8080}\n"
         "  labels: {app: web}\n"
         "  serviceAccount: web\n");
    expect_clean();
    cr_assert_eq(set.n, 2);
    const struct mesh_service_entry *se = set.items[0]->typed.service_entry;
    cr_assert_eq(se->resolution, MESH_SE_RESOLUTION_STATIC);
    cr_assert_eq(se->endpoints[0].ports[0].value, 8443);
    cr_assert_str_eq(set.items[1]->typed.workload_entry->address, "vm1.example.com");
    unload();

    load(HEAD("networking.istio.io/v1", "ServiceEntry", "ext") "spec:\n"
         "  hosts: [\"*\", \"*.wild.com\"]\n"
         "  addresses: [10.0.0.0/8]\n"
         "  ports:\n"
         "  - {number: 80, name: http}\n"
         "  - {number: 80, name: http, protocol: HTTP}\n"
         "  resolution: DNS\n"
         "  endpoints: [{address: \"not an address\", ports: {grpc: 9000}}]\n"
         "---\n"
         HEAD("networking.istio.io/v1", "WorkloadEntry", "we") "spec:\n  ports: {http: 0}\n");
    expect_diag_part("spec.hosts[0]: invalid host \"*\"");
    expect_diag_part("spec.addresses: CIDR addresses are allowed only for NONE/STATIC");
    expect_diag_part("spec.ports[1]: service entry port name \"http\" already defined");
    expect_diag_part("spec.ports[1]: service entry port 80 already defined");
    expect_diag_part("spec.endpoints[0].address: endpoint address \"not an address\" is not a "
                     "valid FQDN or an IP address");
    expect_diag_part("spec.endpoints[0].ports.grpc: endpoint port grpc is not defined by the "
                     "service entry");
    expect_diag_part("spec.ports[0]: multiple hosts provided with non-HTTP, non-TLS ports");
    expect_diag_part("WorkloadEntry default/we: spec.ports.http: must be between 1 and 65535");
    expect_diag_part("WorkloadEntry default/we: spec.address: address is required");
    unload();

    /* a colon before the end of a flow list, as go-yaml reads it */
    load(HEAD("networking.istio.io/v1", "ServiceEntry", "v6") "spec:\n"
         "  hosts: [example.com]\n  addresses: [1.2.3.4, 001:db8::]\n"
         "  ports: [{number: 80, name: http, protocol: HTTP}]\n");
    expect_clean();
    cr_assert_str_eq(set.items[0]->typed.service_entry->addresses[1], "001:db8::");
    unload();
}

LEAK_TEST(kinds, sidecar)
{
    load(HEAD("networking.istio.io/v1", "Sidecar", "default") "  namespace: prod\nspec:\n"
         "  workloadSelector: {labels: {app: web}}\n"
         "  ingress:\n"
         "  - port: {number: 9080, protocol: HTTP, name: http}\n"
         "    defaultEndpoint: 127.0.0.1:8080\n"
         "  egress:\n"
         "  - hosts: [\"./*\", \"istio-system/*\", \"~prod-us2/*\"]\n"
         "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n");
    expect_clean();
    const struct mesh_sidecar *sc = set.items[0]->typed.sidecar;
    cr_assert_eq(sc->egress[0].n_hosts, 3);
    cr_assert_str_eq(sc->workload_selector->labels[0].value, "web");
    cr_assert(has_diag_part("warning: spec.ingress: not enforced yet"));
    cr_assert_not(has_diag_part("spec.egress"), "egress hosts are acted on");
    unload();

    load(HEAD("networking.istio.io/v1", "Sidecar", "s") "spec:\n"
         "  ingress:\n"
         "  - port: {number: 9080, protocol: HTTP}\n"
         "    defaultEndpoint: 10.0.0.1:8080\n"
         "  egress:\n"
         "  - hosts: [\"bookinfo.com\"]\n"
         "  - port: {number: 0}\n"
         "    hosts: [\"*/*\"]\n"
         "  outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: proxy.com}}\n"
         "---\n" HEAD("networking.istio.io/v1", "Sidecar", "empty") "spec: {}\n");
    expect_diag_part("spec.ingress[0].defaultEndpoint: defaultEndpoint must be of form");
    expect_diag_part("spec.egress[0].hosts[0]: invalid host \"bookinfo.com\": host must be of form "
                     "namespace/dnsName");
    expect_diag_part("spec.egress[1].port: ports with 0 value must have a unix domain socket");
    expect_diag_part("spec.outboundTrafficPolicy.egressProxy: egressProxy must be set only with "
                     "the ALLOW_ANY");
    expect_diag_part("Sidecar default/empty: spec: sidecar: empty configuration provided");
    unload();
}

LEAK_TEST(kinds, virtual_service_routes)
{
    load(HEAD("networking.istio.io/v1alpha3", "VirtualService", "v") "spec:\n"
         "  hosts: [a.example.com]\n"
         "  gateways: [edge/gw, mesh]\n"
         "  http:\n"
         "  - match: [{uri: {exact: /old}}]\n"
         "    redirect: {uri: /new, redirectCode: 308}\n"
         "  - match: [{uri: {prefix: /static}}]\n"
         "    directResponse: {status: 200, body: {string: ok}}\n"
         "  - match: [{authority: {regex: \"^a.*\"}}]\n"
         "    rewrite: {uriRegexRewrite: {match: \"^/v1/(.*)\", rewrite: \"/\\\\1\"}}\n"
         "    route: [{destination: {host: b}}]\n"
         "    headers: {request: {set: {x-a: \"%DOWNSTREAM_REMOTE_ADDRESS%\"}}}\n"
         "    corsPolicy: {allowOrigins: [{exact: \"https://a.com\"}], allowMethods: [GET],"
         " maxAge: 24h}\n"
         "    mirror: {host: c}\n"
         "    mirrorPercentage: {value: 50}\n"
         "  tls:\n"
         "  - match: [{sniHosts: [a.example.com], port: 443}]\n"
         "    route: [{destination: {host: a.example.com}}]\n");
    expect_clean();
    const struct mesh_virtual_service *vs = set.items[0]->typed.virtual_service;
    cr_assert_eq(vs->http[0].redirect->redirect_code, 308);
    cr_assert_str_eq(vs->http[1].direct_response->body->string, "ok");
    cr_assert_str_eq(vs->http[2].rewrite->uri_regex_rewrite->rewrite, "/\\1");
    cr_assert_eq(vs->http[2].mirror_percentage->value, 50.0);
    unload();

    load(HEAD("networking.istio.io/v1", "VirtualService", "v") "spec:\n"
         "  hosts: [a.example.com]\n"
         "  http:\n"
         "  - route: [{destination: {host: b}}]\n"
         "    redirect: {redirectCode: 200}\n"
         "    rewrite: {}\n"
         "    retries: {attempts: 0, retryOn: \"5xx,sometimes\"}\n"
         "    fault: {}\n"
         "    headers: {request: {set: {\":path\": x}}, response: {remove: [host]}}\n"
         "    corsPolicy: {allowMethods: [FETCH], maxAge: 1500ms}\n"
         "    directResponse: {status: 99}\n"
         "  tls:\n"
         "  - match: [{sniHosts: [other.com]}]\n"
         "    route: [{destination: {host: a}, weight: 60}, {destination: {host: b}, weight: 30}]\n"
         "  tcp:\n"
         "  - match: [{destinationSubnets: [10.0.0.0/33]}]\n");
    expect_diag_part("spec.http[0]: HTTP route cannot contain both route and redirect");
    expect_diag_part("spec.http[0].redirect: redirect must specify uri");
    expect_diag_part("spec.http[0].redirect.redirectCode: 200 is not a valid redirect code, must "
                     "be 3xx");
    expect_diag_part("spec.http[0].rewrite: rewrite must specify at least one of");
    expect_diag_part("spec.http[0].retries.retryOn: \"sometimes\" is not a valid retryOn policy");
    expect_diag_part("spec.http[0].retries: http retry policy configured when attempts are set "
                     "to 0");
    expect_diag_part("spec.http[0].fault: HTTP fault injection must have an abort and/or a delay");
    expect_diag_part("spec.http[0].headers.request.set[\":path\"]: invalid header \":path\": "
                     "header cannot have \":\" prefix");
    expect_diag_part("spec.http[0].headers.response.remove[0]: invalid header \"host\": cannot set "
                     "Host header");
    expect_diag_part("spec.http[0].corsPolicy.allowMethods[0]: \"FETCH\": not a supported HTTP "
                     "method");
    expect_diag_part("spec.http[0].corsPolicy.maxAge: maxAge is accurate only to seconds");
    expect_diag_part("spec.http[0].directResponse.status: HTTP status 99 is not in range 200-599");
    expect_diag_part("spec.tls[0].match[0].sniHosts[0]: SNI host \"other.com\" is not a "
                     "compatible subset of any of the virtual service hosts");
    expect_diag_part("spec.tls[0].route: weights of the destinations must sum to 100, got 90");
    expect_diag_part("spec.tcp[0]: TCP route is required");
    expect_diag_part("spec.tcp[0].match[0].destinationSubnets[0]: invalid address "
                     "\"10.0.0.0/33\": not a valid CIDR block");
    unload();

    /* delegation */
    load(HEAD("networking.istio.io/v1", "VirtualService", "root") "spec:\n"
         "  hosts: [a.com]\n"
         "  http:\n"
         "  - match: [{uri: {regex: \"/x.*\"}}]\n"
         "    delegate: {name: child, namespace: team}\n"
         "---\n" HEAD("networking.istio.io/v1", "VirtualService", "child") "spec:\n"
         "  gateways: [gw]\n"
         "  http:\n"
         "  - route: [{destination: {host: b}}]\n"
         "    delegate: {name: grandchild}\n");
    expect_diag_part("VirtualService default/root: spec.http[0].match[0]: regex matches are not "
                     "supported with delegation");
    expect_diag_part("VirtualService default/child: spec.gateways: delegate virtual service (no "
                     "hosts) must have no gateways specified");
    expect_diag_part("VirtualService default/child: spec.http[0].delegate: delegate HTTP route "
                     "cannot contain delegate");
    unload();
}

LEAK_TEST(kinds, security)
{
    load(HEAD("security.istio.io/v1", "PeerAuthentication", "pa") "spec:\n"
         "  selector: {matchLabels: {app: web}}\n"
         "  mtls: {mode: PERMISSIVE}\n"
         "  portLevelMtls:\n"
         "    8080: {mode: DISABLE}\n"
         "---\n"
         HEAD("security.istio.io/v1beta1", "AuthorizationPolicy", "ap") "spec:\n"
         "  action: DENY\n"
         "  rules:\n"
         "  - from: [{source: {principals: [cluster.local/ns/a/sa/b], ipBlocks: [10.0.0.0/8]}}]\n"
         "    to: [{operation: {methods: [POST], paths: [\"/api/{*}/x/{**}\"],\n"
         "                      ports: [\"8080\"]}}]\n"
         "    when: [{key: \"request.headers[x-token]\", values: [\"*\"]},\n"
         "           {key: source.ip, notValues: [1.2.3.4]}]\n"
         "---\n"
         HEAD("security.istio.io/v1", "RequestAuthentication", "ra") "spec:\n"
         "  selector: {matchLabels: {app: web}}\n"
         "  jwtRules:\n"
         "  - issuer: https://issuer.example.com\n"
         "    jwksUri: https://issuer.example.com/jwks.json\n"
         "    fromHeaders: [{name: x-jwt, prefix: \"Bearer \"}]\n"
         "    outputClaimToHeaders: [{header: x-sub, claim: sub}]\n");
    expect_clean();
    cr_assert_eq(set.n, 3);
    const struct mesh_peer_authentication *pa = set.items[0]->typed.peer_authentication;
    cr_assert_str_eq(pa->port_level_mtls[0].key, "8080");
    cr_assert_eq(pa->port_level_mtls[0].value.mode, MESH_MTLS_DISABLE);
    const struct mesh_authorization_policy *ap = set.items[1]->typed.authorization_policy;
    cr_assert_eq(ap->action, MESH_AUTHZ_DENY);
    cr_assert_str_eq(ap->rules[0].when[1].not_values[0], "1.2.3.4");
    unload();

    load(HEAD("security.istio.io/v1", "PeerAuthentication", "pa") "spec:\n"
         "  mtls: {mode: STRICTER}\n"
         "  portLevelMtls:\n"
         "    http: {mode: DISABLE}\n"
         "---\n"
         HEAD("security.istio.io/v1", "AuthorizationPolicy", "ap") "spec:\n"
         "  action: CUSTOM\n"
         "  selector: {matchLabels: {app: \"*\"}}\n"
         "  targetRef: {kind: Service, name: web}\n"
         "  rules:\n"
         "  - from: []\n"
         "    to: [{operation: {ports: [http], paths: [\"/a/{**}/{*}\"]}}]\n"
         "    when: [{key: request.color, values: [red]}, {key: destination.port}]\n"
         "---\n"
         HEAD("security.istio.io/v1", "AuthorizationPolicy", "deny") "spec:\n  action: DENY\n"
         "---\n"
         HEAD("security.istio.io/v1", "RequestAuthentication", "ra") "spec:\n"
         "  jwtRules:\n"
         "  - jwksUri: ftp://x\n"
         "    jwks: \"{not json\"\n");
    expect_diag_part("spec.mtls.mode: invalid value \"STRICTER\"");
    expect_diag_part("spec.portLevelMtls.http: port must be in range 1..65535");
    expect_diag_part("spec.portLevelMtls: mesh/namespace peer authentication cannot have port "
                     "level mTLS");
    expect_diag_part("spec.selector.matchLabels.app: wildcard is not supported in selector values");
    expect_diag_part("AuthorizationPolicy default/ap: spec: only one of targetRefs, targetRef or "
                     "selector can be set");
    expect_diag_part("spec.provider.name: \"provider.name\" must not be empty");
    expect_diag_part("spec.rules[0].from: \"from\" must not be empty");
    expect_diag_part("spec.rules[0].to[0].operation.ports[0]: invalid port \"http\"");
    expect_diag_part("spec.rules[0].to[0].operation.paths[0]: invalid path template");
    expect_diag_part("spec.rules[0].when[0].key: unknown attribute \"request.color\"");
    expect_diag_part("spec.rules[0].when[1]: at least one of \"values\" or \"notValues\" must be "
                     "set");
    expect_diag_part("AuthorizationPolicy default/deny: spec: DENY action without \"rules\" is "
                     "meaningless");
    expect_diag_part("spec.jwtRules[0].issuer: is required");
    expect_diag_part("spec.jwtRules[0].jwks: only one of \"jwksUri\" and \"jwks\" may be set");
    expect_diag_part("spec.jwtRules[0].jwksUri: invalid jwksUri \"ftp://x\"");
    cr_assert_eq(set.n, 0);
    unload();
}

LEAK_TEST(kinds, kubernetes_service_endpoints_slices)
{
    load(HEAD("v1", "Service", "reviews") "  namespace: bookinfo\n  labels: {app: reviews}\n"
         "spec:\n"
         "  selector: {app: reviews}\n"
         "  ports:\n"
         "  - {name: http, port: 9080, targetPort: 9080}\n"
         "  - {name: grpc, port: 9090, targetPort: grpc-port, appProtocol: grpc}\n"
         "status: {loadBalancer: {}}\n"
         "---\n"
         HEAD("v1", "Endpoints", "reviews") "  namespace: bookinfo\n"
         "subsets:\n"
         "- addresses: [{ip: 10.0.0.1, targetRef: {kind: Pod, name: reviews-1}}]\n"
         "  notReadyAddresses: [{ip: 10.0.0.2}]\n"
         "  ports: [{name: http, port: 9080, protocol: TCP}]\n"
         "---\n"
         HEAD("discovery.k8s.io/v1", "EndpointSlice", "reviews-abc") "  namespace: bookinfo\n"
         "  labels: {kubernetes.io/service-name: reviews}\n"
         "addressType: IPv4\n"
         "endpoints:\n"
         "- addresses: [10.0.0.1]\n"
         "  conditions: {ready: true}\n"
         "  zone: us-east-1a\n"
         "ports: [{name: http, port: 9080, protocol: TCP}]\n");
    expect_clean();
    cr_assert_eq(set.n, 3);
    const struct mesh_k8s_service_spec *svc = set.items[0]->typed.service;
    cr_assert_eq(svc->n_ports, 2);
    cr_assert_eq(svc->ports[0].target_port.num, 9080);
    cr_assert_null(svc->ports[0].target_port.str);
    cr_assert_str_eq(svc->ports[1].target_port.str, "grpc-port");
    const struct mesh_k8s_endpoints *ep = set.items[1]->typed.endpoints;
    cr_assert_str_eq(ep->subsets[0].addresses[0].target_ref->name, "reviews-1");
    cr_assert_eq(set.items[1]->spec, set.items[1]->object, "Endpoints has no spec");
    const struct mesh_k8s_endpoint_slice *es = set.items[2]->typed.endpoint_slice;
    cr_assert_str_eq(es->address_type, "IPv4");
    cr_assert(es->endpoints[0].conditions->ready.v);
    cr_assert_eq(es->ports[0].port.v, 9080);
    cr_assert_not(has_diag_part("warning"), "Kubernetes objects are acted on");
    unload();

    load(HEAD("v1", "Service", "9bad") "spec:\n"
         "  type: Magic\n"
         "  ports:\n"
         "  - {port: 80, protocol: HTTP}\n"
         "  - {port: 80, targetPort: 0, protocol: HTTP}\n"
         "---\n"
         HEAD("v1", "Service", "ext") "spec: {type: ExternalName}\n"
         "---\n"
         HEAD("discovery.k8s.io/v1", "EndpointSlice", "s") "addressType: IPv6\n"
         "endpoints: [{addresses: [10.0.0.1]}, {addresses: []}]\n"
         "---\n"
         HEAD("v1", "Endpoints", "e") "subsets: [{addresses: [{hostname: x}]}]\n"
         "spec: {}\n");
    expect_diag_part("Service default/9bad: metadata.name: invalid name \"9bad\": must start with "
                     "a lower case letter");
    expect_diag_part("spec.type: unsupported value \"Magic\"");
    expect_diag_part("spec.ports[0].protocol: unsupported value \"HTTP\": must be one of TCP, UDP, "
                     "SCTP");
    expect_diag_part("spec.ports[1].targetPort: must be between 1 and 65535");
    expect_diag_part("spec.ports[0]: name is required when a Service has more than one port");
    expect_diag_part("spec.ports[1]: duplicate port 80/HTTP");
    expect_diag_part("Service default/ext: spec.externalName: is required for type ExternalName");
    expect_diag_part("endpoints[0].addresses[0]: invalid address \"10.0.0.1\" for addressType "
                     "IPv6");
    expect_diag_part("endpoints[1].addresses: must not be empty");
    expect_diag_part("Endpoints default/e: subsets[0].addresses[0].ip: is required");
    expect_diag_part("Endpoints default/e: spec: unknown field");
    cr_assert_eq(set.n, 0);
    unload();
}
