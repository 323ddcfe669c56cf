/*
 * benchtool: two small measurements for bench/proxy that shell tools cannot do precisely.
 *
 *   benchtool idle HOST PORT N HOLD_S
 *       Opens N TCP connections to HOST:PORT, sends one "GET / HTTP/1.1" on each (one
 *       after the other, so a proxy needs only one upstream connection) and reads the
 *       whole response, leaving N idle keep-alive connections. Prints "open N" on
 *       stdout, then holds them until SIGTERM/SIGINT or HOLD_S seconds, and exits 0.
 *       Any failure prints a reason on stderr and exits 1.
 *
 *   benchtool ready RUNS ADMIN_PORT MESHD ARGS...
 *       RUNS times: fork+exec MESHD ARGS... with a pipe as fd 3 (pass --ready-fd 3),
 *       and measure from just before fork() to (a) the ready line on fd 3 and (b) the
 *       first 200 answer of GET /ready on 127.0.0.1:ADMIN_PORT, polled every 100 us
 *       from the start (ADMIN_PORT 0: the "admin=" port of the ready line, polled
 *       after it). Then SIGTERM, bounded wait, SIGKILL. Prints one line per run and
 *       "median ready_line_ms=X ready_200_ms=Y". Each run is bounded to 5 s.
 *
 * Built by bench/proxy with "cc -O2"; no dependency beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_to(const char *host, int port, int nonblock)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Waits for fd to be readable, at most ms; 1 readable, 0 timeout, -1 error. */
