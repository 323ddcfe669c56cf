/*
 * The proxy's push client (src/roles/push_client.h) against a small HTTP/2 server in the
 * test's own event base (nghttp2, h2c prior knowledge): the watch and its ACKs on one
 * connection, a snapshot larger than every flow-control window, NACKs, deltas, and the
 * reconnects (a delta for another base, GOAWAY, a refused watch, a bad frame, the end of the
 * watch).
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <criterion/criterion.h>
#include "core/log.h"
#include "roles/push_client.h"
#include "roles/push_frame.h"
#include "../leakcheck.h"

#define MAX_CONNS 16
#define MAX_STREAMS 64

struct srv;
struct sconn;

struct sstream {
    struct sconn *conn;
    int32_t id;
    char path[1024];
    char auth[256];
    char accept[64];
    struct evbuffer *out;    /* the response body still to send */
    bool ended;              /* <out> is all of it */
    bool deferred;
    struct evbuffer *body;   /* the request body */
    bool closed;
};

struct sconn {
    struct srv *srv;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct sstream *watch;   /* the open watch stream, or NULL */
};

struct srv {
    struct event_base *base;
    struct evconnlistener *lis;
    uint16_t port;
    int watch_status;        /* how watches are answered */
    struct sconn *conns[MAX_CONNS];
    int n_conns;
    struct sstream *streams[MAX_STREAMS];
    int n_streams;
    int watches;             /* watch requests received */
    json_t *acks;            /* the ACK bodies, each with "auth" added */
};

static void sconn_flush(struct sconn *c)
{
    if (!c->h2)
        return;
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->h2, &data)) > 0)
        bufferevent_write(c->bev, data, (size_t)n);
}

static ssize_t s_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                      uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct sstream *s = src->ptr;
    size_t n = (size_t)evbuffer_remove(s->out, buf, length);
    if (s->ended && evbuffer_get_length(s->out) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void s_respond(struct sstream *s, int status, const char *body)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0}};
    if (body) {
        evbuffer_add(s->out, body, strlen(body));
        s->ended = true;
    }
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = s_read};
    cr_assert_eq(nghttp2_submit_response(s->conn->h2, s->id, nv, 1, &dp), 0);
}

static int s_begin(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct sconn *c = ud;
    cr_assert_lt(c->srv->n_streams, MAX_STREAMS);
    struct sstream *s = calloc(1, sizeof(*s));
    s->conn = c;
    s->id = f->hd.stream_id;
    s->out = evbuffer_new();
    s->body = evbuffer_new();
    c->srv->streams[c->srv->n_streams++] = s;
    nghttp2_session_set_stream_user_data(h2, s->id, s);
    return 0;
}

static void copy_value(char *dst, size_t size, const uint8_t *v, size_t vlen)
{
    size_t n = MESH_MIN(vlen, size - 1);
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int s_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct sstream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!s)
        return 0;
    if (nlen == 5 && memcmp(name, ":path", 5) == 0)
        copy_value(s->path, sizeof(s->path), value, vlen);
    else if (nlen == 13 && memcmp(name, "authorization", 13) == 0)
        copy_value(s->auth, sizeof(s->auth), value, vlen);
    else if (nlen == 6 && memcmp(name, "accept", 6) == 0)
        copy_value(s->accept, sizeof(s->accept), value, vlen);
    return 0;
}

static int s_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                  size_t len, void *ud)
{
    struct sstream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s)
        evbuffer_add(s->body, data, len);
    return 0;
}

