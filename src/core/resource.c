#include "core/common.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/arena.h"
#include "core/resource-int.h"
#include "core/validate.h"
#include "core/yaml.h"

/*
 * Loading: bytes -> YAML documents (yaml.c) -> for each document the envelope
 * (apiVersion, kind, metadata) -> the kind's schema (resource_*.c) -> a
 * struct mesh_resource in the set, or diagnostics. Each resource owns an arena
 * with its typed spec and strings, so it can outlive the file it came from.
 */

/* ---- Kinds ---- */

static const char *const v_networking[] = {"v1", "v1beta1", "v1alpha3", NULL};
static const char *const v_security[] = {"v1", "v1beta1", NULL};
static const char *const v_core[] = {"v1", NULL};

struct envelope {
    void *spec;
};

#define ENVELOPE(var, spec_schema)                                                                 \
    static const struct mesh_field var##_fields[] = {                                              \
        F_IGN("apiVersion"),                                                                       \
        F_IGN("kind"),                                                                             \
        F_IGN("metadata"),                                                                         \
        {.name = "spec", .type = MESH_F_MESSAGE, .card = MESH_C_ONE,                               \
         .off = offsetof(struct envelope, spec), .msg = &(spec_schema)},                           \
        F_IGN("status"),                                                                           \
    };                                                                                             \
    static MESH_SCHEMA(var, envelope, var##_fields, NULL)

ENVELOPE(env_vs, mesh_schema_virtual_service);
ENVELOPE(env_dr, mesh_schema_destination_rule);
ENVELOPE(env_gw, mesh_schema_gateway);
ENVELOPE(env_se, mesh_schema_service_entry);
ENVELOPE(env_we, mesh_schema_workload_entry);
ENVELOPE(env_sidecar, mesh_schema_sidecar);
ENVELOPE(env_pa, mesh_schema_peer_authentication);
ENVELOPE(env_ap, mesh_schema_authorization_policy);
ENVELOPE(env_ra, mesh_schema_request_authentication);
ENVELOPE(env_svc, mesh_schema_k8s_service_spec);

struct kind_def {
    enum mesh_kind kind;
    const char *name;
    const char *group;
    const char *const *versions;
    const struct mesh_schema *top;  /* the whole document */
    const struct mesh_schema *spec; /* its "spec"; NULL when the fields are at the top */
    const char *aliases[4];         /* lower case: plural, short names */
};

static const struct kind_def kinds[] = {
    {MESH_KIND_VIRTUAL_SERVICE, "VirtualService", "networking.istio.io", v_networking, &env_vs,
     &mesh_schema_virtual_service, {"virtualservices", "vs"}},
    {MESH_KIND_DESTINATION_RULE, "DestinationRule", "networking.istio.io", v_networking, &env_dr,
     &mesh_schema_destination_rule, {"destinationrules", "dr"}},
    {MESH_KIND_GATEWAY, "Gateway", "networking.istio.io", v_networking, &env_gw,
     &mesh_schema_gateway, {"gateways", "gw"}},
    {MESH_KIND_SERVICE_ENTRY, "ServiceEntry", "networking.istio.io", v_networking, &env_se,
     &mesh_schema_service_entry, {"serviceentries", "se"}},
    {MESH_KIND_WORKLOAD_ENTRY, "WorkloadEntry", "networking.istio.io", v_networking, &env_we,
     &mesh_schema_workload_entry, {"workloadentries", "we"}},
    {MESH_KIND_SIDECAR, "Sidecar", "networking.istio.io", v_networking, &env_sidecar,
     &mesh_schema_sidecar, {"sidecars"}},
    {MESH_KIND_PEER_AUTHENTICATION, "PeerAuthentication", "security.istio.io", v_security,
     &env_pa, &mesh_schema_peer_authentication, {"peerauthentications", "pa"}},
    {MESH_KIND_AUTHORIZATION_POLICY, "AuthorizationPolicy", "security.istio.io", v_security,
     &env_ap, &mesh_schema_authorization_policy, {"authorizationpolicies", "ap"}},
    {MESH_KIND_REQUEST_AUTHENTICATION, "RequestAuthentication", "security.istio.io", v_security,
     &env_ra, &mesh_schema_request_authentication, {"requestauthentications", "ra"}},
    {MESH_KIND_SERVICE, "Service", "", v_core, &env_svc, &mesh_schema_k8s_service_spec,
     {"services", "svc"}},
    {MESH_KIND_ENDPOINTS, "Endpoints", "", v_core, &mesh_schema_k8s_endpoints, NULL, {"ep"}},
    {MESH_KIND_ENDPOINT_SLICE, "EndpointSlice", "discovery.k8s.io", v_core,
     &mesh_schema_k8s_endpoint_slice, NULL, {"endpointslices"}},
};

static const struct kind_def *kind_def(enum mesh_kind k)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(kinds); i++)
        if (kinds[i].kind == k)
            return &kinds[i];
    return NULL;
}

