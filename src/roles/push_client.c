/*
 * The proxy's push client (push_client.h): one HTTP/2 connection (h2c, prior knowledge) to
 * the control plane, a bufferevent on the main thread's event base driving an nghttp2 client
 * session. The watch is a GET /v1/watch stream whose DATA is fed to the frame parser; every
 * ACK or NACK is a POST /v1/ack stream on the same connection. One connection per proxy, and
 * the control plane sees a proxy go the moment that connection closes.
 *
 * nghttp2 callbacks only record what arrived (the parser's bytes, a status, "the watch
 * closed"): snapshots are applied and the connection is torn down after
 * nghttp2_session_mem_recv() returns, never inside the session.
 */
#include "core/common.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/list.h"
#include "core/log.h"
#include "roles/push_client.h"
#include "roles/push_frame.h"

#define READ_TIMEOUT_S 20  /* four missed pings (every 5 s): the control plane is gone */
#define WRITE_TIMEOUT_S 10 /* a connect that hangs, or a peer that stopped reading */
/* Large windows: a 1,000-service snapshot (1.2 MB) arrives without waiting for updates.
 * nghttp2 reopens them itself as the DATA is handed to on_data (its automatic updates). */
#define STREAM_WINDOW (4 << 20)
#define CONN_WINDOW (8 << 20)

/* One ACK or NACK in flight: its POST stream and body (owned; freed when the stream closes
 * or the connection goes). */
struct ack {
    struct mesh_list link;
    int32_t id;
    char *body;
    size_t len, off;
    int status;
    char resp[200];          /* the start of the answer's body, for the log */
    size_t resp_len;
};

/* Why the connection went (the log line and whether it counts as a failure). */
enum drop_why { DROP_ENDED, DROP_GOAWAY, DROP_STATUS, DROP_LOST, DROP_BAD, DROP_NOW };

struct mesh_push_client {
    struct event_base *base;
    char hostport[300];
    struct sockaddr_storage addr;
    int addr_len;
    char *uri;               /* /v1/watch?node=... */
    char *node;              /* "NS/NAME", in acks */
    char *auth;              /* "Bearer ..." or NULL */
    mesh_push_apply_fn *apply;
    mesh_push_delta_fn *apply_delta;
    void *arg;
    /* the connection; NULL between connections */
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct mesh_list acks;
    int32_t watch_id;
    int watch_status;        /* its :status, 0 until the answer */
    bool watch_closed;       /* the watch stream ended (the connection goes with it) */
    uint32_t watch_rst;      /* how it ended (NGHTTP2_NO_ERROR: END_STREAM) */
    bool goaway;             /* the control plane drains this connection */
    bool connecting;         /* inside bufferevent_socket_connect() */
    bool connect_failed;     /* ... which reported an error at once */
    struct event *retry;
    unsigned attempt;        /* failures since the last good frame (backoff) */
    struct mesh_push_parser parser;
    char last_error[512];    /* the last "error" frame, said once */
    char errbody[512];       /* a non-200 answer's body, for the log */
    size_t errbody_len;
    struct mesh_push_client_stats stats;
};

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    return r;
}

/* URL-encodes <val> for a query value. */
static void add_param(char **uri, size_t *len, const char *key, const char *val)
{
    if (!val)
        return;
    char *enc = mesh_pct_encode(val); /* not evhttp_encode_uri: its string is libevent's to free */
    size_t need = *len + strlen(key) + strlen(enc) + 3;
    *uri = mesh_xrealloc(*uri, need + 1);
    *len += (size_t)snprintf(*uri + *len, need + 1 - *len, "%c%s=%s",
                             strchr(*uri, '?') ? '&' : '?', key, enc);
    free(enc);
}

static void conn_close(struct mesh_push_client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->h2)
        nghttp2_session_del(c->h2); /* calls nothing back: the acks are freed here */
    c->h2 = NULL;
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &c->acks)
    {
        struct ack *a = mesh_list_entry(pos, struct ack, link);
        mesh_list_remove(&a->link);
        free(a->body);
        free(a);
    }
    c->watch_id = 0;
}

