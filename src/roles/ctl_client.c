/*
 * meshd ctl commands that talk to the control plane (ctl_client.h): kubectl habits for
 * options, output and messages. Files are validated locally first, so that errors carry
 * their real FILE:LINE:COL and nothing half-valid is sent.
 */
#include "core/common.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/diag.h"
#include "core/resource.h"
#include "core/status.h"
#include "core/yaml_emit.h"
#include "roles/ctl_client.h"
#include "roles/ctl_http.h"
#include "roles/token.h"

enum {
    OPT_SERVER = 0x100,
    OPT_TOKEN_FILE,
    OPT_NOTE,
    OPT_DRY_RUN,
    OPT_IGNORE_NOT_FOUND,
};

#define COMMON_OPTIONS                                                                             \
    {"server", required_argument, NULL, OPT_SERVER},                                               \
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},                                   \
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}

#define COMMON_HELP                                                                                \
    "      --server URL      the control plane (default $MESHD_SERVER, else "                      \
    MESH_CTL_DEFAULT_SERVER ")\n"                                                                  \
    "      --token-file FILE the API token (default $MESHD_TOKEN, else ./"                         \
    MESH_CTL_DEFAULT_TOKEN_FILE ")\n"

struct client {
    const char *cmd;            /* "apply", for messages */
    const char *server;         /* the URL as given */
    const char *token_file;     /* --token-file */
    struct mesh_ctl_url url;
    char *token;                /* NULL: none found */
    char token_from[PATH_MAX + 32];
};

/* ---- small helpers ---- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = MESH_MAX(b->cap * 2, b->len + n + 64);
        b->p = mesh_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_enc(struct sbuf *b, const char *s)
{
    char *e = mesh_pct_encode(s);
    sb_str(b, e);
    free(e);
}

/* Appends "?key=value" or "&key=value" (value encoded); NULL or "" values are left out. */
static void sb_query(struct sbuf *b, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    sb_str(b, strchr(b->p ? b->p : "", '?') ? "&" : "?");
    sb_str(b, key);
    sb_str(b, "=");
    sb_enc(b, value);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* kubectl's names: "virtualservice.networking.istio.io", "service" (core group). */
static void kind_word(const char *kind, char *out, size_t size)
{
    enum mesh_kind k = mesh_kind_parse(kind);
    const char *group = k != MESH_KIND_UNKNOWN ? mesh_kind_group(k) : "";
    snprintf(out, size, "%s%s%s", k != MESH_KIND_UNKNOWN ? mesh_kind_name(k) : kind,
             *group ? "." : "", group);
    lower(out);
}

/* "virtualservices.networking.istio.io", for "not found" messages as kubectl words them. */
static void kind_plural(const char *kind, char *out, size_t size)
{
    enum mesh_kind k = mesh_kind_parse(kind);
    const char *name = k != MESH_KIND_UNKNOWN ? mesh_kind_name(k) : kind;
    const char *group = k != MESH_KIND_UNKNOWN ? mesh_kind_group(k) : "";
    size_t n = strlen(name);
    const char *suffix = n && name[n - 1] == 's' ? "" : n && name[n - 1] == 'y' ? "ies" : "s";
    snprintf(out, size, "%.*s%s%s%s", (int)(n && name[n - 1] == 'y' ? n - 1 : n), name, suffix,
             *group ? "." : "", group);
    lower(out);
}

static const char *kind_canonical(const char *name)
{
    enum mesh_kind k = mesh_kind_parse(name);
    return k == MESH_KIND_UNKNOWN ? NULL : mesh_kind_name(k);
}

static int unknown_kind(const struct client *c, const char *kind)
{
    fprintf(stderr, "error: the server doesn't have a resource type \"%s\" (meshd serves "
                    "VirtualService (vs), DestinationRule (dr), Gateway (gw), ServiceEntry (se), "
                    "WorkloadEntry (we), Sidecar, PeerAuthentication (pa), AuthorizationPolicy "
                    "(ap), RequestAuthentication (ra), Service (svc), Endpoints (ep), "
                    "EndpointSlice)\n",
            kind);
    return 1;
}

static bool parse_rev(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0 || s[0] == '-' || s[0] == '+')
        return false;
    *out = v;
    return true;
}

/* ---- options, server, token ---- */

static int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    MESH_PRINTF(3, 4);
static int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "meshd ctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

/* getopt_long's complaints, worded once: returns 2. */
static int bad_option(const char *cmd, const char *usage, int ch, char **argv)
{
    if (ch == ':')
        return usage_error(cmd, usage, "option %s needs a value", argv[optind - 1]);
    return usage_error(cmd, usage, "unknown option \"%s\"", argv[optind - 1]);
}

/* Handles the options every command takes; false when <ch> is not one of them. */
static bool common_option(struct client *c, int ch)
{
    switch (ch) {
    case OPT_SERVER: c->server = optarg; return true;
    case OPT_TOKEN_FILE: c->token_file = optarg; return true;
    default: return false;
    }
}

static void start_options(void)
{
    optind = 0; /* glibc: full re-initialisation (a test may run several commands) */
    opterr = 0;
}

