#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include "core/labelsel.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define EXPECT_NO_LEAKS() cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see LSan")
#else
#define EXPECT_NO_LEAKS() ((void)0)
#endif

static struct mesh_err err;
static char errbuf[4096];

static void setup(void)
{
    mesh_err_init(&err, NULL);
}

TestSuite(labelsel, .init = setup);

/* Does <selector> select an object with <labels> (JSON)? Asserts the selector parses. */
static bool sel_match(const char *selector, const char *labels)
{
    struct mesh_labelsel *sel = mesh_labelsel_parse(selector, &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    cr_assert_not_null(sel, "%s: %s", selector, errbuf);
    json_t *l = labels ? json_loads(labels, 0, NULL) : NULL;
    bool m = mesh_labelsel_match(sel, l);
    json_decref(l);
    mesh_labelsel_free(sel);
    return m;
}

static const char *parse_error(const char *selector)
{
    mesh_err_init(&err, NULL);
    struct mesh_labelsel *sel = mesh_labelsel_parse(selector, &err);
    cr_assert_null(sel, "\"%s\" should not parse", selector);
    cr_assert_eq(err.count, 1);
    return err.e[0].msg;
}

Test(labelsel, equality_and_inequality)
{
    const char *web = "{\"app\": \"web\", \"env\": \"prod\"}";
    cr_expect(sel_match("app=web", web));
    cr_expect(sel_match("app==web", web));
    cr_expect(sel_match(" app = web , env == prod ", web));
    cr_expect_not(sel_match("app=api", web));
    cr_expect_not(sel_match("app=web,env!=prod", web));
    cr_expect(sel_match("env!=dev", web));
    /* != matches objects without the key, as in Kubernetes */
    cr_expect(sel_match("tier!=front", web));
    cr_expect(sel_match("tier!=front", NULL));
    cr_expect_not(sel_match("app=web", NULL));
    cr_expect(sel_match("app=", "{\"app\": \"\"}"));
    cr_expect(sel_match("example.com/team=blue", "{\"example.com/team\": \"blue\"}"));
    EXPECT_NO_LEAKS();
}

Test(labelsel, sets_and_existence)
{
    const char *l = "{\"tier\": \"front\", \"app\": \"x\"}";
    cr_expect(sel_match("tier in (front,back)", l));
    cr_expect(sel_match("tier in ( back , front )", l));
    cr_expect(sel_match("tier in (front)", l));
    cr_expect_not(sel_match("tier in (back)", l));
    cr_expect_not(sel_match("tier notin (front,back)", l));
    cr_expect(sel_match("env notin (prod)", l));
    cr_expect(sel_match("app", l));
    cr_expect_not(sel_match("env", l));
    cr_expect(sel_match("!env", l));
    cr_expect(sel_match("! env", l));
    cr_expect_not(sel_match("!app", l));
    cr_expect(sel_match("app,!env,tier in (front),app!=y", l));
    EXPECT_NO_LEAKS();
}

Test(labelsel, empty_selects_everything)
{
    cr_expect(sel_match("", "{\"a\": \"b\"}"));
    cr_expect(sel_match("   ", NULL));
    cr_expect(sel_match(NULL, NULL));
    EXPECT_NO_LEAKS();
}

Test(labelsel, syntax_errors_name_the_place)
{
    cr_expect_str_eq(parse_error("app=web,"),
                     "label selector \"app=web,\": expected a label key at the end");
    cr_expect_str_eq(parse_error("app in (a,b"),
                     "label selector \"app in (a,b\": expected \",\" or \")\" in a value set at "
                     "the end");
    cr_expect_str_eq(parse_error("app in a"), "label selector \"app in a\": expected \"(\" at "
                                              "column 8 (near \"a\")");
    cr_expect(
        strstr(parse_error("app > 3"), "expected \"=\", \"==\", \"!=\", \"in\" or \"notin\""));
    cr_expect(strstr(parse_error("app=a b"), "expected \",\" between requirements at column 7"));
    cr_expect(strstr(parse_error("=x"), "expected a label key at column 1"));
    cr_expect(strstr(parse_error("!"), "expected a label key after \"!\""));
    cr_expect(strstr(parse_error("a,,b"), "expected a label key at column 3"));
    EXPECT_NO_LEAKS();
}
