/*
 * Fuzzes the upstream HTTP/1.1 response path: a client's request goes through a real
 * connection of a hand-made worker to a real upstream socket (a listener of this
 * harness), which answers with the input: status line and headers, bodies by length,
 * chunked (with trailers) or to EOF, 1xx, 101 and garbage. meshd relays what it
 * accepts and answers 502 to the rest; the client side is drained and dropped.
 * The input's first byte picks the request (GET, HEAD, POST with a body, or an
 * Upgrade), so that responses without a body and tunnels are covered too.
 */
#include "core/common.h"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../worker_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The upstream: a listener on 127.0.0.1, made once; its port goes into the snapshot. */
static int upstream_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        abort();
    *port = ntohs(sa.sin_port);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_snapshot *snap;
    static struct mesh_io_batch *io;
    static int lfd = -1;
    static bool show;
    if (lfd < 0) {
        show = getenv("MESH_HARNESS_SHOW") != NULL;
        uint16_t port;
        lfd = upstream_listener(&port);
        char json[1024];
        int n = snprintf(json, sizeof(json),
                         "{\"version\":\"fuzz\",\"listeners\":[{\"name\":\"l\",\"address\":"
                         "\"127.0.0.1\",\"port\":0,\"route_config\":\"rc\"}],\"route_configs\":"
                         "[{\"name\":\"rc\",\"virtual_hosts\":[{\"name\":\"v\",\"domains\":[\"*\"],"
                         "\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"c\"}}]}]}],"
                         "\"clusters\":[{\"name\":\"c\",\"connect_timeout_ms\":1000,\"endpoints\":"
                         "[{\"address\":\"127.0.0.1\",\"port\":%u}]}]}",
                         (unsigned)port);
        harness_once(json, (size_t)n, &snap, &io);
    }
    static const char *const requests[] = {
        "GET /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "HEAD /up HTTP/1.1\r\nHost: f\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: f\r\nContent-Length: 5\r\n\r\nhello",
        "GET /up HTTP/1.1\r\nHost: f\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    };
    const char *req = requests[size ? data[0] & 3 : 0];
    size_t off = size ? 1 : 0;
    struct mesh_runtime rt;
    struct mesh_worker w;
    harness_worker_init(&w, &rt, snap, io);
    int client = harness_client(&w);
    if (client < 0 || write(client, req, strlen(req)) < 0)
        abort();
    int up[4], n_up = 0; /* the upstream connections meshd opened; the first gets the input */
    char sink[65536];
    for (int turn = 0; turn < 64; turn++) {
        mesh_worker_settle(&w);
        int fd;
        while (n_up < 4 && (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            up[n_up++] = fd;
        if (n_up)
            harness_feed(up[0], data, size, &off);
        for (int i = 0; i < n_up; i++)
            while (read(up[i], sink, sizeof(sink)) > 0)
                ;
        ssize_t got;
        while ((got = read(client, sink, sizeof(sink))) > 0)
            if (show) /* MESH_HARNESS_SHOW=1: what the client got, to check the harness itself */
                fwrite(sink, 1, (size_t)got, stderr);
        if (off == size && n_up)
            shutdown(client, SHUT_WR); /* the client is done too: let meshd finish and close */
        if (w.n_conns == 0 && off == size)
            break;
    }
    harness_worker_free(&w, &rt);
    for (int i = 0; i < n_up; i++)
        close(up[i]);
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
        close(fd); /* a connection meshd opened and closed before this turn took it */
    close(client);
    return 0;
}