/* Resolves the server and the token after the options; 0, or the exit code. */
static int client_setup(struct client *c)
{
    if (!c->server) {
        const char *env = getenv("MESHD_SERVER");
        c->server = env && *env ? env : MESH_CTL_DEFAULT_SERVER;
    }
    char why[256];
    if (mesh_ctl_url_parse(c->server, &c->url, why, sizeof(why)) != MESH_OK) {
        fprintf(stderr, "error: the control plane URL \"%s\": %s\n", c->server, why);
        return 2;
    }
    const char *env = getenv("MESHD_TOKEN");
    if (c->token_file) {
        c->token = mesh_token_read(c->token_file);
        if (!c->token) {
            fprintf(stderr, "error: --token-file %s: %s\n", c->token_file,
                    errno == ENODATA ? "the file is empty" : strerror(errno));
            return 1;
        }
        snprintf(c->token_from, sizeof(c->token_from), "--token-file %s", c->token_file);
    } else if (env && *env) {
        c->token = mesh_xstrdup(env);
        snprintf(c->token_from, sizeof(c->token_from), "MESHD_TOKEN");
    } else if ((c->token = mesh_token_read(MESH_CTL_DEFAULT_TOKEN_FILE))) {
        snprintf(c->token_from, sizeof(c->token_from), "./%s", MESH_CTL_DEFAULT_TOKEN_FILE);
    }
    return 0;
}

static void client_free(struct client *c)
{
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
}

/* ---- talking to the server ---- */

/* One request; 0 with <resp> filled (any status), or 1 after printing why it failed. */
static int call(struct client *c, const char *method, const char *target, const char *ctype,
                const char *body, size_t len, struct mesh_ctl_response *resp)
{
    char why[512];
    struct mesh_ctl_request req = {.method = method, .target = target, .content_type = ctype,
                                   .token = c->token, .body = body, .body_len = len};
    int rc = mesh_ctl_http_do(&c->url, &req, resp, why, sizeof(why));
    if (rc == MESH_EIO) {
        fprintf(stderr, "error: cannot reach the control plane at %s: %s (is `meshd "
                        "--role=control` running? set --server or MESHD_SERVER)\n",
                c->server, why);
        return 1;
    }
    if (rc != MESH_OK) {
        fprintf(stderr, "error: the control plane at %s: %s\n", c->server, why);
        return 1;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 413: return "RequestEntityTooLarge";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    default: return status >= 500 ? "InternalError" : "Unknown";
    }
}

static json_t *parse_json(const struct mesh_ctl_response *r)
{
    json_error_t je;
    return json_loadb(r->body, r->len, JSON_DECODE_ANY, &je);
}

/* Prints each string of <arr> on its own line, except one equal to <skip>. */
static void print_lines(json_t *arr, FILE *f, const char *skip)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && (!skip || strcmp(skip, json_string_value(v)) != 0))
            fprintf(f, "%s\n", json_string_value(v));
}

/* An answer other than 2xx, worded for a person; returns 1. */
static int server_error(const struct client *c, const struct mesh_ctl_response *r)
{
    if (r->status == 401) {
        if (c->token)
            fprintf(stderr, "error: the control plane refused the token (401): check "
                            "--token-file or MESHD_TOKEN (the token came from %s)\n",
                    c->token_from);
        else
            fprintf(stderr, "error: the control plane needs a token (401) and none was found: "
                            "give --token-file FILE or set MESHD_TOKEN (the control plane "
                            "writes it to DATA_DIR/token)\n");
        return 1;
    }
    json_t *j = parse_json(r);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) {
        fprintf(stderr, "Error from server (%s): %s\n", reason(r->status), msg);
        print_lines(json_object_get(j, "details"), stderr, msg);
        print_lines(json_object_get(j, "warnings"), stderr, NULL);
    } else {
        /* not the API's JSON (the engine's own 413, a proxy in between): show the text */
        int n = (int)strcspn(r->body, "\r\n");
        fprintf(stderr, "Error from server (%s): HTTP %d%s%.*s\n", reason(r->status), r->status,
                n ? ": " : "", MESH_MIN(n, 500), r->body);
    }
    json_decref(j);
    return 1;
}

/* A 2xx JSON answer parsed, or NULL after a message. */
static json_t *ok_json(const struct client *c, const struct mesh_ctl_response *r)
{
    json_t *j = parse_json(r);
    if (!j)
        fprintf(stderr, "error: the control plane at %s answered %d with something that is not "
                        "JSON\n",
                c->server, r->status);
    return j;
}

/* Local validation of -f paths: prints every problem; false on errors. */
static bool load_local(struct mesh_resource_set *set, const char **paths, size_t n,
                       unsigned flags)
{
    for (size_t i = 0; i < n; i++)
        mesh_resource_load_path(set, paths[i], flags);
    fflush(stdout);
    mesh_diags_print(&set->diags, stderr, MESH_DIAG_NOTE);
    if (set->diags.n_errors) {
        fprintf(stderr, "error: %zu error%s in the input: nothing was sent to the control "
                        "plane\n",
                set->diags.n_errors, set->diags.n_errors == 1 ? "" : "s");
        return false;
    }
    return true;
}

/* "alice: apply -f a.yaml" for the revision's note. */
static char *default_note(const char *what, const char **paths, size_t n)
{
    struct sbuf b = {0};
    const char *user = getenv("USER");
    if (user && *user) {
        sb_str(&b, user);
        sb_str(&b, ": ");
    }
    sb_str(&b, what);
    for (size_t i = 0; i < n && b.len < 200; i++) {
        sb_str(&b, " -f ");
        sb_str(&b, paths[i]);
    }
    if (b.len > 240)
        b.p[240] = '\0';
    return b.p;
}

/* ---- apply ---- */

