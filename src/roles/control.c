/*
 * The control role: the configuration store and its resource API (docs/control.md).
 *
 * The API is served by the proxy engine itself (HTTP/1.1 and h2c on one port): the role
 * builds an in-memory snapshot with one listener whose handler is "api", and runs ONE
 * worker, the only thread that touches the store. The main thread runs admin and signals.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/addr.h"
#include "core/handler.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/snapshot.h"
#include "core/store.h"
#include "roles/control_api.h"
#include "roles/control_push.h"
#include "roles/control_registry.h"
#include "roles/role.h"
#include "roles/serve.h"

#define DEFAULT_DATA_DIR "meshd-data"
#define DEFAULT_LISTEN "127.0.0.1:15010"
#define DEFAULT_ADMIN "127.0.0.1:15014"
#define TOKEN_FILE "token"
#define TOKEN_BYTES 32

/* ---- the data directory and the token ---- */

/* mkdir -p with 0700 for every directory it creates. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int prepare_data_dir(const char *dir)
{
    struct stat st;
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "meshd: --data-dir %s: cannot create it: %s\n", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "meshd: --data-dir %s: not a directory\n", dir);
        return -1;
    }
    if (st.st_mode & 077)
        mesh_log_warn("data directory %s is open to other users (mode %03o): it holds the API "
                      "token; chmod 700 %s",
                      dir, (unsigned)(st.st_mode & 0777), dir);
    return 0;
}

static bool token_char_ok(char ch)
{
    return ch > ' ' && ch < 0x7f;
}

/* Reads an existing token file; 1 when absent, 0 with <out> filled, -1 on error (printed). */
static int read_token(const char *path, char *out, size_t size)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        fprintf(stderr, "meshd: token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "meshd: token file %s: not a regular file\n", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        mesh_log_warn("token file %s was readable by others (mode %03o): now 0600", path,
                      (unsigned)(st.st_mode & 0777));
        if (fchmod(fd, 0600) != 0)
            mesh_log_warn("chmod 600 %s: %s", path, strerror(errno));
    }
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "meshd: token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    bool ok = n >= 16 && (size_t)n < size - 1;
    for (ssize_t i = 0; i < n && ok; i++)
        ok = token_char_ok(out[i]);
    if (!ok) {
        fprintf(stderr, "meshd: token file %s: expected one line of 16 to %zu printable "
                        "characters; remove the file to have a new token generated\n",
                path, size - 2);
        explicit_bzero(out, size);
        return -1;
    }
    return 0;
}

/*
 * The API token: DIR/token if it exists, else 32 random bytes as hex written there (0600).
 * The new file is written under a temporary name and linked into place, so that a crash
 * never leaves a half-written token and two starts at once agree on one token.
 */
static int load_or_create_token(const char *dir, char *out, size_t size)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, TOKEN_FILE);
    int rc = read_token(path, out, size);
    if (rc <= 0)
        return rc;
    unsigned char raw[TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "meshd: getrandom: %s\n", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    char hex[TOKEN_BYTES * 2 + 2];
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));
    hex[TOKEN_BYTES * 2] = '\n';
    hex[TOKEN_BYTES * 2 + 1] = '\0';
    snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, TOKEN_FILE, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "meshd: cannot write the token file %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t len = TOKEN_BYTES * 2 + 1;
    bool ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
        fprintf(stderr, "meshd: cannot write the token file %s: %s\n", path, strerror(errno));
        unlink(tmp);
        explicit_bzero(hex, sizeof(hex));
        return -1;
    }
    unlink(tmp);
    explicit_bzero(hex, sizeof(hex));
    /* re-read: another process may have linked its token first */
    rc = read_token(path, out, size);
    if (rc == 0)
        mesh_log_info("generated the API token in %s", path);
    return rc == 0 ? 0 : -1;
}

/* ---- the runtime ---- */

static struct mesh_snapshot *api_snapshot(const char *host, uint16_t port)
{
    json_t *doc = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "version", "control-api",
                            "listeners", "name", "api", "address", host, "port", (int)port,
                            "handler", "api");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct mesh_err err;
    struct mesh_snapshot *snap = mesh_snapshot_parse(text, strlen(text), &err);
    if (!snap) {
        char buf[4096];
        mesh_err_format(&err, buf, sizeof(buf));
        fprintf(stderr, "meshd: the API listener %s:%u: %s", host, port, buf);
    }
    free(text);
    return snap;
}

/* A lease came, changed or went: the push recompiles, as after an apply. */
static void registry_changed(void *push)
{
    mesh_control_push_changed(push);
}

static void on_hup(void *arg)
{
    mesh_log_info("SIGHUP ignored: the control plane's configuration lives in its store "
                  "(change it with meshd ctl apply)");
}

