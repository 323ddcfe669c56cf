/*
 * When the sidecar's DNS proxy runs (src/roles/sidecar_dns.c): --dns ADDR:PORT
 * always, --dns off never, and by default only in a pod, where `meshd
 * iptables` sends DNS to 15053: a sidecar whose outbound listener is the
 * capture port 15001. Sidecars on loopback (--listen 127.0.0.1:0) have none.
 * Then the proxy started before any snapshot (--control) forwards every name.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/dns.h"
#include "core/log.h"
#include "core/snapshot.h"
#include "core/status.h"
#include "roles/role.h"
#include "roles/sidecar_dns.h"
#include "../leakcheck.h"

/* A snapshot with one listener on <port>. */
static struct mesh_snapshot *snap_on(unsigned port)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"version\":\"t\",\"listeners\":[{\"name\":\"out\",\"address\":\"127.0.0.1\","
             "\"port\":%u,\"route_config\":\"rc\"}],\"route_configs\":[{\"name\":\"rc\","
             "\"virtual_hosts\":[{\"name\":\"all\",\"domains\":[\"*\"],\"routes\":[{\"match\":"
             "{\"prefix\":\"/\"},\"route\":{\"cluster\":\"be\"}}]}]}],\"clusters\":[{\"name\":"
             "\"be\",\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":9}]}]}",
             port);
    struct mesh_err err;
    mesh_err_init(&err, "test");
    struct mesh_snapshot *s = mesh_snapshot_parse(json, strlen(json), &err);
    cr_assert_not_null(s, "the test snapshot parses");
    return s;
}

LEAK_TEST(sidecar_dns, mode)
{
    struct mesh_opts o = {.role = "sidecar", .control = "127.0.0.1:15010"};
    /* a pod: --control, the default outbound listener (15001) */
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_DEFAULT);
    o.listen = "127.0.0.1:15001";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_DEFAULT);
    /* loopback: nothing redirects DNS to this one */
    o.listen = "127.0.0.1:0";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    o.listen = "127.0.0.1:16001";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    o.listen = "not an address";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    /* asked for: wherever it listens */
    o.dns = "127.0.0.1:0";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_FLAG);
    o.listen = NULL;
    o.dns = "off";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    /* a gateway intercepts nothing */
    o = (struct mesh_opts){.role = "gateway", .control = "127.0.0.1:15010"};
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    /* --config-dir: --listen is the outbound listener, as with --control */
    o = (struct mesh_opts){.role = "sidecar", .config_dir = "/x"};
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_DEFAULT);
    o.listen = "127.0.0.1:0";
    cr_assert_eq(mesh_sidecar_dns_mode(&o, NULL), MESH_SIDECAR_DNS_OFF);
    /* --snapshot: the file's listeners tell */
    o = (struct mesh_opts){.role = "sidecar", .snapshot = "/x.json"};
    struct mesh_snapshot *s = snap_on(15001);
    cr_assert_eq(mesh_sidecar_dns_mode(&o, s), MESH_SIDECAR_DNS_DEFAULT);
    mesh_snapshot_unref(s);
    s = snap_on(0);
    cr_assert_eq(mesh_sidecar_dns_mode(&o, s), MESH_SIDECAR_DNS_OFF);
    mesh_snapshot_unref(s);
}

/* Errors of the flags are printed and fatal; the default mode never is. */
LEAK_TEST(sidecar_dns, bad_flags)
{
    struct event_base *base = event_base_new();
    struct mesh_runtime *rt = NULL;
    struct mesh_dns *d = (struct mesh_dns *)&d;
    struct mesh_opts o = {.role = "sidecar", .control = "127.0.0.1:15010", .dns = "localhost:53"};
    cr_assert_eq(mesh_sidecar_dns_start(&d, base, &o, &rt, NULL), -1);
    cr_assert_null(d);
    o.dns = "127.0.0.1:0";
    o.dns_upstream = "dns.example:53";
    cr_assert_eq(mesh_sidecar_dns_start(&d, base, &o, &rt, NULL), -1);
    cr_assert_null(d);
    /* --dns off: nothing, and no error */
    o = (struct mesh_opts){.role = "sidecar", .control = "127.0.0.1:15010", .dns = "off"};
    cr_assert_eq(mesh_sidecar_dns_start(&d, base, &o, &rt, NULL), 0);
    cr_assert_null(d);
    /* with --control, the call at the first snapshot starts nothing: decided before */
    struct mesh_snapshot *s = snap_on(0);
    o.dns = "127.0.0.1:0";
    cr_assert_eq(mesh_sidecar_dns_start(&d, base, &o, &rt, s), 0);
    cr_assert_null(d);
    mesh_snapshot_unref(s);
    event_base_free(base);
}

/* Started before the first snapshot (*rt NULL): every name goes to the upstream. */
LEAK_TEST(sidecar_dns, forwards_everything_before_a_snapshot)
{
    mesh_log_set_level(MESH_LOG_WARN);
    struct event_base *base = event_base_new();
    int up = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ul = sizeof(ua);
    cr_assert_eq(bind(up, (struct sockaddr *)&ua, ul), 0);
    cr_assert_eq(getsockname(up, (struct sockaddr *)&ua, &ul), 0);
    char upstream[32];
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%u", ntohs(ua.sin_port));
    struct mesh_opts o = {.role = "sidecar", .control = "127.0.0.1:15010",
                          .dns = "127.0.0.1:0", .dns_upstream = upstream};
    struct mesh_runtime *rt = NULL;
    struct mesh_dns *d = NULL;
    cr_assert_eq(mesh_sidecar_dns_start(&d, base, &o, &rt, NULL), 0);
    cr_assert_not_null(d);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(mesh_dns_port(d)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint8_t q[512], b[512];
    size_t qn = mesh_dns_build_query(q, sizeof(q), 0x3131, "reviews", MESH_DNS_TYPE_A, true);
    cr_assert_eq(send(fd, q, qn, 0), (ssize_t)qn);
    ssize_t n = -1;
    for (int i = 0; i < 2000 && n < 0; i++) { /* 10 s bound */
        event_base_loop(base, EVLOOP_NONBLOCK);
        n = recv(up, b, sizeof(b), 0);
        if (n < 0)
            poll(NULL, 0, 5);
    }
    cr_assert_gt(n, 0, "the query reached the upstream");
    struct mesh_dns_header h;
    struct mesh_dns_question qq;
    cr_assert_eq(mesh_dns_parse(b, (size_t)n, &h, &qq), MESH_DNS_OK);
    cr_assert_str_eq(qq.name, "reviews");
    struct mesh_dns_stats st;
    mesh_dns_get_stats(d, &st);
    cr_assert_eq(st.forwarded, 1);
    cr_assert_eq(st.answered, 0);
    mesh_dns_stop(d);
    close(fd);
    close(up);
    event_base_free(base);
}
