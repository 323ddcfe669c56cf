/*
 * The compiler's traffic management mappings (issue 4): each VirtualService
 * and DestinationRule field -> its snapshot field, compared as JSON, and the
 * warnings for what is still not enforced. Every snapshot is parsed back.
 */
#include "compile_fixture.h"

#define SVC(name, ns, ip, port)                                                                    \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: " name ", namespace: " ns "}\n"                                              \
    "spec:\n"                                                                                      \
    "  clusterIP: " ip "\n"                                                                        \
    "  ports: [{name: http, port: " port "}]\n"

#define VS_HEAD(name)                                                                              \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: VirtualService\n"                                                                       \
    "metadata: {name: " name ", namespace: default}\n"                                             \
    "spec:\n"                                                                                      \
    "  hosts: [" name "]\n"                                                                        \
    "  http:\n"

#define WEB SVC("web", "default", "10.96.0.1", "80") SVC("shadow", "default", "10.96.0.2", "80")
#define WEB_VH "web.default.svc.cluster.local"
#define WEB_CL "outbound|80||web.default.svc.cluster.local"
#define SHADOW_CL "outbound|80||shadow.default.svc.cluster.local"
#define VS "VirtualService default/web"

static json_t *web_route(size_t i)
{
    json_t *vh = vhost(WEB_VH);
    cr_assert(vh, "no virtual host " WEB_VH);
    return route(vh, i);
}

static json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        o = json_object_get(o, tok);
    return o;
}

/* ---- Matches ---- */

COMPILE_TEST(match_fields)
{
    load(WEB VS_HEAD("web")
         "  - match:\n"
         "    - uri: {prefix: /API}\n"
         "      ignoreUriCase: true\n"
         "      method: {exact: POST}\n"
         "      scheme: {exact: https}\n"
         "      authority: {prefix: web}\n"
         "      headers:\n"
         "        end-user: {exact: jason}\n"
         "        X-Canary: {}\n"
         "        x-v: {regex: \"v[0-9]+\"}\n"
         "        x-p: {prefix: a}\n"
         "      withoutHeaders:\n"
         "        x-block: {}\n"
         "        x-env: {exact: test}\n"
         "      queryParams:\n"
         "        debug: {exact: \"1\"}\n"
         "        id: {regex: \"[0-9]+\"}\n"
         "        p: {prefix: a}\n"
         "        any: {}\n"
         "    - uri: {regex: \"/v[0-9]+/.*\"}\n"
         "    - uri: {exact: /x}\n"
         "      headers: {host: {exact: web.example}}\n"
         "    route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "match"),
                "{\"prefix\": \"/API\", \"ignore_case\": true,"
                " \"method\": {\"exact\": \"POST\"}, \"scheme\": {\"exact\": \"https\"},"
                " \"authority\": {\"prefix\": \"web\"},"
                " \"headers\": [{\"name\": \"end-user\", \"exact\": \"jason\"},"
                "   {\"name\": \"x-canary\", \"present\": true},"
                "   {\"name\": \"x-v\", \"regex\": \"v[0-9]+\"},"
                "   {\"name\": \"x-p\", \"prefix\": \"a\"},"
                "   {\"name\": \"x-block\", \"present\": true, \"invert\": true},"
                "   {\"name\": \"x-env\", \"exact\": \"test\", \"invert\": true}],"
                " \"query_params\": [{\"name\": \"debug\", \"exact\": \"1\"},"
                "   {\"name\": \"id\", \"regex\": \"[0-9]+\"},"
                "   {\"name\": \"p\", \"prefix\": \"a\"},"
                "   {\"name\": \"any\", \"present\": true}]}");
    expect_json(jget(web_route(1), "match"), "{\"regex\": \"/v[0-9]+/.*\"}");
    expect_json(jget(web_route(2), "match"),
                "{\"path\": \"/x\", \"authority\": {\"exact\": \"web.example\"}}");
    /* the matches are not catch-alls: Istio's default route follows */
    expect_json(jget(web_route(3), "match"), "{\"prefix\": \"/\"}");
    cr_expect_eq(diags.n_warnings, 0);
}

/* ---- Actions ---- */

