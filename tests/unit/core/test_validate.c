#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include "core/validate.h"
#include "../leakcheck.h"

#define OK(expr) cr_expect_null(expr, "%s should be valid", #expr)
#define BAD(expr) cr_expect_not_null(expr, "%s should be invalid", #expr)

Test(validate, kubernetes_names)
{
    OK(mesh_validate_dns1123_label("reviews-v1"));
    BAD(mesh_validate_dns1123_label("Reviews"));
    BAD(mesh_validate_dns1123_label("-a"));
    BAD(mesh_validate_dns1123_label(""));
    BAD(mesh_validate_dns1123_label("a23456789012345678901234567890"
                                    "1234567890123456789012345678901234"));
    OK(mesh_validate_dns1123_subdomain("reviews.v1"));
    BAD(mesh_validate_dns1123_subdomain("reviews..v1"));
    OK(mesh_validate_dns1035_label("web"));
    BAD(mesh_validate_dns1035_label("1web"));
    OK(mesh_validate_istio_label("Http-Web"));
}

Test(validate, hosts)
{
    OK(mesh_validate_wildcard_domain("*"));
    OK(mesh_validate_wildcard_domain("*.example.com"));
    OK(mesh_validate_wildcard_domain("reviews"));
    OK(mesh_validate_wildcard_domain("reviews.default.svc.cluster.local"));
    OK(mesh_validate_wildcard_domain("istio.io."));
    BAD(mesh_validate_wildcard_domain("a.*.com"));
    BAD(mesh_validate_wildcard_domain("a..com"));
    BAD(mesh_validate_wildcard_domain("1.2.3.4"));
    BAD(mesh_validate_wildcard_domain(""));
    OK(mesh_validate_fqdn("api.example.com"));
    BAD(mesh_validate_fqdn("*.example.com"));
    OK(mesh_validate_ns_host("*/bookinfo.example.com", true));
    OK(mesh_validate_ns_host("./*", true));
    OK(mesh_validate_ns_host("uk.bookinfo.com", true));
    OK(mesh_validate_ns_host("10.0.0.1", true));
    BAD(mesh_validate_ns_host("bookinfo", true));
    BAD(mesh_validate_ns_host("~/x.com", true));
    OK(mesh_validate_ns_host("~/x.com", false));
    OK(mesh_validate_ns_host("~prod/*", false));
    OK(mesh_validate_ns_host("istio-system/*", false));
    BAD(mesh_validate_ns_host("x.com", false));
    BAD(mesh_validate_ns_host("ns/a*b.com", false));
}

Test(validate, labels)
{
    OK(mesh_validate_label_key("app"));
    OK(mesh_validate_label_key("app.kubernetes.io/name"));
    OK(mesh_validate_label_key("topology.istio.io/subzone"));
    BAD(mesh_validate_label_key("Example.com/app"));
    BAD(mesh_validate_label_key("/app"));
    BAD(mesh_validate_label_key("a b"));
    BAD(mesh_validate_label_key(""));
    OK(mesh_validate_label_value(""));
    OK(mesh_validate_label_value("v1.2_3-x"));
    BAD(mesh_validate_label_value("v1 "));
    BAD(mesh_validate_label_value("-v1"));
}

Test(validate, addresses_and_ports)
{
    OK(mesh_validate_ip("10.0.0.1"));
    OK(mesh_validate_ip("2001:db8::1"));
    BAD(mesh_validate_ip("10.0.0.256"));
    OK(mesh_validate_ip_or_cidr("10.0.0.0/8"));
    OK(mesh_validate_ip_or_cidr("2001:db8::/32"));
    BAD(mesh_validate_ip_or_cidr("10.0.0.0/33"));
    BAD(mesh_validate_ip_or_cidr("10.0.0.0/"));
    BAD(mesh_validate_ip_or_cidr("/8"));
    OK(mesh_validate_port_string("8080"));
    BAD(mesh_validate_port_string("0"));
    BAD(mesh_validate_port_string("65536"));
    BAD(mesh_validate_port_string("http"));
    OK(mesh_validate_protocol("grpc-web"));
    OK(mesh_validate_protocol("HTTPS"));
    BAD(mesh_validate_protocol("FTP"));
}

Test(validate, http_bits)
{
    OK(mesh_validate_header_name("x-request-id"));
    OK(mesh_validate_header_name("@request.auth.claims.group"));
    BAD(mesh_validate_header_name(":path"));
    BAD(mesh_validate_header_name(""));
    OK(mesh_validate_header_value("100%%"));
    OK(mesh_validate_header_value("prefix %HOSTNAME% suffix"));
    BAD(mesh_validate_header_value("abc%123"));
    BAD(mesh_validate_header_value("%START_TIME%%"));
    BAD(mesh_validate_header_value("a\nb"));
    OK(mesh_validate_http_method("PATCH"));
    BAD(mesh_validate_http_method("get"));
    OK(mesh_validate_base64("aGVsbG8="));
    OK(mesh_validate_base64("aGVsbG8"));
    BAD(mesh_validate_base64("aGV=sbG8"));
    OK(mesh_validate_http_url("https://example.com/jwks"));
    BAD(mesh_validate_http_url("example.com"));
    BAD(mesh_validate_http_url("https:///x"));
}

Test(validate, regexes_and_primes)
{
    char why[300];
    cr_expect(mesh_validate_regex("^/api/(v1|v2)/.*$", why, sizeof(why)));
    cr_expect(mesh_validate_regex("(?i)^abc", why, sizeof(why)));
    cr_expect_not(mesh_validate_regex("a(b", why, sizeof(why)));
    cr_expect(strstr(why, "missing closing parenthesis"), "%s", why);
    char big[1100];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_expect_not(mesh_validate_regex(big, why, sizeof(why)));
    cr_expect(mesh_validate_is_prime(65537));
    cr_expect(mesh_validate_is_prime(2));
    cr_expect_not(mesh_validate_is_prime(1000));
    cr_expect_not(mesh_validate_is_prime(65535));
}
