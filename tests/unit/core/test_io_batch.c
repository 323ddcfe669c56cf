/* io_batch: reads and writes of a turn issued together, through io_uring or system calls. */
#include "core/common.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include "core/io_batch.h"
#include "core/mem.h"
#include "../leakcheck.h"

#define NPAIRS 8

/* One end of a socket pair, with its op and what its done callback saw. */
struct end {
    int fd, peer;
    struct evbuffer *buf;
    struct mesh_io_op op;
    ssize_t res[8];
    int calls;
    struct mesh_io_batch *b;
    struct end *cancel;       /* done: cancels this other end's op */
    bool requeue;             /* done: queues itself once more */
    struct end *want_fill;    /* done: asks for this other end's fill */
    int fills;                /* fill: times it ran */
};

static void on_done(struct mesh_io_op *op, ssize_t res)
{
    struct end *e = MESH_CONTAINER_OF(op, struct end, op);
    if (e->calls < 8)
        e->res[e->calls] = res;
    e->calls++;
    if (e->cancel)
        mesh_io_cancel(e->b, &e->cancel->op);
    if (e->requeue) {
        e->requeue = false;
        mesh_io_queue(e->b, op, 100);
    }
    if (e->want_fill) {
        mesh_io_want_fill(e->b, &e->want_fill->op);
        e->want_fill = NULL;
    }
}

/* A late producer: writes what it has been asked for so far, then queues the write. */
static void on_fill(struct mesh_io_op *op)
{
    struct end *e = MESH_CONTAINER_OF(op, struct end, op);
    e->fills++;
    evbuffer_add_printf(e->buf, "fill%d;", e->fills);
    mesh_io_queue(e->b, op, 0);
}

static void end_open(struct end *e, struct mesh_io_batch *b, bool write)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    memset(e, 0, sizeof(*e));
    e->fd = sv[0];
    e->peer = sv[1];
    e->b = b;
    e->buf = evbuffer_new();
    mesh_io_op_init(&e->op, e->fd, e->buf, write, on_done);
}

static void end_close(struct end *e)
{
    mesh_io_cancel(e->b, &e->op);
    evbuffer_free(e->buf);
    close(e->fd);
    if (e->peer >= 0)
        close(e->peer);
}

/* Checks the batch's counts (<rounds> < 0: not checked), closes <n> ends and frees the batch. */
static void finish(struct mesh_io_batch *b, uint64_t want_ops, int64_t want_rounds,
                   struct end *const *ends, size_t n)
{
    uint64_t rounds, ops;
    mesh_io_batch_counts(b, &rounds, &ops);
    cr_expect_eq(ops, want_ops);
    if (want_rounds >= 0)
        cr_expect_eq(rounds, (uint64_t)want_rounds);
    for (size_t i = 0; i < n; i++)
        end_close(ends[i]);
    mesh_io_batch_free(b);
    mesh_assert_no_leaks();
}

/* Runs the test once through io_uring and once with a system call per operation. */
#define BOTH_MODES(name)                                                                           \
    ParameterizedTestParameters(io_batch, name)                                                    \
    {                                                                                              \
        static enum mesh_io_mode modes[] = {MESH_IO_URING, MESH_IO_SYSCALLS};                      \
        return cr_make_param_array(enum mesh_io_mode, modes, 2);                                   \
    }

static struct mesh_io_batch *batch(enum mesh_io_mode mode)
{
    char err[160] = "";
    struct mesh_io_batch *b = mesh_io_batch_new(mode, err, sizeof(err));
    if (!b && mode == MESH_IO_URING)
        cr_skip_test("io_uring unavailable here: %s", err);
    cr_assert_not_null(b, "%s", err);
    cr_assert_eq(mesh_io_batch_uring(b), mode == MESH_IO_URING);
    return b;
}

BOTH_MODES(reads_and_writes)

/* Eight reads with data, one on an empty socket, one at end of stream, and a write: every
 * result arrives, and with io_uring they all took one kernel entry. */