COMPILE_TEST(redirect_rewrite_direct)
{
    load(WEB VS_HEAD("web")
         "  - match: [{uri: {prefix: /old}}]\n"
         "    redirect: {uri: /new, authority: b.example, scheme: https, port: 8443,\n"
         "               redirectCode: 308}\n"
         "  - match: [{uri: {prefix: /here}}]\n"
         "    redirect: {authority: c.example, derivePort: FROM_REQUEST_PORT}\n"
         "  - match: [{uri: {prefix: /plain}}]\n"
         "    redirect: {uri: /p, derivePort: FROM_PROTOCOL_DEFAULT}\n"
         "  - match: [{uri: {prefix: /api/}}]\n"
         "    rewrite: {uri: /v2/, authority: api.internal}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {regex: \"/u/([0-9]+)\"}}]\n"
         "    rewrite: {uriRegexRewrite: {match: \"/u/([0-9]+)\", rewrite: \"/users/\\\\1\"}}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {exact: /teapot}}]\n"
         "    directResponse: {status: 418, body: {string: short}}\n");
    compile_in("default");
    expect_json(jget(web_route(0), "redirect"),
                "{\"path\": \"/new\", \"authority\": \"b.example\", \"scheme\": \"https\","
                " \"port\": 8443, \"code\": 308}");
    expect_json(jget(web_route(1), "redirect"), "{\"authority\": \"c.example\", \"port\": 80}");
    expect_json(jget(web_route(2), "redirect"), "{\"path\": \"/p\"}");
    expect_json(jget(web_route(3), "route.rewrite"),
                "{\"prefix\": \"/v2/\", \"authority\": \"api.internal\"}");
    expect_json(jget(web_route(4), "route.rewrite"),
                "{\"regex\": {\"pattern\": \"/u/([0-9]+)\", \"substitution\": \"/users/\\\\1\"}}");
    expect_json(jget(web_route(5), "direct_response"), "{\"status\": 418, \"body\": \"short\"}");
    cr_expect_null(jget(web_route(0), "route"));
}

COMPILE_TEST(header_operations)
{
    load(WEB SVC("v2", "default", "10.96.0.3", "80") VS_HEAD("web")
         "  - headers:\n"
         "      request:\n"
         "        set: {X-Env: prod, host: web.internal}\n"
         "        add: {x-trace: \"1\"}\n"
         "        remove: [X-Debug, connection]\n"
         "      response: {set: {cache-control: no-store}, remove: [server]}\n"
         "    route:\n"
         "    - destination: {host: web}\n"
         "      weight: 90\n"
         "      headers: {response: {add: {x-version: v1}}}\n"
         "    - destination: {host: v2}\n"
         "      weight: 10\n");
    compile_in("default");
    json_t *rt = web_route(0);
    expect_json(jget(rt, "request_headers"),
                "{\"set\": {\"x-env\": \"prod\"}, \"add\": {\"x-trace\": \"1\"},"
                " \"remove\": [\"x-debug\"]}");
    expect_json(jget(rt, "response_headers"),
                "{\"set\": {\"cache-control\": \"no-store\"}, \"remove\": [\"server\"]}");
    /* Istio turns a Host set into an authority rewrite */
    expect_json(jget(rt, "route.rewrite"), "{\"authority\": \"web.internal\"}");
    expect_json(jget(rt, "route.weighted_clusters"),
                "[{\"name\": \"" WEB_CL "\", \"weight\": 90,"
                "  \"response_headers\": {\"add\": {\"x-version\": \"v1\"}}},"
                " {\"name\": \"outbound|80||v2.default.svc.cluster.local\", \"weight\": 10}]");
    cr_expect(has_diag(MESH_DIAG_WARNING, VS, "spec.http[0].headers.request.remove[1]",
                       "the operation is left out"));
}

COMPILE_TEST(destination_headers_on_one_destination)
{
    load(WEB VS_HEAD("web")
         "  - route:\n"
         "    - destination: {host: web}\n"
         "      headers: {request: {set: {x-d: \"1\"}}}\n");
    compile_in("default");
    expect_json(jget(web_route(0), "route.weighted_clusters"),
                "[{\"name\": \"" WEB_CL "\", \"weight\": 100,"
                "  \"request_headers\": {\"set\": {\"x-d\": \"1\"}}}]");
}

