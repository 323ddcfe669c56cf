/*
 * meshd ctl commands that talk to the control plane's resource API (docs/control.md):
 * apply, get, delete, history, diff, rollback. Each takes the arguments after "ctl"
 * (<argv>[0] is the command's name) and returns the exit code: 0 ok, 1 errors, 2 usage.
 *
 * The server is --server URL, else $MESHD_SERVER, else http://127.0.0.1:15010; the token
 * is read from --token-file FILE, else $MESHD_TOKEN (the token itself), else
 * ./meshd-data/token when that file exists.
 */
#ifndef MESH_ROLES_CTL_CLIENT_H
#define MESH_ROLES_CTL_CLIENT_H

#define MESH_CTL_DEFAULT_SERVER "http://127.0.0.1:15010"
#define MESH_CTL_DEFAULT_TOKEN_FILE "meshd-data/token"

int mesh_ctl_apply(int argc, char **argv);
int mesh_ctl_get(int argc, char **argv);
int mesh_ctl_delete(int argc, char **argv);
int mesh_ctl_history(int argc, char **argv);
int mesh_ctl_diff(int argc, char **argv);
int mesh_ctl_rollback(int argc, char **argv);

/**
 * Every resource of the control plane at <server> (NULL: MESHD_SERVER or the
 * default) as the text of a JSON "kind: List" (caller frees), or NULL after printing why,
 * with <rc> the exit code to use.
 */
char *mesh_ctl_fetch_all(const char *server, const char *token_file, int *rc);

#endif /* MESH_ROLES_CTL_CLIENT_H */