static const char apply_usage[] =
    "usage: meshd ctl apply -f FILE|DIR|- [-f ...] [options]\n\n"
    "Validates the files locally (every problem as FILE:LINE:COL), then creates or updates\n"
    "every resource in the control plane in one revision: all or nothing.\n\n"
    "options:\n"
    "  -f, --filename PATH    file, directory (*.yaml, *.yml, *.json) or - (stdin); repeatable\n"
    "  -R, --recursive        descend into subdirectories\n"
    "      --dry-run[=server|client]  server: the control plane says what it would do;\n"
    "                         client: validate locally only\n"
    "      --note TEXT        recorded with the revision (default \"$USER: apply -f PATH\")\n"
    COMMON_HELP;

int mesh_ctl_apply(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"dry-run", optional_argument, NULL, OPT_DRY_RUN},
        {"note", required_argument, NULL, OPT_NOTE},
        COMMON_OPTIONS,
    };
    struct client c = {.cmd = "apply"};
    const char **paths = mesh_xcalloc((size_t)argc + 1, sizeof(*paths));
    size_t n_paths = 0;
    unsigned flags = 0;
    const char *note = NULL, *dry = NULL;
    int ch, rc = 2;
    start_options();
    while ((ch = getopt_long(argc, argv, ":f:Rh", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        switch (ch) {
        case 'f': paths[n_paths++] = optarg; break;
        case 'R': flags |= MESH_LOAD_RECURSIVE; break;
        case OPT_NOTE: note = optarg; break;
        case OPT_DRY_RUN: dry = optarg ? optarg : "server"; break;
        case 'h':
            fputs(apply_usage, stdout);
            free(paths);
            return 0;
        default:
            free(paths);
            return bad_option(c.cmd, apply_usage, ch, argv);
        }
    }
    if (optind < argc) {
        free(paths);
        return usage_error(c.cmd, apply_usage, "unexpected argument \"%s\" (use -f PATH)",
                           argv[optind]);
    }
    if (!n_paths) {
        free(paths);
        return usage_error(c.cmd, apply_usage, "nothing to apply: give -f FILE|DIR|-");
    }
    if (dry && strcmp(dry, "server") != 0 && strcmp(dry, "client") != 0 &&
        strcmp(dry, "none") != 0) {
        free(paths);
        return usage_error(c.cmd, apply_usage, "--dry-run: expected server, client or none");
    }
    if (dry && strcmp(dry, "none") == 0)
        dry = NULL;
    if ((rc = client_setup(&c)) != 0) {
        free(paths);
        client_free(&c);
        return rc;
    }

    rc = 1;
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    char *body = NULL, *dnote = NULL;
    struct sbuf target = {0};
    struct mesh_ctl_response resp = {0};
    json_t *answer = NULL;
    if (!load_local(&set, paths, n_paths, flags))
        goto out;
    if (!set.n) {
        fprintf(stderr, "error: no objects passed to apply\n");
        goto out;
    }
    if (dry && strcmp(dry, "client") == 0) {
        for (size_t i = 0; i < set.n; i++) {
            char kw[128];
            kind_word(mesh_kind_name(set.items[i]->kind), kw, sizeof(kw));
            printf("%s/%s validated (client dry run)\n", kw, set.items[i]->meta.name);
        }
        rc = 0;
        goto out;
    }
    json_t *docs = json_array();
    for (size_t i = 0; i < set.n; i++)
        json_array_append(docs, set.items[i]->object);
    body = json_dumps(docs, JSON_COMPACT);
    json_decref(docs);
    if (!note)
        note = dnote = default_note("apply", paths, n_paths);
    sb_str(&target, "/v1/apply");
    sb_query(&target, "dryRun", dry ? "1" : NULL);
    sb_query(&target, "note", note);
    if (call(&c, "POST", target.p, "application/json", body, strlen(body), &resp) != 0)
        goto out;
    if (resp.status != 200) {
        server_error(&c, &resp);
        goto out;
    }
    if (!(answer = ok_json(&c, &resp)))
        goto out;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(answer, "results"), i, r) {
        char kw[128];
        kind_word(json_string_value(json_object_get(r, "kind")), kw, sizeof(kw));
        printf("%s/%s %s%s\n", kw, json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "result")), dry ? " (server dry run)" : "");
    }
    rc = 0;
out:
    fflush(stdout);
    json_decref(answer);
    mesh_ctl_response_free(&resp);
    free(target.p);
    free(body);
    free(dnote);
    free(paths);
    mesh_resource_set_free(&set);
    client_free(&c);
    return rc;
}

/* ---- tables ---- */

struct table {
    size_t cols, rows, cap;
    char **cells;
};

static void table_row(struct table *t, char **cells /* taken */)
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = mesh_xrealloc(t->cells, t->cap * t->cols * sizeof(*t->cells));
    }
    memcpy(t->cells + t->rows * t->cols, cells, t->cols * sizeof(*cells));
    t->rows++;
}

static void table_header(struct table *t, const char *const *names, size_t n)
{
    char *cells[16];
    t->cols = n;
    for (size_t i = 0; i < n; i++)
        cells[i] = mesh_xstrdup(names[i]);
    table_row(t, cells);
}

