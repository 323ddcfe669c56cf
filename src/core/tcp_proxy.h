/*
 * TCP and TLS routes in the engine (tcp_proxy.c): between conn.c, which owns
 * the downstream socket, and the listener's tcp_routes. A connection on a
 * listener with tcp_routes is first "sniffing" (the routes that need no SNI
 * were tried at accept; one with an SNI condition waits for the ClientHello),
 * then either proxied as bytes to an endpoint, handed to HTTP, or closed.
 */
#ifndef MESH_CORE_TCP_PROXY_H
#define MESH_CORE_TCP_PROXY_H

#include "core/proxy-int.h"
#include "core/snapshot_l4.h"

/* How long a connection may take to send its ClientHello before it is routed without SNI. */
#define MESH_L4_HELLO_TIMEOUT_MS 5000

enum mesh_l4_verdict {
    MESH_L4_HTTP = 0,      /* serve the connection as HTTP (c->in kept as it is) */
    MESH_L4_TAKEN,         /* tcp_proxy.c owns it now (c->proto MESH_CONN_L4), or closed it */
};

/**
 * A connection arrived on listener <lc> (lc->l4 != NULL); c->dst holds its
 * destination. Routes it if it can now, or starts waiting for the ClientHello.
 */
enum mesh_l4_verdict mesh_l4_accept(struct mesh_conn *c, const struct mesh_listener_cfg *lc);
/** Bytes arrived in c->in (c->proto == MESH_CONN_L4). Returns HTTP to fall back. */
enum mesh_l4_verdict mesh_l4_on_down_read(struct mesh_conn *c);
/** The client sent FIN (after its bytes went through mesh_l4_on_down_read). HTTP: fall back. */
enum mesh_l4_verdict mesh_l4_on_down_eof(struct mesh_conn *c);
/** c->out drained below MESH_BUF_LOW. */
void mesh_l4_on_down_written(struct mesh_conn *c);
/** Teardown of the downstream connection: frees everything of the L4 side. */
void mesh_l4_free(struct mesh_conn *c);
/** The connection closes: the upstream side's reads and writes leave the batch. */
void mesh_l4_cancel_io(struct mesh_conn *c);

/**
 * The route matching: tries lc->l4's routes from *<next> for a connection to <dst>.
 * Returns the first that matches. NULL with *<wait> set: a route needs the server
 * name and <sni_known> is false (*<next> is that route: walk again from there once
 * the ClientHello is read, <sni> NULL when it had none). NULL without: no route.
 */
const struct mesh_tcp_route *mesh_l4_walk(const struct mesh_listener_l4 *l4,
                                          const struct sockaddr_storage *dst, socklen_t dst_len,
                                          size_t *next, bool sni_known, const char *sni,
                                          bool *wait);

/**
 * Would passing <c> through to its original destination reach this proxy? True
 * when the connection was not redirected (its destination is the socket's own
 * address: a client that dialled the listener), when the destination is
 * another listener or the admin of <snap> (one on 0.0.0.0 / :: counts for
 * loopback destinations), or when there is no destination at all.
 */
bool mesh_l4_dst_is_self(const struct mesh_conn *c, const struct mesh_snapshot *snap);
/*
 * A passthrough refused because it would loop (counted in passthrough_loop): true when the
 * worker should warn about it, at most once every 10 s, so that a client that keeps
 * dialling the listener does not fill the log (the rest go at debug level).
 */
bool mesh_l4_loop_warn(struct mesh_worker *w);
/** Is <port> one of u->http_ports (a binary search)? */
bool mesh_l4_http_port(const struct mesh_unmatched *u, uint16_t port);
/** "10.0.0.1:80" / "[::1]:80" of c->dst, or "(unknown)", into <buf>. */
void mesh_l4_dst_str(const struct mesh_conn *c, char *buf, size_t size);

/* Implemented by conn.c: the connection turned out to be HTTP outside a read (ClientHello
 * timeout); its bytes are still in c->in. */
void mesh_conn_serve_http(struct mesh_conn *c);

#endif /* MESH_CORE_TCP_PROXY_H */
