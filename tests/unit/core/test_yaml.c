#include "core/common.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/diag.h"
#include "core/yaml.h"
#include "../leakcheck.h"

static struct mesh_diags d;

static struct mesh_ystream *parse(const char *text)
{
    mesh_diags_init(&d);
    return mesh_yaml_parse(text, strlen(text), "t.yaml", &d);
}

static void done(struct mesh_ystream *s)
{
    mesh_yaml_free(s);
    mesh_diags_free(&d);
}

static const char *diag(size_t i)
{
    static char buf[1024];
    cr_assert_lt(i, d.n, "no diagnostic %zu (have %zu)", i, d.n);
    mesh_diag_format(&d.v[i], buf, sizeof(buf));
    return buf;
}

LEAK_TEST(yaml, positions_are_one_based)
{
    struct mesh_ystream *s = parse("a: 1\nb:\n  c: [x, \"y\"]\n");
    cr_assert_eq(d.n, 0);
    cr_assert_eq(s->n_docs, 1);
    const struct mesh_ynode *root = s->docs[0].root;
    cr_assert_eq(root->type, MESH_YNODE_MAP);
    cr_assert_eq(root->line, 1);
    cr_assert_eq(root->col, 1);
    const struct mesh_ynode *b = mesh_yaml_get(root, "b");
    const struct mesh_ynode *c = mesh_yaml_get(b, "c");
    cr_assert_eq(c->type, MESH_YNODE_SEQ);
    cr_assert_eq(c->line, 3);
    cr_assert_eq(c->col, 6);
    cr_assert_eq(c->items[1]->col, 10);
    cr_assert_eq(mesh_yaml_get_key(b, "c")->col, 3);
    done(s);
}

LEAK_TEST(yaml, core_schema_types_plain_scalars)
{
    struct mesh_ystream *s = parse("i: 42\nneg: -7\nhex: 0x1F\noct: 0o17\nf: 1.5\ne: 1e3\n"
                                   "inf: .inf\nt: true\nT: True\nn: null\ntilde: ~\nempty:\n"
                                   "q: \"42\"\nsq: 'true'\nstr: yes\nver: 1.2.3\ntag: !!str 80\n"
                                   "ti: !!int \"12\"\nlit: |\n  7\n");
    const struct mesh_ynode *r = s->docs[0].root;
    int64_t i;
    double v;
    bool b;
    cr_assert(mesh_yaml_int(mesh_yaml_get(r, "i"), &i) && i == 42);
    cr_assert(mesh_yaml_int(mesh_yaml_get(r, "neg"), &i) && i == -7);
    cr_assert(mesh_yaml_int(mesh_yaml_get(r, "hex"), &i) && i == 31);
    cr_assert(mesh_yaml_int(mesh_yaml_get(r, "oct"), &i) && i == 15);
    cr_assert(mesh_yaml_number(mesh_yaml_get(r, "f"), &v) && v == 1.5);
    cr_assert(mesh_yaml_number(mesh_yaml_get(r, "e"), &v) && v == 1000);
    cr_assert(mesh_yaml_number(mesh_yaml_get(r, "inf"), &v) && isinf(v));
    cr_assert(mesh_yaml_bool(mesh_yaml_get(r, "t"), &b) && b);
    cr_assert(mesh_yaml_bool(mesh_yaml_get(r, "T"), &b) && b);
    cr_assert(mesh_yaml_is_null(mesh_yaml_get(r, "n")));
    cr_assert(mesh_yaml_is_null(mesh_yaml_get(r, "tilde")));
    cr_assert(mesh_yaml_is_null(mesh_yaml_get(r, "empty")));
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "q")), MESH_YSCALAR_STRING);
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "sq")), MESH_YSCALAR_STRING);
    /* YAML 1.2: yes is a string, not a boolean */
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "str")), MESH_YSCALAR_STRING);
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "ver")), MESH_YSCALAR_STRING);
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "tag")), MESH_YSCALAR_STRING);
    cr_assert(mesh_yaml_int(mesh_yaml_get(r, "ti"), &i) && i == 12);
    cr_assert_eq(mesh_yaml_scalar_kind(mesh_yaml_get(r, "lit")), MESH_YSCALAR_STRING);
    cr_assert_str_eq(mesh_yaml_get(r, "lit")->value, "7\n");
    done(s);
}

