/*
 * What the test tools (mesh-test-backend, mesh-demo-app) share: the ready file the tests
 * wait for, and stopping the event loop on a signal.
 */
#ifndef MESH_TESTS_TOOL_UTIL_H
#define MESH_TESTS_TOOL_UTIL_H

#include <event2/event.h>
#include <stdio.h>
#include <unistd.h>

/*
 * Writes "port=PORT\n" (and "echo_port=N\n" when <echo_port> >= 0) to <path> atomically (a
 * temporary file renamed), so that a test polling for it never reads half a file.
 */
static inline int tool_write_ready_file(const char *path, int port, int echo_port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "port=%d\n", port);
    if (echo_port >= 0)
        fprintf(f, "echo_port=%d\n", echo_port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* An evsignal callback: the loop of <arg> (an event_base) ends. */
static inline void tool_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

#endif /* MESH_TESTS_TOOL_UTIL_H */