/* Hands nghttp2's pending output to the bufferevent; false when the session failed. */
static bool flush_out(struct mesh_push_client *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            mesh_log_warn("push: HTTP/2 error towards the control plane: %s",
                          nghttp2_strerror((int)n));
            return false;
        }
        if (n == 0)
            return true;
        bufferevent_write(c->bev, data, (size_t)n);
    }
}

/* ---- ACK / NACK: a POST /v1/ack stream on the watch's connection ---- */

static ssize_t ack_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct ack *a = src->ptr;
    size_t n = MESH_MIN(a->len - a->off, length);
    memcpy(buf, a->body + a->off, n);
    a->off += n;
    if (a->off == a->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, vl)                                                                               \
    (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE}
#define NVS(n, v) NV(n, v, strlen(v))

static void send_ack(struct mesh_push_client *c, json_int_t id, const char *version,
                     const char *error)
{
    if (!c->h2 || c->goaway) {
        mesh_log_warn("push: cannot send the %s for version %s: the connection is going",
                      error ? "nack" : "ack", version);
        return;
    }
    json_t *o = json_pack("{s:I, s:s, s:s}", "id", id, "node", c->node, "version", version);
    if (error)
        json_object_set_new(o, "error", json_string(error));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body)
        return;
    struct ack *a = mesh_xcalloc(1, sizeof(*a));
    a->body = body;
    a->len = strlen(body);
    char cl[24];
    int cll = snprintf(cl, sizeof(cl), "%zu", a->len);
    nghttp2_nv nva[] = {
        NVS(":method", "POST"),
        NVS(":scheme", "http"),
        NVS(":authority", c->hostport),
        NVS(":path", "/v1/ack"),
        NVS("content-type", "application/json"),
        NV("content-length", cl, (size_t)cll),
        NVS("authorization", c->auth ? c->auth : ""),
    };
    nghttp2_data_provider dp = {.source.ptr = a, .read_callback = ack_read};
    int32_t sid = nghttp2_submit_request(c->h2, NULL, nva, MESH_ARRAY_LEN(nva) - !c->auth, &dp,
                                         a);
    if (sid < 0) {
        mesh_log_warn("push: cannot send the ack: %s", nghttp2_strerror(sid));
        free(a->body);
        free(a);
        return;
    }
    a->id = sid;
    mesh_list_insert_tail(&c->acks, &a->link);
}

/* ---- the frames of the watch ---- */

static void schedule_retry(struct mesh_push_client *c, bool after_failure)
{
    uint32_t ms = mesh_push_backoff_ms(c->attempt, random_u32());
    if (after_failure)
        c->attempt++;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_del(c->retry);
    evtimer_add(c->retry, &tv);
    mesh_log_debug("push: reconnecting in %u ms", ms);
}

/* Applies one frame; false when the connection must go at once (a delta for another base). */
static bool on_frame(struct mesh_push_client *c, const struct mesh_push_frame *f)
{
    c->attempt = 0; /* the control plane talks to us: back off from scratch next time */
    json_t *jid = json_object_get(f->header, "id");
    bool delta = strcmp(f->type, "delta") == 0;
    if (delta || strcmp(f->type, "snapshot") == 0) {
        const char *version = json_string_value(json_object_get(f->header, "version"));
        const char *base = json_string_value(json_object_get(f->header, "base"));
        if (!f->body || !json_is_integer(jid) || !version || (delta && !base)) {
            mesh_log_warn("push: a %s frame without id, version%s or body: ignored", f->type,
                          delta ? ", base" : "");
            return true;
        }
        char why[4096] = "";
        int rc = !delta ? c->apply(c->arg, f->body, f->body_len, version, why, sizeof(why))
                 : c->apply_delta
                     ? c->apply_delta(c->arg, f->body, f->body_len, base, version, why,
                                      sizeof(why))
                     : 1;
        if (rc > 0) {
            /* not what we serve: a new watch starts with the whole snapshot */
            mesh_log_info("push: a delta for version %s, which we do not serve; reconnecting "
                          "for the whole snapshot", base);
            return false;
        }
        c->stats.deltas += delta && rc == 0;
        if (rc == 0) {
            c->stats.applied++;
            send_ack(c, json_integer_value(jid), version, NULL);
        } else {
            c->stats.refused++;
            if (!why[0])
                snprintf(why, sizeof(why), "refused");
            send_ack(c, json_integer_value(jid), version, why);
        }
    } else if (strcmp(f->type, "error") == 0) {
        const char *e = json_string_value(json_object_get(f->header, "error"));
        if (e && strcmp(e, c->last_error) != 0) {
            snprintf(c->last_error, sizeof(c->last_error), "%s", e);
            mesh_log_error("push: the control plane has no snapshot for us: %s", e);
        }
    }
    /* "ping" and types of later versions: nothing to do */
    return true;
}

