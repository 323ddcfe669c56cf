#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "core/resource-int.h"
#include "core/validate.h"

/*
 * security.istio.io: PeerAuthentication, AuthorizationPolicy,
 * RequestAuthentication, checked like Istio's ValidatePeerAuthentication,
 * ValidateAuthorizationPolicy and ValidateRequestAuthentication.
 */

#define ERR_AT mesh_resource__err_at

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

/* selector, targetRef and targetRefs are alternatives */
static void one_selector_type(struct mesh_rctx *c, const struct mesh_ynode *map)
{
    int n = !!val(map, "selector") + !!val(map, "targetRef") + !!val(map, "targetRefs");
    if (n > 1)
        mesh_resource__err(c, map, "only one of targetRefs, targetRef or selector can be set");
}

/* ---- PeerAuthentication ---- */

static const char *const mtls_mode_names[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT", NULL};

static const struct mesh_field mtls_fields[] = {
    F_S("mode", mesh_mutual_tls, mode, MESH_F_ENUM, .enums = mtls_mode_names),
};
static MESH_SCHEMA(mtls_schema, mesh_mutual_tls, mtls_fields, NULL);

static void check_port_key(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (mesh_validate_port_string(s))
        mesh_resource__err(c, n, "port must be in range 1..65535");
}

static void pa_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_peer_authentication *pa = msg;
    bool empty_selector = !pa->selector || !pa->selector->n_match_labels;
    const struct mesh_ynode *plm = val(map, "portLevelMtls");
    if (empty_selector && pa->n_port_level_mtls)
        ERR_AT(c, key_at(map, "portLevelMtls"), "portLevelMtls",
               "mesh/namespace peer authentication cannot have port level mTLS (set a selector)");
    if (plm && plm->type == MESH_YNODE_MAP && plm->n == 0)
        ERR_AT(c, plm, "portLevelMtls", "port level mTLS, if defined, must have at least one "
                                        "element");
}
static const struct mesh_field pa_fields[] = {
    F_M("selector", mesh_peer_authentication, selector, mesh_schema_label_selector),
    F_M("mtls", mesh_peer_authentication, mtls, mtls_schema),
    F_MAPM("portLevelMtls", mesh_peer_authentication, port_level_mtls, mesh_port_mtls,
           mtls_schema, .key_check = check_port_key),
};
MESH_SCHEMA(mesh_schema_peer_authentication, mesh_peer_authentication, pa_fields, pa_post);

/* ---- AuthorizationPolicy ---- */

static void check_not_empty(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s)
        mesh_resource__err(c, n, "empty value not allowed");
}

static void check_ip_value(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s)
        mesh_resource__err(c, n, "empty value not allowed");
    else
        mesh_check_ip_or_cidr(c, n, s);
}

static void check_port_value(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s)
        mesh_resource__err(c, n, "empty value not allowed");
    else if (mesh_validate_port_string(s))
        mesh_resource__err(c, n, "invalid port \"%.100s\": must be a number 1..65535", s);
}

/* "{*}" matches one path segment and "{**}" any number; both must be whole segments and
 * no operator may follow "{**}" (literal segments may). */
static void check_path_template(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    if (!*s) {
        mesh_resource__err(c, n, "empty value not allowed");
        return;
    }
    if (!strchr(s, '{') && !strchr(s, '}'))
        return;
    if (s[0] != '/') {
        mesh_resource__err(c, n, "path template \"%.100s\" must start with '/'", s);
        return;
    }
    const char *seg = s + 1;
    bool seen_many = false;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        bool brace = memchr(seg, '{', len) || memchr(seg, '}', len);
        if (brace) {
            bool one = len == 3 && memcmp(seg, "{*}", 3) == 0;
            bool many = len == 4 && memcmp(seg, "{**}", 4) == 0;
            if (!one && !many) {
                mesh_resource__err(c, n, "invalid path template \"%.100s\": a segment may only "
                                         "be {*} or {**}", s);
                return;
            }
            if (seen_many) {
                mesh_resource__err(c, n, "invalid path template \"%.100s\": no operator may "
                                         "follow {**}", s);
                return;
            }
            seen_many = seen_many || many;
        }
        if (!slash)
            return;
        seg = slash + 1;
    }
}

