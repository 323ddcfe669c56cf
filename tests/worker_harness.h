/*
 * A hand-made worker that drives real connections on real sockets, without threads or
 * listeners: for the fuzz targets (fuzz_http1, fuzz_http1_up) and the unit tests of the
 * connection code (test_conn). One snapshot and one I/O batch for a whole run (a ring per
 * fuzz input is slow); a fresh event base, load balancer and connection list each time.
 * Drive it with mesh_worker_settle(), never a plain EVLOOP_NONBLOCK loop (proxy-int.h).
 */
#ifndef MESH_TESTS_WORKER_HARNESS_H
#define MESH_TESTS_WORKER_HARNESS_H

#include "core/common.h"
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/lb.h"
#include "core/log.h"
#include "core/proxy-int.h"

/* A snapshot's start for the harness's targets: one listener whose one virtual host
 * takes every domain; the routes (a JSON list's items), then "]}]}],", then the clusters
 * follow. */
#define HARNESS_SNAPSHOT_HEAD                                                                  \
    "{\"version\":\"fuzz\",\"listeners\":[{\"name\":\"l\",\"address\":\"127.0.0.1\","          \
    "\"port\":0,\"route_config\":\"rc\"}],\"route_configs\":[{\"name\":\"rc\","                \
    "\"virtual_hosts\":[{\"name\":\"v\",\"domains\":[\"*\"],\"routes\":["

/* Parses <json> and makes the batch, once; aborts if either fails (a broken harness). */
static inline void harness_once(const char *json, size_t len, struct mesh_snapshot **snap,
                                    struct mesh_io_batch **io)
{
    if (*snap)
        return;
    /* MESH_HARNESS_LOG=1: meshd's debug log, to check the harness itself */
    mesh_log_set_level(getenv("MESH_HARNESS_LOG") ? MESH_LOG_DEBUG : MESH_LOG_OFF);
    struct mesh_err err;
    mesh_err_init(&err, "harness");
    *snap = mesh_snapshot_parse(json, len, &err);
    if (!*snap)
        abort();
    char why[160];
    /* MESH_HARNESS_IO=syscalls: the batch's other mode (one system call per operation) */
    const char *mode = getenv("MESH_HARNESS_IO");
    *io = mesh_io_batch_new(mode && strcmp(mode, "syscalls") == 0 ? MESH_IO_SYSCALLS : MESH_IO_AUTO,
                            why, sizeof(why));
    if (!*io)
        abort();
}

static inline void harness_worker_init(struct mesh_worker *w, struct mesh_runtime *rt,
                                    struct mesh_snapshot *snap, struct mesh_io_batch *io)
{
    memset(rt, 0, sizeof(*rt));
    memset(w, 0, sizeof(*w));
    w->rt = rt;
    w->base = event_base_new();
    w->snap = snap;
    w->rand_state = 1;
    w->io = io;
    rt->lb = mesh_lb_shared_new();
    w->lb = mesh_lb_worker_new(rt->lb, w, 1);
    mesh_lb_worker_snapshot(w->lb, snap);
    mesh_list_init(&w->conns);
}

/* A client of <w> over a socket pair (meshd owns the other end); -1 when none can be made. */
static inline int harness_client(struct mesh_worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    mesh_conn_accept(w, sv[0], 0, (struct sockaddr *)&ss, sizeof(ss));
    return sv[1];
}

/*
 * Writes the next piece of <data> (from *<off>) to <fd>: pieces of 1 to 2 KiB, sized by
 * the input itself, so that partial heads and bodies are exercised.
 */
static inline void harness_send(int fd, const uint8_t *data, size_t size, size_t *off)
{
    if (*off >= size)
        return;
    size_t piece = size - *off;
    if (piece > 1024)
        piece = 1024 + (data[*off] & 0x3ff);
    if (piece > size - *off)
        piece = size - *off;
    /* meshd may have answered and closed already: that is EPIPE here, not SIGPIPE */
    ssize_t n = send(fd, data + *off, piece, MSG_NOSIGNAL);
    if (n > 0)
        *off += (size_t)n;
}

/* harness_send(), and shuts <fd>'s write side once everything went. */
static inline void harness_feed(int fd, const uint8_t *data, size_t size, size_t *off)
{
    if (*off >= size)
        return;
    harness_send(fd, data, size, off);
    if (*off == size)
        shutdown(fd, SHUT_WR);
}

/* A listener on 127.0.0.1 for a harness upstream, made once a run; aborts on failure. */
static inline int harness_upstream_listener(uint16_t *port)
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

/* Closes what is still open, lets the deferred teardowns run, frees the rest. */
static inline void harness_worker_free(struct mesh_worker *w, struct mesh_runtime *rt)
{
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &w->conns)
    {
        mesh_conn_close(mesh_list_entry(pos, struct mesh_conn, link));
    }
    mesh_worker_settle(w);
    mesh_pools_free(w);
    mesh_worker_settle(w);
    mesh_stream_worker_free(w); /* after the last settle, which may free a stream */
    mesh_lb_worker_free(w->lb);
    mesh_lb_shared_free(rt->lb);
    event_base_free(w->base);
}

/* Ends a run that had upstream connections: frees the worker, closes <up> (<n_up> of them)
 * and <client>, and those <lfd> still holds (opened and closed by meshd before a turn
 * accepted them). */
static inline void harness_end(struct mesh_worker *w, struct mesh_runtime *rt, int lfd,
                               const int *up, int n_up, int client)
{
    harness_worker_free(w, rt);
    for (int i = 0; i < n_up; i++)
        close(up[i]);
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
        close(fd);
    close(client);
}

#endif /* MESH_TESTS_WORKER_HARNESS_H */