/* Every complete frame the parser holds: 1 when all are applied, 0 when the connection must
 * go at once (a delta for another base), -1 for a bad stream (logged). */
static int drain_frames(struct mesh_push_client *c)
{
    for (;;) {
        struct mesh_push_frame f;
        char why[256];
        int rc = mesh_push_parser_next(&c->parser, &f, why, sizeof(why));
        if (rc == 0)
            return 1;
        if (rc < 0) {
            mesh_log_error("push: bad stream from the control plane: %s; reconnecting", why);
            return -1;
        }
        if (!on_frame(c, &f))
            return 0;
    }
}

/* ---- nghttp2 callbacks: they record, the read callback acts ---- */

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct mesh_push_client *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE ||
        nlen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    int st = 0;
    for (size_t i = 0; i < vlen && i < 3; i++)
        st = st * 10 + (value[i] - '0');
    if (f->hd.stream_id == c->watch_id) {
        c->watch_status = st;
    } else {
        struct ack *a = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
        if (a)
            a->status = st;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    struct mesh_push_client *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
    } else if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == c->watch_id &&
               f->headers.cat == NGHTTP2_HCAT_RESPONSE && c->watch_status == 200) {
        c->stats.connects++;
        mesh_log_info("push: watching %s%s", c->hostport, c->uri);
    }
    return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                   size_t len, void *ud)
{
    struct mesh_push_client *c = ud;
    if (id == c->watch_id) {
        if (c->watch_status == 200) {
            mesh_push_parser_feed(&c->parser, data, len);
        } else {
            size_t n = MESH_MIN(len, sizeof(c->errbody) - 1 - c->errbody_len);
            memcpy(c->errbody + c->errbody_len, data, n);
            c->errbody_len += n;
            c->errbody[c->errbody_len] = '\0';
        }
        return 0;
    }
    struct ack *a = nghttp2_session_get_stream_user_data(h2, id);
    if (a) {
        size_t n = MESH_MIN(len, sizeof(a->resp) - a->resp_len);
        memcpy(a->resp + a->resp_len, data, n);
        a->resp_len += n;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    struct mesh_push_client *c = ud;
    if (id == c->watch_id) {
        c->watch_closed = true;
        c->watch_rst = err;
        return 0;
    }
    struct ack *a = nghttp2_session_get_stream_user_data(h2, id);
    if (!a)
        return 0;
    if (a->status != 200) {
        while (a->resp_len && (a->resp[a->resp_len - 1] == '\n'))
            a->resp_len--;
        if (a->status)
            mesh_log_warn("push: the control plane did not take our ack (HTTP %d): %.*s",
                          a->status, (int)a->resp_len, a->resp);
        else
            mesh_log_warn("push: the control plane did not take our ack (stream closed: %s)",
                          nghttp2_http2_strerror(err));
    }
    nghttp2_session_set_stream_user_data(h2, id, NULL);
    mesh_list_remove(&a->link);
    free(a->body);
    free(a);
    return 0;
}

/* ---- the connection ---- */

/* Closes the connection and schedules the next one; <detail> says why for DROP_LOST. */
static void drop(struct mesh_push_client *c, enum drop_why why, const char *detail)
{
    bool answered = c->watch_status == 200;
    conn_close(c);
    switch (why) {
    case DROP_ENDED:
        mesh_log_warn("push: the control plane ended the watch; keeping the current snapshot, "
                      "reconnecting");
        schedule_retry(c, false);
        break;
    case DROP_GOAWAY:
        mesh_log_info("push: the control plane at %s is going away (GOAWAY); keeping the "
                      "current snapshot, reconnecting", c->hostport);
        schedule_retry(c, false);
        break;
    case DROP_STATUS:
        c->stats.failures++;
        while (c->errbody_len && c->errbody[c->errbody_len - 1] == '\n')
            c->errbody[--c->errbody_len] = '\0';
        mesh_log_warn("push: the control plane answered %d: %s", c->watch_status, c->errbody);
        schedule_retry(c, true);
        break;
    case DROP_LOST:
        c->stats.failures++;
        mesh_log_warn("push: cannot reach the control plane at %s (%s%s); keeping the current "
                      "snapshot", c->hostport, detail, answered ? ", after the watch began" : "");
        schedule_retry(c, true);
        break;
    case DROP_BAD:
        /* the stream is unusable; after a backoff, as a control plane that sends a bad
         * frame once likely sends it again */
        c->stats.failures++;
        schedule_retry(c, true);
        break;
    case DROP_NOW: {
        evtimer_del(c->retry);
        struct timeval now = {0, 0};
        evtimer_add(c->retry, &now);
        break;
    }
    }
}

/* Applies the frames received; false when the connection went with them (drop() done). */
static bool take_frames(struct mesh_push_client *c)
{
    int rc = drain_frames(c);
    if (rc < 0)
        drop(c, DROP_BAD, NULL);
    else if (rc == 0)
        drop(c, DROP_NOW, NULL);
    return rc > 0;
}

/* After input or a close: what the session says next (the watch ended, GOAWAY...). */
static void after_io(struct mesh_push_client *c)
{
    if (c->watch_closed) {
        if (c->watch_status == 200 && c->watch_rst == NGHTTP2_NO_ERROR)
            drop(c, DROP_ENDED, NULL);
        else if (c->watch_status && c->watch_status != 200)
            drop(c, DROP_STATUS, NULL);
        else if (c->goaway)
            drop(c, DROP_GOAWAY, NULL);
        else {
            char why[80];
            snprintf(why, sizeof(why), "the watch stream was reset: %s",
                     nghttp2_http2_strerror(c->watch_rst));
            drop(c, DROP_LOST, why);
        }
    } else if (c->goaway) {
        drop(c, DROP_GOAWAY, NULL);
    } else if (!flush_out(c)) {
        drop(c, DROP_LOST, "HTTP/2 error");
    } else if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
        drop(c, DROP_LOST, "HTTP/2 protocol error: is it a meshd control plane?");
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct mesh_push_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t r = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        if (r < 0) {
            char why[160];
            snprintf(why, sizeof(why), "HTTP/2 error: %s", nghttp2_strerror((int)r));
            drop(c, DROP_LOST, why);
            return;
        }
        evbuffer_drain(in, (size_t)r);
    }
    /* snapshots are applied here, outside nghttp2: their ACKs are new streams */
    if (take_frames(c))
        after_io(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mesh_push_client *c = arg;
    if (c->connecting) {
        c->connect_failed = true; /* bufferevent_socket_connect() reports it */
        return;
    }
    if (what & BEV_EVENT_CONNECTED)
        return;
    const char *why = "connection closed";
    char buf[160];
    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(buf, sizeof(buf), what & BEV_EVENT_READING ? "silent for %d s"
                                                            : "no progress writing for %d s",
                 what & BEV_EVENT_READING ? READ_TIMEOUT_S : WRITE_TIMEOUT_S);
        why = buf;
    } else if (what & BEV_EVENT_ERROR) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(buf, sizeof(buf), "%s",
                 e ? evutil_socket_error_to_string(e) : "connection failed");
        why = buf;
    } else if (c->watch_status != 200) {
        why = "connection closed before an answer";
    }
    /* frames already received are applied before the connection goes */
    if (c->watch_status == 200 && !take_frames(c))
        return;
    if (c->watch_closed || c->goaway) {
        after_io(c);
        return;
    }
    drop(c, DROP_LOST, why);
}

