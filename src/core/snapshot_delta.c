/*
 * Applying a delta (snapshot_delta.h). The clusters are replaced in the JSON document the
 * snapshot was loaded from and the result is loaded whole: the loader stays the one place
 * that validates a snapshot, and the new snapshot shares nothing with the old one, so the
 * swap is the same as for a whole snapshot.
 */
#include "core/common.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "core/snapshot.h"
#include "core/snapshot_delta.h"
#include "core/status.h"

struct mesh_snapshot *mesh_snapshot_apply_delta(const struct mesh_snapshot *cur,
                                                const char *json, size_t len,
                                                const char *version, struct mesh_err *err)
{
    struct mesh_err discard;
    if (!err)
        err = &discard;
    mesh_err_init(err, NULL);
    json_error_t jerr;
    json_t *delta = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *changed = json_object_get(delta, "clusters");
    if (!json_is_array(changed)) {
        mesh_err_add(err, delta ? 0 : jerr.line, delta ? 0 : jerr.column, "delta",
                     "%s", delta ? "expected {\"clusters\": [...]}" : jerr.text);
        json_decref(delta);
        return NULL;
    }
    char *doc = mesh_snapshot_dump(cur, false);
    json_t *root = doc ? json_loads(doc, 0, NULL) : NULL;
    free(doc);
    json_t *clusters = json_object_get(root, "clusters");
    if (!json_is_array(clusters)) {
        mesh_err_add(err, 0, 0, NULL, "the current snapshot's document is not available");
        json_decref(root);
        json_decref(delta);
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
    bool ok = true;
    json_array_foreach(changed, i, cl) {
        const char *name = json_string_value(json_object_get(cl, "name"));
        json_t *pos = name ? json_object_get(at, name) : NULL;
        if (!pos) {
            char path[48];
            snprintf(path, sizeof(path), "delta.clusters[%zu]", i);
            mesh_err_add(err, 0, 0, path, "%s%s", name ? "no such cluster in the snapshot: " :
                                                         "a cluster without a name",
                         name ? name : "");
            ok = false;
            continue;
        }
        json_array_set(clusters, (size_t)json_integer_value(pos), cl);
    }
    json_decref(at);
    struct mesh_snapshot *s = NULL;
    if (ok) {
        json_object_set_new(root, "version", json_string(version));
        char *text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        root = NULL;
        if (text)
            s = mesh_snapshot_parse(text, strlen(text), err);
        else
            mesh_err_add(err, 0, 0, NULL, "out of memory");
        free(text);
    }
    json_decref(root);
    json_decref(delta);
    return s;
}
