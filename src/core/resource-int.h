/*
 * Inside the resource module: the declarative schema tables (one per message
 * type, as nginx command tables / h2o configurators) and the one generic walker
 * that fills a typed struct from YAML nodes and validates it. Adding a field
 * is one line in a table. Only resource*.c include this.
 */
#ifndef MESH_CORE_RESOURCE_INT_H
#define MESH_CORE_RESOURCE_INT_H

#include "core/common.h"
#include "core/diag.h"
#include "core/resource.h"
#include "core/yaml.h"

struct mesh_rctx;
struct mesh_schema;

enum mesh_ftype {
    MESH_F_STRING = 1,
    MESH_F_BYTES = 2,     /* base64 string, kept as written */
    MESH_F_BOOL = 3,
    MESH_F_OBOOL = 4,     /* struct mesh_opt_bool */
    MESH_F_INT32 = 5,
    MESH_F_UINT32 = 6,
    MESH_F_OUINT32 = 7,   /* struct mesh_opt_u32 */
    MESH_F_UINT64 = 8,
    MESH_F_DOUBLE = 9,
    MESH_F_ODOUBLE = 10,  /* struct mesh_opt_double */
    MESH_F_DURATION = 11, /* struct mesh_duration */
    MESH_F_ENUM = 12,     /* an enum (int) indexing <enums> */
    MESH_F_MESSAGE = 13,
    MESH_F_INTSTR = 14,   /* struct mesh_int_or_string */
    MESH_F_IGNORE = 15,   /* accepted, not stored (server-set metadata, status) */
};

enum mesh_fcard {
    MESH_C_ONE = 0,       /* message: pointer, NULL when absent; scalar: inline */
    MESH_C_LIST = 1,      /* pointer to an array + size_t count at <n_off> */
    MESH_C_MAP = 2,       /* array of entries {const char *key; value at <val_off>} + count */
};

#define MESH_FF_REQUIRED 0x01u
#define MESH_FF_DEPRECATED 0x02u /* warning "deprecated: <note>" */
#define MESH_FF_MIN_1MS 0x04u    /* Istio ValidateDuration: >= 1ms, millisecond precision */
#define MESH_FF_NONEMPTY 0x08u   /* "" (or an empty list) is an error */

/** Validates one string value (list items and map values included) at <n>. */
typedef void mesh_check_fn(struct mesh_rctx *c, const struct mesh_ynode *n, const char *s);
/** Cross-field checks (and derived fields) once a message is filled; <map> may be empty. */
typedef void mesh_post_fn(struct mesh_rctx *c, const struct mesh_ynode *map, void *msg);

struct mesh_field {
    const char *name;             /* YAML/JSON name */
    uint8_t type, card, flags;
    const char *oneof;            /* fields sharing this group name: at most one may be set */
    size_t off, n_off;            /* value (or array pointer) and count offsets */
    size_t elem_size, val_off;    /* list/map element size; map value offset in the entry */
    const struct mesh_schema *msg;
    const char *const *enums;     /* NULL-terminated; index = enum value */
    int64_t min, max;             /* integer bounds when min < max */
    mesh_check_fn *check;         /* strings: each value */
    mesh_check_fn *key_check;     /* maps: each key */
    const char *note;             /* MESH_FF_DEPRECATED: what to use instead */
};

struct mesh_schema {
    const char *name;
    size_t size;
    const struct mesh_field *fields;
    size_t n_fields;
    mesh_post_fn *post;
};

/* ---- Table helpers: one line per field ---- */

#define MESH_SCHEMA(var, type, table, postfn)                                                      \
    const struct mesh_schema var = {#type, sizeof(struct type), table, MESH_ARRAY_LEN(table),      \
                                    postfn}

/* scalar (inline) */
#define F_S(nm, T, fld, ty, ...)                                                                   \
    {.name = nm, .type = ty, .card = MESH_C_ONE, .off = offsetof(struct T, fld), __VA_ARGS__}
