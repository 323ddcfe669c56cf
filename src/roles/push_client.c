/*
 * The proxy's push client (push_client.h) over libevent's HTTP client: the watch is one
 * long GET whose chunked body is fed to the frame parser as it arrives; ACKs go on a second
 * connection so they never wait behind the stream.
 */
#include "core/common.h"
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "roles/push_client.h"
#include "roles/push_frame.h"

#define READ_TIMEOUT_S 20 /* four missed pings (every 5 s): the control plane is gone */

struct mesh_push_client {
    struct event_base *base;
    char *host;
    uint16_t port;
    char hostport[300];
    char *uri;               /* /v1/watch?node=... */
    char *node;              /* "NS/NAME", in acks */
    char *auth;              /* "Bearer ..." or NULL */
    mesh_push_apply_fn *apply;
    void *arg;
    struct evhttp_connection *watch;
    struct evhttp_request *req;   /* the watch request in flight, NULL otherwise */
    struct evhttp_connection *acks;
    struct event *retry;
    unsigned attempt;        /* failures since the last good frame (backoff) */
    struct mesh_push_parser parser;
    char last_error[512];    /* the last "error" frame, said once */
    char errbody[512];       /* a non-200 answer's body, for the log */
    size_t errbody_len;
    bool connected_logged;
    struct mesh_push_client_stats stats;
};

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    return r;
}

/* URL-encodes <s> for a query value. */
static void add_param(char **uri, size_t *len, const char *key, const char *val)
{
    if (!val)
        return;
    char *enc = evhttp_encode_uri(val);
    size_t need = *len + strlen(key) + strlen(enc) + 3;
    *uri = mesh_xrealloc(*uri, need + 1);
    *len += (size_t)snprintf(*uri + *len, need + 1 - *len, "%c%s=%s",
                             strchr(*uri, '?') ? '&' : '?', key, enc);
    free(enc);
}

/* ---- ACK / NACK ---- */

static void on_ack_done(struct evhttp_request *req, void *arg)
{
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 200)
        mesh_log_warn("push: the control plane did not take our ack (%s %d)",
                      code ? "HTTP" : "connection failed", code);
}

static void send_ack(struct mesh_push_client *c, json_int_t id, const char *node,
                     const char *version, const char *error)
{
    json_t *o = json_pack("{s:I, s:s, s:s}", "id", id, "node", node, "version", version);
    if (error)
        json_object_set_new(o, "error", json_string(error));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body)
        return;
    if (!c->acks) {
        c->acks = evhttp_connection_base_new(c->base, NULL, c->host, c->port);
        evhttp_connection_set_timeout(c->acks, 10);
        evhttp_connection_set_retries(c->acks, 1);
    }
    struct evhttp_request *req = evhttp_request_new(on_ack_done, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", c->hostport);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (c->auth)
        evhttp_add_header(h, "Authorization", c->auth);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    free(body);
    if (evhttp_make_request(c->acks, req, EVHTTP_REQ_POST, "/v1/ack") != 0)
        mesh_log_warn("push: cannot send the ack");
}

/* ---- the watch stream ---- */

static void schedule_retry(struct mesh_push_client *c, bool after_failure)
{
    uint32_t ms = mesh_push_backoff_ms(c->attempt, random_u32());
    if (after_failure)
        c->attempt++;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    mesh_log_debug("push: reconnecting in %u ms", ms);
}

