/*
 * mesh-demo-app: the application of the quickstart's demo pods (scripts/quickstart).
 *
 *   mesh-demo-app --name NAME --listen ADDR:PORT [--call URL] [--call-host HOST]
 *                 [--timeout-ms N] [--ready-file F]
 *
 * GET (any path) answers 200 "NAME\n". With --call it first calls URL and answers
 * "NAME -> <the callee's answer>\n", so a chain of apps shows the path a request took:
 * "frontend -> reviews-v2 -> ratings". --call-host sets the Host header of that call
 * (on loopback the app calls its own sidecar's outbound listener and names the service
 * it means in Host); without it Host is the URL's. A call that fails is shown in the
 * answer, still 200, never a hang: "frontend -> (reviews: 503 no healthy upstream)",
 * "frontend -> (reviews: timeout)"; --timeout-ms (default 3000) bounds it.
 *
 * Server and client are libevent's evhttp, on one non-blocking loop; names in URL are
 * resolved with evdns from /etc/resolv.conf (in a pod namespace: the sidecar's DNS proxy).
 * --ready-file gets "port=N\n" once listening (written atomically). Every response
 * carries "x-app: NAME". SIGTERM and SIGINT stop the loop; everything is freed on exit.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include "tool_util.h"

#define ANSWER_MAX 512 /* bytes of a callee's answer kept in ours */

struct app {
    const char *name;
    struct event_base *base;
    struct evdns_base *dns;     /* NULL: numeric hosts only */
    struct evhttp_uri *call;    /* NULL: a leaf service */
    const char *call_host;      /* Host header of the call (NULL: the URL's) */
    char callee[64];            /* the callee's short name in error messages */
    int timeout_ms;
    struct pending *pending;    /* calls in flight, freed at exit */
    struct pending *graveyard;  /* calls over, freed by the reaper */
    struct event *reaper;
};

/* One incoming request waiting for its call. `down` is NULL once answered or once the client
 * is gone (its connection's close callback), then the call's answer is dropped. When the call
 * ends the pending moves to the app's graveyard, and the reaper (a zero timeout) frees it
 * with its upstream connection: evhttp must not free a connection inside its callbacks, and
 * a failed connect does not free itself. */
struct pending {
    struct app *app;
    struct evhttp_request *down;
    struct evhttp_connection *up;
    struct pending *next, **prevp;
    enum evhttp_request_error error;
    bool failed;
    bool in_make;               /* inside evhttp_make_request */
    bool done;                  /* call_done_cb ran */
};

static void pending_unlink(struct pending *p)
{
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
}

static void pending_link(struct pending **head, struct pending *p)
{
    p->next = *head;
    if (p->next)
        p->next->prevp = &p->next;
    p->prevp = head;
    *head = p;
}

/* Frees a pending and its connection (which frees any request still queued on it). */
static void pending_free(struct pending *p)
{
    pending_unlink(p);
    if (p->down)
        evhttp_connection_set_closecb(evhttp_request_get_connection(p->down), NULL, NULL);
    if (p->up)
        evhttp_connection_free(p->up);
    free(p);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    (void)fd;
    (void)what;
    while (app->graveyard)
        pending_free(app->graveyard);
}

/* The call is over: no more callbacks for p; free it at the next turn of the loop. */
static void pending_bury(struct pending *p)
{
    static const struct timeval zero = { 0, 0 };
    if (p->down)
        evhttp_connection_set_closecb(evhttp_request_get_connection(p->down), NULL, NULL);
    p->down = NULL;
    pending_unlink(p);
    pending_link(&p->app->graveyard, p);
    evtimer_add(p->app->reaper, &zero);
}

