/*
 * Fuzzes the whole downstream HTTP/1.1 path: bytes arrive on a real socket of
 * a real connection object, are validated, parsed, routed (a direct response
 * and an upstream that refuses connections), answered and closed.
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../worker_harness.h"

static const char snapshot_json[] =
    HARNESS_SNAPSHOT_HEAD "{\"match\":{\"prefix\":\"/up\"},\"route\":{\"cluster\":"
    "\"c\"}},{\"match\":{\"prefix\":\"/\"},\"direct_response\":{\"status\":200,\"body\":\"ok\"}}]}]}]"
    ",\"clusters\":[{\"name\":\"c\",\"connect_timeout_ms\":50,\"endpoints\":[{\"address\":"
    "\"127.0.0.1\",\"port\":1}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_snapshot *snap;
    static struct mesh_io_batch *io;
    static int show = -1; /* MESH_HARNESS_SHOW=1: what the client got */
    if (show < 0)
        show = getenv("MESH_HARNESS_SHOW") != NULL;
    harness_once(snapshot_json, sizeof(snapshot_json) - 1, &snap, &io);
    struct mesh_runtime rt;
    struct mesh_worker w;
    harness_worker_init(&w, &rt, snap, io);
    int client = harness_client(&w);
    size_t off = 0;
    char sink[65536];
    for (int turn = 0; turn < 64; turn++) {
        harness_feed(client, data, size, &off);
        mesh_worker_settle(&w);
        ssize_t got;
        while ((got = read(client, sink, sizeof(sink))) > 0)
            if (show)
                fwrite(sink, 1, (size_t)got, stderr);
        if (w.n_conns == 0 && off == size)
            break;
    }
    harness_worker_free(&w, &rt);
    close(client);
    return 0;
}
