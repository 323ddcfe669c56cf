#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include "core/status.h"

static struct mesh_err err;
static char buf[32768];

TestSuite(status);

Test(status, strstatus_names_every_code)
{
    cr_expect_str_eq(mesh_strstatus(MESH_OK), "ok");
    cr_expect_str_eq(mesh_strstatus(MESH_EINVAL), "invalid argument");
    cr_expect_str_eq(mesh_strstatus(MESH_ELIMIT), "limit exceeded");
    cr_expect_str_eq(mesh_strstatus(MESH_ENOMEM), "out of memory");
    cr_expect_str_eq(mesh_strstatus(-950), "fatal error");
    cr_expect_str_eq(mesh_strstatus(-50), "unknown error");
    for (int st = 0; st >= -1000; st--)
        cr_assert_not_null(mesh_strstatus(st));
}

Test(status, fatal_class_starts_at_efatal)
{
    cr_expect(mesh_status_is_fatal(MESH_EFATAL));
    cr_expect(mesh_status_is_fatal(MESH_ENOMEM));
    cr_expect_not(mesh_status_is_fatal(MESH_EPROTO));
    cr_expect_not(mesh_status_is_fatal(MESH_OK));
}

Test(status, add_records_path_and_message)
{
    mesh_err_init(&err, "snap.json");
    cr_expect_eq(mesh_err_add(&err, 0, 0, "clusters[0].endpoints[1].port",
                              "must be between %d and %d", 1, 65535),
                 MESH_EINVAL);
    cr_assert_eq(err.count, 1);
    cr_expect_eq(err.total, 1);
    cr_expect_str_eq(err.e[0].path, "clusters[0].endpoints[1].port");
    cr_expect_str_eq(err.e[0].msg, "must be between 1 and 65535");
    mesh_err_format(&err, buf, sizeof(buf));
    cr_expect_str_eq(buf,
                     "snap.json: clusters[0].endpoints[1].port: must be between 1 and 65535\n");
}

Test(status, format_with_position_and_without_path)
{
    mesh_err_init(&err, "a.yaml");
    mesh_err_add(&err, 3, 7, NULL, "bad indent");
    mesh_err_add(&err, 0, 0, "x", "y");
    mesh_err_format(&err, buf, sizeof(buf));
    cr_expect_str_eq(buf, "a.yaml:3:7: bad indent\na.yaml: x: y\n");
}

Test(status, no_file_prints_a_dash)
{
    mesh_err_init(&err, NULL);
    mesh_err_add(&err, 0, 0, "version", "is required");
    mesh_err_format(&err, buf, sizeof(buf));
    cr_expect_str_eq(buf, "-: version: is required\n");
}

Test(status, long_path_and_message_are_truncated)
{
    char longs[1000];
    memset(longs, 'p', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    mesh_err_init(&err, NULL);
    mesh_err_add(&err, 0, 0, longs, "%s", longs);
    cr_expect_eq(strlen(err.e[0].path), sizeof(err.e[0].path) - 1);
    cr_expect_eq(strlen(err.e[0].msg), sizeof(err.e[0].msg) - 1);
}

Test(status, errors_saturate_and_keep_counting)
{
    mesh_err_init(&err, "f");
    for (int i = 0; i < MESH_ERR_MAX + 10; i++)
        mesh_err_add(&err, 0, 0, "p", "error %d", i);
    cr_expect_eq(err.count, MESH_ERR_MAX);
    cr_expect_eq(err.total, MESH_ERR_MAX + 10);
    mesh_err_format(&err, buf, sizeof(buf));
    cr_expect(strstr(buf, "f: p: error 0\n") == buf);
    cr_expect(strstr(buf, "... and 10 more errors\n") != NULL, "%s", buf);
}

Test(status, format_truncates_to_the_buffer)
{
    mesh_err_init(&err, "file");
    for (int i = 0; i < 10; i++)
        mesh_err_add(&err, 0, 0, "path", "message number %d", i);
    char small[32];
    memset(small, 'Z', sizeof(small));
    size_t n = mesh_err_format(&err, small, sizeof(small));
    cr_expect_lt(n, sizeof(small));
    cr_expect_eq(strlen(small), n);
}

Test(status, init_clears_previous_errors)
{
    mesh_err_init(&err, "f");
    mesh_err_add(&err, 0, 0, "p", "m");
    mesh_err_init(&err, "g");
    cr_expect_eq(err.count, 0);
    cr_expect_eq(err.total, 0);
    mesh_err_format(&err, buf, sizeof(buf));
    cr_expect_str_eq(buf, "");
}

/* A message cut in the middle of a UTF-8 character (by its 240-byte field, or by the
 * output buffer) loses the broken character, not the whole text when it goes into JSON. */
Test(status, truncation_keeps_utf8_whole)
{
    char name[400] = "";
    for (int i = 0; i < 130; i++)
        strcat(name, "\xc3\xa9"); /* é: 260 bytes, more than a message holds */
    mesh_err_init(&err, "f.yaml");
    mesh_err_add(&err, 0, 0, "", "%s", name); /* 239 bytes kept: the cut falls inside a é */
    size_t n = mesh_err_format(&err, buf, sizeof(buf));
    json_t *j = json_stringn(buf, n);
    cr_expect_not_null(j, "a message cut by its field is still UTF-8: %s", buf);
    json_decref(j);
    char small[40];
    /* "f.yaml: " then 31 bytes of é: the cut falls inside one */
    n = mesh_err_format(&err, small, sizeof(small));
    cr_expect_lt(n, sizeof(small));
    j = json_stringn(small, n);
    cr_expect_not_null(j, "a text cut by the buffer is still UTF-8: %s", small);
    json_decref(j);
}