static int s_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct sconn *c = ud;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
        return 0;
    struct sstream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!s)
        return 0;
    if (strncmp(s->path, "/v1/watch?", 10) == 0) {
        c->srv->watches++;
        if (c->srv->watch_status == 200) {
            c->watch = s;
            s_respond(s, 200, NULL);
        } else {
            s_respond(s, c->srv->watch_status, "{\"error\":\"no token\"}\n");
        }
    } else if (strcmp(s->path, "/v1/ack") == 0) {
        size_t n = evbuffer_get_length(s->body);
        json_t *o = json_loadb((const char *)evbuffer_pullup(s->body, -1), n, 0, NULL);
        cr_assert(json_is_object(o), "the ack body is a JSON object");
        json_object_set_new(o, "auth", json_string(s->auth));
        json_array_append_new(c->srv->acks, o);
        s_respond(s, 200, "{\"ok\":true}\n");
    } else {
        s_respond(s, 404, "{}\n");
    }
    return 0;
}

static int s_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    struct sconn *c = ud;
    struct sstream *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s)
        s->closed = true;
    if (c->watch == s)
        c->watch = NULL;
    return 0;
}

static void sconn_close(struct sconn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->h2)
        nghttp2_session_del(c->h2);
    c->bev = NULL;
    c->h2 = NULL;
    c->watch = NULL;
}

static void s_on_read(struct bufferevent *bev, void *arg)
{
    struct sconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    ssize_t r = nghttp2_session_mem_recv(c->h2, evbuffer_pullup(in, -1), n);
    cr_assert_eq(r, (ssize_t)n, "the client speaks HTTP/2: %s", nghttp2_strerror((int)r));
    evbuffer_drain(in, n);
    sconn_flush(c);
}

static void s_on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        sconn_close(arg);
}

static void s_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                     void *arg)
{
    struct srv *srv = arg;
    cr_assert_lt(srv->n_conns, MAX_CONNS);
    struct sconn *c = calloc(1, sizeof(*c));
    srv->conns[srv->n_conns++] = c;
    c->srv = srv;
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, s_begin);
    nghttp2_session_callbacks_set_on_header_callback(cb, s_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, s_close);
    nghttp2_session_server_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    /* the server's default windows (64 KiB) as the control plane's engine starts with them:
     * the client's own SETTINGS and WINDOW_UPDATEs must open them */
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    bufferevent_setcb(c->bev, s_on_read, NULL, s_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    sconn_flush(c);
}

static struct srv *srv_new(struct event_base *base)
{
    struct srv *srv = calloc(1, sizeof(*srv));
    srv->base = base;
    srv->watch_status = 200;
    srv->acks = json_array();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    srv->lis = evconnlistener_new_bind(base, s_accept, srv, LEV_OPT_CLOSE_ON_FREE, -1,
                                       (struct sockaddr *)&sin, sizeof(sin));
    cr_assert(srv->lis);
    socklen_t sl = sizeof(sin);
    getsockname(evconnlistener_get_fd(srv->lis), (struct sockaddr *)&sin, &sl);
    srv->port = ntohs(sin.sin_port);
    return srv;
}

static void srv_free(struct srv *srv)
{
    if (srv->lis)
        evconnlistener_free(srv->lis);
    for (int i = 0; i < srv->n_conns; i++) {
        sconn_close(srv->conns[i]);
        free(srv->conns[i]);
    }
    for (int i = 0; i < srv->n_streams; i++) {
        evbuffer_free(srv->streams[i]->out);
        evbuffer_free(srv->streams[i]->body);
        free(srv->streams[i]);
    }
    json_decref(srv->acks);
    free(srv);
}

/* The last connection (the one the client uses now). */
static struct sconn *srv_conn(struct srv *srv)
{
    cr_assert_gt(srv->n_conns, 0);
    return srv->conns[srv->n_conns - 1];
}

/* Writes <n> bytes as they are on the current watch stream. */
static void srv_write(struct srv *srv, const void *data, size_t n)
{
    struct sconn *c = srv_conn(srv);
    cr_assert(c->watch, "a watch stream is open");
    evbuffer_add(c->watch->out, data, n);
    if (c->watch->deferred) {
        c->watch->deferred = false;
        nghttp2_session_resume_data(c->h2, c->watch->id);
    }
    sconn_flush(c);
}