static void on_frame(struct mesh_push_client *c, const struct mesh_push_frame *f)
{
    const char *node = c->node;
    c->attempt = 0; /* the control plane talks to us: back off from scratch next time */
    json_t *jid = json_object_get(f->header, "id");
    if (strcmp(f->type, "snapshot") == 0) {
        const char *version = json_string_value(json_object_get(f->header, "version"));
        if (!f->body || !json_is_integer(jid) || !version) {
            mesh_log_warn("push: a snapshot frame without id, version or body: ignored");
            return;
        }
        char why[4096] = "";
        int rc = c->apply(c->arg, f->body, f->body_len, version, why, sizeof(why));
        if (rc == 0) {
            c->stats.applied++;
            send_ack(c, json_integer_value(jid), node, version, NULL);
        } else {
            c->stats.refused++;
            if (!why[0])
                snprintf(why, sizeof(why), "refused");
            send_ack(c, json_integer_value(jid), node, version, why);
        }
    } else if (strcmp(f->type, "error") == 0) {
        const char *e = json_string_value(json_object_get(f->header, "error"));
        if (e && strcmp(e, c->last_error) != 0) {
            snprintf(c->last_error, sizeof(c->last_error), "%s", e);
            mesh_log_error("push: the control plane has no snapshot for us: %s", e);
        }
    }
    /* "ping" and types of later versions: nothing to do */
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
    struct mesh_push_client *c = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    int code = evhttp_request_get_response_code(req);
    if (code != 200) {
        size_t n = MESH_MIN(evbuffer_get_length(in), sizeof(c->errbody) - 1 - c->errbody_len);
        c->errbody_len += (size_t)evbuffer_remove(in, c->errbody + c->errbody_len, n);
        c->errbody[c->errbody_len] = '\0';
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (!c->connected_logged) {
        c->connected_logged = true;
        c->stats.connects++;
        mesh_log_info("push: watching %s%s", c->hostport, c->uri);
    }
    /* all of it, 8 chains at a time: what stays would wait for the next chunk (a ping, 5 s) */
    struct evbuffer_iovec v[8];
    int n;
    while ((n = evbuffer_peek(in, -1, NULL, v, 8)) > 0) {
        size_t fed = 0;
        for (int i = 0; i < n && i < 8; i++) {
            mesh_push_parser_feed(&c->parser, v[i].iov_base, v[i].iov_len);
            fed += v[i].iov_len;
        }
        evbuffer_drain(in, fed);
    }
    for (;;) {
        struct mesh_push_frame f;
        char why[256];
        int rc = mesh_push_parser_next(&c->parser, &f, why, sizeof(why));
        if (rc == 0)
            break;
        if (rc < 0) {
            /* the stream is unusable: drop the connection and start again */
            mesh_log_error("push: bad stream from the control plane: %s; reconnecting", why);
            c->stats.failures++;
            evtimer_del(c->retry);
            struct timeval now = {0, 0};
            evtimer_add(c->retry, &now);
            return;
        }
        on_frame(c, &f);
    }
}

static void on_watch_done(struct evhttp_request *req, void *arg)
{
    struct mesh_push_client *c = arg;
    c->req = NULL;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 200) {
        mesh_log_warn("push: the control plane ended the watch; keeping the current snapshot, "
                      "reconnecting");
        schedule_retry(c, false);
    } else {
        c->stats.failures++;
        if (code)
            mesh_log_warn("push: the control plane answered %d: %.*s", code,
                          (int)c->errbody_len, c->errbody);
        else
            mesh_log_warn("push: cannot reach the control plane at %s (connection failed or "
                          "closed); keeping the current snapshot", c->hostport);
        schedule_retry(c, true);
    }
}

static void start_watch(struct mesh_push_client *c)
{
    if (c->watch)
        evhttp_connection_free(c->watch); /* cancels what is pending, without callbacks */
    c->req = NULL;
    mesh_push_parser_free(&c->parser);
    mesh_push_parser_init(&c->parser);
    c->errbody_len = 0;
    c->connected_logged = false;
    c->watch = evhttp_connection_base_new(c->base, NULL, c->host, c->port);
    if (!c->watch) {
        c->stats.failures++;
        schedule_retry(c, true);
        return;
    }
    evhttp_connection_set_timeout(c->watch, READ_TIMEOUT_S);
    struct evhttp_request *req = evhttp_request_new(on_watch_done, c);
    evhttp_request_set_chunked_cb(req, on_chunk);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", c->hostport);
    evhttp_add_header(h, "Accept", "application/x-meshd-push");
    if (c->auth)
        evhttp_add_header(h, "Authorization", c->auth);
    if (evhttp_make_request(c->watch, req, EVHTTP_REQ_GET, c->uri) != 0) {
        c->stats.failures++;
        schedule_retry(c, true);
        return;
    }
    c->req = req;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    start_watch(arg);
}

struct mesh_push_client *mesh_push_client_new(const struct mesh_push_client_cfg *cfg)
{
    struct mesh_push_client *c = mesh_xcalloc(1, sizeof(*c));
    c->base = cfg->base;
    c->host = mesh_xstrdup(cfg->host);
    c->port = cfg->port;
    snprintf(c->hostport, sizeof(c->hostport), strchr(cfg->host, ':') ? "[%s]:%u" : "%s:%u",
             cfg->host, cfg->port);
    size_t len = strlen("/v1/watch");
    c->uri = mesh_xstrdup("/v1/watch");
    c->node = mesh_xstrdup(cfg->node);
    add_param(&c->uri, &len, "node", cfg->node);
    add_param(&c->uri, &len, "labels", cfg->labels && *cfg->labels ? cfg->labels : NULL);
    add_param(&c->uri, &len, "role", cfg->role);
    add_param(&c->uri, &len, "listen", cfg->listen);
    if (cfg->token) {
        size_t n = strlen(cfg->token) + 8;
        c->auth = mesh_xmalloc(n);
        snprintf(c->auth, n, "Bearer %s", cfg->token);
    }
    c->apply = cfg->apply;
    c->arg = cfg->arg;
    mesh_push_parser_init(&c->parser);
    c->retry = evtimer_new(c->base, on_retry, c);
    start_watch(c);
    return c;
}

void mesh_push_client_free(struct mesh_push_client *c)
{
    if (!c)
        return;
    if (c->watch)
        evhttp_connection_free(c->watch);
    if (c->acks)
        evhttp_connection_free(c->acks);
    event_free(c->retry);
    mesh_push_parser_free(&c->parser);
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
    }
    free(c->uri);
    free(c->node);
    free(c->host);
    free(c);
}

void mesh_push_client_stats(const struct mesh_push_client *c, struct mesh_push_client_stats *out)
{
    *out = c->stats;
}
