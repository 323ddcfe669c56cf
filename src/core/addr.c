#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include "core/addr.h"

int mesh_addr_split(const char *s, char *host, size_t hsize, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    }
    if (hlen >= hsize)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    /* digits only: strtol would also take "+80", " 80" and "-0" */
    const char *d = colon + 1;
    long p = 0;
    if (!*d)
        return -1;
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        p = p * 10 + (*d - '0');
        if (p > 65535)
            return -1;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

int mesh_addr_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1;
}

int mesh_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    uint16_t port;
    if (mesh_addr_split(s, host, sizeof(host), &port))
        return -1;
    return mesh_addr_sockaddr(host, port, ss, len);
}