#define SRC(nm, fld, chk) F_LS(nm, mesh_authz_source, fld, MESH_F_STRING, .check = chk)
static const struct mesh_field source_fields[] = {
    SRC("principals", principals, check_not_empty),
    SRC("notPrincipals", not_principals, check_not_empty),
    SRC("requestPrincipals", request_principals, check_not_empty),
    SRC("notRequestPrincipals", not_request_principals, check_not_empty),
    SRC("namespaces", namespaces, check_not_empty),
    SRC("notNamespaces", not_namespaces, check_not_empty),
    SRC("ipBlocks", ip_blocks, check_ip_value),
    SRC("notIpBlocks", not_ip_blocks, check_ip_value),
    SRC("remoteIpBlocks", remote_ip_blocks, check_ip_value),
    SRC("notRemoteIpBlocks", not_remote_ip_blocks, check_ip_value),
    SRC("serviceAccounts", service_accounts, check_not_empty),
    SRC("notServiceAccounts", not_service_accounts, check_not_empty),
};
#undef SRC

static void source_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_authz_source *s = msg;
    (void)s;
    if (map->n == 0)
        mesh_resource__err(c, map, "\"source\" must not be empty");
    if ((val(map, "serviceAccounts") || val(map, "notServiceAccounts")) &&
        (val(map, "principals") || val(map, "notPrincipals") || val(map, "namespaces") ||
         val(map, "notNamespaces")))
        mesh_resource__err(c, map, "cannot set serviceAccounts with namespaces or principals");
}
static MESH_SCHEMA(source_schema, mesh_authz_source, source_fields, source_post);

#define OP(nm, fld, chk) F_LS(nm, mesh_authz_operation, fld, MESH_F_STRING, .check = chk)
static const struct mesh_field operation_fields[] = {
    OP("hosts", hosts, check_not_empty),       OP("notHosts", not_hosts, check_not_empty),
    OP("ports", ports, check_port_value),      OP("notPorts", not_ports, check_port_value),
    OP("methods", methods, check_not_empty),   OP("notMethods", not_methods, check_not_empty),
    OP("paths", paths, check_path_template),   OP("notPaths", not_paths, check_path_template),
};
#undef OP

static void operation_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    (void)msg;
    if (map->n == 0)
        mesh_resource__err(c, map, "\"operation\" must not be empty");
}
static MESH_SCHEMA(operation_schema, mesh_authz_operation, operation_fields, operation_post);