/* Writes one message on the current watch stream. */
static void srv_send(struct srv *srv, json_t *header, const char *body, size_t body_len)
{
    size_t n;
    char *buf = mesh_push_frame_encode(header, body, body_len, &n);
    json_decref(header);
    srv_write(srv, buf, n);
    free(buf);
}

static void srv_send_raw(struct srv *srv, const char *text)
{
    srv_write(srv, text, strlen(text));
}

/* ---- the proxy's side: what the callbacks saw ---- */

struct seen {
    int applied, deltas;
    int rc, delta_rc;        /* what the callbacks answer */
    char version[64], base[64];
    char *last;              /* the last body (malloc'd) */
    size_t last_len;
};

static int on_apply(void *arg, const char *json, size_t len, const char *version, char *why,
                    size_t why_size)
{
    struct seen *s = arg;
    s->applied++;
    cr_assert_eq(json[len], '\0', "the body is NUL-terminated");
    free(s->last);
    s->last = malloc(len + 1);
    memcpy(s->last, json, len + 1);
    s->last_len = len;
    snprintf(s->version, sizeof(s->version), "%s", version);
    if (s->rc < 0)
        snprintf(why, why_size, "listeners: bad");
    return s->rc;
}

static int on_delta(void *arg, const char *json, size_t len, const char *base,
                    const char *version, char *why, size_t why_size)
{
    struct seen *s = arg;
    s->deltas++;
    snprintf(s->version, sizeof(s->version), "%s", version);
    snprintf(s->base, sizeof(s->base), "%s", base);
    return s->delta_rc;
}

/* ---- running the loop until something happened ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

typedef bool pred_fn(void *arg);

/* Runs <base> until <pred> holds, at most 10 s; false if it never did. */
static bool run_until(struct event_base *base, pred_fn *pred, void *arg)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool ok = false;
    for (;;) {
        if ((ok = pred(arg)))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(tick);
    return ok;
}

struct fixture {
    struct event_base *base;
    struct srv *srv;
    struct mesh_push_client *c;
    struct seen seen;
    int want;                /* what the predicates wait for */
};

static bool watches_reach(void *arg)
{
    struct fixture *f = arg;
    return f->srv->watches >= f->want && srv_conn(f->srv)->watch;
}
static bool acks_reach(void *arg)
{
    struct fixture *f = arg;
    return (int)json_array_size(f->srv->acks) >= f->want;
}
static bool conns_reach(void *arg)
{
    struct fixture *f = arg;
    return f->srv->n_conns >= f->want;
}

/* the client counts a connect when the answer's headers arrive (after the server saw it) */
static bool connects_reach(void *arg)
{
    struct fixture *f = arg;
    struct mesh_push_client_stats st;
    mesh_push_client_stats(f->c, &st);
    return st.connects >= (uint64_t)f->want;
}

static void start(struct fixture *f, const char *token)
{
    memset(f, 0, sizeof(*f));
    mesh_log_set_level(MESH_LOG_ERROR);
    f->base = event_base_new();
    f->srv = srv_new(f->base);
    struct mesh_push_client_cfg cfg = {.base = f->base, .host = "127.0.0.1", .port = f->srv->port,
                                       .node = "ns/n", .labels = "app=a,v=1", .role = "sidecar",
                                       .token = token, .apply = on_apply,
                                       .apply_delta = on_delta, .arg = &f->seen};
    f->c = mesh_push_client_new(&cfg);
}

static void watch_open(struct fixture *f, int n)
{
    f->want = n;
    cr_assert(run_until(f->base, watches_reach, f), "watch #%d opens", n);
}

static struct mesh_push_client_stats stats(const struct fixture *f)
{
    struct mesh_push_client_stats st;
    mesh_push_client_stats(f->c, &st);
    return st;
}

static void stop(struct fixture *f)
{
    mesh_push_client_free(f->c);
    srv_free(f->srv);
    event_base_free(f->base);
    free(f->seen.last);
}

static json_t *snapshot_header(int id, const char *version)
{
    return json_pack("{s:s, s:i, s:s, s:i}", "type", "snapshot", "id", id, "version", version,
                     "revision", 1);
}

