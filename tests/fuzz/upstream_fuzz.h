/*
 * The driver the upstream fuzz targets share (fuzz_http1_up, fuzz_h2_up): a client's
 * request goes through a real connection of a hand-made worker to a cluster of the given
 * protocol whose one endpoint is a listener of this harness; the input is that upstream's
 * side of the connection. What meshd sends upstream and to the client is drained and
 * dropped (MESH_HARNESS_SHOW=1 prints what the client got, to check the harness itself).
 * The input's first byte picks the request: GET, HEAD, POST with a body, or the target's
 * own (an Upgrade, a request asking for trailers), so that responses without a body,
 * tunnels and trailers are covered too; with its bit 2 set, the target's second own
 * request when it has one (HTTP/2: a GET then a WebSocket Upgrade on one client
 * connection, so that the Upgrade can go as an extended CONNECT once the input's
 * SETTINGS allowed it). That one comes in two parts: the second byte is the first part's
 * length (the GET's answer), and the rest follows a few turns later, once meshd has had
 * time to send its second request (frames for a stream not opened yet are a connection
 * error, and would be all the fuzzer ever reached).
 */
#ifndef MESH_TESTS_FUZZ_UPSTREAM_FUZZ_H
#define MESH_TESTS_FUZZ_UPSTREAM_FUZZ_H

#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../worker_harness.h"

static inline void upstream_fuzz_one2(const uint8_t *data, size_t size, const char *protocol,
                                      const char *own_request, const char *own_request2)
{
    const char *const requests[4] = {
        "GET /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "HEAD /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\n\r\nhello",
        own_request,
    };
    static struct mesh_snapshot *snap;
    static struct mesh_io_batch *io;
    static int lfd = -1;
    static bool show;
    if (lfd < 0) {
        show = getenv("MESH_HARNESS_SHOW") != NULL;
        uint16_t port;
        lfd = harness_upstream_listener(&port);
        char json[1024];
        int n = snprintf(json, sizeof(json),
                         HARNESS_SNAPSHOT_HEAD
                         "{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"c\"}}]}]}],"
                         "\"clusters\":[{\"name\":\"c\",\"protocol\":\"%s\",\"connect_timeout_ms\":1000,"
                         "\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":%u}]}]}",
                         protocol, (unsigned)port);
        harness_once(json, (size_t)n, &snap, &io);
    }
    const char *req = requests[size ? data[0] & 3 : 0];
    size_t start = size ? 1 : 0;
    size_t part1 = size; /* fed at once; the rest waits (two-part inputs) */
    int rest_at = -1;    /* the turn the rest goes */
    if (size >= 2 && (data[0] & 4) && own_request2) {
        req = own_request2;
        start = 2;
        part1 = MESH_MIN(size, start + data[1]);
    }
    struct mesh_runtime rt;
    struct mesh_worker w;
    harness_worker_init(&w, &rt, snap, io);
    int client = harness_client(&w);
    if (client < 0 || write(client, req, strlen(req)) < 0)
        abort();
    /* the upstream connections meshd opened (a retry opens another): each gets the input */
    int up[4], n_up = 0;
    size_t off[4];
    bool fed = false; /* every connection got all of it */
    char sink[65536];
    for (int turn = 0; turn < 64; turn++) {
        mesh_worker_settle(&w);
        int fd;
        while (n_up < 4 && (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            off[n_up] = start;
            up[n_up++] = fd;
        }
        fed = n_up > 0;
        if (part1 < size && rest_at < 0 && n_up > 0 && off[0] >= part1)
            rest_at = turn + 4; /* the first part is in: the rest a few turns on */
        bool hold = part1 < size && (rest_at < 0 || turn < rest_at);
        for (int i = 0; i < n_up; i++) {
            if (hold && off[i] < part1)
                harness_send(up[i], data, part1, &off[i]); /* no FIN yet */
            else if (!hold)
                harness_feed(up[i], data, size, &off[i]);
            fed = fed && off[i] == size;
            while (read(up[i], sink, sizeof(sink)) > 0)
                ;
        }
        ssize_t got;
        while ((got = read(client, sink, sizeof(sink))) > 0)
            if (show)
                fwrite(sink, 1, (size_t)got, stderr);
        if (fed)
            shutdown(client, SHUT_WR); /* the client is done too: let meshd finish and close */
        if (w.n_conns == 0 && (fed || n_up == 0))
            break;
    }
    harness_end(&w, &rt, lfd, up, n_up, client);
}

static inline void upstream_fuzz_one(const uint8_t *data, size_t size, const char *protocol,
                                     const char *own_request)
{
    upstream_fuzz_one2(data, size, protocol, own_request, NULL);
}

#endif /* MESH_TESTS_FUZZ_UPSTREAM_FUZZ_H */
