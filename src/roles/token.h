#ifndef MESH_ROLES_TOKEN_H
#define MESH_ROLES_TOKEN_H

/**
 * The first word of file <path> (a token file: surrounding blanks and newlines dropped),
 * malloc'd; NULL with errno set (ENODATA: the file is empty).
 */
char *mesh_token_read(const char *path);

#endif /* MESH_ROLES_TOKEN_H */