/* Columns left-aligned, three spaces apart (kubectl's tabwriter). */
static void table_print(const struct table *t, FILE *f)
{
    size_t w[16] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t k = 0; k < t->cols; k++)
            w[k] = MESH_MAX(w[k], strlen(t->cells[r * t->cols + k]));
    struct sbuf line = {0};
    for (size_t r = 0; r < t->rows; r++) {
        line.len = 0;
        for (size_t k = 0; k < t->cols; k++) {
            const char *s = t->cells[r * t->cols + k];
            size_t n = strlen(s);
            sb_add(&line, s, n);
            for (size_t pad = k + 1 < t->cols ? w[k] - n + 3 : 0; pad; pad--)
                sb_add(&line, " ", 1);
        }
        while (line.len && line.p[line.len - 1] == ' ') /* an empty last column */
            line.len--;
        fprintf(f, "%.*s\n", (int)line.len, line.p);
    }
    free(line.p);
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* kubectl's short durations: 45s, 5m30s, 3h, 2d4h, 400d, 3y20d. */
static void human_age(const char *ts, char *out, size_t size)
{
    struct tm tm = {0};
    if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(out, size, "<unknown>");
        return;
    }
    long long s = (long long)(time(NULL) - timegm(&tm));
    if (s < 0)
        s = 0;
    long long m = s / 60, h = s / 3600, d = s / 86400;
    if (s < 120)
        snprintf(out, size, "%llds", s);
    else if (m < 10)
        snprintf(out, size, "%lldm%llds", m, s % 60);
    else if (m < 180)
        snprintf(out, size, "%lldm", m);
    else if (h < 8)
        snprintf(out, size, "%lldh%lldm", h, m % 60);
    else if (h < 48)
        snprintf(out, size, "%lldh", h);
    else if (h < 24 * 8)
        snprintf(out, size, "%lldd%lldh", d, h % 24);
    else if (d < 365 * 2)
        snprintf(out, size, "%lldd", d);
    else if (d < 365 * 8)
        snprintf(out, size, "%lldy%lldd", d / 365, d % 365);
    else
        snprintf(out, size, "%lldy", d / 365);
}

static char *str_or(json_t *v, const char *dflt)
{
    const char *s = json_string_value(v);
    return mesh_xstrdup(s && *s ? s : dflt);
}

/* An array as kubectl prints it in a custom column: ["a","b"]; "" when absent. */
static char *json_col(json_t *v)
{
    if (!v || json_is_null(v))
        return mesh_xstrdup("");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : mesh_xstrdup("");
}

static char *labels_col(json_t *obj)
{
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    struct sbuf b = {0};
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (b.len)
            sb_str(&b, ",");
        sb_str(&b, k);
        sb_str(&b, "=");
        sb_str(&b, json_string_value(v) ? json_string_value(v) : "");
    }
    return b.p ? b.p : mesh_xstrdup("<none>");
}

static char *ports_col(json_t *spec)
{
    struct sbuf b = {0};
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        char one[96];
        json_t *np = json_object_get(p, "nodePort");
        const char *proto = json_string_value(json_object_get(p, "protocol"));
        if (json_is_integer(np))
            snprintf(one, sizeof(one), "%lld:%lld/%s",
                     (long long)json_integer_value(json_object_get(p, "port")),
                     (long long)json_integer_value(np), proto ? proto : "TCP");
        else
            snprintf(one, sizeof(one), "%lld/%s",
                     (long long)json_integer_value(json_object_get(p, "port")),
                     proto ? proto : "TCP");
        if (b.len)
            sb_str(&b, ",");
        sb_str(&b, one);
    }
    return b.p ? b.p : mesh_xstrdup("<none>");
}

/* Kind-specific columns (Istio's printer columns, kubectl's for Service). */
static size_t kind_headers(enum mesh_kind k, const char **h)
{
    switch (k) {
    case MESH_KIND_VIRTUAL_SERVICE: h[0] = "GATEWAYS"; h[1] = "HOSTS"; return 2;
    case MESH_KIND_DESTINATION_RULE: h[0] = "HOST"; return 1;
    case MESH_KIND_SERVICE_ENTRY:
        h[0] = "HOSTS";
        h[1] = "LOCATION";
        h[2] = "RESOLUTION";
        return 3;
    case MESH_KIND_SERVICE:
        h[0] = "TYPE";
        h[1] = "CLUSTER-IP";
        h[2] = "PORT(S)";
        return 3;
    default: return 0;
    }
}

static size_t kind_cells(enum mesh_kind k, json_t *obj, char **out)
{
    json_t *spec = json_object_get(obj, "spec");
    switch (k) {
    case MESH_KIND_VIRTUAL_SERVICE:
        out[0] = json_col(json_object_get(spec, "gateways"));
        out[1] = json_col(json_object_get(spec, "hosts"));
        return 2;
    case MESH_KIND_DESTINATION_RULE: out[0] = str_or(json_object_get(spec, "host"), ""); return 1;
    case MESH_KIND_SERVICE_ENTRY:
        out[0] = json_col(json_object_get(spec, "hosts"));
        out[1] = str_or(json_object_get(spec, "location"), "");
        out[2] = str_or(json_object_get(spec, "resolution"), "");
        return 3;
    case MESH_KIND_SERVICE:
        out[0] = str_or(json_object_get(spec, "type"), "ClusterIP");
        out[1] = str_or(json_object_get(spec, "clusterIP"), "<none>");
        out[2] = ports_col(spec);
        return 3;
    default: return 0;
    }
}

struct get_opts {
    bool all_ns;
    bool wide;
    bool prefix_kind; /* "get all": names as kind.group/name */
};

