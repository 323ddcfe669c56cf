/*
 * Batched socket I/O: the reads and writes a worker's loop turn asks for are
 * issued together, in one io_uring_enter(2), at the end of the turn.
 *
 * Why: on the virtual machines meshd runs on, entering the kernel is the
 * dominant cost of a proxied request (a null system call takes ~1 us here;
 * a send+recv pair on loopback 6-8 us as two system calls, 2.6-3.2 us when
 * twenty of them share one io_uring_enter). A proxy's four I/O calls per
 * request become a fraction of one.
 *
 * The model stays synchronous, so the protocol code keeps its shape: every
 * operation is issued non-blocking (MSG_DONTWAIT), so the kernel completes it
 * inside the io_uring_enter that submits it, with -EAGAIN where a plain call
 * would have returned EAGAIN. Readiness still comes from libevent (epoll).
 * Without io_uring (an old kernel, a seccomp profile, `--io syscalls`) the same
 * queue runs one recv/sendmsg per operation, at the same point of the turn.
 *
 * Ownership: an op is embedded in the connection that owns it; the batch only
 * links queued ops. An owner frees its ops only from a libevent callback
 * (deferred teardown), never while mesh_io_batch_run() runs, and cancels them
 * first (mesh_io_cancel). Buffers stay the owner's.
 */
#ifndef MESH_CORE_IO_BATCH_H
#define MESH_CORE_IO_BATCH_H

#include "core/common.h"
#include <sys/types.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include "core/list.h"

enum mesh_io_mode {
    MESH_IO_AUTO = 0,   /* io_uring when the kernel allows it, else system calls */
    MESH_IO_URING,      /* io_uring or fail */
    MESH_IO_SYSCALLS,   /* one system call per operation */
};

struct mesh_io_op;
/** <res>: bytes moved, 0 at end of stream (reads), or -errno (-EAGAIN: would block). */
typedef void (*mesh_io_done_fn)(struct mesh_io_op *op, ssize_t res);
/** Produces a write op's bytes late, right before the round that would send them. */
typedef void (*mesh_io_fill_fn)(struct mesh_io_op *op);

struct mesh_io_op {
    struct mesh_list link;      /* in the batch's queue while queued */
    struct evbuffer *buf;       /* read: appended to; write: sent from and drained */
    mesh_io_done_fn done;
    int fd;
    bool write;
    bool queued;
    int16_t slot;               /* index in the round in flight, else -1 */
    size_t max;                 /* read: at most this many bytes */
    size_t before;              /* write: buffer length when it was issued */
    mesh_io_fill_fn fill;       /* optional (mesh_io_want_fill); set after mesh_io_op_init */
    struct mesh_list fill_link; /* in the batch's fill list while fill_queued */
    bool fill_queued;
    bool hup;                   /* read: the peer's FIN waits behind the bytes (EV_CLOSED) */
    bool probe;                 /* read: issued with no event to go by (mesh_io_probe) */
    bool more;                  /* read, in its done callback: see mesh_io_reread */
};

struct mesh_io_batch;

/** A batch for one worker thread; NULL with <err> set when <mode> cannot be had. */
struct mesh_io_batch *mesh_io_batch_new(enum mesh_io_mode mode, char *err, size_t errlen);
void mesh_io_batch_free(struct mesh_io_batch *b);
/** True when operations go through io_uring. */
bool mesh_io_batch_uring(const struct mesh_io_batch *b);
/** Rounds submitted and operations done so far (for /stats). */
void mesh_io_batch_counts(const struct mesh_io_batch *b, uint64_t *rounds, uint64_t *ops);

/** Sets up an op of a connection; <write> picks the direction. */
void mesh_io_op_init(struct mesh_io_op *op, int fd, struct evbuffer *buf, bool write,
                     mesh_io_done_fn done);
/** Queues <op> for the end of this turn (no-op when already queued). Reads take up to <max>. */
void mesh_io_queue(struct mesh_io_batch *b, struct mesh_io_op *op, size_t max);
/**
 * Asks for <op>'s fill callback before the next round is issued, once however often it
 * is asked. Why: an owner whose bytes come from a serializer (an HTTP/2 session) runs it
 * once a turn instead of once per call, so a response's HEADERS, DATA and END_STREAM are
 * framed together. The callback runs between rounds, never inside another owner's
 * callback; it may queue, cancel or close like a done callback.
 */
void mesh_io_want_fill(struct mesh_io_batch *b, struct mesh_io_op *op);
/** Runs <op>'s fill now if one was asked for (an owner about to judge its buffer, e.g. to
 * close once it is empty, needs the bytes the fill would produce). */
void mesh_io_fill_now(struct mesh_io_op *op);
/**
 * In a read's done callback: true when the read may have left something in the socket.
 * It filled all the room it had, or the readiness event said the peer's FIN came with
 * the bytes (EV_CLOSED: <hup>, which the owner's event callback sets), or it was a probe
 * (mesh_io_probe) that found bytes. The batch decides it when the read completes. Why it
 * matters: sockets are watched edge-triggered (EV_ET: a level-triggered epoll polls every
 * reported socket again in its next wait, ~2% of a proxied request's CPU), so no new
 * event comes for what is already there. An owner that still reads queues the read again
 * when this is true.
 */
static inline bool mesh_io_reread(const struct mesh_io_op *op)
{
    return op->more;
}
/**
 * Queues a read for an owner that turns reading back on. An edge that came while reading
 * was off is gone, with what it said (a FIN behind the bytes), so a short read is not
 * trusted: the read goes on once until it finds the socket empty.
 */
static inline void mesh_io_probe(struct mesh_io_batch *b, struct mesh_io_op *op, size_t max)
{
    op->probe = true;
    mesh_io_queue(b, op, max);
}
/** For the owner's readiness callback: <what> (libevent's flags) said the peer closed. */
static inline void mesh_io_note_hup(struct mesh_io_op *op, short what)
{
    if (what & EV_CLOSED)
        op->hup = true;
}
/** Forgets <op>: dequeued, its fill dropped, and its result, if one is in flight, dropped. */
void mesh_io_cancel(struct mesh_io_batch *b, struct mesh_io_op *op);
/** Runs the fills asked for, then issues everything queued, in rounds, until nothing is
 * left of either: done and fill callbacks may ask for more. */
void mesh_io_batch_run(struct mesh_io_batch *b);
/** True when ops are queued or fills asked for. */
bool mesh_io_batch_pending(const struct mesh_io_batch *b);
/** Parses "auto" / "uring" / "syscalls"; -1 when it is none of them. */
int mesh_io_mode_parse(const char *s);

#endif /* MESH_CORE_IO_BATCH_H */
