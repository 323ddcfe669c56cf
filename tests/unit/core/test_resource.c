#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/resource-int.h"
#include "core/resource.h"
#include "resource_fixture.h"
#include "../leakcheck.h"

/* ---- The typed model ---- */

LEAK_TEST(resource, virtual_service_typed_fields)
{
    int rc = load(VS_HEAD "  hosts: [reviews, \"*.example.com\"]\n"
                          "  http:\n"
                          "  - name: canary\n"
                          "    match:\n"
                          "    - uri: {prefix: /api}\n"
                          "      headers:\n"
                          "        end-user: {exact: jason}\n"
                          "        x-any: {}\n"
                          "    route:\n"
                          "    - destination: {host: reviews, subset: v2, port: {number: 9080}}\n"
                          "      weight: 25\n"
                          "    - destination: {host: reviews, subset: v1}\n"
                          "      weight: 75\n"
                          "    timeout: 1.5s\n"
                          "    retries: {attempts: 3, perTryTimeout: 250ms, retryOn: \"5xx,503\"}\n"
                          "    fault:\n"
                          "      delay: {fixedDelay: 0.5s, percentage: {value: 10}}\n"
                          "  - route:\n"
                          "    - destination: {host: reviews}\n");
    cr_assert_eq(rc, MESH_OK);
    expect_clean();
    cr_assert_eq(set.n, 1);
    const struct mesh_resource *r = set.items[0];
    cr_assert_eq(r->kind, MESH_KIND_VIRTUAL_SERVICE);
    cr_assert_str_eq(r->key, "VirtualService/default/reviews");
    cr_assert_str_eq(r->meta.namespace_, "default");
    cr_assert_not(r->meta.namespace_set);
    cr_assert_str_eq(r->api_version, "networking.istio.io/v1");
    const struct mesh_virtual_service *vs = r->typed.virtual_service;
    cr_assert_eq(vs->n_hosts, 2);
    cr_assert_str_eq(vs->hosts[1], "*.example.com");
    cr_assert_eq(vs->n_http, 2);
    const struct mesh_http_route *h = &vs->http[0];
    cr_assert_str_eq(h->name, "canary");
    cr_assert_str_eq(h->match[0].uri->prefix, "/api");
    cr_assert_null(h->match[0].uri->exact);
    cr_assert_eq(h->match[0].n_headers, 2);
    cr_assert_str_eq(h->match[0].headers[0].key, "end-user");
    cr_assert_str_eq(h->match[0].headers[0].value.exact, "jason");
    cr_assert_null(h->match[0].headers[1].value.exact, "{} is a presence match");
    cr_assert_eq(h->n_route, 2);
    cr_assert_eq(h->route[0].weight, 25);
    cr_assert_eq(h->route[0].destination->port->number, 9080);
    cr_assert_str_eq(h->route[1].destination->subset, "v1");
    cr_assert(h->timeout.set);
    cr_assert_eq(h->timeout.ns, 1500000000LL);
    cr_assert_eq(h->retries->attempts, 3);
    cr_assert_eq(MESH_DURATION_MS(h->retries->per_try_timeout), 250);
    cr_assert_eq(h->fault->delay->fixed_delay.ns, 500000000LL);
    cr_assert_eq(h->fault->delay->percentage->value, 10.0);
    cr_assert_not(vs->http[1].timeout.set);
    /* the JSON form for the store */
    cr_assert_str_eq(json_string_value(json_object_get(r->object, "kind")), "VirtualService");
    cr_assert(json_is_array(json_object_get(r->spec, "http")));
    cr_assert_eq(mesh_resource_set_find(&set, "VirtualService/default/reviews"), r);
    cr_assert_null(mesh_resource_set_find(&set, "VirtualService/default/nope"));
    unload();
}

/* ---- Errors: exact FILE:LINE:COL: KIND NS/NAME: PATH: MESSAGE ---- */

