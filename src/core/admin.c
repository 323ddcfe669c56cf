#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include "core/admin.h"
#include "core/lb.h"
#include "core/log.h"
#include "core/proxy-int.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "core/stats.h"

struct mesh_admin {
    struct evhttp *http;
    struct mesh_runtime *rt;
    mesh_admin_quit_fn *quit;
    void *quit_arg;
    uint16_t port;
};

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, code == 200 ? "OK" : code == 405 ? "Method Not Allowed"
                                                 : code == 404 ? "Not Found"
                                                 : code == 400 ? "Bad Request"
                                                               : "Service Unavailable",
                      body);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", text);
    reply(req, code, "text/plain", b);
    evbuffer_free(b);
}

/* Mutations need POST, so a page in a browser on this host cannot trigger them with a GET. */
static bool need_post(struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
        return true;
    reply_text(req, 405, "this endpoint needs POST");
    return false;
}

static void h_ready(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    if (mesh_runtime_draining(a->rt))
        reply_text(req, 503, "DRAINING");
    else
        reply_text(req, 200, "LIVE");
}

static void h_stats(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    uint64_t v[MESH_STAT__COUNT];
    mesh_runtime_stats(a->rt, v);
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < MESH_STAT__COUNT; i++)
        evbuffer_add_printf(b, "%s: %llu\n", mesh_stat_descs[i].name, (unsigned long long)v[i]);
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_prometheus(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    uint64_t v[MESH_STAT__COUNT];
    mesh_runtime_stats(a->rt, v);
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < MESH_STAT__COUNT; i++) {
        const struct mesh_stat_desc *d = &mesh_stat_descs[i];
        /* Prometheus counters end in _total, once: downstream_rq_total stays as it is */
        size_t nl = strlen(d->name);
        bool suffix = strcmp(d->type, "counter") == 0 &&
                      !(nl >= 6 && strcmp(d->name + nl - 6, "_total") == 0);
        evbuffer_add_printf(b, "# HELP meshd_%s%s %s\n# TYPE meshd_%s%s %s\nmeshd_%s%s %llu\n",
                            d->name, suffix ? "_total" : "", d->help, d->name,
                            suffix ? "_total" : "", d->type, d->name, suffix ? "_total" : "",
                            (unsigned long long)v[i]);
    }
    reply(req, 200, "text/plain; version=0.0.4", b);
    evbuffer_free(b);
}

static void h_config_dump(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    struct mesh_snapshot *s = mesh_runtime_snapshot(a->rt);
    char *text = mesh_snapshot_dump(s, true);
    mesh_snapshot_unref(s);
    if (!text) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    reply(req, 200, "application/json", b);
    evbuffer_free(b);
}

