/* libFuzzer target: YAML documents and the resource loader must reject any input cleanly. */
#include "core/common.h"
#include <string.h>
#include "core/diag.h"
#include "core/resource.h"
#include "core/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[2048];
    struct mesh_diags d;
    mesh_diags_init(&d);
    struct mesh_ystream *s = mesh_yaml_parse((const char *)data, size, "fuzz.yaml", &d);
    for (size_t i = 0; i < s->n_docs; i++) {
        json_t *j = mesh_yaml_to_json(s->docs[i].root);
        char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        MESH_BUG_ON(j && !text);
        free(text);
        json_decref(j);
    }
    mesh_yaml_free(s);
    for (size_t i = 0; i < d.n; i++)
        mesh_diag_format(&d.v[i], buf, sizeof(buf));
    mesh_diags_free(&d);

    /* the whole loader: envelope, schemas, every kind's checks */
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    int rc = mesh_resource_load_buffer(&set, (const char *)data, size, "fuzz.yaml", 0);
    MESH_BUG_ON(rc == MESH_OK && set.diags.n_errors);
    for (size_t i = 0; i < set.n; i++) {
        const struct mesh_resource *r = set.items[i];
        MESH_BUG_ON(!r->typed.any || !r->key || !json_is_object(r->spec));
        MESH_BUG_ON(mesh_resource_set_find(&set, r->key) != r);
    }
    for (size_t i = 0; i < set.diags.n; i++)
        mesh_diag_format(&set.diags.v[i], buf, sizeof(buf));
    mesh_resource_set_free(&set);
    return 0;
}