static void reply(struct app *app, struct evhttp_request *req, const char *tail)
{
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain");
    evhttp_add_header(h, "x-app", app->name);
    if (tail)
        evbuffer_add_printf(body, "%s -> %s\n", app->name, tail);
    else
        evbuffer_add_printf(body, "%s\n", app->name);
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

/* The callee's body, one line: newlines become spaces, trailing space trimmed. */
static void body_text(struct evbuffer *in, char *out, size_t cap)
{
    size_t n = evbuffer_get_length(in);
    if (n > cap - 1)
        n = cap - 1;
    evbuffer_copyout(in, out, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\r' || out[i] == '\n' || out[i] == '\t')
            out[i] = ' ';
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
}

static const char *error_text(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER: return "bad answer";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection refused or reset";
    case EVREQ_HTTP_DATA_TOO_LONG: return "answer too long";
    default: return "failed";
    }
}

static void call_error_cb(enum evhttp_request_error e, void *arg)
{
    struct pending *p = arg;
    p->failed = true;
    p->error = e;
}

/* The call finished (req NULL or code 0 on failure). */
static void call_done_cb(struct evhttp_request *req, void *arg)
{
    struct pending *p = arg;
    struct app *app = p->app;
    char text[ANSWER_MAX], tail[ANSWER_MAX + 96];
    int code = req ? evhttp_request_get_response_code(req) : 0;

    p->done = true;
    if (p->down) {
        if (code == 0) {
            snprintf(tail, sizeof(tail), "(%s: %s)", app->callee,
                p->failed ? error_text(p->error) : "connection failed");
        } else {
            body_text(evhttp_request_get_input_buffer(req), text, sizeof(text));
            if (code == 200)
                snprintf(tail, sizeof(tail), "%s", text[0] ? text : "(empty answer)");
            else
                snprintf(tail, sizeof(tail), "(%s: %d %s)", app->callee, code, text);
        }
        reply(app, p->down, tail);
    }
    if (!p->in_make)
        pending_bury(p);
}

/* The client went away before the call finished. */
static void down_closed_cb(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    ((struct pending *)arg)->down = NULL;
}

static void start_call(struct app *app, struct evhttp_request *down)
{
    const char *host = evhttp_uri_get_host(app->call);
    int port = evhttp_uri_get_port(app->call);
    const char *path = evhttp_uri_get_path(app->call);
    const char *query = evhttp_uri_get_query(app->call);
    char target[1024];
    snprintf(target, sizeof(target), "%s%s%s", path && *path ? path : "/", query ? "?" : "",
        query ? query : "");

    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        evhttp_send_error(down, 500, NULL);
        return;
    }
    p->app = app;
    p->down = down;
    pending_link(&app->pending, p);

    p->up = evhttp_connection_base_new(app->base, app->dns, host, port > 0 ? port : 80);
    struct evhttp_request *up = p->up ? evhttp_request_new(call_done_cb, p) : NULL;
    if (!up) {
        pending_free(p);
        reply(app, down, "(cannot start the call)");
        return;
    }
    struct timeval tv = { app->timeout_ms / 1000, (app->timeout_ms % 1000) * 1000 };
    evhttp_connection_set_timeout_tv(p->up, &tv);
    evhttp_connection_set_retries(p->up, 0);
    /* the demo's pods are IPv4 only: an AAAA query would get NODATA, on which evdns walks the
     * search list, and the demo has no cluster resolver to refuse the other names quickly */
    evhttp_connection_set_family(p->up, AF_INET);
    evhttp_request_set_error_cb(up, call_error_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(up);
    evhttp_add_header(h, "Host", app->call_host ? app->call_host : host);
    evhttp_add_header(h, "User-Agent", "mesh-demo-app");
    evhttp_connection_set_closecb(evhttp_request_get_connection(down), down_closed_cb, p);
    p->in_make = true;
    int rc = evhttp_make_request(p->up, up, EVHTTP_REQ_GET, target);
    p->in_make = false;
    if (rc != 0 && !p->done) {
        char tail[128];
        snprintf(tail, sizeof(tail), "(%s: cannot connect)", app->callee);
        reply(app, down, tail);
        p->done = true;
    }
    if (p->done)
        pending_bury(p);
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct app *app = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "only GET");
        return;
    }
    if (app->call)
        start_call(app, req);
    else
        reply(app, req, NULL);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mesh-demo-app --name NAME [--listen ADDR:PORT] [--call URL] "
               "[--call-host HOST]\n"
               "                     [--timeout-ms N] [--ready-file F]\n");
}