static const struct kind_def *kind_by_name(const char *name)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

const char *mesh_kind_name(enum mesh_kind kind)
{
    const struct kind_def *d = kind_def(kind);
    return d ? d->name : "";
}

const char *mesh_kind_group(enum mesh_kind kind)
{
    const struct kind_def *d = kind_def(kind);
    return d ? d->group : "";
}

enum mesh_kind mesh_kind_parse(const char *name)
{
    for (size_t i = 0; i < MESH_ARRAY_LEN(kinds); i++) {
        if (strcasecmp(kinds[i].name, name) == 0)
            return kinds[i].kind;
        for (size_t j = 0; j < MESH_ARRAY_LEN(kinds[i].aliases) && kinds[i].aliases[j]; j++)
            if (strcasecmp(kinds[i].aliases[j], name) == 0)
                return kinds[i].kind;
    }
    return MESH_KIND_UNKNOWN;
}

/* ---- Resources and sets ---- */

void mesh_resource_free(struct mesh_resource *r)
{
    if (!r)
        return;
    json_decref(r->object);
    mesh_arena_free(r->arena);
    free(r);
}

void mesh_resource_set_init(struct mesh_resource_set *set)
{
    memset(set, 0, sizeof(*set));
    mesh_diags_init(&set->diags);
    set->index = json_object();
}

void mesh_resource_set_free(struct mesh_resource_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        mesh_resource_free(set->items[i]);
    free(set->items);
    mesh_diags_free(&set->diags);
    json_decref(set->index);
    memset(set, 0, sizeof(*set));
}

const struct mesh_resource *mesh_resource_set_find(const struct mesh_resource_set *set,
                                                   const char *key)
{
    json_t *i = json_object_get(set->index, key);
    return i ? set->items[json_integer_value(i)] : NULL;
}

bool mesh_resource_set_remove(struct mesh_resource_set *set, const char *key)
{
    json_t *i = json_object_get(set->index, key);
    if (!i)
        return false;
    size_t at = (size_t)json_integer_value(i);
    mesh_resource_free(set->items[at]);
    json_object_del(set->index, key);
    /* the last item takes the hole: the compiler sorts what it reads, order is free */
    if (at != --set->n) {
        set->items[at] = set->items[set->n];
        json_object_set_new(set->index, set->items[at]->key, json_integer((json_int_t)at));
    }
    return true;
}

static void set_add(struct mesh_resource_set *set, struct mesh_resource *r, bool quiet)
{
    json_t *i = json_object_get(set->index, r->key);
    if (i && quiet) {
        size_t at = (size_t)json_integer_value(i);
        mesh_resource_free(set->items[at]);
        set->items[at] = r;
        return;
    }
    if (i) {
        size_t at = (size_t)json_integer_value(i);
        struct mesh_resource *old = set->items[at];
        char subject[600];
        snprintf(subject, sizeof(subject), "%s %s/%s", mesh_kind_name(r->kind),
                 r->meta.namespace_, r->meta.name);
        mesh_diags_add(&set->diags, MESH_DIAG_WARNING, r->file, r->line, r->col, subject, NULL,
                       "defined again (first at %s:%d); the last definition wins", old->file,
                       old->line);
        mesh_resource_free(old);
        set->items[at] = r;
        return;
    }
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->items = mesh_xrealloc(set->items, set->cap * sizeof(*set->items));
    }
    json_object_set_new(set->index, r->key, json_integer((json_int_t)set->n));
    set->items[set->n++] = r;
}

/* ---- Documents ---- */

struct loader {
    struct mesh_resource_set *set;
    const char *file;
    const char *buf;
    size_t len;
    unsigned flags;
    size_t *lines;        /* line start offsets, built on demand */
    size_t n_lines;
};

static _Noreturn void oom(void)
{
    fprintf(stderr, "meshd: out of memory loading resources\n");
    abort();
}

static void note(struct loader *L, int line, int col, const char *subject, const char *fmt, ...)
    MESH_PRINTF(5, 6);

static void note(struct loader *L, int line, int col, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_diags_vadd(&L->set->diags, MESH_DIAG_NOTE, L->file, line, col, subject, NULL, fmt, ap);
    va_end(ap);
}