LEAK_TEST(resource, weight_out_of_range)
{
    int rc = load(VS_HEAD "  hosts: [reviews]\n"
                          "  http:\n"
                          "  - route:\n"
                          "    - destination:\n"
                          "        host: reviews\n"
                          "        subset: v1\n"
                          "      weight: 50\n"
                          "    - destination:\n"
                          "        host: reviews\n"
                          "        subset: v2\n"
                          "      weight: 150\n");
    cr_assert_eq(rc, MESH_EINVAL);
    expect_diag("f.yaml:16:15: VirtualService default/reviews: spec.http[0].route[1].weight: "
                "must be between 0 and 100");
    expect_diag("f.yaml:9:5: VirtualService default/reviews: spec.http[0].route: weights of the "
                "destinations must sum to 100, got 200");
    cr_assert_eq(set.n, 0, "a resource with errors is not loaded");
    cr_assert_eq(set.n_invalid, 1);
    unload();
}

LEAK_TEST(resource, every_error_of_a_file)
{
    load(VS_HEAD "  hosts: [reviews]\n"
                 "  http:\n"
                 "  - route:\n"
                 "    - destination: {host: reviews}\n"
                 "    timeout: 10\n"
                 "    retries: {attempts: three}\n"
                 "    bogus: 1\n"
                 "---\n"
                 DR_HEAD "  hosst: reviews\n"
                 "---\n"
                 VS_HEAD "  hosts: [ratings]\n"
                 "  http:\n"
                 "  - route:\n"
                 "    - destination: {host: ratings}\n");
    expect_diag("f.yaml:10:14: VirtualService default/reviews: spec.http[0].timeout: must be a "
                "duration such as \"10s\" or \"250ms\", not an integer");
    expect_diag("f.yaml:11:25: VirtualService default/reviews: spec.http[0].retries.attempts: "
                "must be an integer, not a string");
    expect_diag("f.yaml:12:5: VirtualService default/reviews: spec.http[0].bogus: unknown field");
    expect_diag("f.yaml:19:3: DestinationRule default/reviews: spec.hosst: unknown field (did you "
                "mean \"host\"?)");
    expect_diag("f.yaml:19:3: DestinationRule default/reviews: spec.host: is required");
    cr_expect_eq(set.diags.n_errors, 5);
    cr_expect_eq(set.n, 1, "the valid third document is kept");
    cr_expect_eq(set.n_invalid, 2);
    unload();
}

LEAK_TEST(resource, type_errors_name_the_type)
{
    load(VS_HEAD "  hosts: [reviews, 80]\n"
                 "  exportTo: .\n"
                 "  http:\n"
                 "  - route:\n"
                 "    - destination: {host: reviews}\n"
                 "    match:\n"
                 "    - ignoreUriCase: \"yes\"\n"
                 "      uri: [a]\n");
    expect_diag("f.yaml:6:20: VirtualService default/reviews: spec.hosts[1]: must be a string, "
                "not an integer (quote it: \"80\")");
    expect_diag("f.yaml:7:13: VirtualService default/reviews: spec.exportTo: must be a list, not "
                "a string");
    expect_diag("f.yaml:12:22: VirtualService default/reviews: spec.http[0].match[0]."
                "ignoreUriCase: must be true or false, not a string");
    expect_diag("f.yaml:13:12: VirtualService default/reviews: spec.http[0].match[0].uri: must "
                "be a mapping, not a list");
    unload();
}

LEAK_TEST(resource, enums_list_the_values)
{
    load(DR_HEAD "  host: reviews\n"
                 "  trafficPolicy:\n"
                 "    loadBalancer:\n"
                 "      simple: FASTEST\n");
    expect_diag("f.yaml:9:15: DestinationRule default/reviews: spec.trafficPolicy.loadBalancer."
                "simple: invalid value \"FASTEST\": must be one of UNSPECIFIED, LEAST_CONN, "
                "RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST");
    unload();
}