static const struct mesh_field from_fields[] = {
    F_M("source", mesh_authz_from, source, source_schema, .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(from_schema, mesh_authz_from, from_fields, NULL);

static const struct mesh_field to_fields[] = {
    F_M("operation", mesh_authz_to, operation, operation_schema, .flags = MESH_FF_REQUIRED),
};
static MESH_SCHEMA(to_schema, mesh_authz_to, to_fields, NULL);

/* Istio security.ValidateAttribute */
static bool bracketed(const char *key, const char *prefix)
{
    size_t n = strlen(prefix), len = strlen(key);
    return strncmp(key, prefix, n) == 0 && len > n + 1 && key[len - 1] == ']';
}

static void condition_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_authz_condition *w = msg;
    if (!w->key)
        return;
    if (!*w->key) {
        ERR_AT(c, val(map, "key"), "key", "\"key\" must not be empty");
        return;
    }
    if (!w->n_values && !w->n_not_values) {
        mesh_resource__err(c, map, "at least one of \"values\" or \"notValues\" must be set for "
                                   "key %.100s", w->key);
        return;
    }
    static const char *const plain[] = {
        "source.namespace", "source.principal",      "request.auth.principal",
        "request.auth.audiences", "request.auth.presenter", "connection.sni",
        "source.serviceAccount"};
    bool ip = strcmp(w->key, "source.ip") == 0 || strcmp(w->key, "remote.ip") == 0 ||
              strcmp(w->key, "destination.ip") == 0;
    bool port = strcmp(w->key, "destination.port") == 0;
    bool known = ip || port || bracketed(w->key, "request.headers[") ||
                 bracketed(w->key, "request.auth.claims[") ||
                 strncmp(w->key, "experimental.envoy.filters.", 27) == 0;
    for (size_t i = 0; i < MESH_ARRAY_LEN(plain) && !known; i++)
        known = strcmp(w->key, plain[i]) == 0;
    if (!known) {
        ERR_AT(c, val(map, "key"), "key", "unknown attribute \"%.100s\"", w->key);
        return;
    }
    for (int pass = 0; pass < 2 && (ip || port); pass++) {
        const char **v = pass ? w->not_values : w->values;
        size_t n = pass ? w->n_not_values : w->n_values;
        const char *field = pass ? "notValues" : "values";
        for (size_t i = 0; i < n; i++) {
            if (!v[i])
                continue;
            const char *why = ip ? mesh_validate_ip_or_cidr(v[i]) : mesh_validate_port_string(v[i]);
            if (why) {
                char sub[48];
                snprintf(sub, sizeof(sub), "%s[%zu]", field, i);
                ERR_AT(c, item(map, field, i), sub, "invalid value \"%.100s\" for key %s: %s",
                       v[i], w->key, why);
            }
        }
    }
}
static const struct mesh_field condition_fields[] = {
    F_S("key", mesh_authz_condition, key, MESH_F_STRING, .flags = MESH_FF_REQUIRED),
    F_LS("values", mesh_authz_condition, values, MESH_F_STRING),
    F_LS("notValues", mesh_authz_condition, not_values, MESH_F_STRING),
};
static MESH_SCHEMA(condition_schema, mesh_authz_condition, condition_fields, condition_post);

static void rule_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    (void)msg;
    const struct mesh_ynode *from = val(map, "from"), *to = val(map, "to");
    if (from && from->type == MESH_YNODE_SEQ && from->n == 0)
        ERR_AT(c, from, "from", "\"from\" must not be empty");
    if (to && to->type == MESH_YNODE_SEQ && to->n == 0)
        ERR_AT(c, to, "to", "\"to\" must not be empty");
}
static const struct mesh_field rule_fields[] = {
    F_LM("from", mesh_authz_rule, from, mesh_authz_from, from_schema),
    F_LM("to", mesh_authz_rule, to, mesh_authz_to, to_schema),
    F_LM("when", mesh_authz_rule, when, mesh_authz_condition, condition_schema),
};
static MESH_SCHEMA(rule_schema, mesh_authz_rule, rule_fields, rule_post);

static const struct mesh_field provider_fields[] = {
    F_S("name", mesh_authz_provider, name, MESH_F_STRING),
};
static MESH_SCHEMA(provider_schema, mesh_authz_provider, provider_fields, NULL);