LEAK_TEST(yaml, to_json_types)
{
    struct mesh_ystream *s = parse("a: 1\nb: \"1\"\nc: 1.25\nd: false\ne: ~\nf: [x, 2]\n"
                                   "g: {h: i}\nbig: 99999999999999999999\nnan: .nan\n");
    json_t *j = mesh_yaml_to_json(s->docs[0].root);
    cr_assert(json_is_integer(json_object_get(j, "a")));
    cr_assert(json_is_string(json_object_get(j, "b")));
    cr_assert(json_is_real(json_object_get(j, "c")));
    cr_assert(json_is_false(json_object_get(j, "d")));
    cr_assert(json_is_null(json_object_get(j, "e")));
    cr_assert_eq(json_array_size(json_object_get(j, "f")), 2);
    cr_assert(json_is_integer(json_array_get(json_object_get(j, "f"), 1)));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "g"), "h")), "i");
    cr_assert(json_is_real(json_object_get(j, "big")));
    cr_assert(json_is_string(json_object_get(j, "nan")), "NaN is not JSON: kept as text");
    json_decref(j);
    done(s);
}

LEAK_TEST(yaml, json_input_is_yaml)
{
    struct mesh_ystream *s = parse("{\n  \"kind\": \"Service\",\n  \"spec\": {\"ports\": "
                                   "[{\"port\": 80}]}\n}\n");
    cr_assert_eq(d.n, 0);
    const struct mesh_ynode *r = s->docs[0].root;
    cr_assert(mesh_yaml_eq(mesh_yaml_get(r, "kind"), "Service"));
    const struct mesh_ynode *port = mesh_yaml_get(mesh_yaml_get(r, "spec"), "ports")->items[0];
    int64_t v;
    cr_assert(mesh_yaml_int(mesh_yaml_get(port, "port"), &v) && v == 80);
    cr_assert_eq(mesh_yaml_get(port, "port")->line, 3);
    done(s);
}

LEAK_TEST(yaml, multi_document_stream)
{
    struct mesh_ystream *s = parse("# header\na: 1\n---\n---\n# only a comment\n---\nb: 2\n...\n"
                                   "---\nc: 3\n");
    cr_assert_eq(d.n, 0);
    cr_assert_eq(s->n_docs, 5);
    cr_assert_not_null(s->docs[0].root);
    cr_assert_null(s->docs[1].root, "an empty document has no root");
    cr_assert_null(s->docs[2].root, "comments only");
    cr_assert(mesh_yaml_get(s->docs[3].root, "b"));
    cr_assert_eq(s->docs[4].root->line, 10);
    done(s);
}

LEAK_TEST(yaml, duplicate_keys_are_errors)
{
    struct mesh_ystream *s = parse("metadata:\n  name: a\n  name: b\nx: 1\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(diag(0), "t.yaml:3:3: duplicate key \"name\" (first defined at line 2)");
    cr_assert_eq(s->docs[0].n_errors, 1);
    /* the first one stays */
    cr_assert(mesh_yaml_eq(mesh_yaml_get(mesh_yaml_get(s->docs[0].root, "metadata"), "name"),
                           "a"));
    done(s);
}