LEAK_TEST(resource, durations)
{
    load(VS_HEAD "  hosts: [a]\n"
                 "  http:\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: 1h\n"
                 "    retries: {attempts: 1, perTryTimeout: 0.5s}\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: 0s\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: 1.5ms\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: soon\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: -1s\n"
                 "  - route: [{destination: {host: a}}]\n"
                 "    timeout: 1m30s\n");
    expect_diag("f.yaml:12:14: VirtualService default/reviews: spec.http[1].timeout: duration must "
                "be at least 1ms");
    expect_diag("f.yaml:14:14: VirtualService default/reviews: spec.http[2].timeout: only "
                "durations to millisecond precision are supported");
    expect_diag("f.yaml:16:14: VirtualService default/reviews: spec.http[3].timeout: invalid "
                "duration \"soon\" (use e.g. \"1h\", \"1.5s\", \"250ms\")");
    expect_diag("f.yaml:18:14: VirtualService default/reviews: spec.http[4].timeout: duration "
                "must not be negative");
    cr_expect_eq(set.diags.n_errors, 4);
    unload();

    int64_t ns;
    cr_assert(mesh_resource__parse_duration("1h", &ns) && ns == 3600000000000LL);
    cr_assert(mesh_resource__parse_duration("250ms", &ns) && ns == 250000000LL);
    cr_assert(mesh_resource__parse_duration("1.5s", &ns) && ns == 1500000000LL);
    cr_assert(mesh_resource__parse_duration("0.5s", &ns) && ns == 500000000LL);
    cr_assert(mesh_resource__parse_duration("1m30s", &ns) && ns == 90000000000LL);
    cr_assert(mesh_resource__parse_duration("10us", &ns) && ns == 10000);
    cr_assert(mesh_resource__parse_duration("0", &ns) && ns == 0);
    cr_assert_not(mesh_resource__parse_duration("", &ns));
    cr_assert_not(mesh_resource__parse_duration("10", &ns));
    cr_assert_not(mesh_resource__parse_duration("s", &ns));
    cr_assert_not(mesh_resource__parse_duration("1d", &ns));
    cr_assert_not(mesh_resource__parse_duration("9999999999h", &ns));
}

LEAK_TEST(resource, regexes_are_compiled)
{
    load(VS_HEAD "  hosts: [a]\n"
                 "  http:\n"
                 "  - match:\n"
                 "    - uri: {regex: \"^/api/(v1|v2\"}\n"
                 "      headers:\n"
                 "        cookie: {regex: \"^(.*?;)?(user=dev-123)(;.*)?\"}\n"
                 "    route: [{destination: {host: a}}]\n");
    expect_diag_part("f.yaml:9:20: VirtualService default/reviews: spec.http[0].match[0].uri."
                     "regex: invalid regex: missing closing parenthesis at offset 12");
    cr_expect_eq(set.diags.n_errors, 1);
    unload();
}

LEAK_TEST(resource, hosts_and_wildcards)
{
    load(VS_HEAD "  hosts: [\"*\", \"a..b\", \"*.ok.example.com\", \"x*y.com\", 10.0.0.1]\n"
                 "  http:\n"
                 "  - route: [{destination: {host: \"*\"}}]\n");
    expect_diag("f.yaml:6:11: VirtualService default/reviews: spec.hosts[0]: wildcard host * is "
                "not allowed for virtual services bound to the mesh gateway");
    expect_diag_part("spec.hosts[1]: invalid host \"a..b\"");
    expect_diag_part("spec.hosts[3]: invalid host \"x*y.com\"");
    cr_expect_not(has_diag_part("spec.hosts[2]"));
    cr_expect_not(has_diag_part("spec.hosts[4]"), "IP addresses are allowed");
    expect_diag_part("spec.http[0].route[0].destination.host: invalid destination host \"*\"");
    unload();
}

LEAK_TEST(resource, one_of_groups)
{
    load(VS_HEAD "  hosts: [a]\n"
                 "  http:\n"
                 "  - match:\n"
                 "    - uri: {exact: /a, prefix: /b}\n"
                 "      method: {}\n"
                 "    route: [{destination: {host: a}}]\n"
                 "    redirect: {uri: /x}\n"
                 "  - fault: {abort: {httpStatus: 503}}\n");
    expect_diag("f.yaml:9:24: VirtualService default/reviews: spec.http[0].match[0].uri.prefix: "
                "only one of \"exact\" and \"prefix\" may be set");
    expect_diag("f.yaml:10:15: VirtualService default/reviews: spec.http[0].match[0].method: must "
                "set one of \"exact\", \"prefix\" or \"regex\"");
    expect_diag("f.yaml:12:5: VirtualService default/reviews: spec.http[0]: HTTP route cannot "
                "contain both route and redirect");
    expect_diag("f.yaml:13:5: VirtualService default/reviews: spec.http[1]: HTTP route must do "
                "one of route, redirect, directResponse or delegate");
    unload();
}

