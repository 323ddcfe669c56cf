#include "core/common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/lz.h"
#include "core/snapshot_delta.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

/*
 * Loader for the JSON snapshot (docs/snapshot.md). One pass over the jansson
 * tree validates and copies into the snapshot's arena at the same time; every
 * problem goes into <err> with its JSON path and the walk carries on, so one
 * run shows the user all of them. On any error the arena is dropped whole.
 */

#define MAX_FILE_SIZE (64u << 20)   /* a snapshot is config, not data */
/* mapped chunks (arena.c): pages never written cost nothing, so one size fits all */
#define SNAP_CHUNK (256u << 10)
/* below this the parse's garbage is not worth a walk of the heap */
#define TRIM_MIN (64u << 10)


_Static_assert(MESH_SNAP_PATH_MAX == sizeof(((struct mesh_err_entry *)0)->path), "path buffer size");

_Noreturn void mesh_snap_oom(void)
{
    fprintf(stderr, "meshd: out of memory loading a snapshot\n");
    abort();
}

/* Keys and names come from the network: keep control characters out of logs and terminals. */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void mesh_snap_fail(struct mesh_snap_ctx *c, const char *path, const char *fmt, ...)
{
    if (c->err->count >= MESH_ERR_MAX) {
        mesh_err_add(c->err, 0, 0, NULL, "%s", ""); /* only counted */
        return;
    }
    char p[MESH_SNAP_PATH_MAX];
    char msg[sizeof(c->err->e[0].msg)];
    snprintf(p, sizeof(p), "%s", path);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    scrub(p);
    scrub(msg);
    mesh_err_add(c->err, 0, 0, p, "%s", msg);
}

/* "base.key"; truncation only shortens the path shown in a message. */
void mesh_snap_path_key(char *dst, const char *base, const char *key)
{
    int n = snprintf(dst, MESH_SNAP_PATH_MAX, "%s%s%s", base, base[0] ? "." : "", key);
    if (n < 0)
        dst[0] = '\0';
}

void mesh_snap_path_idx(char *dst, const char *base, size_t i)
{
    int n = snprintf(dst, MESH_SNAP_PATH_MAX, "%s[%zu]", base, i);
    if (n < 0)
        dst[0] = '\0';
}

/* The arena has no budget here, so NULL only means malloc failed: setup-path OOM aborts. */
void *mesh_snap_zalloc(struct mesh_snap_ctx *c, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = mesh_arena_calloc(c->arena, n, size);
    if (!p)
        mesh_snap_oom();
    return p;
}

char *mesh_snap_sdup(struct mesh_snap_ctx *c, const char *s, size_t n)
{
    char *p = mesh_arena_strndup(c->arena, s, n);
    if (!p)
        mesh_snap_oom();
    return p;
}

json_t *mesh_snap_array_object(struct mesh_snap_ctx *c, json_t *arr, size_t i, const char *path,
                               const char *const *fields, char *pi)
{
    mesh_snap_path_idx(pi, path, i);
    json_t *o = json_array_get(arr, i);
    if (!json_is_object(o)) {
        mesh_snap_fail(c, pi, "must be an object");
        return NULL;
    }
    if (fields)
        mesh_snap_check_fields(c, o, pi, fields);
    return o;
}

/* Every key of <obj> must be in the NULL-terminated <allowed> list. */
void mesh_snap_check_fields(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                         const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, key) == 0) {
                ok = true;
                break;
            }
        }
        if (!ok) {
            char p[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(p, path, key);
            mesh_snap_fail(c, p, "unknown field");
        }
    }
}

/* Returns the member or NULL; reports a missing required one. */
json_t *mesh_snap_member(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                      bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v && required) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(p, path, key);
        mesh_snap_fail(c, p, "is required");
    }
    return v;
}

json_t *mesh_snap_get_object(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                          bool required, char *p)
{
    mesh_snap_path_key(p, path, key);
    json_t *v = mesh_snap_member(c, obj, path, key, required);
    if (v && !json_is_object(v)) {
        mesh_snap_fail(c, p, "must be an object");
        return NULL;
    }
    return v;
}