COMPILE_TEST(cors)
{
    load(WEB VS_HEAD("web")
         "  - corsPolicy:\n"
         "      allowOrigins: [{exact: \"https://a.example\"}, {prefix: \"https://b\"},\n"
         "                     {regex: \".*\\\\.c\\\\.example\"}]\n"
         "      allowMethods: [GET, POST]\n"
         "      allowHeaders: [x-a]\n"
         "      exposeHeaders: [x-b]\n"
         "      maxAge: 24h\n"
         "      allowCredentials: true\n"
         "      unmatchedPreflights: IGNORE\n"
         "    route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "cors"),
                "{\"allow_origins\": [{\"exact\": \"https://a.example\"},"
                "   {\"prefix\": \"https://b\"}, {\"regex\": \".*\\\\.c\\\\.example\"}],"
                " \"allow_methods\": [\"GET\", \"POST\"], \"allow_headers\": [\"x-a\"],"
                " \"expose_headers\": [\"x-b\"], \"max_age_s\": 86400,"
                " \"allow_credentials\": true, \"unmatched_preflights\": \"ignore\"}");

    load(WEB VS_HEAD("web")
         "  - corsPolicy: {allowOrigin: [\"*\", \"https://d.example\"]}\n"
         "    route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "cors"),
                "{\"allow_origins\": [{\"regex\": \".*\"}, {\"exact\": \"https://d.example\"}]}");
}

COMPILE_TEST(fault)
{
    load(WEB VS_HEAD("web")
         "  - match: [{uri: {prefix: /d}}]\n"
         "    fault:\n"
         "      delay: {fixedDelay: 1.5s, percentage: {value: 12.5}}\n"
         "      abort: {httpStatus: 503, percentage: {value: 100}}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /g}}]\n"
         "    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /old}}]\n"
         "    fault: {delay: {fixedDelay: 2s, percent: 30}}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /none}}]\n"
         "    fault: {abort: {httpStatus: 500}}\n"
         "    route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "fault"),
                "{\"delay\": {\"fixed_delay_ms\": 1500, \"percent\": 12.5},"
                " \"abort\": {\"http_status\": 503, \"percent\": 100}}");
    expect_json(jget(web_route(1), "fault"), "{\"abort\": {\"grpc_status\": 14, \"percent\": 50}}");
    expect_json(jget(web_route(2), "fault"),
                "{\"delay\": {\"fixed_delay_ms\": 2000, \"percent\": 30}}");
    /* Istio: no percentage means no request */
    expect_json(jget(web_route(3), "fault"), "{\"abort\": {\"http_status\": 500, \"percent\": 0}}");
    cr_expect(has_diag(MESH_DIAG_NOTE, VS, "spec.http[3].fault.abort", "no request is affected"));
}

COMPILE_TEST(mirrors)
{
    load(WEB VS_HEAD("web")
         "  - match: [{uri: {prefix: /a}}]\n"
         "    mirror: {host: shadow}\n"
         "    mirrorPercentage: {value: 12.5}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /b}}]\n"
         "    mirror: {host: shadow}\n"
         "    mirror_percent: 40\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /c}}]\n"
         "    mirrors: [{destination: {host: shadow}}, {destination: {host: web},\n"
         "               percentage: {value: 5}}]\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /d}}]\n"
         "    mirror: {host: nowhere.example}\n"
         "    route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "route.mirrors"),
                "[{\"cluster\": \"" SHADOW_CL "\", \"percent\": 12.5}]");
    expect_json(jget(web_route(1), "route.mirrors"),
                "[{\"cluster\": \"" SHADOW_CL "\", \"percent\": 40}]");
    expect_json(jget(web_route(2), "route.mirrors"),
                "[{\"cluster\": \"" SHADOW_CL "\", \"percent\": 100},"
                " {\"cluster\": \"" WEB_CL "\", \"percent\": 5}]");
    /* an unknown host: as for a destination, a cluster with no endpoints, said */
    expect_json(jget(web_route(3), "route.mirrors"),
                "[{\"cluster\": \"outbound|80||nowhere.example\", \"percent\": 100}]");
    cr_expect(has_diag(MESH_DIAG_WARNING, VS, "spec.http[3].mirror", "no service nowhere.example"));
}

/* ---- Retries ---- */