LEAK_TEST(resource, labels_and_ports)
{
    load(DR_HEAD "  host: reviews.default.svc.cluster.local\n"
                 "  subsets:\n"
                 "  - name: v1\n"
                 "    labels: {\"-bad\": x, version: \"v 1\", app.kubernetes.io/name: ok}\n"
                 "  - name: v1\n"
                 "  trafficPolicy:\n"
                 "    portLevelSettings:\n"
                 "    - port: {number: 70000}\n"
                 "      loadBalancer: {simple: RANDOM}\n");
    expect_diag_part("spec.subsets[0].labels[\"-bad\"]: invalid label key \"-bad\"");
    expect_diag_part("spec.subsets[0].labels.version: invalid label value \"v 1\"");
    cr_expect_not(has_diag_part("app.kubernetes.io/name"));
    expect_diag("f.yaml:10:11: DestinationRule default/reviews: spec.subsets[1].name: duplicate "
                "subset name v1");
    expect_diag("f.yaml:13:22: DestinationRule default/reviews: spec.trafficPolicy."
                "portLevelSettings[0].port.number: must be between 1 and 65535");
    unload();
}

/* ---- Warnings ---- */

LEAK_TEST(resource, warnings_for_fields_not_acted_on)
{
    int rc = load(VS_HEAD "  hosts: [a]\n"
                          "  gateways: [mesh]\n"
                          "  http:\n"
                          "  - match:\n"
                          "    - uri: {prefix: /}\n"
                          "      statPrefix: v\n"
                          "    route: [{destination: {host: a}}]\n"
                          "    mirrorPercent: 5\n"
                          "  tcp:\n"
                          "  - route: [{destination: {host: a}}]\n");
    cr_assert_eq(rc, MESH_OK, "warnings are not errors");
    cr_expect_not(has_diag_part("spec.gateways"), "acted on by the compiler");
    expect_diag("f.yaml:11:7: VirtualService default/reviews: warning: spec.http[0].match[0]."
                "statPrefix: not enforced yet: meshd accepts this field but does not act on it");
    expect_diag("f.yaml:13:5: VirtualService default/reviews: warning: spec.http[0].mirrorPercent: "
                "deprecated: use \"mirrorPercentage\"");
    cr_expect_not(has_diag_part("spec.tcp"), "tcp routes are acted on (tcp_routes)");
    cr_expect_not(has_diag_part("spec.hosts"));
    cr_expect_not(has_diag_part("uri"));
    cr_expect_eq(set.n, 1);
    unload();
}

LEAK_TEST(resource, whole_kind_not_acted_warns_per_spec_field)
{
    load("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n"
         "  namespace: istio-system\nspec:\n  mtls:\n    mode: STRICT\n");
    expect_diag("f.yaml:7:3: PeerAuthentication istio-system/default: warning: spec.mtls: not "
                "enforced yet: meshd accepts this field but does not act on it");
    cr_expect_eq(set.n, 1);
    cr_expect_eq(set.items[0]->typed.peer_authentication->mtls->mode, MESH_MTLS_STRICT);
    unload();
}

/* ---- Inputs: JSON, several documents, directories ---- */

LEAK_TEST(resource, json_input)
{
    const char *j = "{\"apiVersion\": \"networking.istio.io/v1alpha3\", "
                    "\"kind\": \"DestinationRule\",\n"
                    " \"metadata\": {\"name\": \"r\", \"namespace\": \"prod\"},\n"
                    " \"spec\": {\"host\": \"r\", \"trafficPolicy\": {\"connectionPool\":\n"
                    "   {\"tcp\": {\"maxConnections\": \"100\"}}}}}\n";
    load(j);
    expect_diag("f.yaml:4:31: DestinationRule prod/r: spec.trafficPolicy.connectionPool.tcp."
                "maxConnections: must be an integer, not a string");
    unload();
    load("{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\"},"
         " \"spec\": {\"ports\": [{\"port\": 80, \"targetPort\": \"http\"}]}}");
    expect_clean();
    cr_assert_eq(set.n, 1);
    cr_assert_str_eq(set.items[0]->typed.service->ports[0].target_port.str, "http");
    unload();
}

