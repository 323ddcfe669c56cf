/*
 * bench/watchers: N light watch clients of a control plane, for bench/converge.
 *
 *   bench/watchers HOST PORT N [NODE-PREFIX [NAMESPACES]]
 *
 * Opens N watch streams (GET /v1/watch?node=nsI/PREFIX-K, docs/control.md "Push") on N
 * connections, as N sidecars would, but only frames the snapshots: no parse, no swap. Each
 * snapshot received whole is ACKed (on a second connection per watcher, as push_client.c
 * does) and printed on stdout, flushed at once:
 *
 *   snap K VERSION REALTIME_NS BYTES
 *
 * REALTIME_NS is CLOCK_REALTIME when the last byte of the body arrived, so that a script can
 * compare it with its own `date +%s%N`. Once every watcher has its first snapshot it prints
 * `ready N`. It runs until SIGTERM or SIGINT; a stream that ends or fails is printed
 * as `gone K REASON` and not reopened (the benchmark must see it). Nodes are spread over
 * NAMESPACES namespaces ns0..ns(NAMESPACES-1) (default 10), prefix default "watcher".
 * Exit status: 0, or 1 when it could not start.
 */
#include "core/common.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "roles/push_frame.h"

struct watcher {
    struct bench *b;
    unsigned idx;
    char node[128];
    struct evhttp_connection *watch, *acks;
    struct mesh_push_parser parser;
    unsigned snapshots;
    bool gone;
};

struct bench {
    struct event_base *base;
    const char *host;
    unsigned short port;
    char hostport[300];
    struct watcher *w;
    unsigned n, n_ready, n_gone;
};

static long long realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void gone(struct watcher *w, const char *why)
{
    if (w->gone)
        return;
    w->gone = true;
    w->b->n_gone++;
    printf("gone %u %s\n", w->idx, why);
    fflush(stdout);
}

static void on_ack_done(struct evhttp_request *req, void *arg)
{
    struct watcher *w = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 200)
        fprintf(stderr, "watchers: ack of %s answered %d\n", w->node, code);
}

static void send_ack(struct watcher *w, json_int_t id, const char *version)
{
    if (!w->acks) {
        w->acks = evhttp_connection_base_new(w->b->base, NULL, w->b->host, w->b->port);
        evhttp_connection_set_timeout(w->acks, 30);
    }
    json_t *body = json_pack("{s:I,s:s,s:s}", "id", id, "node", w->node, "version", version);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evhttp_request *req = evhttp_request_new(on_ack_done, w);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", w->b->hostport);
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    free(text);
    if (evhttp_make_request(w->acks, req, EVHTTP_REQ_POST, "/v1/ack") != 0)
        fprintf(stderr, "watchers: cannot send the ack of %s\n", w->node);
}

static void on_frame(struct watcher *w, const struct mesh_push_frame *f, long long t)
{
    if (strcmp(f->type, "snapshot") != 0 && strcmp(f->type, "delta") != 0)
        return; /* pings, errors: not what is measured */
    const char *version = json_string_value(json_object_get(f->header, "version"));
    json_t *id = json_object_get(f->header, "id");
    if (!version || !json_is_integer(id)) {
        gone(w, "a snapshot or delta frame without version or id");
        return;
    }
    printf("snap %u %s %lld %zu\n", w->idx, version, t, f->body_len);
    fflush(stdout);
    send_ack(w, json_integer_value(id), version);
    if (w->snapshots++ == 0 && ++w->b->n_ready == w->b->n) {
        printf("ready %u\n", w->b->n);
        fflush(stdout);
    }
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
    struct watcher *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    if (evhttp_request_get_response_code(req) != 200) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    long long t = realtime_ns(); /* the frame completed by this chunk arrived now */
    size_t len = evbuffer_get_length(in);
    mesh_push_parser_feed(&w->parser, evbuffer_pullup(in, (ssize_t)len), len);
    evbuffer_drain(in, len);
    for (;;) {
        struct mesh_push_frame f;
        char why[256];
        int rc = mesh_push_parser_next(&w->parser, &f, why, sizeof(why));
        if (rc == 0)
            break;
        if (rc < 0) {
            gone(w, why);
            return;
        }
        on_frame(w, &f, t);
    }
}

static void on_watch_done(struct evhttp_request *req, void *arg)
{
    struct watcher *w = arg;
    char why[64];
    snprintf(why, sizeof(why), "the stream ended (status %d)",
             req ? evhttp_request_get_response_code(req) : 0);
    gone(w, why);
}

static int start_watch(struct watcher *w)
{
    struct bench *b = w->b;
    w->watch = evhttp_connection_base_new(b->base, NULL, b->host, b->port);
    if (!w->watch)
        return -1;
    evhttp_connection_set_timeout(w->watch, 60); /* pings come every 5 s */
    struct evhttp_request *req = evhttp_request_new(on_watch_done, w);
    evhttp_request_set_chunked_cb(req, on_chunk);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", b->hostport);
    evhttp_add_header(h, "Accept", "application/x-meshd-push");
    char uri[300];
    snprintf(uri, sizeof(uri), "/v1/watch?node=%s&listen=127.0.0.1:0", w->node);
    return evhttp_make_request(w->watch, req, EVHTTP_REQ_GET, uri);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s HOST PORT N [NODE-PREFIX [NAMESPACES]]\n", argv[0]);
        return 1;
    }
    struct bench b = {0};
    b.host = argv[1];
    long port = strtol(argv[2], NULL, 10), n = strtol(argv[3], NULL, 10);
    const char *prefix = argc > 4 ? argv[4] : "watcher";
    long nss = argc > 5 ? strtol(argv[5], NULL, 10) : 10;
    if (port <= 0 || port > 65535 || n <= 0 || n > 100000 || nss <= 0) {
        fprintf(stderr, "watchers: bad PORT, N or NAMESPACES\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    b.port = (unsigned short)port;
    b.n = (unsigned)n;
    snprintf(b.hostport, sizeof(b.hostport), "%s:%ld", b.host, port);
    b.base = event_base_new();
    b.w = mesh_xcalloc(b.n, sizeof(*b.w));
    for (unsigned i = 0; i < b.n; i++) {
        struct watcher *w = &b.w[i];
        w->b = &b;
        w->idx = i;
        snprintf(w->node, sizeof(w->node), "ns%ld/%s-%u", (long)(i % (unsigned long)nss), prefix,
                 i);
        mesh_push_parser_init(&w->parser);
        if (start_watch(w) != 0) {
            fprintf(stderr, "watchers: cannot open watch %u\n", i);
            return 1;
        }
    }
    struct event *term = evsignal_new(b.base, SIGTERM, on_signal, b.base);
    struct event *intr = evsignal_new(b.base, SIGINT, on_signal, b.base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(b.base);
    for (unsigned i = 0; i < b.n; i++) {
        if (b.w[i].watch)
            evhttp_connection_free(b.w[i].watch);
        if (b.w[i].acks)
            evhttp_connection_free(b.w[i].acks);
        mesh_push_parser_free(&b.w[i].parser);
    }
    free(b.w);
    event_free(term);
    event_free(intr);
    event_base_free(b.base);
    return 0;
}
