/*
 * The control plane's resource API (docs/control.md): JSON (YAML accepted in request bodies)
 * over HTTP/1.1 and HTTP/2, served by the control role on the engine's "api" handler.
 *
 * Threads: one struct mesh_control_api uses one store connection; every call must come from
 * one thread (the control role's single worker).
 */
#ifndef MESH_ROLES_CONTROL_API_H
#define MESH_ROLES_CONTROL_API_H

#include "core/common.h"

struct mesh_control_api;
struct mesh_store;
struct mesh_stream;

/* Largest request body the API reads (413 beyond): a config file, not data. */
#define MESH_CONTROL_MAX_BODY (64u << 20)

/** One request, as the API sees it (borrowed views). */
struct mesh_api_request {
    const char *method;
    size_t method_len;
    const char *target;         /* path with its query string: "/v1/resources?kind=vs" */
    size_t target_len;
    const char *authorization;  /* the Authorization header, NULL when absent */
    size_t authorization_len;
    const char *body;
    size_t body_len;
    bool peer_loopback;         /* the client connected from 127.0.0.0/8 or ::1 */
};

/** The answer; the caller frees <body> (mesh_api_response_free). */
struct mesh_api_response {
    int status;
    const char *content_type;   /* static string */
    const char *allow;          /* 405: the Allow header (static), else NULL */
    bool auth_challenge;        /* 401: send WWW-Authenticate */
    char *body;                 /* malloc'd */
    size_t len;
};

/**
 * An API over <st> (borrowed: it must outlive the API) that accepts <token> (copied) as
 * the bearer token. Returns NULL when <token> is empty.
 */
struct mesh_control_api *mesh_control_api_new(struct mesh_store *st, const char *token);
struct mesh_registry;
/** Serves /v1/register and /v1/registry from <r> (borrowed; control_registry.h). */
void mesh_control_api_set_registry(struct mesh_control_api *api, struct mesh_registry *r);
/** Frees the API (the store is the caller's); NULL is fine. */
void mesh_control_api_free(struct mesh_control_api *api);

/** Serves one request into <resp> (filled in full; free it with mesh_api_response_free). */
void mesh_control_api_serve(struct mesh_control_api *api, const struct mesh_api_request *req,
                            struct mesh_api_response *resp);
void mesh_api_response_free(struct mesh_api_response *resp);

/**
 * The API's token rule (docs/control.md, Authentication) for endpoints served elsewhere (the
 * push endpoints): true when <req> may go on; otherwise <resp> holds the 401 to send.
 */
bool mesh_control_api_authorize(struct mesh_control_api *api, const struct mesh_api_request *req,
                                bool mutation, struct mesh_api_response *resp);

/** The engine's handler (handler.h mesh_handler_fn): <arg> is the struct mesh_control_api. */
void mesh_control_api_handle(void *arg, struct mesh_stream *s);

/** True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 written as text. */
bool mesh_control_is_loopback(const char *ip);

/** Percent-decodes <len> bytes of <s> (and '+' as a space when <plus_space>), malloc'd;
 * NULL on a bad escape or a NUL. */
char *mesh_control_url_decode(const char *s, size_t len, bool plus_space);

#endif /* MESH_ROLES_CONTROL_API_H */
