/*
 * Fuzzes the whole downstream HTTP/1.1 path: bytes arrive on a real socket of
 * a real connection object, are validated, parsed, routed (a direct response
 * and an upstream that refuses connections), answered and closed.
 */
#include "core/common.h"
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/log.h"
#include "core/lb.h"
#include "core/proxy-int.h"

static const char snapshot_json[] =
    "{\"version\":\"fuzz\",\"listeners\":[{\"name\":\"l\",\"address\":\"127.0.0.1\",\"port\":0,"
    "\"route_config\":\"rc\"}],\"route_configs\":[{\"name\":\"rc\",\"virtual_hosts\":[{\"name\":"
    "\"v\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/up\"},\"route\":{\"cluster\":"
    "\"c\"}},{\"match\":{\"prefix\":\"/\"},\"direct_response\":{\"status\":200,\"body\":\"ok\"}}]}]}]"
    ",\"clusters\":[{\"name\":\"c\",\"connect_timeout_ms\":50,\"endpoints\":[{\"address\":"
    "\"127.0.0.1\",\"port\":1}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_snapshot *snap;
    static struct mesh_io_batch *io; /* one for the whole run: a ring per input is slow */
    if (!snap) {
        mesh_log_set_level(MESH_LOG_OFF);
        struct mesh_err err;
        mesh_err_init(&err, "fuzz");
        snap = mesh_snapshot_parse(snapshot_json, sizeof(snapshot_json) - 1, &err);
        if (!snap)
            abort();
        char why[160];
        io = mesh_io_batch_new(MESH_IO_AUTO, why, sizeof(why));
        if (!io)
            abort();
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct mesh_runtime rt;
    memset(&rt, 0, sizeof(rt));
    struct mesh_worker w;
    memset(&w, 0, sizeof(w));
    w.rt = &rt;
    w.base = event_base_new();
    w.snap = snap;
    w.rand_state = 1;
    w.io = io;
    rt.lb = mesh_lb_shared_new();
    w.lb = mesh_lb_worker_new(rt.lb, &w, 1);
    mesh_lb_worker_snapshot(w.lb, snap);
    mesh_list_init(&w.conns);
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    mesh_conn_accept(&w, sv[0], 0, (struct sockaddr *)&ss, sizeof(ss));
    size_t off = 0;
    char sink[65536];
    /* feed in pieces so that partial heads and bodies are exercised too */
    for (int turn = 0; turn < 64; turn++) {
        if (off < size) {
            size_t piece = size - off;
            if (piece > 1024)
                piece = 1024 + (data[off] & 0x3ff);
            if (piece > size - off)
                piece = size - off;
            ssize_t n = write(sv[1], data + off, piece);
            if (n > 0)
                off += (size_t)n;
            if (off == size)
                shutdown(sv[1], SHUT_WR);
        }
        mesh_worker_settle(&w);
        while (read(sv[1], sink, sizeof(sink)) > 0)
            ;
        if (w.n_conns == 0 && off == size)
            break;
    }
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &w.conns)
    {
        mesh_conn_close(mesh_list_entry(pos, struct mesh_conn, link));
    }
    mesh_worker_settle(&w);
    mesh_pools_free(&w);
    mesh_stream_cache_free(&w);
    mesh_worker_settle(&w);
    mesh_lb_worker_free(w.lb);
    mesh_lb_shared_free(rt.lb);
    event_base_free(w.base);
    close(sv[1]);
    return 0;
}