/* ---- tests ---- */

LEAK_TEST(push_client, snapshot_larger_than_the_windows_then_ack_on_the_same_connection)
{
    struct fixture f;
    start(&f, "s3cret");
    watch_open(&f, 1);
    struct sstream *w = srv_conn(f.srv)->watch;
    cr_assert_str_eq(w->path, "/v1/watch?node=ns%2Fn&labels=app%3Da%2Cv%3D1&role=sidecar");
    cr_assert_str_eq(w->accept, "application/x-meshd-push");
    cr_assert_str_eq(w->auth, "Bearer s3cret");
    /* 9 MiB: more than the client's stream (4 MiB) and connection (8 MiB) windows */
    size_t len = 9u << 20;
    char *body = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 26);
    body[0] = '{';
    body[len - 1] = '}';
    body[len] = '\0';
    srv_send(f.srv, json_pack("{s:s}", "type", "ping"), NULL, 0);
    srv_send(f.srv, snapshot_header(7, "v-big"), body, len);
    f.want = 1;
    cr_assert(run_until(f.base, acks_reach, &f), "the snapshot arrives and is acked");
    cr_assert_eq(f.seen.applied, 1);
    cr_assert_eq(f.seen.last_len, len);
    cr_assert(memcmp(f.seen.last, body, len) == 0, "the body arrives intact");
    free(body);
    json_t *ack = json_array_get(f.srv->acks, 0);
    cr_assert_eq(json_integer_value(json_object_get(ack, "id")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(ack, "node")), "ns/n");
    cr_assert_str_eq(json_string_value(json_object_get(ack, "version")), "v-big");
    cr_assert_null(json_object_get(ack, "error"));
    cr_assert_str_eq(json_string_value(json_object_get(ack, "auth")), "Bearer s3cret");
    cr_assert_eq(f.srv->n_conns, 1, "the ACK went on the watch's connection");
    /* a second snapshot on the same watch */
    srv_send(f.srv, snapshot_header(7, "v-2"), "{}", 2);
    f.want = 2;
    cr_assert(run_until(f.base, acks_reach, &f));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(f.srv->acks, 1), "version")),
                     "v-2");
    cr_assert_eq(f.srv->n_conns, 1);
    struct mesh_push_client_stats st = stats(&f);
    cr_assert_eq(st.applied, 2);
    cr_assert_eq(st.connects, 1);
    cr_assert_eq(st.failures, 0);
    stop(&f);
}

LEAK_TEST(push_client, nack_carries_the_reason_and_no_token_no_header)
{
    struct fixture f;
    start(&f, NULL);
    watch_open(&f, 1);
    cr_assert_str_eq(srv_conn(f.srv)->watch->auth, "");
    f.seen.rc = -1;
    srv_send(f.srv, snapshot_header(3, "v-bad"), "{}", 2);
    f.want = 1;
    cr_assert(run_until(f.base, acks_reach, &f));
    json_t *ack = json_array_get(f.srv->acks, 0);
    cr_assert_str_eq(json_string_value(json_object_get(ack, "error")), "listeners: bad");
    cr_assert_str_eq(json_string_value(json_object_get(ack, "auth")), "");
    struct mesh_push_client_stats st = stats(&f);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.applied, 0);
    stop(&f);
}