static int wait_in(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Reads one HTTP/1.1 response (Content-Length or chunked) from a blocking fd. Returns the
 * status code, or -1. */
static int read_response(int fd, int timeout_ms)
{
    char buf[16384];
    size_t len = 0;
    char *hend = NULL;
    while (!hend) {
        if (len == sizeof(buf) - 1 || wait_in(fd, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = 0;
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        return -1;
    size_t hlen = (size_t)(hend + 4 - buf);
    long clen = -1;
    int chunked = 0;
    for (char *l = strstr(buf, "\r\n") + 2; l < hend; l = strstr(l, "\r\n") + 2) {
        if (!strncasecmp(l, "content-length:", 15))
            clen = strtol(l + 15, NULL, 10);
        else if (!strncasecmp(l, "transfer-encoding:", 18) && strcasestr(l, "chunked"))
            chunked = 1;
    }
    size_t have = len - hlen;
    if (chunked) {
        /* good enough for small test bodies: read until the last-chunk marker */
        while (!memmem(buf + hlen, have, "0\r\n\r\n", 5)) {
            if (hlen + have == sizeof(buf) - 1) {
                memmove(buf + hlen, buf + hlen + have - 8, 8);
                have = 8;
            }
            if (wait_in(fd, timeout_ms) <= 0)
                return -1;
            ssize_t n = read(fd, buf + hlen + have, sizeof(buf) - 1 - hlen - have);
            if (n <= 0)
                return -1;
            have += (size_t)n;
        }
        return status;
    }
    if (clen < 0)
        return -1; /* a keep-alive response needs a length */
    while ((long)have < clen) {
        char tmp[16384];
        if (wait_in(fd, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return status;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static int cmd_idle(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: benchtool idle HOST PORT N HOLD_S\n");
        return 2;
    }
    const char *host = argv[0];
    int port = atoi(argv[1]), n = atoi(argv[2]), hold = atoi(argv[3]);
    int *fds = calloc((size_t)n, sizeof(int));
    if (!fds)
        return 1;
    char req[256];
    int rl = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: benchtool\r\n\r\n",
                      host, port);
    for (int i = 0; i < n; i++) {
        fds[i] = connect_to(host, port, 0);
        if (fds[i] < 0) {
            fprintf(stderr, "benchtool idle: connection %d: %s\n", i + 1, strerror(errno));
            return 1;
        }
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        int st;
        if (write_all(fds[i], req, (size_t)rl) < 0 || (st = read_response(fds[i], 5000)) < 0) {
            fprintf(stderr, "benchtool idle: request on connection %d failed\n", i + 1);
            return 1;
        }
        if (st != 200) {
            fprintf(stderr, "benchtool idle: connection %d got status %d\n", i + 1, st);
            return 1;
        }
    }
    printf("open %d\n", n);
    fflush(stdout);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    double end = now_ms() + hold * 1e3;
    while (!stop && now_ms() < end)
        usleep(20000);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

/* 200 if GET /ready on 127.0.0.1:port answers 200 now, 0 if not listening yet, other status. */
static int probe_ready(int port)
{
    int fd = connect_to("127.0.0.1", port, 0);
    if (fd < 0)
        return 0;
    static const char req[] = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int st = -1;
    if (write_all(fd, req, sizeof(req) - 1) == 0)
        st = read_response(fd, 1000);
    close(fd);
    return st < 0 ? 0 : st;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void reap(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int cmd_ready(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: benchtool ready RUNS ADMIN_PORT MESHD ARGS...\n");
        return 2;
    }
    int runs = atoi(argv[0]), fixed_port = atoi(argv[1]);
    char **cmd = argv + 2;
    if (runs < 1 || runs > 1000)
        return 2;
    double *line_ms = calloc((size_t)runs, sizeof(double)), *ok_ms = calloc((size_t)runs, sizeof(double));
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    for (int r = 0; r < runs; r++) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
            return 1;
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            /* stderr first: devnull or the pipe may themselves sit on fd 2 or 3 */
            int w = fcntl(pfd[1], F_DUPFD_CLOEXEC, 10), dn = fcntl(devnull, F_DUPFD_CLOEXEC, 10);
            if (w < 0 || dn < 0 || dup2(dn, 2) < 0 || dup2(w, 3) < 0)
                _exit(126);
            execv(cmd[0], cmd);
            _exit(127);
        }
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        char line[512];
        size_t ll = 0;
        double t_line = -1, t_ok = -1, deadline = t0 + 5000;
        int port = fixed_port, failed = 0, last = -2;
        while (now_ms() < deadline && (t_line < 0 || t_ok < 0)) {
            if (t_line < 0) {
                ssize_t n = read(pfd[0], line + ll, sizeof(line) - 1 - ll);
                if (n > 0) {
                    ll += (size_t)n;
                    line[ll] = 0;
                    if (strchr(line, '\n')) {
                        t_line = now_ms();
                        char *a = strstr(line, "admin=");
                        if (!port && a)
                            port = atoi(a + 6);
                    }
                } else if (n == 0) {
                    fprintf(stderr, "benchtool ready: run %d: meshd closed fd 3 without a ready line\n", r + 1);
                    failed = 1;
                    break;
                }
            }
            if (t_ok < 0 && port) {
                int st = probe_ready(port);
                last = st;
                if (st == 200)
                    t_ok = now_ms();
            }
            if (t_line < 0 || t_ok < 0)
                usleep(100);
        }
        close(pfd[0]);
        int alive = waitpid(pid, NULL, WNOHANG) == 0;
        reap(pid);
        if (failed || t_line < 0 || t_ok < 0) {
            fprintf(stderr,
                    "benchtool ready: run %d: not ready within 5 s (ready line %s, admin port %d, "
                    "last GET /ready: %s%d, meshd %s)\n",
                    r + 1, t_line < 0 ? "missing" : line, port,
                    last == 0 ? "no connection/answer " : "status ", last,
                    alive ? "still running" : "had exited");
            return 1;
        }
        line_ms[r] = t_line - t0;
        ok_ms[r] = t_ok - t0;
        printf("run %d: ready_line_ms=%.2f ready_200_ms=%.2f\n", r + 1, line_ms[r], ok_ms[r]);
        fflush(stdout);
    }
    printf("median ready_line_ms=%.2f ready_200_ms=%.2f\n", median(line_ms, runs), median(ok_ms, runs));
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "idle"))
        return cmd_idle(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "ready"))
        return cmd_ready(argc - 2, argv + 2);
    fprintf(stderr, "usage: benchtool idle HOST PORT N HOLD_S | benchtool ready RUNS ADMIN_PORT MESHD ARGS...\n");
    return 2;
}