static const char *const action_names[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM", NULL};

static bool http_only_rule(const struct mesh_authz_rule *r, bool *has_from, bool *has_to)
{
    bool tcp_from = false, tcp_to = false;
    *has_from = *has_to = false;
    for (size_t i = 0; i < r->n_from; i++) {
        const struct mesh_authz_source *s = r->from[i].source;
        if (!s)
            continue;
        *has_from = true;
        tcp_from = tcp_from || s->n_principals || s->n_not_principals || s->n_ip_blocks ||
                   s->n_not_ip_blocks || s->n_namespaces || s->n_not_namespaces ||
                   s->n_remote_ip_blocks || s->n_not_remote_ip_blocks;
    }
    for (size_t i = 0; i < r->n_to; i++) {
        const struct mesh_authz_operation *o = r->to[i].operation;
        if (!o)
            continue;
        *has_to = true;
        tcp_to = tcp_to || o->n_ports || o->n_not_ports;
    }
    return (*has_from && !*has_to && !tcp_from) || (*has_to && !tcp_to);
}

static void ap_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    const struct mesh_authorization_policy *ap = msg;
    one_selector_type(c, map);
    const struct mesh_ynode *rules = val(map, "rules");
    if (ap->action == MESH_AUTHZ_CUSTOM) {
        if (!rules)
            mesh_resource__err(c, map, "CUSTOM action without \"rules\" is meaningless as it will "
                                       "never be triggered, add an empty rule \"{}\" if you want "
                                       "it to be triggered for every request");
        else if (!ap->provider || !ap->provider->name || !*ap->provider->name)
            ERR_AT(c, map, "provider.name", "\"provider.name\" must not be empty");
        for (size_t i = 0; i < ap->n_rules; i++) {
            const struct mesh_authz_rule *r = &ap->rules[i];
            const struct mesh_ynode *rn = item(map, "rules", i);
            char sub[48];
            snprintf(sub, sizeof(sub), "rules[%zu]", i);
            for (size_t j = 0; j < r->n_from; j++) {
                const struct mesh_authz_source *s = r->from[j].source;
                if (s && (s->n_namespaces || s->n_not_namespaces || s->n_principals ||
                          s->n_not_principals || s->n_request_principals ||
                          s->n_not_request_principals))
                    ERR_AT(c, rn, sub, "namespaces, principals and requestPrincipals (and their "
                                       "not* forms) are not supported with the CUSTOM action");
            }
            for (size_t j = 0; j < r->n_when; j++) {
                const char *k = r->when[j].key;
                if (k && (strcmp(k, "source.namespace") == 0 ||
                          strcmp(k, "source.principal") == 0 ||
                          strncmp(k, "request.auth.", 13) == 0))
                    ERR_AT(c, rn, sub, "condition key %.100s is not supported with the CUSTOM "
                                       "action", k);
            }
        }
    } else if (val(map, "provider")) {
        ERR_AT(c, key_at(map, "provider"), "provider",
               "\"provider\" must not be set with the %s action", action_names[ap->action]);
    }
    if (ap->action == MESH_AUTHZ_DENY && !rules)
        mesh_resource__err(c, map, "DENY action without \"rules\" is meaningless as it will never "
                                   "be triggered, add an empty rule \"{}\" if you want it to be "
                                   "triggered for every request");
    for (size_t i = 0; ap->action == MESH_AUTHZ_DENY && i < ap->n_rules; i++) {
        bool has_from, has_to;
        if (http_only_rule(&ap->rules[i], &has_from, &has_to)) {
            char sub[48];
            snprintf(sub, sizeof(sub), "rules[%zu]", i);
            mesh_resource__warn_at(c, item(map, "rules", i), sub,
                                   "this DENY rule uses only HTTP attributes, so it denies all "
                                   "traffic to TCP ports under its scope; specify the ports "
                                   "explicitly");
        }
    }
}
static const struct mesh_field ap_fields[] = {
    F_M("selector", mesh_authorization_policy, selector, mesh_schema_label_selector),
    F_M("targetRef", mesh_authorization_policy, target_ref, mesh_schema_policy_target_ref),
    F_LM("targetRefs", mesh_authorization_policy, target_refs, mesh_policy_target_ref,
         mesh_schema_policy_target_ref),
    F_LM("rules", mesh_authorization_policy, rules, mesh_authz_rule, rule_schema),
    F_S("action", mesh_authorization_policy, action, MESH_F_ENUM, .enums = action_names),
    F_M("provider", mesh_authorization_policy, provider, provider_schema),
};
MESH_SCHEMA(mesh_schema_authorization_policy, mesh_authorization_policy, ap_fields, ap_post);

