/* A small blocking HTTP/1.1 client for meshd ctl (ctl_http.h). */
#include "core/common.h"
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "core/status.h"
#include "roles/ctl_http.h"

static void set_why(char *why, size_t size, const char *fmt, ...) MESH_PRINTF(3, 4);
static void set_why(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* strerror() in lower case, as the middle of a sentence: "connection refused". */
static void errno_why(char *why, size_t size, int e)
{
    set_why(why, size, "%s", strerror(e));
    if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
        why[0] = (char)(why[0] - 'A' + 'a');
}

int mesh_ctl_url_parse(const char *text, struct mesh_ctl_url *u, char *why, size_t why_size)
{
    memset(u, 0, sizeof(*u));
    const char *p = text;
    if (strncasecmp(p, "https://", 8) == 0) {
        set_why(why, why_size, "https is not supported yet (use http:// on loopback)");
        return MESH_EINVAL;
    }
    if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://")) {
        set_why(why, why_size, "expected an http:// URL");
        return MESH_EINVAL;
    }
    const char *slash = strchr(p, '/');
    size_t hplen = slash ? (size_t)(slash - p) : strlen(p);
    const char *hp_end = p + hplen;
    const char *port = NULL;
    size_t hlen;
    if (*p == '[') {
        const char *rb = memchr(p, ']', hplen);
        if (!rb) {
            set_why(why, why_size, "unterminated [IPv6 address]");
            return MESH_EINVAL;
        }
        u->ipv6 = true;
        hlen = (size_t)(rb - p - 1);
        p++;
        if (rb + 1 < hp_end) {
            if (rb[1] != ':') {
                set_why(why, why_size, "expected :PORT after the IPv6 address");
                return MESH_EINVAL;
            }
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', hplen);
        hlen = colon ? (size_t)(colon - p) : hplen;
        port = colon ? colon + 1 : NULL;
    }
    if (!hlen || hlen >= sizeof(u->host)) {
        set_why(why, why_size, "no host name");
        return MESH_EINVAL;
    }
    memcpy(u->host, p, hlen);
    size_t plen = port ? (size_t)(hp_end - port) : 0;
    if (port) {
        bool ok = plen > 0 && plen < 6;
        for (size_t i = 0; i < plen && ok; i++)
            ok = port[i] >= '0' && port[i] <= '9';
        if (!ok || atoi(port) < 1 || atoi(port) > 65535) {
            set_why(why, why_size, "bad port \"%.*s\"", (int)MESH_MIN(plen, 20u), port);
            return MESH_EINVAL;
        }
        memcpy(u->port, port, plen);
    } else {
        snprintf(u->port, sizeof(u->port), "80");
    }
    if (slash) {
        size_t len = strlen(slash);
        while (len && slash[len - 1] == '/')
            len--;
        if (len >= sizeof(u->prefix)) {
            set_why(why, why_size, "path too long");
            return MESH_EINVAL;
        }
        memcpy(u->prefix, slash, len);
    }
    return MESH_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for <events> on <fd> until <deadline>; 0 ready, -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)MESH_MIN(left, (int64_t)INT32_MAX));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to the first address that answers; -1 with the reason in <why>. */