ParameterizedTest(enum mesh_io_mode *mode, io_batch, reads_and_writes)
{
    struct mesh_io_batch *b = batch(*mode);
    struct end r[NPAIRS], empty, eof, w;
    for (int i = 0; i < NPAIRS; i++) {
        end_open(&r[i], b, false);
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "request %d", i);
        cr_assert_eq(write(r[i].peer, msg, (size_t)n), n);
        mesh_io_queue(b, &r[i].op, 4096);
    }
    end_open(&empty, b, false);
    mesh_io_queue(b, &empty.op, 4096);
    end_open(&eof, b, false);
    close(eof.peer);
    eof.peer = -1;
    mesh_io_queue(b, &eof.op, 4096);
    end_open(&w, b, true);
    evbuffer_add_printf(w.buf, "response");
    mesh_io_queue(b, &w.op, 0);
    mesh_io_queue(b, &w.op, 0); /* queued twice: issued once */

    mesh_io_batch_run(b);

    for (int i = 0; i < NPAIRS; i++) {
        char want[32];
        int n = snprintf(want, sizeof(want), "request %d", i);
        cr_expect_eq(r[i].calls, 1);
        cr_expect_eq(r[i].res[0], n);
        cr_expect_eq(evbuffer_get_length(r[i].buf), (size_t)n);
        cr_expect_eq(memcmp(evbuffer_pullup(r[i].buf, -1), want, (size_t)n), 0);
    }
    cr_expect_eq(empty.calls, 1);
    cr_expect_eq(empty.res[0], -EAGAIN);
    cr_expect_eq(evbuffer_get_length(empty.buf), 0);
    cr_expect_eq(eof.calls, 1);
    cr_expect_eq(eof.res[0], 0);
    cr_expect_eq(w.calls, 1);
    cr_expect_eq(w.res[0], 8);
    cr_expect_eq(evbuffer_get_length(w.buf), 0);
    char got[16] = "";
    cr_expect_eq(read(w.peer, got, sizeof(got)), 8);
    cr_expect_str_eq(got, "response");
    struct end *all[NPAIRS + 3] = {&empty, &eof, &w};
    for (int i = 0; i < NPAIRS; i++)
        all[3 + i] = &r[i];
    finish(b, NPAIRS + 3, *mode == MESH_IO_URING ? 1 : NPAIRS + 3, all, NPAIRS + 3);
}

BOTH_MODES(cancel_and_requeue)

/* An owner that closes another connection of the same round drops that one's result; an
 * owner that queues itself again runs in the next round of the same call. */
ParameterizedTest(enum mesh_io_mode *mode, io_batch, cancel_and_requeue)
{
    struct mesh_io_batch *b = batch(*mode);
    struct end a, c, d;
    end_open(&a, b, false);
    end_open(&c, b, false);
    end_open(&d, b, false);
    cr_assert_eq(write(a.peer, "aa", 2), 2);
    cr_assert_eq(write(c.peer, "cc", 2), 2);
    a.cancel = &c;   /* a's result comes first and cancels c, whose read is already done */
    d.requeue = true;
    mesh_io_queue(b, &a.op, 100);
    mesh_io_queue(b, &c.op, 100);
    mesh_io_queue(b, &d.op, 100);
    mesh_io_cancel(b, &d.op);    /* dequeued before the round: never issued */
    mesh_io_queue(b, &d.op, 100);
    mesh_io_batch_run(b);
    cr_expect_eq(a.calls, 1);
    cr_expect_eq(c.calls, 0, "a cancelled op reports nothing");
    cr_expect_eq(evbuffer_get_length(c.buf), 2, "what the kernel read is kept in the buffer");
    cr_expect_eq(d.calls, 2, "requeued from its own callback: a second round");
    cr_expect_eq(d.res[0], -EAGAIN);
    cr_expect_eq(d.res[1], -EAGAIN);
    finish(b, 4, *mode == MESH_IO_URING ? 2 : 4, (struct end *[]){&a, &c, &d}, 3);
}

BOTH_MODES(big_write_and_full_socket)