/* Prints one table for <items> (all of one kind, from index <from> to <to>). */
static void print_kind_table(json_t *items, size_t from, size_t to, const struct get_opts *g)
{
    json_t *first = json_array_get(items, from);
    enum mesh_kind k = mesh_kind_parse(json_string_value(json_object_get(first, "kind")));
    const char *h[16];
    size_t n = 0;
    if (g->all_ns)
        h[n++] = "NAMESPACE";
    h[n++] = "NAME";
    n += kind_headers(k, h + n);
    h[n++] = "REVISION";
    h[n++] = "AGE";
    if (g->wide)
        h[n++] = "LABELS";
    struct table t = {0};
    table_header(&t, h, n);
    for (size_t i = from; i < to; i++) {
        json_t *o = json_array_get(items, i);
        json_t *meta = json_object_get(o, "metadata");
        char *cells[16];
        size_t m = 0;
        if (g->all_ns)
            cells[m++] = str_or(json_object_get(meta, "namespace"), "default");
        const char *name = json_string_value(json_object_get(meta, "name"));
        if (g->prefix_kind) {
            char kw[128], full[512];
            kind_word(json_string_value(json_object_get(o, "kind")), kw, sizeof(kw));
            snprintf(full, sizeof(full), "%s/%s", kw, name ? name : "");
            cells[m++] = mesh_xstrdup(full);
        } else {
            cells[m++] = mesh_xstrdup(name ? name : "");
        }
        m += kind_cells(k, o, cells + m);
        cells[m++] = str_or(json_object_get(meta, "resourceVersion"), "");
        char age[32];
        human_age(json_string_value(json_object_get(meta, "creationTimestamp")), age,
                  sizeof(age));
        cells[m++] = mesh_xstrdup(age);
        if (g->wide)
            cells[m++] = labels_col(o);
        table_row(&t, cells);
    }
    table_print(&t, stdout);
    table_free(&t);
}

static void print_table(json_t *items, const struct get_opts *g)
{
    size_t n = json_array_size(items), start = 0;
    for (size_t i = 1; i <= n; i++) {
        const char *a = json_string_value(json_object_get(json_array_get(items, start), "kind"));
        const char *b = i < n ? json_string_value(json_object_get(json_array_get(items, i),
                                                                  "kind"))
                              : NULL;
        if (b && a && strcmp(a, b) == 0)
            continue;
        if (start)
            printf("\n");
        print_kind_table(items, start, i, g);
        start = i;
    }
}

/* -o yaml|json of one value; 0, or 1 when it cannot be rendered. */
static int print_doc(json_t *v, const char *format)
{
    if (strcmp(format, "json") == 0) {
        char *s = json_dumps(v, JSON_INDENT(4));
        if (!s) {
            fprintf(stderr, "error: cannot print the answer as JSON\n");
            return 1;
        }
        printf("%s\n", s);
        free(s);
        return 0;
    }
    char *y = NULL;
    size_t len = 0;
    if (mesh_yaml_emit_json(v, &y, &len) != MESH_OK) {
        fprintf(stderr, "error: cannot print the answer as YAML (try -o json)\n");
        return 1;
    }
    fwrite(y, 1, len, stdout);
    free(y);
    return 0;
}

static void print_names(json_t *items)
{
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o) {
        char kw[128];
        kind_word(json_string_value(json_object_get(o, "kind")), kw, sizeof(kw));
        printf("%s/%s\n", kw,
               json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
    }
}

/* ---- get ---- */

static const char get_usage[] =
    "usage: meshd ctl get KIND|all [NAME] [options]\n\n"
    "Lists resources of a kind (kubectl names: virtualservices, vs, dr, se, svc...) or shows\n"
    "one.\n\n"
    "options:\n"
    "  -n, --namespace NS     the namespace (default: default)\n"
    "  -A, --all-namespaces   every namespace\n"
    "  -l, --selector SEL     label selector: app=x,env!=prod,tier in (a,b),!legacy\n"
    "  -o, --output FORMAT    yaml, json, wide or name (default: a table)\n"
    COMMON_HELP;