/* single message (pointer) */
#define F_M(nm, T, fld, sch, ...)                                                                  \
    {.name = nm, .type = MESH_F_MESSAGE, .card = MESH_C_ONE, .off = offsetof(struct T, fld),      \
     .msg = &(sch), __VA_ARGS__}
/* list of scalars */
#define F_LS(nm, T, fld, ty, ...)                                                                  \
    {.name = nm, .type = ty, .card = MESH_C_LIST, .off = offsetof(struct T, fld),                 \
     .n_off = offsetof(struct T, n_##fld), __VA_ARGS__}
/* list of messages (inline array of ET) */
#define F_LM(nm, T, fld, ET, sch, ...)                                                             \
    {.name = nm, .type = MESH_F_MESSAGE, .card = MESH_C_LIST, .off = offsetof(struct T, fld),     \
     .n_off = offsetof(struct T, n_##fld), .elem_size = sizeof(struct ET), .msg = &(sch),          \
     __VA_ARGS__}
/* map<string, string> */
#define F_MAPS(nm, T, fld, ...)                                                                    \
    {.name = nm, .type = MESH_F_STRING, .card = MESH_C_MAP, .off = offsetof(struct T, fld),       \
     .n_off = offsetof(struct T, n_##fld), .elem_size = sizeof(struct mesh_kv),                    \
     .val_off = offsetof(struct mesh_kv, value), __VA_ARGS__}
/* map<string, uint32> */
#define F_MAPU(nm, T, fld, ...)                                                                    \
    {.name = nm, .type = MESH_F_UINT32, .card = MESH_C_MAP, .off = offsetof(struct T, fld),       \
     .n_off = offsetof(struct T, n_##fld), .elem_size = sizeof(struct mesh_kv_u32),                \
     .val_off = offsetof(struct mesh_kv_u32, value), __VA_ARGS__}
/* map<string, message> with entries of type ET {key; value} */
#define F_MAPM(nm, T, fld, ET, sch, ...)                                                           \
    {.name = nm, .type = MESH_F_MESSAGE, .card = MESH_C_MAP, .off = offsetof(struct T, fld),      \
     .n_off = offsetof(struct T, n_##fld), .elem_size = sizeof(struct ET),                         \
     .val_off = offsetof(struct ET, value), .msg = &(sch), __VA_ARGS__}
/* accepted and ignored */
#define F_IGN(nm) {.name = nm, .type = MESH_F_IGNORE}

/* ---- Walk context ---- */

#define MESH_RPATH_MAX 512

enum mesh_support {
    MESH_SUPPORT_NONE = 0,    /* not acted on: warn once, nothing below */
    MESH_SUPPORT_PARTIAL = 1, /* some fields below are acted on: look each up */
    MESH_SUPPORT_ACTED = 2,   /* everything below is acted on */
    MESH_SUPPORT_WARNED = 3,  /* an ancestor was warned about */
};

struct mesh_rctx {
    struct mesh_diags *d;
    const char *file;
    const char *kind;             /* kind name, for the support list */
    char subject[384];            /* "VirtualService ns/name" */
    struct mesh_arena *arena;     /* the resource's arena */
    const struct mesh_resource *res; /* metadata (namespace) for cross checks */
    int line, col;                /* position used when a message has no node */
    char path[MESH_RPATH_MAX];    /* "spec.http[0].route[1].weight" */
    size_t plen;
    char npath[MESH_RPATH_MAX];   /* same with indexes and map keys elided: "spec.http[].route[]" */
    size_t nlen;
    size_t errors;                /* errors reported for this resource */
};

struct mesh_rpath_mark {
    size_t plen, nlen;
};

/* Path building: push returns a mark to pop back to. */
struct mesh_rpath_mark mesh_resource__push_key(struct mesh_rctx *c, const char *key);
struct mesh_rpath_mark mesh_resource__push_index(struct mesh_rctx *c, size_t i);
struct mesh_rpath_mark mesh_resource__push_mapkey(struct mesh_rctx *c, const char *key);
void mesh_resource__pop(struct mesh_rctx *c, struct mesh_rpath_mark m);

/** Error/warning at node <n> (the resource's position when NULL) for the current path. */
void mesh_resource__err(struct mesh_rctx *c, const struct mesh_ynode *n, const char *fmt, ...)
    MESH_PRINTF(3, 4);
void mesh_resource__warn(struct mesh_rctx *c, const struct mesh_ynode *n, const char *fmt, ...)
    MESH_PRINTF(3, 4);
/** Same for the current path plus ".<sub>" (<sub> may be "a.b[0]"). */
void mesh_resource__err_at(struct mesh_rctx *c, const struct mesh_ynode *n, const char *sub,
                           const char *fmt, ...) MESH_PRINTF(4, 5);
void mesh_resource__warn_at(struct mesh_rctx *c, const struct mesh_ynode *n, const char *sub,
                            const char *fmt, ...) MESH_PRINTF(4, 5);

/**
 * Fills <out> (zeroed, <s>->size bytes) from mapping <map> and validates it:
 * types, unknown fields, required fields, oneofs, enums, per-field checks, the
 * schema's post check, and "not enforced yet" warnings by <sup>. Allocations go
 * to <c>->arena. Returns false when <map> is not a mapping.
 */
bool mesh_resource__fill(struct mesh_rctx *c, const struct mesh_schema *s,
                         const struct mesh_ynode *map, void *out, enum mesh_support sup);

/** Whether fields under normalized path <npath> of <kind> are acted on (resource_support.c). */
enum mesh_support mesh_resource__support(const char *kind, const char *npath);

/** Parses "1h", "1.5s", "250ms", "1m30s"... into nanoseconds; false when malformed. */
bool mesh_resource__parse_duration(const char *s, int64_t *ns);

/* Node helpers for post checks. */
const struct mesh_ynode *mesh_resource__node(const struct mesh_ynode *map, const char *key);
/** The n-th item of sequence <key> of <map> (for positions), or NULL. */
const struct mesh_ynode *mesh_resource__item(const struct mesh_ynode *map, const char *key,
                                             size_t i);

/* ---- Kinds (resource_networking.c, resource_security.c, resource_k8s.c) ---- */

extern const struct mesh_schema mesh_schema_virtual_service;
extern const struct mesh_schema mesh_schema_destination_rule;
extern const struct mesh_schema mesh_schema_gateway;
extern const struct mesh_schema mesh_schema_service_entry;
extern const struct mesh_schema mesh_schema_workload_entry;
extern const struct mesh_schema mesh_schema_sidecar;
extern const struct mesh_schema mesh_schema_peer_authentication;
extern const struct mesh_schema mesh_schema_authorization_policy;
extern const struct mesh_schema mesh_schema_request_authentication;
extern const struct mesh_schema mesh_schema_k8s_service_spec;
extern const struct mesh_schema mesh_schema_k8s_endpoints;      /* top level: subsets */
extern const struct mesh_schema mesh_schema_k8s_endpoint_slice; /* top level */
extern const struct mesh_schema mesh_schema_object_meta;
extern const struct mesh_schema mesh_schema_label_selector;     /* security WorkloadSelector */
extern const struct mesh_schema mesh_schema_policy_target_ref;

/* Shared value checks (validate.c wrappers reporting through the context). */
mesh_check_fn mesh_check_label_key, mesh_check_label_value, mesh_check_annotation_key;
mesh_check_fn mesh_check_selector_key, mesh_check_selector_value;
mesh_check_fn mesh_check_dns1123_label, mesh_check_port_name;
mesh_check_fn mesh_check_ip, mesh_check_ip_or_cidr, mesh_check_regex;
mesh_check_fn mesh_check_header_name, mesh_check_protocol;
/** exportTo entries: ".", "*", "~" (ServiceEntry only when <allow_none>) or a namespace. */
void mesh_check_export_to(struct mesh_rctx *c, const struct mesh_ynode *map, const char **v,
                          size_t n, bool is_service_entry);

#endif /* MESH_CORE_RESOURCE_INT_H */
