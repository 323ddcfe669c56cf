/*
 * Fuzzes the downstream HTTP/2 path: the client preface, then the input as the client's
 * frames, on a real socket of a real connection of a hand-made worker. Requests for /up
 * are proxied over HTTP/1.1 and those for /h2 over HTTP/2 to real upstream sockets (one
 * listener of this harness, which tells the protocols apart by the client preface): the
 * HTTP/1.1 side answers each request head with a small response, the HTTP/2 side (an
 * nghttp2 server session) each finished request with a body and trailers. So responses
 * are framed back, flow-controlled and cut short by resets, GOAWAY and the client's FIN.
 * A CONNECT opens a tunnel to the HTTP/1.1 side (its bytes unframed, tunnel.c), which
 * answers every empty line in them; the rest get a direct response. Seeds (tests/fuzz/corpus/h2/) carry HPACK-encoded
 * requests, bodies, trailers, CONTINUATION, CONNECT, resets, window updates and bad
 * header fields.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nghttp2/nghttp2.h>
#include "../worker_harness.h"
#include "h2_show.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/* to an Upgrade (an extended CONNECT, RFC 8441): a switch, with the tunnel's first bytes
 * in the same write; then the connection echoes */
static const char switched[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n\r\n\x81\x02hi";

/* An upstream connection meshd opened: HTTP/1.1 or, when it starts with the client
 * preface, HTTP/2 (then <h2> serves it). */
struct up {
    int fd;
    bool sniffed;
    bool tunnel;     /* answered 101: bytes are echoed */
    nghttp2_session *h2;
};

static ssize_t h2_body(nghttp2_session *h, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                       nghttp2_data_source *src, void *ud)
{
    static const nghttp2_nv trailer[] = {{(uint8_t *)"x-t", (uint8_t *)"1", 3, 1, 0}};
    memcpy(buf, "h2ok", 4);
    *fl |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_submit_trailer(h, id, trailer, 1);
    return 4;
}

static int h2_on_frame(nghttp2_session *h, const nghttp2_frame *f, void *ud)
{
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        static const nghttp2_nv nva[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0}};
        nghttp2_data_provider dp = {.read_callback = h2_body};
        nghttp2_submit_response(h, f->hd.stream_id, nva, 1, &dp);
    }
    return 0;
}

/* Reads what meshd sent upstream on <u> and answers. HTTP/1.1: once per request head
 * seen; a head split across reads is missed (then meshd's request times out or its
 * connection closes, a path worth fuzzing too). */
static void upstream_serve(struct up *u)
{
    static nghttp2_session_callbacks *cb;
    char buf[65536];
    ssize_t got;
    while ((got = read(u->fd, buf, sizeof(buf))) > 0) {
        if (!u->sniffed) {
            u->sniffed = true;
            if ((size_t)got >= NGHTTP2_CLIENT_MAGIC_LEN &&
                memcmp(buf, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN) == 0) {
                if (!cb && (nghttp2_session_callbacks_new(&cb) != 0 ||
                            (nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame),
                             false)))
                    abort();
                if (nghttp2_session_server_new(&u->h2, cb, u) != 0 ||
                    nghttp2_submit_settings(u->h2, NGHTTP2_FLAG_NONE, NULL, 0) != 0)
                    abort();
            }
        }
        if (u->h2) {
            if (nghttp2_session_mem_recv(u->h2, (const uint8_t *)buf, (size_t)got) < 0)
                return;
            const uint8_t *out;
            ssize_t n;
            while ((n = nghttp2_session_mem_send(u->h2, &out)) > 0)
                if (send(u->fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
                    return;
            continue;
        }
        if (u->tunnel) {
            if (send(u->fd, buf, (size_t)got, MSG_NOSIGNAL) < 0)
                return;
            continue;
        }
        if (memmem(buf, (size_t)got, "\r\nupgrade:", 10)) {
            u->tunnel = true;
            if (send(u->fd, switched, sizeof(switched) - 1, MSG_NOSIGNAL) < 0)
                return;
            continue;
        }
        for (ssize_t i = 0; i + 3 < got; i++)
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0 &&
                send(u->fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0)
                return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_snapshot *snap;
    static struct mesh_io_batch *io;
    static int lfd = -1;
    static struct h2_show *show; /* MESH_HARNESS_SHOW=1: what the client got, decoded */
    if (lfd < 0) {
        if (getenv("MESH_HARNESS_SHOW") && !(show = calloc(1, sizeof(*show))))
            abort();
        uint16_t port;
        lfd = harness_upstream_listener(&port);
        char json[1024];
        int n = snprintf(json, sizeof(json),
                         HARNESS_SNAPSHOT_HEAD
                         "{\"match\":{\"prefix\":\"/up\"},\"route\":{\"cluster\":\"c\"}},"
                         "{\"match\":{\"prefix\":\"/h2\"},\"route\":{\"cluster\":\"c2\"}},"
                         "{\"match\":{\"prefix\":\"/\",\"method\":{\"exact\":\"CONNECT\"}},"
                         "\"route\":{\"cluster\":\"c\"}},"
                         "{\"match\":{\"prefix\":\"/\"},\"direct_response\":{\"status\":200,"
                         "\"body\":\"direct\"}}]}]}],\"clusters\":[{\"name\":\"c\","
                         "\"connect_timeout_ms\":1000,\"endpoints\":[{\"address\":\"127.0.0.1\","
                         "\"port\":%u}]},{\"name\":\"c2\",\"protocol\":\"http2\","
                         "\"connect_timeout_ms\":1000,\"endpoints\":[{\"address\":\"127.0.0.1\","
                         "\"port\":%u}]}]}",
                         (unsigned)port, (unsigned)port);
        harness_once(json, (size_t)n, &snap, &io);
    }
    struct mesh_runtime rt;
    struct mesh_worker w;
    harness_worker_init(&w, &rt, snap, io);
    int client = harness_client(&w);
    if (client < 0 || write(client, preface, sizeof(preface) - 1) < 0)
        abort();
    struct up ups[8];
    int n_up = 0;
    size_t off = 0;
    bool shut = false;
    char sink[65536];
    for (int turn = 0; turn < 64; turn++) {
        harness_send(client, data, size, &off);
        /* the client's FIN closes an HTTP/2 connection: it comes late, so that the
         * upstream's answers have turns to come back before it */
        if (turn >= 16 && off == size && !shut) {
            shutdown(client, SHUT_WR);
            shut = true;
        }
        mesh_worker_settle(&w);
        int fd;
        while (n_up < 8 && (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            ups[n_up++] = (struct up){.fd = fd};
        for (int i = 0; i < n_up; i++)
            upstream_serve(&ups[i]);
        mesh_worker_settle(&w);
        ssize_t got;
        while ((got = read(client, sink, sizeof(sink))) > 0)
            if (show)
                h2_show_feed(show, (const uint8_t *)sink, (size_t)got);
        if (w.n_conns == 0 && (shut || off == size))
            break;
    }
    for (int i = 0; i < n_up; i++) {
        close(ups[i].fd);
        nghttp2_session_del(ups[i].h2);
    }
    harness_end(&w, &rt, lfd, NULL, 0, client);
    if (show)
        h2_show_end(show);
    return 0;
}
