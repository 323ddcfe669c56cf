/* YAML (and JSON) documents as trees of nodes that remember their line and column. */
#ifndef MESH_CORE_YAML_H
#define MESH_CORE_YAML_H

#include <jansson.h>
#include "core/common.h"
#include "core/diag.h"

/*
 * libyaml parses a stream into documents of nodes allocated in one arena.
 * Aliases are resolved by sharing the anchored node (the tree is a DAG), with
 * a bound on how many nodes they add ("billion laughs"); YAML 1.1 merge keys
 * ("<<: *base") are applied; duplicate keys in a mapping are errors. JSON is a
 * subset of YAML 1.2, so JSON input goes through the same parser.
 *
 * Plain (unquoted) scalars are typed with the YAML 1.2 core schema: null, bool
 * (true/false), int (decimal, 0o octal, 0x hex), float, otherwise string.
 * Quoted and block scalars are strings; explicit !!str/!!int/... tags win.
 */

enum mesh_ynode_type {
    MESH_YNODE_SCALAR = 1,
    MESH_YNODE_SEQ = 2,
    MESH_YNODE_MAP = 3,
};

enum mesh_yscalar_kind {
    MESH_YSCALAR_STRING = 0,
    MESH_YSCALAR_NULL = 1,
    MESH_YSCALAR_BOOL = 2,
    MESH_YSCALAR_INT = 3,
    MESH_YSCALAR_FLOAT = 4,
};

struct mesh_ypair;

struct mesh_ynode {
    enum mesh_ynode_type type;
    int line, col;              /* 1-based position of the node's first character */
    const char *tag;            /* explicit tag ("tag:yaml.org,2002:str", "!foo"), or NULL */
    bool plain;                 /* scalar written without quotes or block style, no tag */
    const char *value;          /* scalar text, NUL-terminated; may hold NULs (see len) */
    size_t len;
    size_t n;                   /* sequence items or mapping pairs */
    struct mesh_ynode **items;  /* MESH_YNODE_SEQ */
    struct mesh_ypair *pairs;   /* MESH_YNODE_MAP, in document order */
    size_t weight;              /* nodes in the subtree, aliases counted in full (saturating) */
    unsigned height;            /* 1 for a scalar or an empty collection */
};

struct mesh_ypair {
    struct mesh_ynode *key, *value;
};

struct mesh_ydoc {
    struct mesh_ynode *root;    /* NULL for an empty document ("---" and comments only) */
    int line, col;              /* where the document starts */
    size_t n_errors;            /* problems reported inside it (duplicate keys...) */
};

struct mesh_ystream {
    struct mesh_arena *arena;   /* owns every node and string */
    struct mesh_ydoc *docs;
    size_t n_docs;
};

#define MESH_YAML_MAX_DEPTH 128          /* nesting of collections */
#define MESH_YAML_MAX_ALIAS_NODES 100000 /* nodes that aliases and merges may add per document */

/**
 * Parses <len> bytes of <buf> (need not be NUL-terminated). Problems go to <d>
 * with <file> as the file name. Documents before a syntax error are kept; the
 * one with the error is dropped. Returns a stream the caller frees with
 * mesh_yaml_free() (never NULL).
 */
struct mesh_ystream *mesh_yaml_parse(const char *buf, size_t len, const char *file,
                                     struct mesh_diags *d);
void mesh_yaml_free(struct mesh_ystream *s);

/** Called with each document of a stream; <doc> and its nodes are valid during the call. */
typedef void mesh_ydoc_fn(void *arg, const struct mesh_ydoc *doc);
/**
 * Streaming form of mesh_yaml_parse(): hands each document to <fn> as soon as it
 * is complete and reuses its memory for the next one, so a large file never
 * needs more than one document in memory. Syntax errors go to <d> (after the
 * documents before them were handed over).
 */
void mesh_yaml_parse_each(const char *buf, size_t len, const char *file, struct mesh_diags *d,
                          mesh_ydoc_fn *fn, void *arg);

/** Core-schema type of a scalar node (STRING for collections). */
enum mesh_yscalar_kind mesh_yaml_scalar_kind(const struct mesh_ynode *n);
/** True for NULL, a null scalar ("", "~", "null"). */
bool mesh_yaml_is_null(const struct mesh_ynode *n);
/** Integer value of an INT scalar; false when not an integer or out of int64 range. */
bool mesh_yaml_int(const struct mesh_ynode *n, int64_t *out);
/** Numeric value of an INT or FLOAT scalar (inf/nan included). */
bool mesh_yaml_number(const struct mesh_ynode *n, double *out);
/** Value of a BOOL scalar. */
bool mesh_yaml_bool(const struct mesh_ynode *n, bool *out);
/** The value for <key> in mapping <map> (borrowed), or NULL. */
const struct mesh_ynode *mesh_yaml_get(const struct mesh_ynode *map, const char *key);
/** The key node for <key> in mapping <map>, for positions; NULL if absent. */
const struct mesh_ynode *mesh_yaml_get_key(const struct mesh_ynode *map, const char *key);
/** True when scalar <n> holds exactly the NUL-free string <s>. */
bool mesh_yaml_eq(const struct mesh_ynode *n, const char *s);

/**
 * Converts a node to JSON: mappings to objects (non-string keys as their text),
 * typed scalars per the core schema, inf/nan and out-of-range numbers as
 * strings. Returns a new reference (NULL for a NULL node).
 */
json_t *mesh_yaml_to_json(const struct mesh_ynode *n);

#endif /* MESH_CORE_YAML_H */