LEAK_TEST(yaml, syntax_error_has_position)
{
    struct mesh_ystream *s = parse("a: 1\nb: [1, 2\nc: 3\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert(strstr(diag(0), "t.yaml:3:2: "), "%s", diag(0));
    cr_assert_eq(s->n_docs, 0, "the broken document is dropped");
    done(s);
}

LEAK_TEST(yaml, documents_before_an_error_are_kept)
{
    struct mesh_ystream *s = parse("a: 1\n---\nb: \"unterminated\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert_eq(s->n_docs, 1);
    done(s);
}

LEAK_TEST(yaml, anchors_and_aliases)
{
    struct mesh_ystream *s = parse("base: &b {x: 1, y: [a, b]}\nuse: *b\nlist: [*b, *b]\n");
    cr_assert_eq(d.n, 0);
    const struct mesh_ynode *r = s->docs[0].root;
    cr_assert_eq(mesh_yaml_get(r, "use"), mesh_yaml_get(r, "base"), "aliases share the node");
    json_t *j = mesh_yaml_to_json(r);
    cr_assert(json_equal(json_object_get(j, "use"), json_object_get(j, "base")));
    json_decref(j);
    done(s);
}

LEAK_TEST(yaml, merge_keys)
{
    struct mesh_ystream *s = parse("defaults: &d {a: 1, b: 2}\nother: &o {c: 3}\n"
                                   "x:\n  <<: [*d, *o]\n  b: 20\n");
    cr_assert_eq(d.n, 0);
    const struct mesh_ynode *x = mesh_yaml_get(s->docs[0].root, "x");
    int64_t v;
    cr_assert_eq(x->n, 3);
    cr_assert(mesh_yaml_int(mesh_yaml_get(x, "a"), &v) && v == 1);
    cr_assert(mesh_yaml_int(mesh_yaml_get(x, "b"), &v) && v == 20, "explicit keys win");
    cr_assert(mesh_yaml_int(mesh_yaml_get(x, "c"), &v) && v == 3);
    done(s);
}

LEAK_TEST(yaml, unknown_alias)
{
    struct mesh_ystream *s = parse("a: *nope\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(diag(0), "t.yaml:1:4: unknown alias \"*nope\"");
    done(s);
}

LEAK_TEST(yaml, billion_laughs_is_bounded)
{
    const char *lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                      "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    struct mesh_ystream *s = parse(lol);
    cr_assert_eq(d.n_errors, 1);
    cr_assert(strstr(diag(0), "expand to too many nodes"), "%s", diag(0));
    cr_assert_eq(s->n_docs, 0);
    done(s);
}

LEAK_TEST(yaml, nesting_is_bounded)
{
    char text[2 * MESH_YAML_MAX_DEPTH + 16];
    size_t n = 0;
    for (int i = 0; i < MESH_YAML_MAX_DEPTH + 1; i++)
        text[n++] = '[';
    for (int i = 0; i < MESH_YAML_MAX_DEPTH + 1; i++)
        text[n++] = ']';
    text[n] = '\0';
    struct mesh_ystream *s = parse(text);
    cr_assert_eq(d.n_errors, 1);
    cr_assert(strstr(diag(0), "nesting deeper than"), "%s", diag(0));
    done(s);
}

LEAK_TEST(yaml, colon_before_flow_end_like_go_yaml)
{
    /* libyaml alone rejects this; go-yaml (Kubernetes, Istio) reads an IPv6 address */
    struct mesh_ystream *s = parse("addresses: [1.2.3.4, 2001:db8::]\nafter: [a::, b]\n");
    cr_assert_eq(d.n, 0, "%s", d.n ? diag(0) : "");
    const struct mesh_ynode *a = mesh_yaml_get(s->docs[0].root, "addresses");
    cr_assert_str_eq(a->items[1]->value, "2001:db8::");
    cr_assert_eq(mesh_yaml_scalar_kind(a->items[1]), MESH_YSCALAR_STRING);
    cr_assert_str_eq(mesh_yaml_get(s->docs[0].root, "after")->items[0]->value, "a::");
    done(s);
}

LEAK_TEST(yaml, invalid_utf8_is_an_error)
{
    struct mesh_ystream *s = parse("a: \xff\xfe\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert(strstr(diag(0), "t.yaml:"), "%s", diag(0));
    done(s);
}

LEAK_TEST(yaml, control_characters_are_scrubbed_in_messages)
{
    struct mesh_ystream *s = parse("\"a\\x1b[31m\": 1\n\"a\\x1b[31m\": 2\n");
    cr_assert_eq(d.n_errors, 1);
    cr_assert_null(strchr(diag(0), '\x1b'));
    done(s);
}

struct seen {
    int docs, empty;
    int lines[8];
};

static void count_doc(void *arg, const struct mesh_ydoc *doc)
{
    struct seen *s = arg;
    if (!doc->root) {
        s->empty++;
        return;
    }
    if (s->docs < 8)
        s->lines[s->docs] = doc->root->line;
    s->docs++;
}

LEAK_TEST(yaml, streaming_hands_over_each_document_once)
{
    /* the third document needs the flow-colon second pass: the first two stay delivered once */
    const char *text = "a: 1\n---\n---\nb: 2\n---\nc: [x, 2001:db8::]\n---\nd: {e: 1, e: 2}\n";
    struct seen s = {0};
    mesh_diags_init(&d);
    mesh_yaml_parse_each(text, strlen(text), "t.yaml", &d, count_doc, &s);
    cr_assert_eq(s.docs, 4);
    cr_assert_eq(s.empty, 1);
    cr_assert_eq(s.lines[0], 1);
    cr_assert_eq(s.lines[1], 4);
    cr_assert_eq(s.lines[2], 6);
    cr_assert_eq(s.lines[3], 8);
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(diag(0), "t.yaml:8:11: duplicate key \"e\" (first defined at line 8)");
    mesh_diags_free(&d);
}

LEAK_TEST(yaml, diagnostics_sort_by_position_within_a_file)
{
    mesh_diags_init(&d);
    mesh_diags_add(&d, MESH_DIAG_ERROR, "a.yaml", 9, 1, NULL, NULL, "third");
    mesh_diags_add(&d, MESH_DIAG_ERROR, "a.yaml", 2, 5, NULL, NULL, "first");
    mesh_diags_add(&d, MESH_DIAG_WARNING, "a.yaml", 2, 5, NULL, NULL, "second");
    mesh_diags_add(&d, MESH_DIAG_ERROR, "b.yaml", 1, 1, NULL, NULL, "b stays after a");
    mesh_diags_sort(&d);
    cr_assert_str_eq(d.v[0].msg, "first");
    cr_assert_str_eq(d.v[1].msg, "second");
    cr_assert_str_eq(d.v[2].msg, "third");
    cr_assert_str_eq(d.v[3].msg, "b stays after a");
    cr_assert_eq(d.n_errors, 3);
    cr_assert_eq(d.n_warnings, 1);
    mesh_diags_free(&d);
}
