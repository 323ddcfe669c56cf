/*
 * mesh-test-raw: sends exact bytes over one TCP connection and prints what comes back,
 * for the integration tests that need requests no ordinary client will send
 * (malformed framing, pipelining in one write, a websocket upgrade by hand).
 *
 *   mesh-test-raw [--timeout SEC] HOST PORT OP...
 *
 * OPs run in order:
 *   send:STRING     write STRING in one write(); C escapes \r \n \t \0 \\ \xHH
 *   sendfile:PATH   write the file's bytes
 *   expect:STRING   read until the bytes received so far contain STRING (escapes too)
 *   shutwr          shutdown(SHUT_WR)
 *   readall         read until EOF
 *   waitfile:PATH   wait until PATH exists (lets a test script act between two sends)
 * Every byte received goes to stdout. The whole run is bounded by --timeout (default 10 s).
 * Exit: 0 all done (readall ended by EOF), 1 usage or I/O error, 2 timeout,
 * 3 connection reset, 4 EOF before an expect: matched. The outcome ("eof", "reset",
 * "timeout") is also printed on stderr.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

struct buf {
    char *p;
    size_t len, cap;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            perror("mesh-test-raw: realloc");
            exit(1);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void unescape(const char *s, struct buf *out)
{
    out->len = 0;
    for (; *s; s++) {
        char ch = *s;
        if (ch == '\\' && s[1]) {
            s++;
            switch (*s) {
            case 'r': ch = '\r'; break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case '0': ch = '\0'; break;
            case '\\': ch = '\\'; break;
            case 'x':
                if (hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                    ch = (char)(hexval(s[1]) * 16 + hexval(s[2]));
                    s += 2;
                    break;
                }
                /* fall through */
            default:
                buf_add(out, "\\", 1);
                ch = *s;
                break;
            }
        }
        buf_add(out, &ch, 1);
    }
}

/* Returns 0 on data or EOF (*eof set), 2 on timeout, 3 on reset, 1 on other errors. */
static int read_some(int fd, struct buf *got, int64_t deadline, bool *eof)
{
    char tmp[65536];
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 2;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return 1;
        if (r == 0)
            return 2;
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return errno == ECONNRESET ? 3 : 1;
        if (n == 0) {
            *eof = true;
            return 0;
        }
        fwrite(tmp, 1, (size_t)n, stdout);
        fflush(stdout);
        buf_add(got, tmp, (size_t)n);
        return 0;
    }
}

static int write_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 2;
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 2 : 1;
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return (errno == ECONNRESET || errno == EPIPE) ? 3 : 1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool contains(const struct buf *hay, const struct buf *needle)
{
    if (needle->len == 0)
        return true;
    if (hay->len < needle->len)
        return false;
    for (size_t i = 0; i + needle->len <= hay->len; i++)
        if (memcmp(hay->p + i, needle->p, needle->len) == 0)
            return true;
    return false;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mesh-test-raw: %s:%s: %s\n", host, port, gai_strerror(rc));
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
        fprintf(stderr, "mesh-test-raw: connect %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static const char *outcome(int rc)
{
    switch (rc) {
    case 0: return "done";
    case 2: return "timeout";
    case 3: return "reset";
    case 4: return "eof-before-expect";
    default: return "error";
    }
}

int main(int argc, char **argv)
{
    int timeout_s = 10, i = 1;
    if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
        timeout_s = atoi(argv[2]);
        i = 3;
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: mesh-test-raw [--timeout SEC] HOST PORT OP...\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = connect_to(argv[i], argv[i + 1]);
    if (fd < 0)
        return 1;
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    struct buf got = { 0 }, arg = { 0 };
    bool eof = false;
    int rc = 0;
    for (i += 2; i < argc && rc == 0; i++) {
        const char *op = argv[i];
        if (strncmp(op, "send:", 5) == 0) {
            unescape(op + 5, &arg);
            rc = write_all(fd, arg.p, arg.len, deadline);
        } else if (strncmp(op, "sendfile:", 9) == 0) {
            FILE *f = fopen(op + 9, "rb");
            if (!f) {
                perror(op + 9);
                rc = 1;
                break;
            }
            arg.len = 0;
            char tmp[65536];
            size_t n;
            while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
                buf_add(&arg, tmp, n);
            fclose(f);
            rc = write_all(fd, arg.p, arg.len, deadline);
        } else if (strncmp(op, "expect:", 7) == 0) {
            struct buf needle = { 0 };
            unescape(op + 7, &needle);
            while (rc == 0 && !contains(&got, &needle)) {
                if (eof) {
                    rc = 4;
                    break;
                }
                rc = read_some(fd, &got, deadline, &eof);
            }
            free(needle.p);
        } else if (strcmp(op, "shutwr") == 0) {
            shutdown(fd, SHUT_WR);
        } else if (strncmp(op, "waitfile:", 9) == 0) {
            while (access(op + 9, F_OK) != 0) {
                if (now_ms() >= deadline) {
                    rc = 2;
                    break;
                }
                struct timespec ts = { 0, 20 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
        } else if (strcmp(op, "readall") == 0) {
            while (rc == 0 && !eof)
                rc = read_some(fd, &got, deadline, &eof);
        } else {
            fprintf(stderr, "mesh-test-raw: unknown op '%s'\n", op);
            rc = 1;
        }
    }
    fprintf(stderr, "mesh-test-raw: %s\n", rc == 0 && eof ? "eof" : outcome(rc));
    close(fd);
    free(got.p);
    free(arg.p);
    return rc;
}
