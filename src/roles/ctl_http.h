/*
 * A small blocking HTTP/1.1 client for `meshd ctl`: one request per TCP connection
 * (Connection: close), responses parsed with http-parser, every step bounded in time.
 */
#ifndef MESH_ROLES_CTL_HTTP_H
#define MESH_ROLES_CTL_HTTP_H

#include "core/common.h"

/* Where the server is: "http://HOST[:PORT][/PREFIX]". */
struct mesh_ctl_url {
    char host[256];   /* name or numeric address, without IPv6 brackets */
    char port[8];     /* "15010" */
    char prefix[512]; /* path put before every request target, without a trailing '/' */
    bool ipv6;        /* the host was written in brackets */
};

struct mesh_ctl_request {
    const char *method;
    const char *target;       /* path and query after the prefix: "/v1/apply?dryRun=1" */
    const char *content_type; /* with a body; NULL when none */
    const char *token;        /* sent as "Authorization: Bearer ..." when not NULL */
    const void *body;
    size_t body_len;
    int connect_timeout_ms;   /* 0: 5000 */
    int timeout_ms;           /* whole exchange after connecting; 0: 120000 */
};

struct mesh_ctl_response {
    int status;
    char *content_type;       /* NULL when absent */
    char *body;               /* NUL-terminated, never NULL after success */
    size_t len;
};

/** Largest response body read. */
#define MESH_CTL_MAX_RESPONSE (1024u << 20)

/**
 * Parses <text> into <u>. Returns MESH_OK, or MESH_EINVAL with the reason in <why>
 * ("https is not supported yet", "bad port"...).
 */
int mesh_ctl_url_parse(const char *text, struct mesh_ctl_url *u, char *why, size_t why_size);

/**
 * Sends <req> to <u> and reads the whole response into <resp> (caller frees it with
 * mesh_ctl_response_free). Returns MESH_OK (any HTTP status), MESH_EIO when the server could
 * not be reached (name not resolved, connection refused, connect timed out: <why> is the
 * reason in lower case, e.g. "connection refused"), or MESH_EPROTO when the exchange failed
 * after connecting (<why> says how).
 */
int mesh_ctl_http_do(const struct mesh_ctl_url *u, const struct mesh_ctl_request *req,
                     struct mesh_ctl_response *resp, char *why, size_t why_size);
void mesh_ctl_response_free(struct mesh_ctl_response *resp);

#endif /* MESH_ROLES_CTL_HTTP_H */