/* Envoy's /clusters text: "cluster::endpoint::field::value", one per line. */
static void h_clusters(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    struct mesh_lb_shared *sh = a->rt->lb;
    struct mesh_snapshot *s = mesh_runtime_snapshot(a->rt);
    struct evbuffer *b = evbuffer_new();
    mesh_lb_review_all(sh); /* ejections that ended show as ended, traffic or not */
    for (size_t i = 0; i < s->n_clusters; i++) {
        const struct mesh_cluster *c = &s->clusters[i];
        struct mesh_lb_cluster_info ci;
        mesh_lb_cluster_info(sh, c, &ci);
        evbuffer_add_printf(b, "%s::protocol::%s\n%s::lb_policy::%s\n%s::endpoints::%zu\n",
                            c->name, c->protocol == MESH_PROTO_HTTP2 ? "http2" : "http1", c->name,
                            mesh_lb_policy_name(c->lb_policy), c->name, c->n_endpoints);
        evbuffer_add_printf(b, "%s::rq_active::%u\n%s::retries_active::%u\n%s::outlier::ejected::%u\n",
                            c->name, ci.rq_active, c->name, ci.retries_active, c->name,
                            ci.n_ejected);
        for (size_t e = 0; e < c->n_endpoints; e++) {
            const struct mesh_endpoint *ep = &c->endpoints[e];
            struct mesh_lb_ep_info ei;
            mesh_lb_endpoint_info(sh, c, ep, &ei);
            const char *n = c->name, *k = ep->key;
            evbuffer_add_printf(b, "%s::%s::weight::%u\n%s::%s::priority::%u\n", n, k, ep->weight,
                                n, k, ep->priority);
            if (ep->locality)
                evbuffer_add_printf(b, "%s::%s::locality::%s\n", n, k, ep->locality);
            evbuffer_add_printf(b, "%s::%s::health_flags::%s\n%s::%s::rq_active::%u\n", n, k,
                                ei.ejected ? "/failed_outlier_check" : "healthy", n, k, ei.active);
            if (ei.warming)
                evbuffer_add_printf(b, "%s::%s::slow_start::warming\n", n, k);
            evbuffer_add_printf(b, "%s::%s::outlier::ejections::%llu\n", n, k,
                                (unsigned long long)ei.total_ejections);
            if (ei.ejected)
                evbuffer_add_printf(b, "%s::%s::outlier::ejected_for_ms::%llu\n", n, k,
                                    (unsigned long long)ei.ejected_for_ms);
        }
    }
    mesh_snapshot_unref(s);
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_logging(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq q;
    const char *uri = evhttp_request_get_uri(req);
    const char *qs = strchr(uri, '?');
    if (!qs) {
        char t[64];
        snprintf(t, sizeof(t), "level: %s", mesh_log_level_name(mesh_log_get_level()));
        reply_text(req, 200, t);
        return;
    }
    if (!need_post(req))
        return;
    if (evhttp_parse_query_str(qs + 1, &q) != 0) {
        reply_text(req, 400, "bad query string");
        return;
    }
    const char *lv = evhttp_find_header(&q, "level");
    int level = lv ? mesh_log_level_parse(lv) : -1;
    if (level < 0) {
        evhttp_clear_headers(&q);
        reply_text(req, 400, "level must be one of trace, debug, info, warn, error, off");
        return;
    }
    mesh_log_set_level(level);
    char t[64];
    snprintf(t, sizeof(t), "level: %s", mesh_log_level_name(level));
    evhttp_clear_headers(&q);
    reply_text(req, 200, t);
}

static void h_quit(struct evhttp_request *req, void *arg)
{
    struct mesh_admin *a = arg;
    if (!need_post(req))
        return;
    reply_text(req, 200, "OK");
    a->quit(a->quit_arg);
}

static void h_index(struct evhttp_request *req, void *arg)
{
    reply_text(req, 404, "admin endpoints: /ready /stats /stats/prometheus /config_dump /clusters "
                         "/logging[?level=] (POST) /quitquitquit (POST)");
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

struct mesh_admin *mesh_admin_new(struct event_base *base, struct mesh_runtime *rt,
                                  const struct sockaddr *sa, socklen_t salen,
                                  mesh_admin_quit_fn *quit, void *quit_arg, struct mesh_err *err)
{
    if (!is_loopback(sa)) {
        mesh_err_add(err, 0, 0, "admin.address", "the admin listener must be on loopback");
        return NULL;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, sa, salen) < 0 || listen(fd, 128) < 0) {
        mesh_err_add(err, 0, 0, "admin", "cannot listen: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct mesh_admin *a = mesh_xcalloc(1, sizeof(*a));
    a->rt = rt;
    a->quit = quit;
    a->quit_arg = quit_arg;
    a->http = evhttp_new(base);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    if (!evhttp_accept_socket_with_handle(a->http, fd)) {
        mesh_err_add(err, 0, 0, "admin", "cannot serve the admin listener");
        evhttp_free(a->http);
        free(a);
        close(fd);
        return NULL;
    }
    struct sockaddr_storage b;
    socklen_t bl = sizeof(b);
    getsockname(fd, (struct sockaddr *)&b, &bl);
    a->port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
                                           : ((struct sockaddr_in6 *)&b)->sin6_port);
    evhttp_set_cb(a->http, "/ready", h_ready, a);
    evhttp_set_cb(a->http, "/stats", h_stats, a);
    evhttp_set_cb(a->http, "/stats/prometheus", h_prometheus, a);
    evhttp_set_cb(a->http, "/config_dump", h_config_dump, a);
    evhttp_set_cb(a->http, "/clusters", h_clusters, a);
    evhttp_set_cb(a->http, "/logging", h_logging, a);
    evhttp_set_cb(a->http, "/quitquitquit", h_quit, a);
    evhttp_set_gencb(a->http, h_index, a);
    return a;
}

uint16_t mesh_admin_port(const struct mesh_admin *a)
{
    return a->port;
}

void mesh_admin_free(struct mesh_admin *a)
{
    if (!a)
        return;
    evhttp_free(a->http);
    free(a);
}