/* A write offers at most 32 chains: with 40, the batch goes on by itself in a second round. */
ParameterizedTest(enum mesh_io_mode *mode, io_batch, big_write_and_full_socket)
{
    struct mesh_io_batch *b = batch(*mode);
    struct end w;
    end_open(&w, b, true);
    static char chunk[1024];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 40; i++) /* a chain each */
        evbuffer_add_reference(w.buf, chunk, sizeof(chunk), NULL, NULL);
    mesh_io_queue(b, &w.op, 0);
    mesh_io_batch_run(b);
    cr_expect_eq(w.calls, 2);
    cr_expect_eq(w.res[0], 32 * 1024);
    cr_expect_eq(w.res[1], 8 * 1024);
    cr_expect_eq(evbuffer_get_length(w.buf), 0);

    /* more than the socket takes: one partial write, and the rest waits for the owner */
    static char big[1 << 20];
    memset(big, 'y', sizeof(big));
    for (int i = 0; i < 3; i++)
        evbuffer_add(w.buf, big, sizeof(big));
    size_t total = evbuffer_get_length(w.buf);
    mesh_io_queue(b, &w.op, 0);
    mesh_io_batch_run(b);
    size_t left = evbuffer_get_length(w.buf);
    cr_expect_eq(w.calls, 3);
    cr_expect_gt(w.res[2], 0);
    cr_expect_eq((size_t)w.res[2], total - left, "what was reported sent was drained");
    cr_expect_gt(left, 0);
    cr_expect_not(w.op.queued, "a partial write is not retried: the owner waits for POLLOUT");
    /* and the next try, with the socket still full, says so */
    mesh_io_queue(b, &w.op, 0);
    mesh_io_batch_run(b);
    cr_expect_eq(w.res[3], -EAGAIN);
    cr_expect_eq(evbuffer_get_length(w.buf), left);
    size_t got = 0;
    char rb[65536];
    ssize_t n;
    while ((n = read(w.peer, rb, sizeof(rb))) > 0)
        got += (size_t)n;
    cr_expect_eq(got, 40 * 1024 + total - left, "the peer got exactly the bytes drained");
    finish(b, 4, 4, (struct end *[]){&w}, 1); /* 32 + 8 chains, the partial write, -EAGAIN */
}

BOTH_MODES(late_fill)

/* Fills run before the round that sends their bytes, once however often they are asked
 * for; one asked for from a done callback runs before the next round; a cancelled op's
 * fill does not run. */
ParameterizedTest(enum mesh_io_mode *mode, io_batch, late_fill)
{
    struct mesh_io_batch *b = batch(*mode);
    struct end w, r, gone;
    end_open(&w, b, true);
    end_open(&r, b, false);
    end_open(&gone, b, true);
    w.op.fill = on_fill;
    gone.op.fill = on_fill;
    cr_expect_not(mesh_io_batch_pending(b));
    for (int i = 0; i < 3; i++)
        mesh_io_want_fill(b, &w.op);
    mesh_io_want_fill(b, &gone.op);
    cr_expect(mesh_io_batch_pending(b), "a fill asked for is pending work");
    mesh_io_cancel(b, &gone.op);
    cr_assert_eq(write(r.peer, "go", 2), 2);
    r.want_fill = &w;
    mesh_io_queue(b, &r.op, 100);
    mesh_io_fill_now(&r.op); /* none asked for: nothing runs */
    mesh_io_batch_run(b);
    cr_expect_not(mesh_io_batch_pending(b));
    cr_expect_eq(w.fills, 2, "once before the first round, once more after r's done asked");
    mesh_io_want_fill(b, &w.op);
    mesh_io_fill_now(&w.op); /* asked for and run now: not again by the batch */
    cr_expect_eq(w.fills, 3);
    cr_expect_not(w.op.fill_queued);
    mesh_io_batch_run(b);
    cr_expect_eq(w.fills, 3);
    cr_expect_eq(gone.fills, 0);
    cr_expect_eq(w.calls, 3, "a write for each fill");
    cr_expect_eq(r.calls, 1);
    char got[32] = "";
    cr_expect_eq(read(w.peer, got, sizeof(got) - 1), 18);
    cr_expect_str_eq(got, "fill1;fill2;fill3;");
    finish(b, 4, *mode == MESH_IO_URING ? 3 : 4, (struct end *[]){&w, &r, &gone}, 3);
}

/* More ops than one io_uring_enter takes (128): all are done, in several rounds. */
Test(io_batch, more_than_one_round_of_slots)
{
    struct mesh_io_batch *b = batch(MESH_IO_URING);
    enum { N = 300 };
    static struct end e[N];
    for (int i = 0; i < N; i++) {
        end_open(&e[i], b, false);
        cr_assert_eq(write(e[i].peer, "x", 1), 1);
        mesh_io_queue(b, &e[i].op, 16);
    }
    mesh_io_batch_run(b);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(e[i].calls, 1);
        cr_expect_eq(e[i].res[0], 1);
        end_close(&e[i]);
    }
    finish(b, N, 3, NULL, 0);
}

