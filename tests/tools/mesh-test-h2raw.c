/*
 * mesh-test-h2raw: sends one HTTP/2 (h2c, prior knowledge) request with exactly the
 * header fields given, including ones a conforming client refuses to send (uppercase
 * names, connection-specific fields): nghttp2 does not validate what a client session
 * sends. Reports what happened to the stream.
 *
 *   mesh-test-h2raw [--timeout SEC] HOST PORT [--method M] [--path P] [--authority A]
 *                   [--scheme S] [-H 'name: value']... [--data STRING | --data-file F]
 *                   [--no-end] [--out FILE] [--connect] [--data-after-status]
 *                   [--until-bytes N] [-T 'name: value']...
 * --connect sends a CONNECT to the authority: no :scheme, no :path (RFC 9113 8.5).
 * --data-after-status holds the DATA until the response's :status came (a websocket
 * client over HTTP/2 waits for the 200, RFC 8441); without it the DATA goes at once.
 * A pseudo-header such as ':protocol: websocket' goes as -H, before any other -H.
 * -T 'name: value' (repeatable) sends a trailer section after the data (and the data's
 * END_STREAM goes with it).
 * --until-bytes N ends the run once the stream received N DATA bytes ("until-bytes"): for
 * a tunnel whose server neither ends nor wants a half-close (a WebSocket server).
 * --no-end keeps the client's side of the stream open after the data (no END_STREAM);
 * the server's END_STREAM then ends the run ("end-stream-remote").
 * --out writes the DATA the stream received to FILE (a tunnel's bytes, a body).
 *
 * Prints, one per line: "status=N", "header NAME: VALUE", "body-bytes=N",
 * "trailer NAME: VALUE", then how it ended: "end-stream", "rst-stream=CODE",
 * "goaway=CODE" (and "eof" or "timeout"). CODE is nghttp2's name, e.g. PROTOCOL_ERROR.
 * Exit: 0 the stream ended (any way, including reset), 1 usage or I/O error, 2 timeout.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

#define MAX_NV 256

struct state {
    int fd;
    int32_t stream_id;
    bool done;
    bool io_error;
    bool frame_has_status;
    size_t body_bytes;
    const char *data;
    char *data_buf;   /* --data-file: owned */
    size_t data_len, data_off;
    bool no_end;
    bool wait_status, got_status, data_deferred;
    size_t until_bytes; /* --until-bytes: done after this many DATA bytes (0: off) */
    nghttp2_nv trailers[8]; /* -T */
    size_t n_trailers;
    FILE *out;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct state *st = user_data;
    (void)session;
    (void)flags;
    ssize_t n = send(st->fd, data, length, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return NGHTTP2_ERR_WOULDBLOCK;
        st->io_error = true;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n;
}

static int on_begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame,
                               void *user_data)
{
    struct state *st = user_data;
    (void)session;
    (void)frame;
    st->frame_has_status = false;
    return 0;
}

/* Response header blocks start with :status; a block without it is the trailer. */
static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen, const uint8_t *value,
                        size_t valuelen, uint8_t flags, void *user_data)
{
    struct state *st = user_data;
    (void)session;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != st->stream_id)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        st->frame_has_status = true;
        if (valuelen == 3 && value[0] != '1')
            st->got_status = true; /* a final status: --data-after-status may send */
        printf("status=%.*s\n", (int)valuelen, (const char *)value);
    } else {
        printf("%s %.*s: %.*s\n", st->frame_has_status ? "header" : "trailer", (int)namelen,
               (const char *)name, (int)valuelen, (const char *)value);
    }
    return 0;
}

