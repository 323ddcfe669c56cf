/*
 * Applying a delta (snapshot_delta.h): a derived snapshot, or at the depth limit a whole
 * load of the patched document.
 */
#include "core/common.h"
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "core/arena.h"
#include "core/snapshot-int.h"
#include "core/snapshot.h"
#include "core/snapshot_delta.h"
#include "core/status.h"

#define DELTA_CHUNK (64u << 10)

/* The delta's "clusters" array (borrowed from *<doc>, which the caller frees), or NULL. */
static json_t *delta_clusters(const char *json, size_t len, json_t **doc, struct mesh_err *err)
{
    json_error_t jerr;
    *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *changed = json_object_get(*doc, "clusters");
    if (!json_is_array(changed)) {
        mesh_err_add(err, *doc ? 0 : jerr.line, *doc ? 0 : jerr.column, "delta", "%s",
                     *doc ? "expected {\"clusters\": [...]}" : jerr.text);
        return NULL;
    }
    return changed;
}

/* <s>'s document with the clusters of <changed> in place and <version>; NULL with <err>. */
static json_t *patched_doc(const struct mesh_snapshot *s, json_t *changed, const char *version,
                           struct mesh_err *err)
{
    char *text = mesh_snapshot_dump(s, false);
    json_t *root = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *clusters = json_object_get(root, "clusters");
    if (!json_is_array(clusters)) {
        mesh_err_add(err, 0, 0, NULL, "the current snapshot's document is not available");
        json_decref(root);
        return NULL;
    }
    json_t *at = json_object(); /* name -> position in <clusters> */
    size_t i;
    json_t *cl;
    json_array_foreach(clusters, i, cl) {
        const char *name = json_string_value(json_object_get(cl, "name"));
        if (name)
            json_object_set_new(at, name, json_integer((json_int_t)i));
    }
    json_array_foreach(changed, i, cl) {
        json_t *pos = json_object_get(at, json_string_value(json_object_get(cl, "name")));
        if (pos)
            json_array_set(clusters, (size_t)json_integer_value(pos), cl);
    }
    json_decref(at);
    json_object_set_new(root, "version", json_string(version));
    return root;
}

/* Checks every changed cluster names one of <cur>'s, once; fills <idx>. */
static bool resolve_names(const struct mesh_snapshot *cur, json_t *changed, size_t *idx,
                          struct mesh_err *err)
{
    bool ok = true;
    size_t i;
    json_t *cl;
    json_array_foreach(changed, i, cl) {
        char path[48];
        snprintf(path, sizeof(path), "delta.clusters[%zu]", i);
        const char *name = json_string_value(json_object_get(cl, "name"));
        const struct mesh_cluster *c = name ? mesh_snapshot_find_cluster(cur, name) : NULL;
        idx[i] = c ? c->index : SIZE_MAX;
        if (idx[i] == SIZE_MAX) {
            mesh_err_add(err, 0, 0, path, "%s%s",
                         name ? "no such cluster in the snapshot: " : "a cluster without a name",
                         name ? name : "");
            ok = false;
        }
        for (size_t k = 0; k < i && ok; k++)
            if (idx[k] == idx[i]) {
                mesh_err_add(err, 0, 0, path, "cluster %s is in the delta twice", name);
                ok = false;
            }
    }
    return ok;
}

static struct mesh_snapshot *derive(struct mesh_snapshot *cur, json_t *changed,
                                    const size_t *idx, const char *delta, size_t delta_len,
                                    const char *version, struct mesh_err *err)
{
    struct mesh_snap_ctx c = {
        .err = err,
        .arena = mesh_arena_new_mapped(DELTA_CHUNK),
        .cluster_names = json_object(),
        .rc_names = json_object(),
    };
    if (!c.arena || !c.cluster_names || !c.rc_names)
        mesh_snap_oom();
    struct mesh_snapshot *s = mesh_snap_zalloc(&c, 1, sizeof(*s));
    c.snap = s;
    *s = *cur; /* listeners, routes, dns, timeouts, admin: shared with <cur> */
    atomic_init(&s->refcnt, 1);
    s->arena = c.arena;
    s->json_lz = NULL;
    s->json_lz_len = s->json_len = 0;
    s->version = mesh_snap_sdup(&c, version, strlen(version));
    s->delta = mesh_snap_sdup(&c, delta, delta_len);
    s->depth = cur->depth + 1;
    s->clusters = mesh_snap_zalloc(&c, cur->n_clusters, sizeof(*s->clusters));
    if (cur->n_clusters)
        memcpy(s->clusters, cur->clusters, cur->n_clusters * sizeof(*s->clusters));
    size_t before = err->total;
    size_t i;
    json_t *o;
    json_array_foreach(changed, i, o) {
        char path[48];
        snprintf(path, sizeof(path), "delta.clusters[%zu]", i);
        struct mesh_cluster fresh = {.index = idx[i]}; /* an object: resolve_names saw its name */
        mesh_snap_parse_cluster(&c, &fresh, o, path);
        s->clusters[idx[i]] = fresh;
    }
    json_decref(c.cluster_names);
    json_decref(c.rc_names);
    if (err->total != before) {
        mesh_arena_free(c.arena);
        return NULL;
    }
    s->parent = mesh_snapshot_ref(cur);
    return s;
}

struct mesh_snapshot *mesh_snapshot_apply_delta(struct mesh_snapshot *cur, const char *json,
                                                size_t len, const char *version,
                                                struct mesh_err *err)
{
    struct mesh_err discard;
    if (!err)
        err = &discard;
    mesh_err_init(err, NULL);
    json_t *doc = NULL;
    json_t *changed = delta_clusters(json, len, &doc, err);
    size_t n = json_array_size(changed);
    size_t *idx = mesh_xcalloc(n + 1, sizeof(*idx));
    struct mesh_snapshot *s = NULL;
    if (changed && resolve_names(cur, changed, idx, err)) {
        if (cur->depth < MESH_SNAPSHOT_MAX_DEPTH) {
            char *compact = json_dumps(doc, JSON_COMPACT);
            if (compact)
                s = derive(cur, changed, idx, compact, strlen(compact), version, err);
            else
                mesh_err_add(err, 0, 0, NULL, "out of memory");
            free(compact);
        } else {
            json_t *root = patched_doc(cur, changed, version, err);
            char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
            json_decref(root);
            if (text)
                s = mesh_snapshot_parse(text, strlen(text), err);
            else if (root)
                mesh_err_add(err, 0, 0, NULL, "out of memory");
            free(text);
        }
    }
    free(idx);
    json_decref(doc);
    return s;
}

char *mesh_snapshot_delta_dump(const struct mesh_snapshot *s, bool indent)
{
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    json_t *doc = json_loads(s->delta, 0, NULL);
    json_t *root = doc ? patched_doc(s->parent, json_object_get(doc, "clusters"), s->version,
                                     &err)
                       : NULL;
    json_decref(doc);
    if (!root)
        return NULL;
    char *text = json_dumps(root, JSON_SORT_KEYS | (indent ? JSON_INDENT(2) : JSON_COMPACT));
    json_decref(root);
    return text;
}

struct mesh_snapshot *mesh_snapshot_flatten(const struct mesh_snapshot *s, struct mesh_err *err)
{
    char *text = mesh_snapshot_dump(s, false);
    if (!text) {
        if (err) {
            mesh_err_init(err, NULL);
            mesh_err_add(err, 0, 0, NULL, "out of memory");
        }
        return NULL;
    }
    struct mesh_snapshot *flat = mesh_snapshot_parse(text, strlen(text), err);
    free(text);
    return flat;
}