static int connect_to(const struct mesh_ctl_url *u, int timeout_ms, char *why, size_t why_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        set_why(why, why_size, "cannot resolve \"%s\": %s", u->host,
                gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -1;
    }
    int64_t deadline = now_ms() + timeout_ms;
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            if (wait_fd(fd, POLLOUT, deadline) == 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                rc = soerr ? -1 : 0;
                errno = soerr;
            } else {
                rc = -1;
            }
        }
        if (rc != 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (last == ETIMEDOUT)
            set_why(why, why_size, "no answer within %d ms", timeout_ms);
        else
            errno_why(why, why_size, last);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Writes all of <iov>; -1 with errno on failure or timeout. */
static int send_all(int fd, struct iovec *iov, int n, int64_t deadline)
{
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            if (wait_fd(fd, POLLOUT, deadline) != 0)
                return -1;
            continue;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* ---- response parsing ---- */

struct reader {
    struct mesh_ctl_response *resp;
    size_t cap;
    char field[32];      /* the current header name (only short ones matter) */
    size_t field_len;
    bool in_value;
    bool is_ctype;
    char ctype[256];
    size_t ctype_len;
    bool done;
    bool too_big;
};

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct reader *r = p->data;
    if (r->in_value) {
        r->in_value = false;
        r->field_len = 0;
    }
    size_t n = MESH_MIN(len, sizeof(r->field) - 1 - r->field_len);
    memcpy(r->field + r->field_len, at, n);
    r->field_len += n;
    r->field[r->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct reader *r = p->data;
    if (!r->in_value) {
        r->in_value = true;
        r->is_ctype = strcasecmp(r->field, "content-type") == 0;
        if (r->is_ctype)
            r->ctype_len = 0;
    }
    if (r->is_ctype) {
        size_t n = MESH_MIN(len, sizeof(r->ctype) - 1 - r->ctype_len);
        memcpy(r->ctype + r->ctype_len, at, n);
        r->ctype_len += n;
        r->ctype[r->ctype_len] = '\0';
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct reader *r = p->data;
    struct mesh_ctl_response *resp = r->resp;
    if (resp->len + len > MESH_CTL_MAX_RESPONSE) {
        r->too_big = true;
        return 1;
    }
    if (resp->len + len + 1 > r->cap) {
        r->cap = MESH_MAX(r->cap * 2, resp->len + len + 1);
        resp->body = mesh_xrealloc(resp->body, r->cap);
    }
    memcpy(resp->body + resp->len, at, len);
    resp->len += len;
    resp->body[resp->len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct reader *r = p->data;
    if (p->status_code >= 100 && p->status_code < 200) {
        /* an interim response: the final one follows */
        r->resp->len = 0;
        r->ctype_len = 0;
        r->ctype[0] = '\0';
        return 0;
    }
    r->resp->status = p->status_code;
    r->done = true;
    return 0;
}

int mesh_ctl_http_do(const struct mesh_ctl_url *u, const struct mesh_ctl_request *req,
                     struct mesh_ctl_response *resp, char *why, size_t why_size)
{
    memset(resp, 0, sizeof(*resp));
    int cto = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 5000;
    int to = req->timeout_ms > 0 ? req->timeout_ms : 120000;
    int fd = connect_to(u, cto, why, why_size);
    if (fd < 0)
        return MESH_EIO;
    int64_t deadline = now_ms() + to;

    char head[4096 + 512];
    int n = snprintf(head, sizeof(head),
                     "%s %s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: meshd-ctl/%s\r\n"
                     "Accept: application/json, text/plain\r\nConnection: close\r\n",
                     req->method, u->prefix, req->target, u->ipv6 ? "[" : "", u->host,
                     u->ipv6 ? "]" : "", strcmp(u->port, "80") ? ":" : "",
                     strcmp(u->port, "80") ? u->port : "", PACKAGE_VERSION);
    if (req->token && n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Authorization: Bearer %s\r\n",
                      req->token);
    bool has_body = req->body || strcmp(req->method, "POST") == 0 ||
                    strcmp(req->method, "PUT") == 0;
    if (has_body && n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n%s%s%s",
                      req->body_len, req->content_type ? "Content-Type: " : "",
                      req->content_type ? req->content_type : "",
                      req->content_type ? "\r\n" : "");
    if (n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        close(fd);
        set_why(why, why_size, "the request head is too long");
        return MESH_EPROTO;
    }
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)req->body, req->body_len}};
    /* a server may answer early (401, 413) and close while we send: read its answer anyway */
    int send_errno = send_all(fd, iov, req->body_len ? 2 : 1, deadline) == 0 ? 0 : errno;
    if (send_errno == ETIMEDOUT) {
        close(fd);
        set_why(why, why_size, "sending the request timed out after %d ms", to);
        return MESH_EPROTO;
    }

    struct reader r = {.resp = resp};
    http_parser parser;
    http_parser_settings settings;
    http_parser_init(&parser, HTTP_RESPONSE);
    http_parser_settings_init(&settings);
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    parser.data = &r;
    char *buf = mesh_xmalloc(64 * 1024);
    int rc = MESH_OK;
    while (!r.done) {
        ssize_t got = recv(fd, buf, 64 * 1024, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLIN, deadline) == 0)
                    continue;
                if (errno == ETIMEDOUT)
                    set_why(why, why_size, "no complete answer within %d s", to / 1000);
                else
                    errno_why(why, why_size, errno);
                rc = MESH_EPROTO;
                break;
            }
            errno_why(why, why_size, send_errno ? send_errno : errno);
            rc = MESH_EPROTO;
            break;
        }
        size_t used = http_parser_execute(&parser, &settings, buf, (size_t)got);
        if (r.too_big) {
            set_why(why, why_size, "the answer is larger than %u MiB", MESH_CTL_MAX_RESPONSE >> 20);
            rc = MESH_EPROTO;
            break;
        }
        if (!r.done && (HTTP_PARSER_ERRNO(&parser) != HPE_OK || used != (size_t)got)) {
            set_why(why, why_size, "malformed HTTP answer (%s)",
                    http_errno_description(HTTP_PARSER_ERRNO(&parser)));
            rc = MESH_EPROTO;
            break;
        }
        if (got == 0 && !r.done) {
            if (send_errno)
                errno_why(why, why_size, send_errno);
            else
                set_why(why, why_size, "the server closed the connection before answering");
            rc = MESH_EPROTO;
            break;
        }
    }
    free(buf);
    close(fd);
    if (rc != MESH_OK) {
        mesh_ctl_response_free(resp);
        return rc;
    }
    if (!resp->body)
        resp->body = mesh_xstrdup("");
    if (r.ctype_len)
        resp->content_type = mesh_xstrdup(r.ctype);
    return MESH_OK;
}

void mesh_ctl_response_free(struct mesh_ctl_response *resp)
{
    free(resp->body);
    free(resp->content_type);
    memset(resp, 0, sizeof(*resp));
}