static void error(struct loader *L, int line, int col, const char *subject, const char *path,
                  const char *fmt, ...) MESH_PRINTF(6, 7);

static void error(struct loader *L, int line, int col, const char *subject, const char *path,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_diags_vadd(&L->set->diags, MESH_DIAG_ERROR, L->file, line, col, subject, path, fmt, ap);
    va_end(ap);
}

static void build_lines(struct loader *L)
{
    size_t cap = 1024;
    L->lines = mesh_xmalloc(cap * sizeof(size_t));
    L->lines[L->n_lines++] = 0;
    for (size_t i = 0; i < L->len; i++) {
        if (L->buf[i] != '\n')
            continue;
        if (L->n_lines == cap) {
            cap *= 2;
            L->lines = mesh_xrealloc(L->lines, cap * sizeof(size_t));
        }
        L->lines[L->n_lines++] = i + 1;
    }
}

/*
 * A document is a fragment when a comment line just above its first node
 * says FRAGMENT (the convention of the istio/api doc-comment examples).
 */
static bool marked_fragment(struct loader *L, int root_line)
{
    if (!L->lines)
        build_lines(L);
    for (long ln = (long)root_line - 2; ln >= 0 && (size_t)ln < L->n_lines; ln--) {
        const char *p = L->buf + L->lines[ln];
        const char *end = (size_t)ln + 1 < L->n_lines ? L->buf + L->lines[ln + 1] : L->buf + L->len;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end || *p == '\n' || *p == '\r')
            continue;
        if (end - p >= 3 && memcmp(p, "---", 3) == 0)
            continue;
        if (*p != '#')
            return false;
        if (memmem(p, (size_t)(end - p), "FRAGMENT", 8))
            return true;
    }
    return false;
}

/* "group/version" against the kind's group and versions */
static bool api_version_ok(const struct kind_def *d, const char *av)
{
    const char *slash = strchr(av, '/');
    const char *version = slash ? slash + 1 : av;
    size_t glen = slash ? (size_t)(slash - av) : 0;
    if (glen != strlen(d->group) || strncmp(av, d->group, glen) != 0)
        return false;
    for (const char *const *v = d->versions; *v; v++)
        if (strcmp(*v, version) == 0)
            return true;
    return false;
}

