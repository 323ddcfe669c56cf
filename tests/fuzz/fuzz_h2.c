/*
 * Fuzzes the downstream HTTP/2 path: the client preface, then the input as the client's
 * frames, on a real socket of a real connection of a hand-made worker. Requests for /up
 * are proxied to a real upstream socket (a listener of this harness) that answers each
 * request head with a small HTTP/1.1 response, so that responses are framed back,
 * flow-controlled and cut short by resets, GOAWAY and the client's FIN; the rest get a
 * direct response. Seeds (tests/fuzz/corpus/h2/) carry HPACK-encoded requests, bodies,
 * trailers, CONTINUATION, CONNECT, resets, window updates and bad header fields.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../worker_harness.h"
#include "h2_show.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Reads what meshd sent upstream on <fd>; answers once per request head seen. A head split
 * across reads is missed: then meshd's request times out or its connection closes, which
 * is a path worth fuzzing too. */
static void upstream_serve(int fd)
{
    char buf[65536];
    ssize_t got;
    while ((got = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i + 3 < got; i++)
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0 &&
                send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0)
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
                         "{\"version\":\"fuzz\",\"listeners\":[{\"name\":\"l\",\"address\":"
                         "\"127.0.0.1\",\"port\":0,\"route_config\":\"rc\"}],\"route_configs\":"
                         "[{\"name\":\"rc\",\"virtual_hosts\":[{\"name\":\"v\",\"domains\":[\"*\"],"
                         "\"routes\":[{\"match\":{\"prefix\":\"/up\"},\"route\":{\"cluster\":\"c\"}},"
                         "{\"match\":{\"prefix\":\"/\"},\"direct_response\":{\"status\":200,"
                         "\"body\":\"direct\"}}]}]}],\"clusters\":[{\"name\":\"c\","
                         "\"connect_timeout_ms\":1000,\"endpoints\":[{\"address\":\"127.0.0.1\","
                         "\"port\":%u}]}]}",
                         (unsigned)port);
        harness_once(json, (size_t)n, &snap, &io);
    }
    struct mesh_runtime rt;
    struct mesh_worker w;
    harness_worker_init(&w, &rt, snap, io);
    int client = harness_client(&w);
    if (client < 0 || write(client, preface, sizeof(preface) - 1) < 0)
        abort();
    int up[8], n_up = 0;
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
            up[n_up++] = fd;
        for (int i = 0; i < n_up; i++)
            upstream_serve(up[i]);
        mesh_worker_settle(&w);
        ssize_t got;
        while ((got = read(client, sink, sizeof(sink))) > 0)
            if (show)
                h2_show_feed(show, (const uint8_t *)sink, (size_t)got);
        if (w.n_conns == 0 && (shut || off == size))
            break;
    }
    harness_end(&w, &rt, lfd, up, n_up, client);
    if (show)
        h2_show_end(show);
    return 0;
}