Test(io_batch, modes_parse)
{
    cr_expect_eq(mesh_io_mode_parse("auto"), MESH_IO_AUTO);
    cr_expect_eq(mesh_io_mode_parse("uring"), MESH_IO_URING);
    cr_expect_eq(mesh_io_mode_parse("syscalls"), MESH_IO_SYSCALLS);
    cr_expect_eq(mesh_io_mode_parse("epoll"), -1);
    cr_expect_eq(mesh_io_mode_parse(""), -1);
}

BOTH_MODES(an_empty_read_keeps_no_chain)

/*
 * A read that finds the socket empty leaves its buffer as it found it: the chain reserved
 * for it goes back. An idle keep-alive connection whose last read found nothing kept a
 * 16 KiB chain (draining an already empty evbuffer frees nothing): 1,000 idle connections
 * took 8.9 MiB instead of 4.7.
 */
ParameterizedTest(enum mesh_io_mode *mode, io_batch, an_empty_read_keeps_no_chain)
{
    mesh_mem_use_for_libevent(); /* libevent's chains through the cache, which counts them */
    struct mesh_io_batch *b = batch(*mode);
    struct end e;
    end_open(&e, b, false);
    size_t before = mesh_mem_cached();
    mesh_io_queue(b, &e.op, 16 * 1024);
    mesh_io_batch_run(b);
    cr_expect_eq(e.res[0], -EAGAIN);
    cr_expect_eq(evbuffer_get_length(e.buf), 0);
    cr_expect_eq(mesh_mem_cached(), before + 1, "the reserved chain went back");
    /* and the buffer works as before */
    cr_assert_eq(write(e.peer, "later", 5), 5);
    mesh_io_queue(b, &e.op, 16 * 1024);
    mesh_io_batch_run(b);
    cr_expect_eq(e.res[1], 5);
    cr_expect_eq(memcmp(evbuffer_pullup(e.buf, -1), "later", 5), 0);
    finish(b, 2, -1, (struct end *[]){&e}, 1);
    mesh_mem_thread_flush();
}

BOTH_MODES(reread_says_when_the_socket_may_hold_more)

/*
 * Sockets are edge-triggered, so an owner reads again only when mesh_io_reread says the
 * read may have left something: it filled its room, or it was a probe (reading turned
 * back on, no event to go by) that found bytes. A short read with an event does not.
 */
/* One read of at most <max> (a probe or an event's), run; what mesh_io_reread then says. */
static bool read_then_reread(struct mesh_io_batch *b, struct end *e, size_t max, bool probe)
{
    if (probe)
        mesh_io_probe(b, &e->op, max);
    else
        mesh_io_queue(b, &e->op, max);
    mesh_io_batch_run(b);
    return mesh_io_reread(&e->op);
}

ParameterizedTest(enum mesh_io_mode *mode, io_batch, reread_says_when_the_socket_may_hold_more)
{
    struct mesh_io_batch *b = batch(*mode);
    struct end e;
    end_open(&e, b, false);
    cr_assert_eq(write(e.peer, "0123456789", 10), 10);
    cr_expect(read_then_reread(b, &e, 4, false), "a read that filled its room: read on");
    cr_expect_eq(e.res[0], 4);
    cr_expect_not(read_then_reread(b, &e, 100, false),
                  "a short read after an event: the socket is empty");
    cr_expect_eq(e.res[1], 6);
    cr_assert_eq(write(e.peer, "ab", 2), 2);
    cr_expect(read_then_reread(b, &e, 100, true), "a probe that found bytes: read on once");
    cr_expect_eq(e.res[2], 2);
    cr_expect_not(read_then_reread(b, &e, 100, false), "and stop at the empty socket");
    cr_expect_eq(e.res[3], -EAGAIN);
    cr_assert_eq(write(e.peer, "cd", 2), 2);
    cr_expect_not(read_then_reread(b, &e, 100, false),
                  "the probe is spent: a short read is trusted again");
    finish(b, 5, -1, (struct end *[]){&e}, 1);
}