COMPILE_TEST(retries)
{
    load(WEB VS_HEAD("web")
         "  - match: [{uri: {prefix: /a}}]\n"
         "    retries: {attempts: 3, perTryTimeout: 2s,\n"
         "              retryOn: \"5xx,409,reset,retriable-headers\",\n"
         "              retryIgnorePreviousHosts: false, backoff: 100ms,\n"
         "              retryRemoteLocalities: true}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /b}}]\n"
         "    retries: {attempts: 0}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /c}}]\n"
         "    retries: {attempts: 5}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - match: [{uri: {prefix: /d}}]\n"
         "    retries: {attempts: 1, retryOn: \"gateway-error,retriable-status-codes,502\"}\n"
         "    route: [{destination: {host: web}}]\n"
         "  - route: [{destination: {host: web}}]\n");
    compile_in("default");
    expect_json(jget(web_route(0), "route.retry"),
                "{\"attempts\": 3, \"per_try_timeout_ms\": 2000, \"backoff_base_ms\": 100,"
                " \"retry_on\": [\"5xx\", \"reset\", \"retriable-status-codes\"],"
                " \"retriable_status_codes\": [409], \"other_host\": false}");
    cr_expect(has_diag(MESH_DIAG_WARNING, VS, "spec.http[0].retries.retryOn",
                       "'retriable-headers' is not enforced"));
    cr_expect(has_diag(MESH_DIAG_NOTE, VS, "spec.http[0].retries.retryRemoteLocalities",
                       "ignored"));
    cr_expect_null(jget(web_route(1), "route.retry"), "attempts 0 disables retries");
    /* attempts without retryOn: Istio's default conditions */
    expect_json(jget(web_route(2), "route.retry"),
                "{\"attempts\": 5, \"retry_on\": [\"connect-failure\", \"refused-stream\","
                " \"unavailable\", \"cancelled\", \"retriable-status-codes\"],"
                " \"retriable_status_codes\": [503]}");
    expect_json(jget(web_route(3), "route.retry"),
                "{\"attempts\": 1, \"retry_on\": [\"gateway-error\", \"retriable-status-codes\"],"
                " \"retriable_status_codes\": [502]}");
    /* no retries: Istio's default policy */
    expect_json(jget(web_route(4), "route.retry"),
                "{\"attempts\": 2, \"retry_on\": [\"connect-failure\", \"refused-stream\","
                " \"unavailable\", \"cancelled\", \"retriable-status-codes\"],"
                " \"retriable_status_codes\": [503]}");
}

COMPILE_TEST(retries_keep_the_host_when_hashing)
{
    load(WEB "---\n"
             "apiVersion: networking.istio.io/v1\n"
             "kind: DestinationRule\n"
             "metadata: {name: web, namespace: default}\n"
             "spec:\n"
             "  host: web\n"
             "  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n");
    compile_in("default");
    cr_expect(json_is_false(jget(web_route(0), "route.retry.other_host")),
              "Istio's DefaultConsistentHashPolicy: no previous_hosts predicate");
}

/* ---- DestinationRule ---- */

#define DR(policy)                                                                                 \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: DestinationRule\n"                                                                      \
    "metadata: {name: web, namespace: default}\n"                                                  \
    "spec:\n"                                                                                      \
    "  host: web\n"                                                                                \
    "  trafficPolicy: " policy "\n"

static const char *lb_of(const char *policy_yaml)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
             "metadata: {name: web, namespace: default}\nspec: {host: web, trafficPolicy: %s}\n",
             SVC("web", "default", "10.96.0.1", "80"), policy_yaml);
    load(buf);
    compile_in("default");
    return jstr(cluster(WEB_CL), "lb_policy");
}

COMPILE_TEST(load_balancer_simple)
{
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: ROUND_ROBIN}}"), "round_robin");
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: RANDOM}}"), "random");
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: LEAST_REQUEST}}"), "least_request");
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: LEAST_CONN}}"), "least_request");
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: UNSPECIFIED}}"), "least_request");
    cr_expect_str_eq(lb_of("{loadBalancer: {simple: PASSTHROUGH}}"), "passthrough");
    cr_expect_eq(json_array_size(json_object_get(cluster(WEB_CL), "endpoints")), 0);
    cr_expect_eq(diags.n_warnings, 0);
}

