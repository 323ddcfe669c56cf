#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include <yaml.h>
#include "core/yaml_emit.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define EXPECT_NO_LEAKS() cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see LSan")
#else
#define EXPECT_NO_LEAKS() ((void)0)
#endif

static char *render(const char *json)
{
    json_error_t jerr;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "%s", jerr.text);
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(mesh_yaml_emit_json(v, &out, &len), 0);
    cr_expect_eq(len, strlen(out));
    json_decref(v);
    return out;
}

#define EXPECT_YAML(json, yaml)                                                                    \
    do {                                                                                           \
        char *out_ = render(json);                                                                 \
        cr_expect_str_eq(out_, yaml);                                                              \
        free(out_);                                                                                \
    } while (0)

Test(yaml_emit, keys_are_sorted_and_blocks_nest)
{
    EXPECT_YAML("{\"spec\": {\"b\": 1, \"a\": [1, {\"y\": true, \"x\": null}]}, \"kind\": \"K\","
                " \"apiVersion\": \"v1\"}",
                "apiVersion: v1\n"
                "kind: K\n"
                "spec:\n"
                "  a:\n"
                "  - 1\n"
                "  - x: null\n"
                "    'y': true\n"
                "  b: 1\n");
    EXPECT_YAML("{\"a\": {}, \"b\": [], \"c\": [[1, 2], []]}",
                "a: {}\n"
                "b: []\n"
                "c:\n"
                "- - 1\n"
                "  - 2\n"
                "- []\n");
    EXPECT_NO_LEAKS();
}

Test(yaml_emit, strings_that_read_as_other_types_are_quoted)
{
    EXPECT_YAML("{\"port\": \"80\", \"on\": \"yes\", \"t\": \"true\", \"n\": \"null\", \"e\": \"\","
                " \"v\": \"1.5\", \"d\": \"2024-01-02\", \"plain\": \"reviews.default\","
                " \"num\": 80, \"real\": 0.1, \"whole\": 2.0, \"neg\": -3}",
                "d: '2024-01-02'\n"
                "e: ''\n"
                "'n': 'null'\n"
                "neg: -3\n"
                "num: 80\n"
                "'on': 'yes'\n"
                "plain: reviews.default\n"
                "port: '80'\n"
                "real: 0.1\n"
                "t: 'true'\n"
                "v: '1.5'\n"
                "whole: 2.0\n");
    EXPECT_NO_LEAKS();
}

Test(yaml_emit, special_characters_and_long_lines)
{
    EXPECT_YAML("{\"a\": \"x: y\", \"b\": \"# no comment\", \"c\": \"*\", \"d\": \"- item\"}",
                "a: 'x: y'\n"
                "b: '# no comment'\n"
                "c: '*'\n"
                "d: '- item'\n");
    /* no folding of long values: one value stays on one line */
    char json[2100], want[2100];
    memset(want, 0, sizeof(want));
    snprintf(json, sizeof(json), "{\"k\": \"");
    for (int i = 0; i < 300; i++)
        strcat(json, "word ");
    strcat(json, "end\"}");
    char *out = render(json);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "%s", out);
    free(out);
    EXPECT_NO_LEAKS();
}

Test(yaml_emit, multi_line_strings_use_the_literal_style)
{
    EXPECT_YAML("{\"script\": \"function f()\\n  return 1\\nend\\n\"}",
                "script: |\n"
                "  function f()\n"
                "    return 1\n"
                "  end\n");
    EXPECT_NO_LEAKS();
}

/* libyaml reads back what we wrote: every scalar is the same string. */
Test(yaml_emit, output_reads_back_as_the_same_strings)
{
    const char *values[] = {"80", "yes", "", "null", "a: b", "x\ny", " lead", "trail ", "~",
                            "0x1F", "-", "'q'", "\"dq\"", "tab\there", "ünïcødé", "@at", "%pc"};
    json_t *obj = json_object();
    char key[16];
    for (size_t i = 0; i < MESH_ARRAY_LEN(values); i++) {
        snprintf(key, sizeof(key), "k%02zu", i);
        json_object_set_new(obj, key, json_string(values[i]));
    }
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(mesh_yaml_emit_json(obj, &out, &len), 0);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)out, len);
    yaml_event_t ev;
    size_t scalars = 0;
    for (;;) {
        cr_assert(yaml_parser_parse(&p, &ev), "%s in:\n%s", p.problem, out);
        if (ev.type == YAML_SCALAR_EVENT) {
            const char *text = (const char *)ev.data.scalar.value;
            if (scalars % 2 == 1) {
                cr_expect_str_eq(text, values[scalars / 2]);
                /* a plain scalar must not be one that resolves to a non-string */
                if (ev.data.scalar.plain_implicit &&
                    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                    cr_expect(strcmp(text, "yes") && strcmp(text, "80") && *text, "%s", text);
            }
            scalars++;
        }
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
    }
    cr_expect_eq(scalars, 2 * MESH_ARRAY_LEN(values));
    yaml_parser_delete(&p);
    free(out);
    json_decref(obj);
    EXPECT_NO_LEAKS();
}
