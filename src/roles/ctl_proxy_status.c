/*
 * meshd ctl proxy-status (istioctl proxy-status): GET /v1/proxies and one line per proxy
 * with the version it was sent, the version it applied, SYNCED / STALE / NACK / NOT SENT
 * and its last error (docs/control.md "Push").
 */
#include "core/common.h"
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "core/status.h"
#include "roles/ctl_client.h"
#include "roles/ctl_http.h"
#include "roles/ctl_proxy_status.h"
#include "roles/push_client.h"
#include "roles/token.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshd ctl proxy-status [NS/NAME] [--server URL] [--token-file FILE] "
               "[-o table|json]\n\n"
               "Lists every proxy watching the control plane: the snapshot version it was sent\n"
               "and the one it applied. SYNCED: it applied what it was sent; STALE: no answer\n"
               "yet; NACK: it refused the last snapshot (the previous one keeps serving; the\n"
               "reason is the last error); NOT SENT: its snapshot does not compile.\n\n"
               "exit status: 0 ok, 1 the control plane could not be asked, 2 usage\n");
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : dflt;
}

/* Versions are 16+ hex digits: 12 tell them apart on a terminal. */
static void short_version(const char *v, char *out, size_t size)
{
    snprintf(out, size, "%.12s", v ? v : "-");
}

int mesh_ctl_proxy_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"token-file", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *token_file = NULL, *output = "table";
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': server = optarg; break;
        case 't': token_file = optarg; break;
        case 'o': output = optarg; break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "meshd ctl proxy-status: option %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "meshd ctl proxy-status: unknown option \"%s\"\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    const char *only = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
        fprintf(stderr, "meshd ctl proxy-status: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "meshd ctl proxy-status: -o: expected table or json, got \"%s\"\n",
                output);
        return 2;
    }
    if (!server) {
        const char *env = getenv("MESHD_SERVER");
        server = env && *env ? env : MESH_CTL_DEFAULT_SERVER;
    }
    struct mesh_ctl_url url;
    char why[512];
    if (mesh_ctl_url_parse(server, &url, why, sizeof(why)) != MESH_OK) {
        fprintf(stderr, "error: the control plane URL \"%s\": %s\n", server, why);
        return 2;
    }
    char *token = NULL;
    const char *env = getenv("MESHD_TOKEN");
    if (token_file) {
        if (!(token = mesh_token_read(token_file))) {
            fprintf(stderr, "error: --token-file %s: %s\n", token_file,
                    errno == ENODATA ? "the file is empty" : strerror(errno));
            return 1;
        }
    } else if (env && *env) {
        token = mesh_xstrdup(env);
    } else {
        token = mesh_token_read(MESH_CTL_DEFAULT_TOKEN_FILE);
    }
    struct mesh_ctl_request req = {.method = "GET", .target = "/v1/proxies", .token = token};
    struct mesh_ctl_response resp = {0};
    int rc = mesh_ctl_http_do(&url, &req, &resp, why, sizeof(why));
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    if (rc != MESH_OK) {
        fprintf(stderr, "error: cannot reach the control plane at %s: %s\n", server, why);
        return 1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(resp.body, resp.len, 0, &jerr);
    if (resp.status != 200) {
        fprintf(stderr, "error: the control plane answered %d: %s\n", resp.status,
                str_or(doc, "error", resp.body));
        json_decref(doc);
        mesh_ctl_response_free(&resp);
        return 1;
    }
    json_t *proxies = json_object_get(doc, "proxies");
    if (!json_is_array(proxies)) {
        fprintf(stderr, "error: the control plane's answer has no \"proxies\" list\n");
        json_decref(doc);
        mesh_ctl_response_free(&resp);
        return 1;
    }
    if (strcmp(output, "json") == 0) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        printf("%-32s %-8s %-9s %-13s %-13s %-7s %-21s %s\n", "NAME", "ROLE", "STATUS", "SENT",
               "ACKED", "PUSHES", "CONNECTED", "LAST ERROR");
        size_t i;
        json_t *p;
        json_array_foreach(proxies, i, p)
        {
            const char *node = str_or(p, "node", "-");
            if (only && strcmp(only, node) != 0)
                continue;
            char sent[16], acked[16];
            short_version(str_or(p, "sent", NULL), sent, sizeof(sent));
            short_version(str_or(p, "acked", NULL), acked, sizeof(acked));
            printf("%-32s %-8s %-9s %-13s %-13s %-7lld %-21s %s\n", node,
                   str_or(p, "role", "-"), str_or(p, "status", "-"), sent, acked,
                   (long long)json_integer_value(json_object_get(p, "pushes")),
                   str_or(p, "connected", "-"), str_or(p, "error", "-"));
        }
    }
    json_decref(doc);
    mesh_ctl_response_free(&resp);
    return 0;
}