LEAK_TEST(resource, skipped_kinds_and_fragments)
{
    int rc = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n"
                  "# a snippet\n# FRAGMENT: partial spec\nhosts: [a]\n---\n"
                  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n");
    cr_assert_eq(rc, MESH_OK);
    expect_diag("f.yaml:1:1: Deployment default/web: note: skipped: meshd does not read "
                "Deployment objects");
    expect_diag("f.yaml:7:1: note: skipping a fragment (a document without \"kind\")");
    expect_diag("f.yaml:9:1: ConfigMap x/c: note: skipped: meshd does not read ConfigMap objects");
    cr_assert_eq(set.n_skipped, 3);
    cr_assert_eq(set.n, 0);
    unload();

    rc = load("hosts: [a]\n");
    cr_assert_eq(rc, MESH_EINVAL);
    expect_diag("f.yaml:1:1: the document has no \"kind\" (mark a partial snippet with a \"# "
                "FRAGMENT\" comment, or use --fragments)");
    unload();
    rc = load_flags("hosts: [a]\n", MESH_LOAD_FRAGMENTS);
    cr_assert_eq(rc, MESH_OK);
    cr_assert_eq(set.n_skipped, 1);
    unload();
}

LEAK_TEST(resource, api_versions_and_metadata)
{
    load("apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata:\n  name: Bad_Name\n"
         "  namespace: prod\n  labels: {app: web}\nspec:\n  hosts: [a]\n  http:\n"
         "  - route: [{destination: {host: a}}]\n---\n"
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nspec: {}\n");
    expect_diag("f.yaml:1:13: VirtualService prod/Bad_Name: apiVersion: \"networking.istio.io/v2\" "
                "is not served for VirtualService (use networking.istio.io/v1, "
                "networking.istio.io/v1beta1, networking.istio.io/v1alpha3)");
    expect_diag_part("f.yaml:4:9: VirtualService prod/Bad_Name: metadata.name: invalid name "
                     "\"Bad_Name\": must be a DNS-1123 subdomain");
    expect_diag("f.yaml:12:1: AuthorizationPolicy default/<unnamed>: metadata.name: is required");
    cr_assert_eq(set.n, 0);
    unload();
}

LEAK_TEST(resource, missing_spec_still_checked)
{
    load("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: empty}\n");
    expect_diag("f.yaml:1:1: VirtualService default/empty: spec: http, tcp or tls must be "
                "provided in virtual service");
    unload();
    load("apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\n"
         "metadata: {name: deny-all, namespace: foo}\n");
    expect_clean();
    cr_assert_eq(set.n, 1, "an AuthorizationPolicy without spec is valid (deny all)");
    cr_assert(json_is_object(set.items[0]->spec));
    cr_assert_eq(set.items[0]->typed.authorization_policy->action, MESH_AUTHZ_ALLOW);
    unload();
}

LEAK_TEST(resource, duplicates_last_wins)
{
    load(DR_HEAD "  host: a\n---\n" DR_HEAD "  host: b\n");
    expect_diag("f.yaml:8:1: DestinationRule default/reviews: warning: defined again (first at "
                "f.yaml:1); the last definition wins");
    cr_assert_eq(set.n, 1);
    cr_assert_str_eq(set.items[0]->typed.destination_rule->host, "b");
    unload();
}

LEAK_TEST(resource, null_means_absent_and_snake_case_is_read)
{
    load(VS_HEAD "  hosts: [a]\n  gateways: ~\n  http:\n  - route: [{destination: {host: a}}]\n"
                 "    redirect_x: 1\n"
                 "    mirror_percentage: {value: 5}\n");
    expect_diag("f.yaml:10:5: VirtualService default/reviews: spec.http[0].redirect_x: unknown "
                "field (did you mean \"redirect\"?)");
    expect_diag("f.yaml:11:5: VirtualService default/reviews: warning: spec.http[0]."
                "mirror_percentage: read as \"mirrorPercentage\": Kubernetes only knows the "
                "camelCase spelling");
    cr_expect_not(has_diag_part("gateways"));
    unload();
}

LEAK_TEST(resource, kubernetes_list)
{
    load("apiVersion: v1\nkind: List\nitems:\n"
         "- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n"
         "  spec: {ports: [{port: 1}]}\n"
         "- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n"
         "  spec: {ports: [{port: 2}]}\n");
    expect_clean();
    cr_assert_eq(set.n, 2);
    cr_assert_eq(set.n_docs, 2);
    unload();
}

/* ---- Files and directories ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

LEAK_TEST(resource, directories_sorted_and_filtered)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/meshd-res-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    write_file("b.yaml", DR_HEAD "  host: b\n");
    write_file("a.json", "{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": "
                         "\"DestinationRule\", \"metadata\": {\"name\": \"a\"}, "
                         "\"spec\": {\"host\": \"a\"}}\n");
    write_file("c.yml", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: c}\n"
                        "subsets:\n- addresses: [{ip: 10.0.0.300}]\n");
    write_file("notes.txt", "not yaml: [\n");
    write_file(".hidden.yaml", "not yaml: [\n");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    write_file("sub/d.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: d}\n"
                             "spec: {ports: [{port: 80}]}\n");

    mesh_resource_set_init(&set);
    int rc = mesh_resource_load_path(&set, tmpdir, 0);
    cr_assert_eq(rc, MESH_EINVAL);
    cr_assert_eq(set.n, 2);
    cr_assert_str_eq(set.items[0]->meta.name, "a", "a.json comes first");
    cr_assert_str_eq(set.items[1]->meta.name, "reviews");
    char want[256];
    snprintf(want, sizeof(want), "%s/c.yml:5:20: Endpoints default/c: subsets[0].addresses[0].ip: "
                                 "invalid IP address \"10.0.0.300\": not a valid IP address",
             tmpdir);
    expect_diag(want);
    cr_assert_eq(set.diags.n_errors, 1, "notes.txt and .hidden.yaml are not read");
    unload();

    mesh_resource_set_init(&set);
    mesh_resource_load_path(&set, tmpdir, MESH_LOAD_RECURSIVE);
    cr_assert_eq(set.n, 3);
    cr_assert_str_eq(set.items[2]->meta.name, "d");
    unload();

    mesh_resource_set_init(&set);
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/none.yaml", tmpdir);
    cr_assert_eq(mesh_resource_load_path(&set, missing, 0), MESH_EIO);
    snprintf(want, sizeof(want), "%s/none.yaml: cannot open: No such file or directory", tmpdir);
    expect_diag(want);
    unload();
    rm_tree();
}

LEAK_TEST(resource, kind_names)
{
    cr_assert_eq(mesh_kind_parse("VirtualService"), MESH_KIND_VIRTUAL_SERVICE);
    cr_assert_eq(mesh_kind_parse("virtualservices"), MESH_KIND_VIRTUAL_SERVICE);
    cr_assert_eq(mesh_kind_parse("vs"), MESH_KIND_VIRTUAL_SERVICE);
    cr_assert_eq(mesh_kind_parse("svc"), MESH_KIND_SERVICE);
    cr_assert_eq(mesh_kind_parse("endpointslices"), MESH_KIND_ENDPOINT_SLICE);
    cr_assert_eq(mesh_kind_parse("Deployment"), MESH_KIND_UNKNOWN);
    cr_assert_str_eq(mesh_kind_name(MESH_KIND_AUTHORIZATION_POLICY), "AuthorizationPolicy");
    cr_assert_str_eq(mesh_kind_group(MESH_KIND_ENDPOINT_SLICE), "discovery.k8s.io");
    cr_assert_str_eq(mesh_kind_group(MESH_KIND_SERVICE), "");
}