static int on_data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *user_data)
{
    struct state *st = user_data;
    (void)session;
    (void)flags;
    if (stream_id != st->stream_id)
        return 0;
    st->body_bytes += len;
    if (st->out && fwrite(data, 1, len, st->out) != len)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (st->until_bytes && st->body_bytes >= st->until_bytes && !st->done) {
        printf("body-bytes=%zu\nuntil-bytes\n", st->body_bytes);
        st->done = true;
    }
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data)
{
    struct state *st = user_data;
    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        printf("goaway=%s\n", nghttp2_http2_strerror(frame->goaway.error_code));
        if (frame->goaway.last_stream_id < st->stream_id)
            st->done = true;
    }
    /* --no-end: the stream never closes (our side stays open); the server's END_STREAM
     * is its end */
    if (st->no_end && frame->hd.stream_id == st->stream_id &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
        printf("body-bytes=%zu\nend-stream-remote\n", st->body_bytes);
        st->done = true;
    }
    return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    struct state *st = user_data;
    (void)session;
    if (stream_id != st->stream_id)
        return 0;
    printf("body-bytes=%zu\n", st->body_bytes);
    if (error_code == NGHTTP2_NO_ERROR)
        printf("end-stream\n");
    else
        printf("rst-stream=%s\n", nghttp2_http2_strerror(error_code));
    st->done = true;
    return 0;
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    struct state *st = user_data;
    (void)session;
    (void)source;
    if (st->wait_status && !st->got_status) {
        st->data_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = st->data_len - st->data_off;
    if (n > length)
        n = length;
    memcpy(buf, st->data + st->data_off, n);
    st->data_off += n;
    if (st->data_off == st->data_len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | (st->no_end ? NGHTTP2_DATA_FLAG_NO_END_STREAM : 0);
        if (st->n_trailers) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
            if (nghttp2_submit_trailer(session, stream_id, st->trailers, st->n_trailers) != 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mesh-test-h2raw: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "mesh-test-h2raw: connect %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static nghttp2_nv make_nv(const char *name, size_t namelen, const char *value)
{
    nghttp2_nv nv = {
        .name = (uint8_t *)(uintptr_t)name,
        .value = (uint8_t *)(uintptr_t)value,
        .namelen = namelen,
        .valuelen = strlen(value),
        /* NO_COPY_NAME also stops nghttp2 from lowercasing the name; the strings
         * (argv and literals) outlive the session. */
        .flags = NGHTTP2_NV_FLAG_NO_INDEX | NGHTTP2_NV_FLAG_NO_COPY_NAME |
                 NGHTTP2_NV_FLAG_NO_COPY_VALUE,
    };
    return nv;
}

/* The whole file as the request's data (it lives until exit). */
static int read_file(const char *path, struct state *st)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        fclose(f);
        st->data = st->data_buf = buf;
        st->data_len = (size_t)n;
        return 0;
    }
    fprintf(stderr, "mesh-test-h2raw: %s: %s\n", path, strerror(errno));
    free(buf);
    if (f)
        fclose(f);
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mesh-test-h2raw [--timeout SEC] HOST PORT [--method M] [--path P]\n"
                    "       [--authority A] [--scheme S] [-H 'name: value']... [--data STR | --data-file F]\n"
                    "       [--no-end] [--out FILE] [--connect] [--data-after-status]\n"
                    "       [--until-bytes N] [-T 'name: value']...\n");
}