LEAK_TEST(push_client, delta_applied_or_for_another_base_reconnects)
{
    struct fixture f;
    start(&f, NULL);
    watch_open(&f, 1);
    json_t *h = json_pack("{s:s, s:i, s:s, s:s, s:i}", "type", "delta", "id", 1, "version", "v2",
                          "base", "v1", "revision", 2);
    srv_send(f.srv, h, "{\"clusters\":[]}", 15);
    f.want = 1;
    cr_assert(run_until(f.base, acks_reach, &f));
    cr_assert_eq(f.seen.deltas, 1);
    cr_assert_str_eq(f.seen.base, "v1");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(f.srv->acks, 0),
                                                       "version")), "v2");
    /* not the base we serve: a new watch (and connection) at once, for the whole snapshot */
    f.seen.delta_rc = 1;
    h = json_pack("{s:s, s:i, s:s, s:s, s:i}", "type", "delta", "id", 1, "version", "v4",
                  "base", "v3", "revision", 3);
    srv_send(f.srv, h, "{\"clusters\":[]}", 15);
    watch_open(&f, 2);
    cr_assert_eq(f.srv->n_conns, 2);
    cr_assert_eq(json_array_size(f.srv->acks), 1, "no ACK for the delta it could not apply");
    cr_assert_eq(stats(&f).deltas, 1);
    cr_assert(run_until(f.base, connects_reach, &f), "two connects counted");
    stop(&f);
}

LEAK_TEST(push_client, goaway_and_the_end_of_the_watch_reconnect)
{
    struct fixture f;
    start(&f, NULL);
    watch_open(&f, 1);
    struct sconn *c = srv_conn(f.srv);
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    sconn_flush(c);
    watch_open(&f, 2);
    cr_assert_eq(f.srv->n_conns, 2, "a new connection after GOAWAY");
    /* the control plane ends the watch (END_STREAM): the client comes back */
    c = srv_conn(f.srv);
    c->watch->ended = true;
    srv_send_raw(f.srv, "");
    watch_open(&f, 3);
    cr_assert_eq(stats(&f).failures, 0, "neither is a failure");
    f.want = 3;
    cr_assert(run_until(f.base, connects_reach, &f), "three connects counted");
    stop(&f);
}

LEAK_TEST(push_client, refused_watch_and_bad_frame_are_failures_and_retried)
{
    struct fixture f;
    start(&f, NULL);
    f.srv->watch_status = 401;
    f.want = 2;
    cr_assert(run_until(f.base, conns_reach, &f), "the client retries a refused watch");
    struct mesh_push_client_stats st = stats(&f);
    cr_assert_geq(st.failures, 1);
    cr_assert_eq(st.connects, 0);
    f.srv->watch_status = 200;
    int n = f.srv->watches;
    watch_open(&f, n + 1);
    uint64_t failures = stats(&f).failures;
    srv_send_raw(f.srv, "not json\n");
    watch_open(&f, n + 2);
    cr_assert_eq(stats(&f).failures, failures + 1, "the bad frame is one failure");
    stop(&f);
}

static bool applied(void *arg)
{
    return ((struct fixture *)arg)->seen.applied > 0;
}

LEAK_TEST(push_client, free_with_an_ack_in_flight)
{
    struct fixture f;
    start(&f, NULL);
    watch_open(&f, 1);
    srv_send(f.srv, snapshot_header(1, "v1"), "{}", 2);
    cr_assert(run_until(f.base, applied, &f));
    /* the ACK is submitted but not answered yet: freeing now releases it */
    stop(&f);
}

LEAK_TEST(push_client, nobody_listening_is_a_failure_and_retried)
{
    struct fixture f;
    start(&f, NULL);
    uint16_t port = f.srv->port;
    mesh_push_client_free(f.c); /* (freed while it connects) */
    evconnlistener_free(f.srv->lis); /* the port is free now: connects are refused */
    f.srv->lis = NULL;
    struct mesh_push_client_cfg cfg = {.base = f.base, .host = "127.0.0.1", .port = port,
                                       .node = "ns/n", .apply = on_apply, .arg = &f.seen};
    f.c = mesh_push_client_new(&cfg);
    struct mesh_push_client_stats st = {0};
    for (int i = 0; i < 1000 && st.failures < 2; i++) {
        event_base_loop(f.base, EVLOOP_ONCE);
        mesh_push_client_stats(f.c, &st);
    }
    cr_assert_geq(st.failures, 2, "a refused connect is a failure, and it is retried");
    cr_assert_eq(st.connects, 0);
    stop(&f);
}