static void api_versions(const struct kind_def *d, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (const char *const *v = d->versions; *v && off < size; v++) {
        int n = snprintf(buf + off, size - off, "%s%s%s%s", off ? ", " : "", d->group,
                         *d->group ? "/" : "", *v);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static const char *scalar_text(const struct mesh_ynode *n)
{
    if (!n || n->type != MESH_YNODE_SCALAR || mesh_yaml_scalar_kind(n) != MESH_YSCALAR_STRING ||
        strlen(n->value) != n->len)
        return NULL;
    return n->value;
}

static void process_doc(struct loader *L, const struct mesh_ynode *root, size_t yaml_errors,
                        int depth);

/* kind: List (kubectl get -o yaml of several objects) */
static void process_list(struct loader *L, const struct mesh_ynode *root, int depth)
{
    const struct mesh_ynode *items = mesh_yaml_get(root, "items");
    if (mesh_yaml_is_null(items))
        return;
    if (items->type != MESH_YNODE_SEQ || depth > 4) {
        error(L, items->line, items->col, NULL, "items", "must be a list of objects");
        return;
    }
    for (size_t i = 0; i < items->n; i++)
        process_doc(L, items->items[i], 0, depth + 1);
}

static void process_doc(struct loader *L, const struct mesh_ynode *root, size_t yaml_errors,
                        int depth)
{
    struct mesh_resource_set *set = L->set;
    set->n_docs++;
    if (root->type != MESH_YNODE_MAP) {
        error(L, root->line, root->col, NULL, NULL, "a document must be a mapping (an object), "
                                                    "not a %s",
              root->type == MESH_YNODE_SEQ ? "list" : "scalar");
        return;
    }
    const struct mesh_ynode *kn = mesh_yaml_get(root, "kind");
    const struct mesh_ynode *an = mesh_yaml_get(root, "apiVersion");
    const char *kind = scalar_text(kn), *api = scalar_text(an);
    if (mesh_yaml_is_null(kn)) {
        if ((L->flags & MESH_LOAD_FRAGMENTS) || marked_fragment(L, root->line)) {
            set->n_skipped++;
            note(L, root->line, root->col, NULL, "skipping a fragment (a document without "
                                                 "\"kind\")");
            return;
        }
        error(L, root->line, root->col, NULL, NULL, "the document has no \"kind\" (mark a "
                                                    "partial snippet with a \"# FRAGMENT\" "
                                                    "comment, or use --fragments)");
        return;
    }
    if (!kind) {
        error(L, kn->line, kn->col, NULL, "kind", "must be a string");
        return;
    }
    if (strcmp(kind, "List") == 0 && api && strcmp(api, "v1") == 0) {
        set->n_docs--;
        process_list(L, root, depth);
        return;
    }
    /* the subject for messages before the metadata is read */
    const struct mesh_ynode *md = mesh_yaml_get(root, "metadata");
    const char *pre_name = scalar_text(mesh_yaml_get(md, "name"));
    const char *pre_ns = scalar_text(mesh_yaml_get(md, "namespace"));
    char subject[384];
    snprintf(subject, sizeof(subject), "%.100s %.100s/%.150s", kind, pre_ns ? pre_ns : "default",
             pre_name ? pre_name : "<unnamed>");
    const struct kind_def *def = kind_by_name(kind);
    if (!def) {
        set->n_skipped++;
        note(L, root->line, root->col, subject, "skipped: meshd does not read %.100s objects",
             kind);
        return;
    }
    size_t errors_before = set->diags.n_errors;
    if (!api) {
        if (mesh_yaml_is_null(an))
            error(L, root->line, root->col, subject, "apiVersion", "is required");
        else
            error(L, an->line, an->col, subject, "apiVersion", "must be a string");
    } else if (!api_version_ok(def, api)) {
        char versions[160];
        api_versions(def, versions, sizeof(versions));
        error(L, an->line, an->col, subject, "apiVersion",
              "\"%.100s\" is not served for %s (use %s)", api, def->name, versions);
    }

    struct mesh_resource *r = mesh_xcalloc(1, sizeof(*r));
    r->arena = mesh_arena_new(2048, 0);
    r->kind = def->kind;
    r->file = mesh_arena_strndup(r->arena, L->file, strlen(L->file));
    r->line = root->line;
    r->col = root->col;
    r->api_version = api ? mesh_arena_strndup(r->arena, api, strlen(api)) : "";
    if (!r->file || !r->api_version)
        oom();

    struct mesh_rctx *c = mesh_xcalloc(1, sizeof(*c));
    c->d = &set->diags;
    c->file = L->file;
    c->kind = def->name;
    c->arena = r->arena;
    c->res = r;
    c->line = root->line;
    c->col = root->col;
    snprintf(c->subject, sizeof(c->subject), "%s", subject);

    /* metadata: name (required), namespace, labels, annotations */
    if (mesh_yaml_is_null(md)) {
        mesh_resource__err_at(c, root, "metadata.name", "is required");
    } else {
        struct mesh_rpath_mark m = mesh_resource__push_key(c, "metadata");
        mesh_resource__fill(c, &mesh_schema_object_meta, md, &r->meta, MESH_SUPPORT_ACTED);
        if (!r->meta.name || !*r->meta.name) {
            mesh_resource__err_at(c, md, "name", "is required");
        } else {
            const char *why = def->kind == MESH_KIND_SERVICE
                                  ? mesh_validate_dns1035_label(r->meta.name)
                                  : mesh_validate_dns1123_subdomain(r->meta.name);
            if (why)
                mesh_resource__err_at(c, mesh_yaml_get(md, "name"), "name",
                                      "invalid name \"%.100s\": %s", r->meta.name, why);
        }
        mesh_resource__pop(c, m);
    }
    r->meta.namespace_set = r->meta.namespace_ != NULL;
    if (!r->meta.namespace_)
        r->meta.namespace_ = "default";

    /* the document: unknown top-level fields, the spec and its checks */
    struct envelope env = {NULL};
    void *typed = NULL;
    if (def->spec) {
        mesh_resource__fill(c, def->top, root, &env, MESH_SUPPORT_PARTIAL);
        typed = env.spec;
        const struct mesh_ynode *sn = mesh_yaml_get(root, "spec");
        if (!typed) {
            typed = mesh_arena_calloc(r->arena, 1, def->spec->size);
            if (!typed)
                oom();
            if (mesh_yaml_is_null(sn)) {
                /* no spec: an empty one, so the kind's checks still run ("spec: {}") */
                struct mesh_ynode empty = {.type = MESH_YNODE_MAP, .line = root->line,
                                           .col = root->col};
                struct mesh_rpath_mark m = mesh_resource__push_key(c, "spec");
                mesh_resource__fill(c, def->spec, &empty, typed, MESH_SUPPORT_ACTED);
                mesh_resource__pop(c, m);
            }
        }
    } else {
        typed = mesh_arena_calloc(r->arena, 1, def->top->size);
        if (!typed)
            oom();
        mesh_resource__fill(c, def->top, root, typed, MESH_SUPPORT_PARTIAL);
    }
    r->typed.any = typed;

    bool invalid = c->errors || yaml_errors || set->diags.n_errors != errors_before;
    free(c);
    if (invalid) {
        set->n_invalid++;
        mesh_resource_free(r);
        return;
    }
    char key[600];
    snprintf(key, sizeof(key), "%s/%s/%s", def->name, r->meta.namespace_, r->meta.name);
    r->key = mesh_arena_strndup(r->arena, key, strlen(key));
    r->object = mesh_yaml_to_json(root);
    if (!r->key || !r->object)
        oom();
    if (def->spec) {
        r->spec = json_object_get(r->object, "spec");
        if (!json_is_object(r->spec)) {
            json_object_set_new(r->object, "spec", json_object());
            r->spec = json_object_get(r->object, "spec");
        }
    } else {
        r->spec = r->object;
    }
    set->n_valid++;
    set_add(set, r, L->flags & MESH_LOAD_REPLACE);
}

static void on_document(void *arg, const struct mesh_ydoc *doc)
{
    if (doc->root)
        process_doc(arg, doc->root, doc->n_errors, 0);
}

int mesh_resource_load_buffer(struct mesh_resource_set *set, const char *buf, size_t len,
                              const char *name, unsigned flags)
{
    size_t before = set->diags.n_errors;
    struct loader L = {.set = set, .file = name ? name : "<memory>", .buf = buf, .len = len,
                       .flags = flags};
    mesh_yaml_parse_each(buf, len, L.file, &set->diags, on_document, &L);
    free(L.lines);
    return set->diags.n_errors == before ? MESH_OK : MESH_EINVAL;
}

/* Reads all of <fd>; NULL (with errno) on error or when larger than the limit. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *buf = mesh_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MESH_RESOURCE_MAX_FILE) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = mesh_xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

int mesh_resource_load_file(struct mesh_resource_set *set, const char *path, unsigned flags)
{
    bool std_in = strcmp(path, "-") == 0;
    const char *name = std_in ? "<stdin>" : path;
    int fd = std_in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mesh_diags_add(&set->diags, MESH_DIAG_ERROR, name, 0, 0, NULL, NULL, "cannot open: %s",
                       strerror(errno));
        return MESH_EIO;
    }
    size_t len = 0;
    char *buf = read_all(fd, &len);
    int saved = errno;
    if (!std_in)
        close(fd);
    if (!buf) {
        mesh_diags_add(&set->diags, MESH_DIAG_ERROR, name, 0, 0, NULL, NULL, "cannot read: %s",
                       saved == EFBIG ? "file larger than 64 MiB" : strerror(saved));
        return MESH_EIO;
    }
    int rc = mesh_resource_load_buffer(set, buf, len, name, flags);
    free(buf);
    return rc;
}

static bool config_ext(const char *name)
{
    static const char *const ext[] = {".yaml", ".yml", ".json"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(ext); i++) {
        size_t n = strlen(name), e = strlen(ext[i]);
        if (n > e && strcmp(name + n - e, ext[i]) == 0)
            return true;
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mesh_resource_load_dir(struct mesh_resource_set *set, const char *path, unsigned flags)
{
    DIR *d = opendir(path);
    if (!d) {
        mesh_diags_add(&set->diags, MESH_DIAG_ERROR, path, 0, 0, NULL, NULL,
                       "cannot open directory: %s", strerror(errno));
        return MESH_EIO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = mesh_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = mesh_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    int rc = MESH_OK;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(path), flen = plen + strlen(names[i]) + 2;
        char *full = mesh_xmalloc(flen);
        snprintf(full, flen, "%s%s%s", path, plen && path[plen - 1] == '/' ? "" : "/", names[i]);
        struct stat st;
        if (stat(full, &st) == 0) {
            int r = MESH_OK;
            if (S_ISDIR(st.st_mode) && (flags & MESH_LOAD_RECURSIVE))
                r = mesh_resource_load_dir(set, full, flags);
            else if (S_ISREG(st.st_mode) && config_ext(names[i]))
                r = mesh_resource_load_file(set, full, flags);
            if (r != MESH_OK && rc == MESH_OK)
                rc = r;
        }
        free(full);
        free(names[i]);
    }
    free(names);
    return rc;
}

int mesh_resource_load_path(struct mesh_resource_set *set, const char *path, unsigned flags)
{
    struct stat st;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mesh_resource_load_dir(set, path, flags);
    return mesh_resource_load_file(set, path, flags);
}
