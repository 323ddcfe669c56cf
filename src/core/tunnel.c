/* Byte tunnels after CONNECT (200) or an Upgrade (101): bytes flow both ways, with backpressure. */
#include "core/common.h"
#include <errno.h>
#include <sys/socket.h>
#include "core/log.h"
#include "core/proxy-int.h"

static void down_to_up(struct mesh_conn *c, struct mesh_upconn *u)
{
    evbuffer_add_buffer(u->out, c->in);
    mesh_upconn_flush(u);
    if (evbuffer_get_length(u->out) >= MESH_BUF_HIGH)
        mesh_conn_set_reading(c, false);
}

static void up_to_down(struct mesh_upconn *u, struct mesh_conn *c)
{
    evbuffer_add_buffer(c->out, u->in);
    mesh_conn_flush(c);
    if (evbuffer_get_length(c->out) >= MESH_BUF_HIGH)
        mesh_upconn_set_reading(u, false);
}

void mesh_tunnel_start(struct mesh_conn *c, struct mesh_upconn *u)
{
    c->tunnel_up = u;
    u->tunnel = true;
    u->tunnel_down = c;
    u->stream = NULL;
    mesh_conn_idle_disarm(c);
    mesh_conn_set_reading(c, true);
    mesh_upconn_set_reading(u, true);
    if (evbuffer_get_length(c->in))
        down_to_up(c, u);
    if (evbuffer_get_length(u->in))
        up_to_down(u, c);
    else
        mesh_conn_flush(c);
}

void mesh_tunnel_on_down_read(struct mesh_conn *c)
{
    struct mesh_upconn *u = c->tunnel_up;
    if (u && !u->dead)
        down_to_up(c, u);
}

void mesh_tunnel_on_up_read(struct mesh_upconn *u, ssize_t n)
{
    struct mesh_conn *c = u->tunnel_down;
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return;
    if (c && !c->dead && evbuffer_get_length(u->in))
        up_to_down(u, c);
    if (n <= 0) {
        /* the upstream is done: the client gets what is buffered, then the close */
        u->tunnel_down = NULL;
        mesh_upconn_close(u);
        if (c && !c->dead) {
            c->tunnel_up = NULL;
            c->closing = true;
            mesh_conn_flush(c);
        }
    }
}

void mesh_tunnel_on_down_written(struct mesh_conn *c)
{
    struct mesh_upconn *u = c->tunnel_up;
    if (u && !u->dead)
        mesh_upconn_set_reading(u, true);
}

void mesh_tunnel_on_up_written(struct mesh_upconn *u)
{
    struct mesh_conn *c = u->tunnel_down;
    if (c && !c->dead)
        mesh_conn_set_reading(c, true);
}

/* The client side ended (EOF or teardown): half-close towards the upstream. */
void mesh_tunnel_down_closed(struct mesh_conn *c)
{
    struct mesh_upconn *u = c->tunnel_up;
    if (!u)
        return;
    if (c->dead) {
        /* teardown: the conn is going away for good */
        c->tunnel_up = NULL;
        u->tunnel_down = NULL;
        mesh_upconn_close(u);
        return;
    }
    mesh_conn_set_reading(c, false);
    if (!u->dead) {
        u->shut_wr_pending = true;
        mesh_upconn_flush(u);
    }
}

void mesh_tunnel_up_closed(struct mesh_upconn *u)
{
    struct mesh_conn *c = u->tunnel_down;
    u->tunnel_down = NULL;
    if (c) {
        c->tunnel_up = NULL;
        mesh_conn_close(c);
    }
}