json_t *mesh_snap_get_array(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                         bool required, char *p)
{
    mesh_snap_path_key(p, path, key);
    json_t *v = mesh_snap_member(c, obj, path, key, required);
    if (v && !json_is_array(v)) {
        mesh_snap_fail(c, p, "must be an array");
        return NULL;
    }
    return v;
}

/* Arena copy of a string member; NULL when absent or invalid (and reported). */
const char *mesh_snap_get_string(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                              bool required, bool nonempty)
{
    json_t *v = mesh_snap_member(c, obj, path, key, required);
    if (!v)
        return NULL;
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    if (!json_is_string(v)) {
        mesh_snap_fail(c, p, "must be a string");
        return NULL;
    }
    size_t len = json_string_length(v);
    if (nonempty && len == 0) {
        mesh_snap_fail(c, p, "must not be empty");
        return NULL;
    }
    return mesh_snap_sdup(c, json_string_value(v), len);
}

/* Integer member in [min, max]; <out> keeps its default when absent or invalid. */
bool mesh_snap_get_uint(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                     bool required, json_int_t min, json_int_t max, uint32_t *out)
{
    json_t *v = mesh_snap_member(c, obj, path, key, required);
    if (!v)
        return !required;
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    if (!json_is_integer(v)) {
        mesh_snap_fail(c, p, "must be an integer");
        return false;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        mesh_snap_fail(c, p, "must be between %lld and %lld", (long long)min, (long long)max);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

bool mesh_snap_get_duration(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                         uint32_t *out)
{
    return mesh_snap_get_uint(c, obj, path, key, false, 0, UINT32_MAX, out);
}

static bool get_port(struct mesh_snap_ctx *c, json_t *obj, const char *path, bool allow_zero,
                     uint16_t *out)
{
    uint32_t v = 0;
    if (!mesh_snap_get_uint(c, obj, path, "port", true, allow_zero ? 0 : 1, 65535, &v))
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Numeric IPv4 or IPv6 only: a snapshot is compiled, name resolution happened before. */
static bool resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                    socklen_t *salen)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *salen = sizeof(*sin);
        return true;
    }
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *salen = sizeof(*sin6);
        return true;
    }
    return false;
}

bool mesh_snap_get_bool(struct mesh_snap_ctx *c, json_t *obj, const char *path, const char *key,
                        bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(p, path, key);
        mesh_snap_fail(c, p, "must be true or false");
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool mesh_snap_get_number(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                          const char *key, double min, double max, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    if (!json_is_number(v)) {
        mesh_snap_fail(c, p, "must be a number");
        return false;
    }
    double d = json_number_value(v);
    if (!(d >= min && d <= max)) {
        mesh_snap_fail(c, p, "must be between %g and %g", min, max);
        return false;
    }
    *out = d;
    return true;
}

bool mesh_snap_get_percent(struct mesh_snap_ctx *c, json_t *obj, const char *path,
                           const char *key, uint32_t *out)
{
    double d = (double)*out / 10000.0;
    if (!mesh_snap_get_number(c, obj, path, key, 0.0, 100.0, &d))
        return false;
    *out = (uint32_t)(d * 10000.0 + 0.5);
    return true;
}

void mesh_snap_defer(struct mesh_snap_ctx *c, void (*fn)(void *), void *arg)
{
    if (mesh_arena_defer(c->arena, fn, arg) != 0) {
        fn(arg);
        mesh_snap_oom();
    }
}

bool mesh_snap_is_unspecified(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* "127.0.0.1:8080" or "[::1]:8080", from the canonical address text. */
const char *mesh_snap_sockaddr_key(struct mesh_snap_ctx *c, const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    char key[INET6_ADDRSTRLEN + 16];
    int n;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        n = snprintf(key, sizeof(key), "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        n = snprintf(key, sizeof(key), "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    }
    if (n < 0)
        key[0] = '\0';
    return mesh_snap_sdup(c, key, strlen(key));
}

/* Address and port of a listener, admin or endpoint object. */
bool mesh_snap_get_addr(struct mesh_snap_ctx *c, json_t *obj, const char *path, bool allow_zero_port,
                     const char **address, uint16_t *port, struct sockaddr_storage *ss,
                     socklen_t *salen)
{
    *address = mesh_snap_get_string(c, obj, path, "address", true, true);
    bool port_ok = get_port(c, obj, path, allow_zero_port, port);
    if (!*address)
        return false;
    if (!resolve(*address, *port, ss, salen)) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(p, path, "address");
        mesh_snap_fail(c, p, "must be a numeric IPv4 or IPv6 address");
        *address = NULL;
        return false;
    }
    return port_ok;
}

/*
 * Registers <name> in the <names> table (name -> index). Reports a duplicate
 * with both positions. Returns false on a duplicate.
 */
bool mesh_snap_register_name(struct mesh_snap_ctx *c, json_t *names, const char *name, size_t index,
                          const char *path, const char *what)
{
    json_t *prev = json_object_get(names, name);
    if (prev) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(p, path, "name");
        mesh_snap_fail(c, p, "duplicate %s name '%s' (first at index %lld)", what, name,
             (long long)json_integer_value(prev));
        return false;
    }
    if (json_object_set_new(names, name, json_integer((json_int_t)index)) != 0)
        mesh_snap_oom();
    return true;
}

