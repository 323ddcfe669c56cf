/* Token files (the control plane's bearer token): shared by meshd ctl and the sidecar. */
#include "core/common.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "roles/token.h"

char *mesh_token_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strcspn(s, " \t\r\n");
    s[len] = '\0';
    char *tok = len ? mesh_xstrdup(s) : NULL;
    explicit_bzero(buf, sizeof(buf));
    if (!tok)
        errno = ENODATA;
    return tok;
}
