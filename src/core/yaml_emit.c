#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include "core/log.h"
#include "core/status.h"
#include "core/yaml_emit.h"

static const char *const non_strings[] = {
    "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
    /* YAML 1.1 booleans: PyYAML and libyaml-based readers still take these */
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN",
};

/* True when a plain scalar <s> would be read back as something other than a string. */
static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < MESH_ARRAY_LEN(non_strings); i++)
        if (strlen(non_strings[i]) == n && memcmp(non_strings[i], s, n) == 0)
            return true;
    /* numbers of any base, floats, 1.1 sexagesimals and timestamps: quote the lot */
    if (!strchr("0123456789+-.", s[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == ':' || c == '+' || c == '-'))
            return false;
    }
    return true;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev) ? MESH_OK : MESH_EINVAL;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style))
        return MESH_EINVAL;
    return emit(em, &ev);
}

static int emit_string(yaml_emitter_t *em, const char *s, size_t n)
{
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    if (needs_quotes(s, n))
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
    else if (memchr(s, '\n', n))
        style = YAML_LITERAL_SCALAR_STYLE; /* libyaml falls back to quotes when it must */
    return emit_scalar(em, s, n, style);
}

/* Shortest "%.*g" that reads back to the same double, always with a '.' or an exponent. */
static void format_real(double d, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn")) /* "n": inf/nan cannot come from JSON, but keep them as is */
        strncat(buf, ".0", size - strlen(buf) - 1);
}

static int cmp_keys(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int emit_value(yaml_emitter_t *em, json_t *v)
{
    yaml_event_t ev;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = mesh_xmalloc((n ? n : 1) * sizeof(*keys));
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child)
            keys[i++] = k;
        qsort(keys, n, sizeof(*keys), cmp_keys);
        int rc = MESH_EINVAL;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            emit(em, &ev) != MESH_OK)
            goto out;
        for (i = 0; i < n; i++) {
            if (emit_string(em, keys[i], strlen(keys[i])) != MESH_OK ||
                emit_value(em, json_object_get(v, keys[i])) != MESH_OK)
                goto out;
        }
        if (!yaml_mapping_end_event_initialize(&ev) || emit(em, &ev) != MESH_OK)
            goto out;
        rc = MESH_OK;
    out:
        free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            emit(em, &ev) != MESH_OK)
            return MESH_EINVAL;
        json_array_foreach(v, i, child)
            if (emit_value(em, child) != MESH_OK)
                return MESH_EINVAL;
        if (!yaml_sequence_end_event_initialize(&ev))
            return MESH_EINVAL;
        return emit(em, &ev);
    }
    case JSON_STRING: return emit_string(em, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        format_real(json_real_value(v), buf, sizeof(buf));
        return emit_scalar(em, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE: return emit_scalar(em, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE: return emit_scalar(em, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    case JSON_NULL:
    default: return emit_scalar(em, "null", 4, YAML_PLAIN_SCALAR_STYLE);
    }
}

int mesh_yaml_emit_json(json_t *v, char **out, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return MESH_ENOMEM;
    yaml_emitter_t em;
    yaml_event_t ev;
    int rc = MESH_EINVAL;
    if (!yaml_emitter_initialize(&em)) {
        fclose(f);
        free(buf);
        return MESH_ENOMEM;
    }
    yaml_emitter_set_output_file(&em, f);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* no folding: one value, one line, stable diffs */
    yaml_emitter_set_indent(&em, 2);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || emit(&em, &ev) != MESH_OK)
        goto done;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        emit(&em, &ev) != MESH_OK)
        goto done;
    if (emit_value(&em, v) != MESH_OK)
        goto done;
    if (!yaml_document_end_event_initialize(&ev, 1) || emit(&em, &ev) != MESH_OK)
        goto done;
    if (!yaml_stream_end_event_initialize(&ev) || emit(&em, &ev) != MESH_OK)
        goto done;
    rc = MESH_OK;
done:
    if (rc != MESH_OK)
        mesh_log_error("yaml: cannot render: %s", em.problem ? em.problem : "emitter error");
    yaml_emitter_delete(&em);
    if (fclose(f) != 0 && rc == MESH_OK)
        rc = MESH_ENOMEM;
    if (rc != MESH_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    if (len)
        *len = size;
    return MESH_OK;
}