int mesh_role_control_run(const struct mesh_opts *o)
{
    const char *dir = o->data_dir ? o->data_dir : DEFAULT_DATA_DIR;
    const char *listen = o->listen ? o->listen : DEFAULT_LISTEN;
    const char *admin = o->admin ? o->admin : DEFAULT_ADMIN;
    if (o->snapshot) {
        fprintf(stderr, "meshd: --snapshot is for the proxy roles; the control role keeps its "
                        "configuration in --data-dir\n");
        return 2;
    }
    char host[INET6_ADDRSTRLEN + 8];
    uint16_t port;
    if (mesh_addr_split(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "meshd: --listen %s: expected ADDR:PORT with a numeric address "
                        "(127.0.0.1:15010, [::1]:15010)\n", listen);
        return 2;
    }
    char ahost[INET6_ADDRSTRLEN + 8];
    uint16_t aport;
    struct sockaddr_storage admin_sa;
    socklen_t admin_len = 0;
    if (mesh_addr_split(admin, ahost, sizeof(ahost), &aport) != 0 ||
        mesh_addr_sockaddr(ahost, aport, &admin_sa, &admin_len) != 0) {
        fprintf(stderr, "meshd: --admin %s: expected ADDR:PORT with a numeric address\n", admin);
        return 2;
    }
    if (prepare_data_dir(dir) != 0)
        return 1;
    char token[256];
    if (load_or_create_token(dir, token, sizeof(token)) != 0)
        return 1;

    char db[PATH_MAX];
    snprintf(db, sizeof(db), "%s/%s", dir, MESH_STORE_FILE);
    struct mesh_err err;
    mesh_err_init(&err, db);
    struct mesh_store *store = NULL;
    struct mesh_store_opts sopts = {.busy_timeout_ms = 5000};
    if (mesh_store_open(db, &sopts, &store, &err) != MESH_OK) {
        mesh_err_print(&err, stderr);
        explicit_bzero(token, sizeof(token));
        return 1;
    }
    int64_t rev = 0;
    mesh_err_init(&err, db);
    if (mesh_store_revision(store, &rev, &err) != MESH_OK) {
        mesh_err_print(&err, stderr);
        mesh_store_close(store);
        explicit_bzero(token, sizeof(token));
        return 1;
    }
    struct mesh_control_api *api = mesh_control_api_new(store, token);
    explicit_bzero(token, sizeof(token));
    /* self-registration leases: read back from the store, served on /v1/register */
    mesh_err_init(&err, db);
    struct mesh_registry *reg = mesh_registry_new(store, NULL, &err);
    if (!reg) {
        mesh_err_print(&err, stderr);
        mesh_control_api_free(api);
        mesh_store_close(store);
        return 1;
    }
    mesh_control_api_set_registry(api, reg);
    struct mesh_snapshot *snap = api_snapshot(host, port);
    if (!snap) {
        mesh_control_api_free(api);
        mesh_registry_free(reg);
        mesh_store_close(store);
        return 1;
    }
    if (!mesh_control_is_loopback(host))
        mesh_log_warn("the API listens on %s, not loopback, in plain text: every request "
                      "needs the token, and the token crosses the network unencrypted", listen);

    struct event_base *base = mesh_serve_base();
    int rc = 1;
    /* one worker: the store connection is used from that thread only */
    mesh_err_init(&err, NULL);
    struct mesh_runtime *rt = mesh_runtime_new(base, snap, 1, &err);
    if (!rt) {
        mesh_err_print(&err, stderr);
        mesh_snapshot_unref(snap);
        goto out_store;
    }
    /* the push serves /v1/watch, /v1/ack, /v1/proxies and hands the rest to the API */
    struct mesh_control_push *push = mesh_control_push_new(
        store, api, o->debounce_ms >= 0 ? (unsigned)o->debounce_ms : MESH_PUSH_DEFAULT_DEBOUNCE_MS,
        o->registry_only);
    mesh_runtime_add_handler(rt, "api", mesh_control_push_handle, push, MESH_CONTROL_MAX_BODY);
    mesh_registry_on_change(reg, registry_changed, push);
    mesh_registry_start(reg, mesh_runtime_worker_base(rt, 0)); /* the store's thread */
    mesh_log_info("control plane: store %s at revision %lld", db, (long long)rev);
    struct mesh_snapshot *keep = mesh_runtime_snapshot(rt);
    struct mesh_serve sv = {.base = base, .rt = rt, .snap = keep,
                            .admin_sa = (struct sockaddr *)&admin_sa, .admin_len = admin_len,
                            .ready_fd = o->ready_fd, .access_log = o->access_log,
                            .io_mode = o->io_mode, .poll_spins = o->poll_spins,
                            .what = "control", .on_hup = on_hup,
                            .on_drain = mesh_control_push_shutdown, .drain_arg = push};
    rc = mesh_serve_run(&sv); /* joins the worker: nothing uses the store after this */
    mesh_control_push_free(push);
    mesh_snapshot_unref(keep);
out_store:
    mesh_control_api_free(api);
    mesh_registry_free(reg); /* after the worker's base: its timer needs no freeing */
    mesh_store_close(store);
    event_base_free(base);
    return rc;
}