COMPILE_TEST(consistent_hash)
{
    const struct {
        const char *yaml, *want;
    } cases[] = {
        {"{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}",
         "{\"lb_policy\": \"ring_hash\", \"hash_policy\": {\"header\": \"x-user\"}}"},
        {"{loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 60s, path: /},"
         " ringHash: {minimumRingSize: 4096}}}}",
         "{\"lb_policy\": \"ring_hash\", \"ring_size\": 4096, \"hash_policy\":"
         " {\"cookie\": {\"name\": \"s\", \"ttl_ms\": 60000, \"path\": \"/\"}}}"},
        {"{loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1021}}}}",
         "{\"lb_policy\": \"maglev\", \"maglev_table_size\": 1021,"
         " \"hash_policy\": {\"source_ip\": true}}"},
        {"{loadBalancer: {consistentHash: {httpQueryParameterName: u, minimumRingSize: 2048}}}",
         "{\"lb_policy\": \"ring_hash\", \"ring_size\": 2048, \"hash_policy\":"
         " {\"query_param\": \"u\"}}"},
        {"{loadBalancer: {simple: RANDOM, warmupDurationSecs: 30s}}",
         "{\"lb_policy\": \"random\", \"slow_start_ms\": 30000}"},
        {"{loadBalancer: {warmup: {duration: 45s}}}",
         "{\"lb_policy\": \"least_request\", \"slow_start_ms\": 45000}"},
    };
    for (size_t i = 0; i < MESH_ARRAY_LEN(cases); i++) {
        lb_of(cases[i].yaml);
        json_t *c = json_deep_copy(cluster(WEB_CL));
        const char *drop[] = {"name", "endpoints", "protocol", "connect_timeout_ms",
                              "idle_timeout_ms", "max_connections", "max_pending_requests",
                              "max_requests_per_connection"};
        for (size_t k = 0; k < MESH_ARRAY_LEN(drop); k++)
            json_object_del(c, drop[k]);
        expect_json(c, cases[i].want);
        json_decref(c);
    }
}

COMPILE_TEST(connection_pool_and_outlier_detection)
{
    load(WEB DR("\n"
                "    connectionPool:\n"
                "      tcp: {maxConnections: 10, connectTimeout: 2s,\n"
                "            tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}}\n"
                "      http: {http1MaxPendingRequests: 5, http2MaxRequests: 50,\n"
                "             maxRequestsPerConnection: 1, maxRetries: 3, idleTimeout: 10s}\n"
                "    outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2,\n"
                "                       interval: 5s, baseEjectionTime: 1m,\n"
                "                       maxEjectionPercent: 50, minHealthPercent: 25}"));
    compile_in("default");
    json_t *c = json_deep_copy(cluster(WEB_CL));
    json_object_del(c, "endpoints");
    expect_json(c, "{\"name\": \"" WEB_CL "\", \"protocol\": \"http1\","
                   " \"lb_policy\": \"least_request\", \"max_connections\": 10,"
                   " \"connect_timeout_ms\": 2000,"
                   " \"tcp_keepalive\": {\"time_s\": 7200, \"interval_s\": 75, \"probes\": 9},"
                   " \"max_pending_requests\": 5, \"max_requests\": 50,"
                   " \"max_requests_per_connection\": 1, \"max_retries\": 3,"
                   " \"idle_timeout_ms\": 10000,"
                   " \"outlier_detection\": {\"consecutive_5xx\": 3,"
                   "   \"consecutive_gateway_errors\": 2, \"interval_ms\": 5000,"
                   "   \"base_ejection_time_ms\": 60000, \"max_ejection_percent\": 50,"
                   "   \"min_health_percent\": 25}}");
    json_decref(c);
    cr_expect_eq(diags.n_warnings, 0);

    /* the deprecated consecutiveErrors counts gateway errors only, as Istio maps it */
    load(WEB DR("{outlierDetection: {consecutiveErrors: 4}}"));
    compile_in("default");
    expect_json(json_object_get(cluster(WEB_CL), "outlier_detection"),
                "{\"consecutive_5xx\": 0, \"consecutive_gateway_errors\": 4}");
}

COMPILE_TEST(policy_precedence_with_outlier_detection)
{
    load(SVC("web", "default", "10.96.0.1", "80")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: web, namespace: default}\n"
         "spec:\n"
         "  host: web\n"
         "  trafficPolicy:\n"
         "    outlierDetection: {consecutive5xxErrors: 7}\n"
         "    portLevelSettings:\n"
         "    - port: {number: 80}\n"
         "      loadBalancer: {simple: RANDOM}\n"
         "  subsets:\n"
         "  - name: a\n"
         "    labels: {x: a}\n"
         "    trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}\n");
    compile_in("default");
    /* the port-level entry replaces the host policy whole: no outlier detection */
    cr_expect_str_eq(jstr(cluster(WEB_CL), "lb_policy"), "random");
    cr_expect_null(json_object_get(cluster(WEB_CL), "outlier_detection"));
    /* the subset overrides field by field */
    json_t *a = cluster("outbound|80|a|" WEB_VH);
    cr_expect_str_eq(jstr(a, "lb_policy"), "random");
    cr_expect_eq(jint(json_object_get(a, "outlier_detection"), "consecutive_5xx"), 1);
}