int main(int argc, char **argv)
{
    int timeout_s = 10, i = 1;
    const char *method = "GET", *path = "/", *authority = NULL, *scheme = "http";
    const char *extra[MAX_NV];
    size_t n_extra = 0;
    struct state st = { .fd = -1, .stream_id = -1 };

    if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
        timeout_s = atoi(argv[2]);
        i = 3;
    }
    if (argc - i < 2) {
        usage();
        return 1;
    }
    const char *host = argv[i], *port = argv[i + 1];
    bool connect = false;
    for (i += 2; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0) {
            connect = true;
            continue;
        }
        if (strcmp(argv[i], "--no-end") == 0) {
            st.no_end = true;
            continue;
        }
        if (strcmp(argv[i], "--data-after-status") == 0) {
            st.wait_status = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 1;
        }
        if (strcmp(argv[i], "--method") == 0)
            method = argv[++i];
        else if (strcmp(argv[i], "--path") == 0)
            path = argv[++i];
        else if (strcmp(argv[i], "--authority") == 0)
            authority = argv[++i];
        else if (strcmp(argv[i], "--scheme") == 0)
            scheme = argv[++i];
        else if (strcmp(argv[i], "--until-bytes") == 0)
            st.until_bytes = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-H") == 0 && n_extra < MAX_NV - 4)
            extra[n_extra++] = argv[++i];
        else if (strcmp(argv[i], "-T") == 0 && st.n_trailers < 8) {
            const char *t = argv[++i], *colon = strchr(t + 1, ':');
            if (!colon) {
                fprintf(stderr, "mesh-test-h2raw: bad trailer '%s'\n", t);
                return 1;
            }
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            st.trailers[st.n_trailers++] = make_nv(t, (size_t)(colon - t), v);
        }
        else if (strcmp(argv[i], "--data") == 0) {
            st.data = argv[++i];
            st.data_len = strlen(st.data);
        } else if (strcmp(argv[i], "--data-file") == 0) {
            if (read_file(argv[++i], &st) != 0)
                return 1;
        } else if (strcmp(argv[i], "--out") == 0) {
            st.out = fopen(argv[++i], "wb");
            if (!st.out) {
                fprintf(stderr, "mesh-test-h2raw: %s: %s\n", argv[i], strerror(errno));
                return 1;
            }
        } else {
            usage();
            return 1;
        }
    }
    char authbuf[300];
    if (!authority) {
        snprintf(authbuf, sizeof(authbuf), "%s:%s", host, port);
        authority = authbuf;
    }

    nghttp2_nv nva[MAX_NV];
    size_t nvlen = 0;
    nva[nvlen++] = make_nv(":method", 7, connect ? "CONNECT" : method);
    if (!connect)
        nva[nvlen++] = make_nv(":scheme", 7, scheme);
    nva[nvlen++] = make_nv(":authority", 10, authority);
    if (!connect)
        nva[nvlen++] = make_nv(":path", 5, path);
    for (size_t k = 0; k < n_extra; k++) {
        /* split "name: value" at the first ':' that is not the first character */
        const char *colon = strchr(extra[k] + 1, ':');
        if (!colon) {
            fprintf(stderr, "mesh-test-h2raw: bad header '%s'\n", extra[k]);
            return 1;
        }
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        nva[nvlen++] = make_nv(extra[k], (size_t)(colon - extra[k]), v);
    }

    signal(SIGPIPE, SIG_IGN);
    st.fd = connect_to(host, port);
    if (st.fd < 0)
        return 1;

    nghttp2_session_callbacks *cbs;
    nghttp2_session *session;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
    nghttp2_session_client_new(&session, cbs, &st);
    nghttp2_session_callbacks_del(cbs);

    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_data_provider prd = { .read_callback = data_read_cb };
    st.stream_id = nghttp2_submit_request(session, NULL, nva, nvlen, st.data ? &prd : NULL,
                                          NULL);
    int rc = 0;
    if (st.stream_id < 0) {
        fprintf(stderr, "mesh-test-h2raw: submit: %s\n", nghttp2_strerror(st.stream_id));
        rc = 1;
    }
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    while (rc == 0 && !st.done) {
        if (st.data_deferred && st.got_status) {
            st.data_deferred = false;
            nghttp2_session_resume_data(session, st.stream_id);
        }
        if (nghttp2_session_send(session) != 0 || st.io_error) {
            printf("io-error\n");
            rc = 1;
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            printf("timeout\n");
            rc = 2;
            break;
        }
        struct pollfd pfd = { .fd = st.fd, .events = POLLIN };
        if (nghttp2_session_want_write(session))
            pfd.events |= POLLOUT;
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            uint8_t buf[16384];
            ssize_t n = recv(st.fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                printf("%s\n", n == 0 ? "eof" : (errno == ECONNRESET ? "reset" : "io-error"));
                rc = 0;
                break;
            }
            ssize_t used = nghttp2_session_mem_recv(session, buf, (size_t)n);
            if (used < 0) {
                printf("session-error=%s\n", nghttp2_strerror((int)used));
                break;
            }
        }
    }
    fflush(stdout);
    if (st.out && fclose(st.out) != 0)
        rc = 1;
    free(st.data_buf);
    nghttp2_session_del(session);
    close(st.fd);
    return rc;
}