/* ---- listeners, admin, timeouts ---------------------------------------- */

static const char *const admin_fields[] = {"address", "port", NULL};
static const char *const timeout_fields[] = {"request_ms", "idle_ms", "stream_idle_ms",
                                             "drain_ms", NULL};
static const char *const root_fields[] = {"version", "admin", "timeouts", "listeners",
                                          "route_configs", "clusters", "dns", NULL};


static void parse_root(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *root)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, root, "", root_fields);

    s->version = mesh_snap_get_string(c, root, "", "version", true, true);

    json_t *admin = mesh_snap_get_object(c, root, "", "admin", false, p);
    if (admin) {
        mesh_snap_check_fields(c, admin, p, admin_fields);
        if (!mesh_snap_get_addr(c, admin, p, true, &s->admin_address, &s->admin_port, &s->admin_sa,
                      &s->admin_salen))
            s->admin_address = NULL;
    }

    s->timeouts.request_ms = 15000;
    s->timeouts.idle_ms = 300000;
    s->timeouts.stream_idle_ms = 300000;
    s->timeouts.drain_ms = 5000;
    json_t *t = mesh_snap_get_object(c, root, "", "timeouts", false, p);
    if (t) {
        mesh_snap_check_fields(c, t, p, timeout_fields);
        mesh_snap_get_duration(c, t, p, "request_ms", &s->timeouts.request_ms);
        mesh_snap_get_duration(c, t, p, "idle_ms", &s->timeouts.idle_ms);
        mesh_snap_get_duration(c, t, p, "stream_idle_ms", &s->timeouts.stream_idle_ms);
        mesh_snap_get_duration(c, t, p, "drain_ms", &s->timeouts.drain_ms);
    }

    /* referenced objects first, so references resolve in one pass */
    json_t *a = mesh_snap_get_array(c, root, "", "clusters", false, p);
    if (a)
        mesh_snap_parse_clusters(c, s, a, p);
    a = mesh_snap_get_array(c, root, "", "route_configs", false, p);
    if (a)
        mesh_snap_parse_route_configs(c, s, a, p);
    a = mesh_snap_get_array(c, root, "", "listeners", true, p);
    if (a)
        mesh_snap_parse_listeners(c, s, a, p);
    a = mesh_snap_get_array(c, root, "", "dns", false, p);
    if (a)
        mesh_snap_parse_dns(c, s, a, p);
}