COMPILE_TEST(still_not_enforced_warns)
{
    load(WEB DR("\n"
                "    tls: {mode: ISTIO_MUTUAL}\n"
                "    connectionPool: {tcp: {idleTimeout: 1h}}\n"
                "    loadBalancer: {consistentHash: {httpCookie: {name: s,\n"
                "                   attributes: [{name: SameSite, value: Strict}]}}}"));
    compile_in("default");
    const char *dr = "DestinationRule default/web";
    cr_expect(has_diag(MESH_DIAG_WARNING, dr, "spec.trafficPolicy.tls", "not enforced yet"));
    cr_expect(has_diag(MESH_DIAG_WARNING, dr, "spec.trafficPolicy.connectionPool.tcp.idleTimeout",
                       "not enforced yet"));
    cr_expect(has_diag(MESH_DIAG_WARNING, dr,
                       "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes",
                       "not enforced yet"));
}

/* ---- Locality ---- */

#define WE(name, ip, loc, extra)                                                                   \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: WorkloadEntry\n"                                                                        \
    "metadata: {name: " name ", namespace: default}\n"                                             \
    "spec: {address: " ip ", locality: \"" loc "\", labels: {app: api" extra "}}\n"

#define API_SVC                                                                                    \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: api, namespace: default}\n"                                                  \
    "spec: {selector: {app: api}, ports: [{name: http, port: 80}]}\n" WE(                          \
        "a", "10.0.0.1", "us-east/z1/s1", "") WE("b", "10.0.0.2", "us-east/z1/s2", "")            \
        WE("c", "10.0.0.3", "us-east/z2", ", net: n1") WE("d", "10.0.0.4", "eu-west/z1", "")      \
            WE("e", "10.0.0.5", "ap-south/z1", ", net: n1")

#define API_CL "outbound|80||api.default.svc.cluster.local"

static long long prio(size_t i)
{
    return jint(json_array_get(json_object_get(cluster(API_CL), "endpoints"), i), "priority");
}

static json_t *compile_at(const char *locality)
{
    struct mesh_node n;
    struct mesh_kv lab[] = {{"net", "n1"}};
    node_for(&n, "default", "client", lab, 1);
    n.locality = locality;
    return compile_node(&n);
}

COMPILE_TEST(locality_failover)
{
    /* the mesh default (enabled), with outlier detection: priorities by distance */
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}\n");
    compile_at("us-east/z1/s1");
    cr_expect_str_eq(jstr(json_array_get(json_object_get(cluster(API_CL), "endpoints"), 0),
                          "locality"),
                     "us-east/z1/s1");
    cr_expect_eq(prio(0), 0);
    cr_expect_eq(prio(1), 1); /* same zone */
    cr_expect_eq(prio(2), 2); /* same region */
    cr_expect_eq(prio(3), 3); /* other regions */
    cr_expect_eq(prio(4), 3);

    /* failover eu-west first when us-east is gone; renumbered to be consecutive */
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy:\n"
                 "    outlierDetection: {consecutive5xxErrors: 1}\n"
                 "    loadBalancer:\n"
                 "      localityLbSetting: {failover: [{from: us-east, to: eu-west}]}\n");
    compile_at("us-east/z2");
    cr_expect_eq(prio(2), 0); /* c: us-east/z2 */
    cr_expect_eq(prio(0), 1); /* a, b: same region */
    cr_expect_eq(prio(1), 1);
    cr_expect_eq(prio(3), 2); /* d: the failover region */
    cr_expect_eq(prio(4), 3); /* e */

    /* no outlier detection: no failover (Istio) */
    load(API_SVC);
    compile_at("us-east/z1/s1");
    cr_expect_eq(prio(4), 0);
}

COMPILE_TEST(locality_failover_priority_and_labels)
{
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy:\n"
                 "    outlierDetection: {consecutive5xxErrors: 1}\n"
                 "    loadBalancer:\n"
                 "      localityLbSetting:\n"
                 "        failoverPriority: [net, topology.kubernetes.io/region]\n");
    /* the node's locality from its labels this time */
    struct mesh_kv lab[] = {{"net", "n1"}, {"topology.kubernetes.io/region", "us-east"},
                            {"topology.kubernetes.io/zone", "z2"}};
    struct mesh_node n;
    node_for(&n, "default", "client", lab, 3);
    compile_node(&n);
    cr_expect_eq(prio(2), 0); /* c: net n1 and us-east */
    cr_expect_eq(prio(4), 1); /* e: net n1 only */
    cr_expect_eq(prio(0), 2); /* a, b, d: neither first label */
    cr_expect_eq(prio(3), 2);
}