int mesh_ctl_get(int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"all-namespaces", no_argument, NULL, 'A'},
        {"selector", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        COMMON_OPTIONS,
    };
    struct client c = {.cmd = "get"};
    const char *ns = NULL, *sel = NULL, *out = NULL;
    struct get_opts g = {0};
    int ch, rc;
    start_options();
    while ((ch = getopt_long(argc, argv, ":n:Al:o:h", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        switch (ch) {
        case 'n': ns = optarg; break;
        case 'A': g.all_ns = true; break;
        case 'l': sel = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(get_usage, stdout); return 0;
        default: return bad_option(c.cmd, get_usage, ch, argv);
        }
    }
    if (optind >= argc)
        return usage_error(c.cmd, get_usage, "which kind? (e.g. meshd ctl get vs)");
    if (argc - optind > 2)
        return usage_error(c.cmd, get_usage, "unexpected argument \"%s\"", argv[optind + 2]);
    const char *kind_arg = argv[optind], *name = argc - optind == 2 ? argv[optind + 1] : NULL;
    if (out && strcmp(out, "yaml") != 0 && strcmp(out, "json") != 0 &&
        strcmp(out, "wide") != 0 && strcmp(out, "name") != 0)
        return usage_error(c.cmd, get_usage, "-o %s: expected yaml, json, wide or name", out);
    if (out && strcmp(out, "wide") == 0) {
        g.wide = true;
        out = NULL;
    }
    if (name && g.all_ns)
        return usage_error(c.cmd, get_usage, "a resource cannot be retrieved by name across all "
                                             "namespaces");
    if (ns && g.all_ns)
        return usage_error(c.cmd, get_usage, "give -n NS or -A, not both");
    bool all = strcmp(kind_arg, "all") == 0;
    const char *kind = all ? NULL : kind_canonical(kind_arg);
    if (!all && !kind)
        return unknown_kind(&c, kind_arg);
    if (all && name)
        return usage_error(c.cmd, get_usage, "\"get all\" takes no NAME");
    if (!ns)
        ns = "default";
    if ((rc = client_setup(&c)) != 0) {
        client_free(&c);
        return rc;
    }

    rc = 1;
    struct sbuf target = {0};
    struct mesh_ctl_response resp = {0};
    json_t *answer = NULL;
    if (name) {
        sb_str(&target, "/v1/resources/");
        sb_enc(&target, kind);
        sb_str(&target, "/");
        sb_enc(&target, ns);
        sb_str(&target, "/");
        sb_enc(&target, name);
    } else {
        sb_str(&target, "/v1/resources");
        sb_query(&target, "kind", kind);
        sb_query(&target, "namespace", g.all_ns ? NULL : ns);
        sb_query(&target, "labelSelector", sel);
    }
    if (call(&c, "GET", target.p, NULL, NULL, 0, &resp) != 0)
        goto out;
    if (resp.status == 404 && name) {
        char plural[128];
        kind_plural(kind, plural, sizeof(plural));
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", plural, name);
        goto out;
    }
    if (resp.status != 200) {
        server_error(&c, &resp);
        goto out;
    }
    if (!(answer = ok_json(&c, &resp)))
        goto out;
    if (out && strcmp(out, "name") != 0) {
        rc = print_doc(answer, out);
        goto out;
    }
    json_t *items = name ? json_pack("[O]", answer) : json_incref(json_object_get(answer,
                                                                                   "items"));
    g.prefix_kind = all;
    if (!json_array_size(items)) {
        if (g.all_ns)
            fprintf(stderr, "No resources found\n");
        else
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
    } else if (out) {
        print_names(items);
    } else {
        print_table(items, &g);
    }
    json_decref(items);
    rc = 0;
out:
    fflush(stdout);
    json_decref(answer);
    mesh_ctl_response_free(&resp);
    free(target.p);
    client_free(&c);
    return rc;
}

/* ---- delete ---- */

static const char delete_usage[] =
    "usage: meshd ctl delete KIND NAME [NAME...] [-n NS] [options]\n"
    "       meshd ctl delete -f FILE|DIR|- [-R] [options]\n\n"
    "Deletes resources, each in its own revision (see meshd ctl history).\n\n"
    "options:\n"
    "  -n, --namespace NS     the namespace (default: default)\n"
    "  -f, --filename PATH    delete the resources that PATH defines; repeatable\n"
    "  -R, --recursive        with -f DIR: descend into subdirectories\n"
    "      --ignore-not-found a resource that does not exist is not an error\n"
    "      --note TEXT        recorded with the revision\n"
    COMMON_HELP;

/* DELETE one resource; 0, or 1 after a message. */
static int delete_one(struct client *c, const char *kind, const char *ns, const char *name,
                      const char *note, bool ignore_nf)
{
    struct sbuf target = {0};
    sb_str(&target, "/v1/resources/");
    sb_enc(&target, kind);
    sb_str(&target, "/");
    sb_enc(&target, ns);
    sb_str(&target, "/");
    sb_enc(&target, name);
    sb_query(&target, "note", note);
    struct mesh_ctl_response resp = {0};
    int rc = call(c, "DELETE", target.p, NULL, NULL, 0, &resp);
    free(target.p);
    if (rc != 0)
        return -1; /* unreachable: no point in trying the others */
    char kw[128];
    if (resp.status == 200) {
        kind_word(kind, kw, sizeof(kw));
        printf("%s \"%s\" deleted\n", kw, name);
    } else if (resp.status == 404) {
        if (!ignore_nf) {
            kind_plural(kind, kw, sizeof(kw));
            fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n", kw, name);
            rc = 1;
        }
    } else {
        rc = server_error(c, &resp);
        if (resp.status == 401)
            rc = -1;
    }
    mesh_ctl_response_free(&resp);
    return rc;
}

int mesh_ctl_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"ignore-not-found", no_argument, NULL, OPT_IGNORE_NOT_FOUND},
        {"note", required_argument, NULL, OPT_NOTE},
        COMMON_OPTIONS,
    };
    struct client c = {.cmd = "delete"};
    const char **paths = mesh_xcalloc((size_t)argc + 1, sizeof(*paths));
    size_t n_paths = 0;
    unsigned flags = 0;
    const char *ns = NULL, *note = NULL;
    bool ignore_nf = false;
    int ch, rc;
    start_options();
    while ((ch = getopt_long(argc, argv, ":n:f:Rh", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        switch (ch) {
        case 'n': ns = optarg; break;
        case 'f': paths[n_paths++] = optarg; break;
        case 'R': flags |= MESH_LOAD_RECURSIVE; break;
        case OPT_IGNORE_NOT_FOUND: ignore_nf = true; break;
        case OPT_NOTE: note = optarg; break;
        case 'h':
            fputs(delete_usage, stdout);
            free(paths);
            return 0;
        default:
            free(paths);
            return bad_option(c.cmd, delete_usage, ch, argv);
        }
    }
    int npos = argc - optind;
    const char *kind = NULL;
    if (n_paths && npos) {
        free(paths);
        return usage_error(c.cmd, delete_usage, "give -f PATH or KIND NAME, not both");
    }
    if (!n_paths) {
        if (npos < 2) {
            free(paths);
            return usage_error(c.cmd, delete_usage, "which resource? (KIND NAME, or -f PATH)");
        }
        if (!(kind = kind_canonical(argv[optind]))) {
            free(paths);
            return unknown_kind(&c, argv[optind]);
        }
    }
    if ((rc = client_setup(&c)) != 0) {
        free(paths);
        client_free(&c);
        return rc;
    }
    rc = 0;
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    if (n_paths) {
        if (!load_local(&set, paths, n_paths, flags)) {
            rc = 1;
        } else if (!set.n) {
            fprintf(stderr, "error: no objects passed to delete\n");
            rc = 1;
        }
        for (size_t i = 0; i < set.n && rc >= 0; i++) {
            const struct mesh_resource *r = set.items[i];
            int one = delete_one(&c, mesh_kind_name(r->kind),
                                 ns && !r->meta.namespace_set ? ns : r->meta.namespace_,
                                 r->meta.name, note, ignore_nf);
            rc = one < 0 ? one : MESH_MAX(rc, one);
        }
    } else {
        for (int i = optind + 1; i < argc && rc >= 0; i++) {
            int one = delete_one(&c, kind, ns ? ns : "default", argv[i], note, ignore_nf);
            rc = one < 0 ? one : MESH_MAX(rc, one);
        }
    }
    fflush(stdout);
    mesh_resource_set_free(&set);
    free(paths);
    client_free(&c);
    return rc != 0 ? 1 : 0;
}

/* ---- history ---- */

static const char history_usage[] =
    "usage: meshd ctl history [KIND[/NAME]] [options]\n\n"
    "The revisions of the configuration, oldest first: every create, update and delete.\n\n"
    "options:\n"
    "  -n, --namespace NS     only this namespace (with KIND/NAME: default \"default\")\n"
    "  -A, --all-namespaces   every namespace\n"
    "  -o, --output FORMAT    json or yaml (with the objects), default: a table\n"
    COMMON_HELP;

int mesh_ctl_history(int argc, char **argv)
{
    static const struct option opts[] = {
        {"namespace", required_argument, NULL, 'n'},
        {"all-namespaces", no_argument, NULL, 'A'},
        {"output", required_argument, NULL, 'o'},
        COMMON_OPTIONS,
    };
    struct client c = {.cmd = "history"};
    const char *ns = NULL, *out = NULL;
    bool all_ns = false;
    int ch, rc;
    start_options();
    while ((ch = getopt_long(argc, argv, ":n:Ao:h", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        switch (ch) {
        case 'n': ns = optarg; break;
        case 'A': all_ns = true; break;
        case 'o': out = optarg; break;
        case 'h': fputs(history_usage, stdout); return 0;
        default: return bad_option(c.cmd, history_usage, ch, argv);
        }
    }
    if (argc - optind > 1)
        return usage_error(c.cmd, history_usage, "unexpected argument \"%s\"", argv[optind + 1]);
    if (out && strcmp(out, "json") != 0 && strcmp(out, "yaml") != 0)
        return usage_error(c.cmd, history_usage, "-o %s: expected json or yaml", out);
    if (ns && all_ns)
        return usage_error(c.cmd, history_usage, "give -n NS or -A, not both");
    char kind_buf[128] = "";
    const char *kind = NULL, *name = NULL;
    if (optind < argc) {
        const char *arg = argv[optind], *slash = strchr(arg, '/');
        snprintf(kind_buf, sizeof(kind_buf), "%.*s",
                 (int)(slash ? (size_t)(slash - arg) : strlen(arg)), arg);
        if (!(kind = kind_canonical(kind_buf)))
            return unknown_kind(&c, kind_buf);
        if (slash && slash[1])
            name = slash + 1;
        if (name && !ns && !all_ns)
            ns = "default";
    }
    if ((rc = client_setup(&c)) != 0) {
        client_free(&c);
        return rc;
    }
    rc = 1;
    struct sbuf target = {0};
    struct mesh_ctl_response resp = {0};
    json_t *answer = NULL;
    sb_str(&target, "/v1/history");
    sb_query(&target, "kind", kind);
    sb_query(&target, "namespace", all_ns ? NULL : ns);
    sb_query(&target, "name", name);
    sb_query(&target, "objects", out ? NULL : "0");
    if (call(&c, "GET", target.p, NULL, NULL, 0, &resp) != 0)
        goto out;
    if (resp.status != 200) {
        server_error(&c, &resp);
        goto out;
    }
    if (!(answer = ok_json(&c, &resp)))
        goto out;
    json_t *items = json_object_get(answer, "items");
    if (out) {
        rc = print_doc(items, out);
        goto out;
    }
    if (!json_array_size(items)) {
        fprintf(stderr, "No history%s.\n", kind ? " for this resource" : " yet");
        rc = 0;
        goto out;
    }
    static const char *const h[] = {"REVISION", "TIME", "OP", "KIND", "NAMESPACE", "NAME",
                                    "NOTE"};
    struct table t = {0};
    table_header(&t, h, MESH_ARRAY_LEN(h));
    size_t i;
    json_t *row;
    json_array_foreach(items, i, row) {
        char *cells[7], rev[32];
        snprintf(rev, sizeof(rev), "%lld",
                 (long long)json_integer_value(json_object_get(row, "revision")));
        cells[0] = mesh_xstrdup(rev);
        cells[1] = str_or(json_object_get(row, "timestamp"), "");
        cells[2] = str_or(json_object_get(row, "op"), "");
        cells[3] = str_or(json_object_get(row, "kind"), "");
        cells[4] = str_or(json_object_get(row, "namespace"), "");
        cells[5] = str_or(json_object_get(row, "name"), "");
        cells[6] = str_or(json_object_get(row, "note"), "");
        table_row(&t, cells);
    }
    table_print(&t, stdout);
    table_free(&t);
    rc = 0;
out:
    fflush(stdout);
    json_decref(answer);
    mesh_ctl_response_free(&resp);
    free(target.p);
    client_free(&c);
    return rc;
}

/* ---- diff ---- */

static const char diff_usage[] =
    "usage: meshd ctl diff REV [REV2] [options]\n\n"
    "Unified diff of the whole configuration (as YAML) at revision REV against REV2\n"
    "(default: the current revision). Exit status 0 whether or not they differ.\n\n"
    "options:\n" COMMON_HELP;

int mesh_ctl_diff(int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS};
    struct client c = {.cmd = "diff"};
    int ch, rc;
    start_options();
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        if (ch == 'h') {
            fputs(diff_usage, stdout);
            return 0;
        }
        return bad_option(c.cmd, diff_usage, ch, argv);
    }
    int npos = argc - optind;
    long long from, to = -1;
    if (npos < 1 || npos > 2)
        return usage_error(c.cmd, diff_usage, "expected REV [REV2]");
    if (!parse_rev(argv[optind], &from) || (npos == 2 && !parse_rev(argv[optind + 1], &to)))
        return usage_error(c.cmd, diff_usage, "a revision is a number (see meshd ctl history)");
    if ((rc = client_setup(&c)) != 0) {
        client_free(&c);
        return rc;
    }
    char target[96];
    if (to >= 0)
        snprintf(target, sizeof(target), "/v1/diff?from=%lld&to=%lld", from, to);
    else
        snprintf(target, sizeof(target), "/v1/diff?from=%lld", from);
    struct mesh_ctl_response resp = {0};
    rc = 1;
    if (call(&c, "GET", target, NULL, NULL, 0, &resp) == 0) {
        if (resp.status == 200) {
            fwrite(resp.body, 1, resp.len, stdout);
            rc = 0;
        } else {
            server_error(&c, &resp);
        }
    }
    fflush(stdout);
    mesh_ctl_response_free(&resp);
    client_free(&c);
    return rc;
}

/* ---- rollback ---- */

static const char rollback_usage[] =
    "usage: meshd ctl rollback REV [options]\n\n"
    "Makes a new revision whose configuration equals the one at REV (history is kept).\n\n"
    "options:\n"
    "      --note TEXT        recorded with the revision (default \"rollback to revision REV\")\n"
    COMMON_HELP;

int mesh_ctl_rollback(int argc, char **argv)
{
    static const struct option opts[] = {
        {"note", required_argument, NULL, OPT_NOTE},
        COMMON_OPTIONS,
    };
    struct client c = {.cmd = "rollback"};
    const char *note = NULL;
    int ch, rc;
    start_options();
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (common_option(&c, ch))
            continue;
        switch (ch) {
        case OPT_NOTE: note = optarg; break;
        case 'h': fputs(rollback_usage, stdout); return 0;
        default: return bad_option(c.cmd, rollback_usage, ch, argv);
        }
    }
    long long to;
    if (argc - optind != 1)
        return usage_error(c.cmd, rollback_usage, "expected one revision");
    if (!parse_rev(argv[optind], &to))
        return usage_error(c.cmd, rollback_usage, "a revision is a number (see meshd ctl "
                                                  "history)");
    if ((rc = client_setup(&c)) != 0) {
        client_free(&c);
        return rc;
    }
    rc = 1;
    struct sbuf target = {0};
    char num[32];
    snprintf(num, sizeof(num), "%lld", to);
    sb_str(&target, "/v1/rollback");
    sb_query(&target, "to", num);
    sb_query(&target, "note", note);
    struct mesh_ctl_response resp = {0};
    json_t *answer = NULL;
    if (call(&c, "POST", target.p, NULL, NULL, 0, &resp) != 0)
        goto out;
    if (resp.status != 200) {
        server_error(&c, &resp);
        goto out;
    }
    if (!(answer = ok_json(&c, &resp)))
        goto out;
    long long rev = (long long)json_integer_value(json_object_get(answer, "revision"));
    long long prev = (long long)json_integer_value(json_object_get(answer, "previous"));
    if (rev == prev) {
        printf("nothing to do: the configuration already equals revision %lld\n", to);
    } else {
        size_t i;
        json_t *ch_row;
        json_array_foreach(json_object_get(answer, "changes"), i, ch_row) {
            char kw[128];
            kind_word(json_string_value(json_object_get(ch_row, "kind")), kw, sizeof(kw));
            printf("%s/%s %s\n", kw, json_string_value(json_object_get(ch_row, "name")),
                   json_string_value(json_object_get(ch_row, "op")));
        }
        printf("rolled back to revision %lld: new revision %lld\n", to, rev);
    }
    rc = 0;
out:
    fflush(stdout);
    json_decref(answer);
    mesh_ctl_response_free(&resp);
    free(target.p);
    client_free(&c);
    return rc;
}

/* ---- for other commands: every resource the control plane holds ---- */

char *mesh_ctl_fetch_all(const char *server, const char *token_file, int *rc)
{
    struct client c = {.cmd = "snapshot", .server = server, .token_file = token_file};
    char *out = NULL;
    *rc = client_setup(&c);
    if (*rc) {
        client_free(&c);
        return NULL;
    }
    struct mesh_ctl_response r = {0};
    *rc = call(&c, "GET", "/v1/resources", NULL, NULL, 0, &r);
    if (*rc == 0 && r.status != 200)
        *rc = server_error(&c, &r);
    if (*rc == 0) {
        json_t *list = parse_json(&r);
        json_t *items = list ? json_object_get(list, "items") : NULL;
        if (json_is_array(items))
            out = json_dumps(list, JSON_COMPACT); /* a kind: List, read item by item */
        else
            fprintf(stderr, "error: the control plane answered something that is not a List\n");
        *rc = out ? 0 : 1;
        json_decref(list);
    }
    mesh_ctl_response_free(&r);
    client_free(&c);
    return out;
}