static nghttp2_session *session_new(struct mesh_push_client *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb))
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session *h2 = NULL;
    int rv = nghttp2_session_client_new(&h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rv)
        return NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    if (nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, iv, MESH_ARRAY_LEN(iv)) ||
        nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW)) {
        nghttp2_session_del(h2);
        return NULL;
    }
    return h2;
}

static void start_watch(struct mesh_push_client *c)
{
    conn_close(c);
    mesh_push_parser_free(&c->parser);
    mesh_push_parser_init(&c->parser);
    c->errbody_len = 0;
    c->errbody[0] = '\0';
    c->watch_status = 0;
    c->watch_closed = false;
    c->watch_rst = 0;
    c->goaway = false;
    c->h2 = session_new(c);
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->h2 || !c->bev) {
        drop(c, DROP_LOST, "out of memory");
        return;
    }
    nghttp2_nv nva[] = {
        NVS(":method", "GET"),
        NVS(":scheme", "http"),
        NVS(":authority", c->hostport),
        NVS(":path", c->uri),
        NVS("accept", "application/x-meshd-push"),
        NVS("authorization", c->auth ? c->auth : ""),
    };
    c->watch_id = nghttp2_submit_request(c->h2, NULL, nva, MESH_ARRAY_LEN(nva) - !c->auth,
                                         NULL, NULL);
    if (c->watch_id < 0) {
        c->watch_id = 0;
        drop(c, DROP_LOST, "cannot open the watch stream");
        return;
    }
    struct timeval rt = {READ_TIMEOUT_S, 0}, wt = {WRITE_TIMEOUT_S, 0};
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_set_timeouts(c->bev, &rt, &wt);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* the preface, SETTINGS and the request wait in the output until the connect ends */
    if (!flush_out(c)) {
        drop(c, DROP_LOST, "HTTP/2 error");
        return;
    }
    c->connecting = true;
    c->connect_failed = false;
    int rc = bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addr, c->addr_len);
    c->connecting = false;
    if (rc != 0 || c->connect_failed) {
        int e = EVUTIL_SOCKET_ERROR();
        drop(c, DROP_LOST, e ? evutil_socket_error_to_string(e) : "connection failed");
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    start_watch(arg);
}