COMPILE_TEST(locality_distribute_and_disabled)
{
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy:\n"
                 "    loadBalancer:\n"
                 "      localityLbSetting:\n"
                 "        distribute:\n"
                 "        - from: us-east/z1/*\n"
                 "          to: {\"us-east/z1/*\": 80, \"eu-west/*\": 20}\n");
    compile_at("us-east/z1/s1");
    json_t *eps = json_object_get(cluster(API_CL), "endpoints");
    cr_assert_eq(json_array_size(eps), 3, "us-east/z2 and ap-south receive nothing");
    /* 80 over two localities (40 each, one endpoint each), 20 to eu-west */
    cr_expect_eq(jint(json_array_get(eps, 0), "weight"), 40000);
    cr_expect_eq(jint(json_array_get(eps, 1), "weight"), 40000);
    cr_expect_eq(jint(json_array_get(eps, 2), "weight"), 20000);
    cr_expect_str_eq(jstr(json_array_get(eps, 2), "address"), "10.0.0.4");

    /* enabled: false turns it off */
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy:\n"
                 "    outlierDetection: {consecutive5xxErrors: 1}\n"
                 "    loadBalancer: {localityLbSetting: {enabled: false}}\n");
    compile_at("us-east/z1/s1");
    cr_expect_eq(prio(4), 0);

    /* an unknown locality: nothing to compare with, said */
    load(API_SVC "---\n"
                 "apiVersion: networking.istio.io/v1\n"
                 "kind: DestinationRule\n"
                 "metadata: {name: api, namespace: default}\n"
                 "spec:\n"
                 "  host: api\n"
                 "  trafficPolicy:\n"
                 "    outlierDetection: {consecutive5xxErrors: 1}\n"
                 "    loadBalancer: {localityLbSetting: {enabled: true}}\n");
    compile_in("default");
    cr_expect_eq(prio(4), 0);
    cr_expect(has_diag(MESH_DIAG_NOTE, "DestinationRule default/api", NULL, "unknown"));
}

/* ---- TCP and TLS routes ---- */

#define TCP_SVCS                                                                                   \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: echo, namespace: default}\n"                                                 \
    "spec: {clusterIP: 10.96.1.1, ports: [{name: tcp, port: 9000}]}\n"                             \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: ServiceEntry\n"                                                                         \
    "metadata: {name: ext, namespace: default}\n"                                                  \
    "spec:\n"                                                                                      \
    "  hosts: [a.example.com, b.example.com]\n"                                                    \
    "  ports: [{number: 443, name: tls, protocol: TLS}]\n"                                         \
    "  resolution: STATIC\n"                                                                       \
    "  endpoints: [{address: 10.7.0.1}]\n"                                                         \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: DestinationRule\n"                                                                      \
    "metadata: {name: echo, namespace: default}\n"                                                 \
    "spec:\n"                                                                                      \
    "  host: echo\n"                                                                               \
    "  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n"

static json_t *tcp_routes(size_t listener)
{
    return json_object_get(json_array_get(json_object_get(snap, "listeners"), listener),
                           "tcp_routes");
}

COMPILE_TEST(sidecar_tcp_and_tls_routes)
{
    load(TCP_SVCS "---\n"
                  "apiVersion: networking.istio.io/v1\n"
                  "kind: VirtualService\n"
                  "metadata: {name: echo, namespace: default}\n"
                  "spec:\n"
                  "  hosts: [echo]\n"
                  "  tcp:\n"
                  "  - match: [{port: 9000, destinationSubnets: [10.96.0.0/16]}]\n"
                  "    route:\n"
                  "    - {destination: {host: echo, subset: v1}, weight: 80}\n"
                  "    - {destination: {host: echo, subset: v2}, weight: 20}\n"
                  "  - match: [{port: 9999}]\n"
                  "    route: [{destination: {host: echo, subset: v2}}]\n"
                  "---\n"
                  "apiVersion: networking.istio.io/v1\n"
                  "kind: VirtualService\n"
                  "metadata: {name: ext, namespace: default}\n"
                  "spec:\n"
                  "  hosts: [a.example.com]\n"
                  "  tls:\n"
                  "  - match: [{sniHosts: [a.example.com], port: 443}]\n"
                  "    route: [{destination: {host: b.example.com}}]\n");
    compile_in("default");
    expect_json(tcp_routes(0),
                "[{\"match\": {\"destination_port\": 443, \"sni\": [\"a.example.com\"]},"
                "  \"cluster\": \"outbound|443||b.example.com\"},"
                " {\"match\": {\"destination_port\": 443, \"sni\": [\"b.example.com\"]},"
                "  \"cluster\": \"outbound|443||b.example.com\"},"
                " {\"match\": {\"destination_port\": 9000,"
                "   \"destination_addresses\": [\"10.96.0.0/16\"]},"
                "  \"weighted_clusters\": ["
                "   {\"name\": \"outbound|9000|v1|echo.default.svc.cluster.local\","
                "    \"weight\": 80},"
                "   {\"name\": \"outbound|9000|v2|echo.default.svc.cluster.local\","
                "    \"weight\": 20}]},"
                " {\"match\": {\"destination_port\": 9000,"
                "   \"destination_addresses\": [\"10.96.1.1\"]},"
                "  \"cluster\": \"outbound|9000||echo.default.svc.cluster.local\"}]");
    cr_expect_eq(json_array_size(vhosts()), 0, "no HTTP port, no virtual host");
}