/* ---- RequestAuthentication ---- */

static const struct mesh_field jwt_header_fields[] = {
    F_S("name", mesh_jwt_header, name, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_S("prefix", mesh_jwt_header, prefix, MESH_F_STRING),
};
static MESH_SCHEMA(jwt_header_schema, mesh_jwt_header, jwt_header_fields, NULL);

static const struct mesh_field claim_to_header_fields[] = {
    F_S("header", mesh_claim_to_header, header, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY, .check = mesh_check_header_name),
    F_S("claim", mesh_claim_to_header, claim, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
};
static MESH_SCHEMA(claim_to_header_schema, mesh_claim_to_header, claim_to_header_fields, NULL);

static void check_jwks_uri(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    const char *why = mesh_validate_http_url(s);
    if (why)
        mesh_resource__err(c, n, "invalid jwksUri \"%.100s\": %s", s, why);
}

static void check_jwks(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j || !json_is_object(j))
        mesh_resource__err(c, n, "jwks parse error: %s", j ? "not a JSON object" : e.text);
    json_decref(j);
}

static const struct mesh_field jwt_rule_fields[] = {
    F_S("issuer", mesh_jwt_rule, issuer, MESH_F_STRING,
        .flags = MESH_FF_REQUIRED | MESH_FF_NONEMPTY),
    F_LS("audiences", mesh_jwt_rule, audiences, MESH_F_STRING, .check = check_not_empty),
    F_S("jwksUri", mesh_jwt_rule, jwks_uri, MESH_F_STRING, .oneof = "jwks",
        .check = check_jwks_uri),
    F_S("jwks_uri", mesh_jwt_rule, jwks_uri, MESH_F_STRING, .oneof = "jwks",
        .check = check_jwks_uri),
    F_S("jwks", mesh_jwt_rule, jwks, MESH_F_STRING, .oneof = "jwks", .check = check_jwks),
    F_LM("fromHeaders", mesh_jwt_rule, from_headers, mesh_jwt_header, jwt_header_schema),
    F_LS("fromParams", mesh_jwt_rule, from_params, MESH_F_STRING, .check = check_not_empty),
    F_LS("fromCookies", mesh_jwt_rule, from_cookies, MESH_F_STRING, .check = check_not_empty),
    F_S("outputPayloadToHeader", mesh_jwt_rule, output_payload_to_header, MESH_F_STRING),
    F_S("forwardOriginalToken", mesh_jwt_rule, forward_original_token, MESH_F_BOOL),
    F_LM("outputClaimToHeaders", mesh_jwt_rule, output_claim_to_headers, mesh_claim_to_header,
         claim_to_header_schema),
    F_LS("spaceDelimitedClaims", mesh_jwt_rule, space_delimited_claims, MESH_F_STRING,
         .check = check_not_empty),
    F_S("timeout", mesh_jwt_rule, timeout, MESH_F_DURATION, .flags = MESH_FF_MIN_1MS),
};
static MESH_SCHEMA(jwt_rule_schema, mesh_jwt_rule, jwt_rule_fields, NULL);

static void ra_post(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg)
{
    (void)msg;
    one_selector_type(c, map);
}
static const struct mesh_field ra_fields[] = {
    F_M("selector", mesh_request_authentication, selector, mesh_schema_label_selector),
    F_M("targetRef", mesh_request_authentication, target_ref, mesh_schema_policy_target_ref),
    F_LM("targetRefs", mesh_request_authentication, target_refs, mesh_policy_target_ref,
         mesh_schema_policy_target_ref),
    F_LM("jwtRules", mesh_request_authentication, jwt_rules, mesh_jwt_rule, jwt_rule_schema),
};
MESH_SCHEMA(mesh_schema_request_authentication, mesh_request_authentication, ra_fields, ra_post);