struct mesh_push_client *mesh_push_client_new(const struct mesh_push_client_cfg *cfg)
{
    struct mesh_push_client *c = mesh_xcalloc(1, sizeof(*c));
    c->base = cfg->base;
    snprintf(c->hostport, sizeof(c->hostport), strchr(cfg->host, ':') ? "[%s]:%u" : "%s:%u",
             cfg->host, cfg->port);
    c->addr_len = (int)sizeof(c->addr);
    if (evutil_parse_sockaddr_port(c->hostport, (struct sockaddr *)&c->addr, &c->addr_len) != 0)
        c->addr_len = 0; /* the caller checked it is numeric: every connect fails and says so */
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
    c->apply_delta = cfg->apply_delta;
    c->arg = cfg->arg;
    mesh_list_init(&c->acks);
    mesh_push_parser_init(&c->parser);
    c->retry = evtimer_new(c->base, on_retry, c);
    start_watch(c);
    return c;
}

void mesh_push_client_free(struct mesh_push_client *c)
{
    if (!c)
        return;
    conn_close(c);
    event_free(c->retry);
    mesh_push_parser_free(&c->parser);
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
    }
    free(c->uri);
    free(c->node);
    free(c);
}

void mesh_push_client_stats(const struct mesh_push_client *c, struct mesh_push_client_stats *out)
{
    *out = c->stats;
}