/* --listen ADDR:PORT with a numeric address (the last colon splits; [v6]:port works). */
static int split_listen(const char *s, char *addr, size_t cap, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    if (!colon || (size_t)(colon - s) >= cap || colon == s)
        return -1;
    const char *a = s;
    size_t n = (size_t)(colon - s);
    if (a[0] == '[' && n >= 2 && a[n - 1] == ']') {
        a++;
        n -= 2;
    }
    memcpy(addr, a, n);
    addr[n] = '\0';
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static bool is_numeric_host(const char *h)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

/* The callee's short name for error messages: the first label of Host (or of the URL). */
static void set_callee(struct app *app)
{
    const char *h = app->call_host ? app->call_host : evhttp_uri_get_host(app->call);
    size_t n = is_numeric_host(h) ? strlen(h) : strcspn(h, ".:");
    if (n >= sizeof(app->callee))
        n = sizeof(app->callee) - 1;
    memcpy(app->callee, h, n);
    app->callee[n] = '\0';
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "listen", required_argument, NULL, 'l' },
        { "call", required_argument, NULL, 'c' },
        { "call-host", required_argument, NULL, 'H' },
        { "timeout-ms", required_argument, NULL, 't' },
        { "ready-file", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct app app = { .name = NULL, .timeout_ms = 3000 };
    const char *listen_arg = "127.0.0.1:0", *call = NULL, *ready = NULL;
    char addr[256];
    int opt, port, rc = 1;
    char *end;

    while ((opt = getopt_long(argc, argv, "n:l:c:H:t:r:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': app.name = optarg; break;
        case 'l': listen_arg = optarg; break;
        case 'c': call = optarg; break;
        case 'H': app.call_host = optarg; break;
        case 't':
            errno = 0;
            app.timeout_ms = (int)strtol(optarg, &end, 10);
            if (errno || *end || app.timeout_ms < 1 || app.timeout_ms > 600000) {
                fprintf(stderr, "mesh-demo-app: --timeout-ms: 1..600000 expected, got '%s'\n",
                    optarg);
                return 2;
            }
            break;
        case 'r': ready = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !app.name || !*app.name) {
        if (!app.name || !*app.name)
            fprintf(stderr, "mesh-demo-app: --name is required\n");
        usage(stderr);
        return 2;
    }
    if (split_listen(listen_arg, addr, sizeof(addr), &port) != 0) {
        fprintf(stderr, "mesh-demo-app: --listen: ADDR:PORT expected, got '%s'\n", listen_arg);
        return 2;
    }
    if (call) {
        app.call = evhttp_uri_parse(call);
        const char *scheme = app.call ? evhttp_uri_get_scheme(app.call) : NULL;
        if (!app.call || !scheme || strcmp(scheme, "http") != 0 ||
            !evhttp_uri_get_host(app.call) || !*evhttp_uri_get_host(app.call)) {
            fprintf(stderr, "mesh-demo-app: --call: http://HOST[:PORT]/PATH expected, got '%s'\n",
                call);
            if (app.call)
                evhttp_uri_free(app.call);
            return 2;
        }
        set_callee(&app);
    }
    signal(SIGPIPE, SIG_IGN);

    struct evhttp *http = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    app.base = event_base_new();
    if (!app.base)
        goto out;
    if (app.call && !is_numeric_host(evhttp_uri_get_host(app.call))) {
        app.dns = evdns_base_new(app.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!app.dns) {
            fprintf(stderr, "mesh-demo-app: cannot read /etc/resolv.conf to resolve %s\n",
                evhttp_uri_get_host(app.call));
            goto out;
        }
    }
    sigterm = evsignal_new(app.base, SIGTERM, tool_signal_cb, app.base);
    sigint = evsignal_new(app.base, SIGINT, tool_signal_cb, app.base);
    http = evhttp_new(app.base);
    app.reaper = evtimer_new(app.base, reaper_cb, &app);
    if (!app.reaper || !sigterm || !sigint || !http || evsignal_add(sigterm, NULL) ||
        evsignal_add(sigint, NULL))
        goto out;
    evhttp_set_gencb(http, request_cb, &app);
    evhttp_set_timeout(http, 30);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, addr, (ev_uint16_t)port);
    if (!bs) {
        fprintf(stderr, "mesh-demo-app %s: cannot listen on %s: %s\n", app.name, listen_arg,
            strerror(errno));
        goto out;
    }
    port = bound_port(bs);
    if (ready && tool_write_ready_file(ready, port, -1) != 0) {
        fprintf(stderr, "mesh-demo-app: cannot write %s: %s\n", ready, strerror(errno));
        goto out;
    }
    fprintf(stderr, "mesh-demo-app %s: listening on %s port %d%s%s\n", app.name, addr, port,
        call ? ", calls " : "", call ? call : "");
    event_base_dispatch(app.base);
    rc = 0;
out:
    /* calls in flight or over: freeing a connection frees its queued request, no callback */
    while (app.pending)
        pending_free(app.pending);
    while (app.graveyard)
        pending_free(app.graveyard);
    if (app.reaper)
        event_free(app.reaper);
    if (http)
        evhttp_free(http);
    if (app.dns)
        evdns_base_free(app.dns, 0);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (app.call)
        evhttp_uri_free(app.call);
    if (app.base)
        event_base_free(app.base);
    return rc;
}