COMPILE_TEST(gateway_tcp_and_tls_servers)
{
    load(TCP_SVCS "---\n"
                  "apiVersion: networking.istio.io/v1\n"
                  "kind: Gateway\n"
                  "metadata: {name: gw, namespace: default}\n"
                  "spec:\n"
                  "  selector: {istio: ingressgateway}\n"
                  "  servers:\n"
                  "  - port: {number: 31400, name: tcp, protocol: TCP}\n"
                  "    hosts: [\"*\"]\n"
                  "  - port: {number: 443, name: tls, protocol: TLS}\n"
                  "    hosts: [\"*.example.com\"]\n"
                  "    tls: {mode: PASSTHROUGH}\n"
                  "---\n"
                  "apiVersion: networking.istio.io/v1\n"
                  "kind: VirtualService\n"
                  "metadata: {name: gw, namespace: default}\n"
                  "spec:\n"
                  "  hosts: [\"*\"]\n"
                  "  gateways: [gw]\n"
                  "  tcp:\n"
                  "  - match: [{port: 31400}]\n"
                  "    route: [{destination: {host: echo, port: {number: 9000}}}]\n"
                  "  tls:\n"
                  "  - match: [{port: 443, sniHosts: [a.example.com]}]\n"
                  "    route: [{destination: {host: a.example.com}}]\n");
    struct mesh_kv lab[] = {{"istio", "ingressgateway"}};
    struct mesh_node n;
    node_for(&n, "default", "gw", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    compile_node(&n);
    json_t *ls = json_object_get(snap, "listeners");
    cr_assert_eq(json_array_size(ls), 2);
    cr_expect_eq(jint(json_array_get(ls, 0), "port"), 443);
    cr_expect_null(json_object_get(json_array_get(ls, 0), "route_config"));
    expect_json(tcp_routes(0), "[{\"match\": {\"sni\": [\"a.example.com\"]},"
                               "  \"cluster\": \"outbound|443||a.example.com\"}]");
    expect_json(tcp_routes(1),
                "[{\"cluster\": \"outbound|9000||echo.default.svc.cluster.local\"}]");
}

COMPILE_TEST(gateway_tcp_server_without_routes)
{
    load(TCP_SVCS "---\n"
                  "apiVersion: networking.istio.io/v1\n"
                  "kind: Gateway\n"
                  "metadata: {name: gw, namespace: default}\n"
                  "spec:\n"
                  "  selector: {istio: ingressgateway}\n"
                  "  servers:\n"
                  "  - port: {number: 80, name: http, protocol: HTTP}\n"
                  "    hosts: [\"*\"]\n"
                  "  - port: {number: 31400, name: tcp, protocol: TCP}\n"
                  "    hosts: [\"*\"]\n");
    struct mesh_kv lab[] = {{"istio", "ingressgateway"}};
    struct mesh_node n;
    node_for(&n, "default", "gw", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    compile_node(&n);
    json_t *ls = json_object_get(snap, "listeners");
    cr_assert_eq(json_array_size(ls), 1, "no route takes 31400: no listener");
    cr_expect_eq(jint(json_array_get(ls, 0), "port"), 80);
    cr_expect(has_diag(MESH_DIAG_WARNING, "Gateway default/gw", "spec.servers[1]",
                       "gets no listener"));
}