static struct mesh_snapshot *parse_doc(const char *json, size_t len, struct mesh_err *err)
{
    if (!json || len == 0) {
        mesh_err_add(err, 0, 0, NULL, "the document is empty");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        scrub(jerr.text); /* "near '...'" quotes the input */
        mesh_err_add(err, jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1,
                     NULL, "invalid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        mesh_err_add(err, 0, 0, NULL, "the snapshot must be a JSON object");
        json_decref(root);
        return NULL;
    }

    struct mesh_snap_ctx c = {
        .err = err,
        .arena = mesh_arena_new_mapped(SNAP_CHUNK),
        .cluster_names = json_object(),
        .rc_names = json_object(),
    };
    if (!c.cluster_names || !c.rc_names)
        mesh_snap_oom();
    struct mesh_snapshot *s = mesh_snap_zalloc(&c, 1, sizeof(*s));
    c.snap = s;
    s->arena = c.arena;
    atomic_init(&s->refcnt, 1);

    size_t before = err->total;
    parse_root(&c, s, root);
    json_decref(c.cluster_names);
    json_decref(c.rc_names);

    if (err->total != before) {
        json_decref(root);
        mesh_arena_free(c.arena);
        return NULL;
    }
    /* kept compact and compressed: a tenth of the indented text (mesh_snapshot_dump) */
    char *dump = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!dump)
        mesh_snap_oom();
    s->json_len = strlen(dump);
    unsigned char *lz = mesh_lz_compress(dump, s->json_len, &s->json_lz_len);
    free(dump);
    if (!lz)
        mesh_snap_oom();
    unsigned char *kept = mesh_snap_zalloc(&c, 1, s->json_lz_len);
    memcpy(kept, lz, s->json_lz_len);
    free(lz);
    s->json_lz = kept;
    return s;
}

/*
 * The parse left a few times the document's size of freed jansson nodes in
 * the malloc heap, in holes the top-of-heap trim does not reach: give their
 * pages back now rather than keep them for the life of the process.
 */
static void trim_heap(size_t len)
{
#ifdef __GLIBC__
    if (len >= TRIM_MIN)
        malloc_trim(0);
#else
    (void)len;
#endif
}

char *mesh_snapshot_dump(const struct mesh_snapshot *s, bool indent)
{
    if (s->parent)
        return mesh_snapshot_delta_dump(s, indent);
    char *text = malloc(s->json_len + 1);
    if (!text)
        return NULL;
    if (!mesh_lz_decompress(s->json_lz, s->json_lz_len, text, s->json_len)) {
        free(text); /* cannot happen: we compressed it */
        return NULL;
    }
    text[s->json_len] = '\0';
    if (!indent)
        return text;
    json_t *root = json_loadb(text, s->json_len, 0, NULL);
    free(text);
    if (!root)
        return NULL;
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    trim_heap(s->json_len);
    return text;
}

struct mesh_snapshot *mesh_snapshot_parse(const char *json, size_t len, struct mesh_err *err)
{
    struct mesh_err scratch;
    if (!err)
        err = &scratch;
    mesh_err_init(err, NULL);
    struct mesh_snapshot *s = parse_doc(json, len, err);
    trim_heap(len);
    return s;
}

/* Whole file into a malloc'd buffer; works for pipes and /dev/stdin too. */
static char *read_file(const char *path, size_t *len, struct mesh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mesh_err_add(err, 0, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 16384, n = 0;
    char *buf = mesh_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                mesh_err_add(err, 0, 0, NULL, "file is larger than %u bytes", MAX_FILE_SIZE);
                goto fail;
            }
            cap *= 2;
            buf = mesh_xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            mesh_err_add(err, 0, 0, NULL, "cannot read: %s", strerror(errno));
            goto fail;
        }
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

struct mesh_snapshot *mesh_snapshot_load_file(const char *path, struct mesh_err *err)
{
    struct mesh_err scratch;
    if (!err)
        err = &scratch;
    mesh_err_init(err, path);
    size_t len = 0;
    char *buf = read_file(path, &len, err);
    if (!buf)
        return NULL;
    struct mesh_snapshot *s = parse_doc(buf, len, err);
    free(buf);
    trim_heap(len);
    return s;
}

void mesh_snapshot_unref(struct mesh_snapshot *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    size_t size = mesh_arena_used(s->arena);
    struct mesh_snapshot *parent = s->parent;
    mesh_arena_free(s->arena); /* <s> itself lives in the arena */
    mesh_snapshot_unref(parent); /* a derived snapshot's routes and listeners */
    /* a big snapshot goes once per swap, after what its successor's load left behind
     * (the push's buffer, the old one's pools): give the heap's free pages back too */
    trim_heap(size);
}

const struct mesh_cluster *mesh_snapshot_find_cluster(const struct mesh_snapshot *s,
                                                      const char *name)
{
    for (size_t i = 0; i < s->n_clusters; i++)
        if (strcmp(s->clusters[i].name, name) == 0)
            return &s->clusters[i];
    return NULL;
}
