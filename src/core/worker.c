/* Worker threads, listeners, snapshot swaps and draining. */
#include "core/common.h"
#include <errno.h>
#include <signal.h>
#include <malloc.h>
#include <sched.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "core/lb.h"
#include "core/log.h"
#include "core/mirror.h"
#include "core/proxy-int.h"
#include "core/runtime.h"

const struct mesh_stat_desc mesh_stat_descs[MESH_STAT__COUNT] = {
#define X(name, type, help) {#name, #type, help},
    MESH_STATS_FIELDS(X)
#undef X
};

struct mesh_snapshot *mesh_worker_snapshot(struct mesh_worker *w)
{
    return w->snap;
}

/* ---- Accept ---- */

struct listen_ctx {
    struct mesh_worker *w;
    size_t idx;
};

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct listen_ctx *lc = arg;
    struct mesh_worker *w = lc->w;
    for (int i = 0; i < 64 && !w->draining; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                mesh_log_warn("accept: %s", strerror(errno));
            return;
        }
        mesh_conn_accept(w, fd, lc->idx, (struct sockaddr *)&ss, sl);
    }
}

/* ---- Snapshot refresh and drain (main thread -> worker) ---- */

static void close_listeners(struct mesh_worker *w)
{
    for (size_t i = 0; i < w->n_listen; i++) {
        if (w->listen_evs[i]) {
            free(event_get_callback_arg(w->listen_evs[i]));
            event_free(w->listen_evs[i]);
            w->listen_evs[i] = NULL;
        }
        if (w->listen_fds[i] >= 0) {
            close(w->listen_fds[i]);
            w->listen_fds[i] = -1;
        }
    }
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_worker *w = arg;
    mesh_log_info("worker %d: drain deadline reached with %u connections open", w->id, w->n_conns);
    event_base_loopexit(w->base, NULL);
}

static void worker_start_drain(struct mesh_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &w->conns)
    {
        struct mesh_conn *c = mesh_list_entry(pos, struct mesh_conn, link);
        mesh_conn_drain(c);
    }
    if (w->n_conns == 0 && w->n_tails == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    uint32_t ms = w->snap->timeouts.drain_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_once(w->base, -1, EV_TIMEOUT, on_drain_deadline, w, &tv);
}

void mesh_worker_conn_gone(struct mesh_worker *w)
{
    if (w->draining && w->n_conns == 0 && w->n_tails == 0)
        event_base_loopexit(w->base, NULL);
}

static void refresh_snapshot(struct mesh_worker *w)
{
    struct mesh_runtime *rt = w->rt;
    pthread_mutex_lock(&rt->lock);
    struct mesh_snapshot *s = rt->current;
    if (s != w->snap)
        mesh_snapshot_ref(s);
    bool drain = rt->draining;
    pthread_mutex_unlock(&rt->lock);
    if (s != w->snap) {
        /* bound before the old snapshot may go: shared lb state survives the reload */
        mesh_lb_worker_snapshot(w->lb, s);
        mesh_snapshot_unref(w->snap);
        w->snap = s;
    }
    if (drain)
        worker_start_drain(w);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    refresh_snapshot(arg);
}

/* Wakes a worker from another thread (its base has no locks: see mesh_runtime_new). */
static void notify_worker(struct mesh_worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->notify_fd, &one, sizeof(one));
    (void)r;
}

/* The I/O batch of a turn, its callbacks sharing one clock read (mesh_worker_now_ms). */
static void worker_io_run(struct mesh_worker *w)
{
    w->turn_clock = true;
    w->now_ms = w->now_ns = 0;
    mesh_io_batch_run(w->io);
    w->turn_clock = false;
}

static uint64_t io_ops_done(const struct mesh_worker *w)
{
    uint64_t rounds, ops;
    mesh_io_batch_counts(w->io, &rounds, &ops);
    return ops;
}

/*
 * Yield-polling, after a turn that did socket I/O. The answer to what the turn wrote is
 * often microseconds away, in the client or the application that shares this machine
 * (a sidecar shares its pod's CPUs). Blocking in epoll_wait now would put the thread to
 * sleep and make that peer wake it: a trip through the idle task, and on a virtual
 * machine an interrupt through the hypervisor to a halted CPU, which costs more than a
 * request. So the worker first yields its CPU (a peer waiting for one runs at once) and
 * then polls without blocking, up to <spin_budget> times, stopping at the first poll
 * that finds work. The budget adapts: doubled (up to --poll-spins) when a poll found
 * work, halved (down to 1) when none did, so under light load a busy turn costs one
 * empty yield and poll more. An idle worker does not spin: only a turn with I/O starts.
 * True when a poll found work or the loop was asked to exit.
 */
static bool worker_spin(struct mesh_worker *w)
{
    uint64_t ops = io_ops_done(w);
    for (unsigned i = 0; i < w->spin_budget; i++) {
        sched_yield();
        event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        worker_io_run(w);
        MESH_STAT_INC(&w->stats, io_spin_polls);
        if (event_base_got_exit(w->base) || event_base_got_break(w->base))
            return true;
        if (io_ops_done(w) != ops) {
            MESH_STAT_INC(&w->stats, io_spin_hits);
            w->spin_budget = MESH_MIN(w->spin_budget * 2, w->rt->poll_spins);
            return true;
        }
    }
    w->spin_budget = MESH_MAX(w->spin_budget / 2, 1u);
    return false;
}

/*
 * One libevent turn (epoll_wait and the callbacks of what is ready), then the
 * socket I/O those callbacks asked for, all at once (io_batch.h); after a turn
 * that did I/O, yield-polling instead of the blocking wait (worker_spin).
 */
static void worker_loop(struct mesh_worker *w)
{
    bool busy = false;
    for (;;) {
        uint64_t before = io_ops_done(w);
        int rc = 0;
        if (!busy || !w->rt->poll_spins || !worker_spin(w))
            rc = event_base_loop(w->base, EVLOOP_ONCE);
        worker_io_run(w);
        uint64_t rounds, ops;
        mesh_io_batch_counts(w->io, &rounds, &ops);
        busy = ops != before;
        atomic_store_explicit(&w->stats.v[MESH_STAT_io_rounds], rounds, memory_order_relaxed);
        atomic_store_explicit(&w->stats.v[MESH_STAT_io_ops], ops, memory_order_relaxed);
        if (rc != 0 || event_base_got_exit(w->base) || event_base_got_break(w->base))
            return;
    }
}

/*
 * Non-blocking turns, each with the I/O it asks for, until nothing is active or queued
 * (deferred teardowns activated by one turn run in the next; at most 64 turns). Never a
 * plain EVLOOP_NONBLOCK loop: a readable socket's callback only queues its read, so
 * libevent would call it again and again without ever returning to the batch (a stop
 * that hung while an upstream closed at the same time).
 */
void mesh_worker_settle(struct mesh_worker *w)
{
    for (int i = 0; i < 64; i++) {
        event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        bool io = w->io && mesh_io_batch_pending(w->io);
        if (io)
            worker_io_run(w);
        if (!io && event_base_get_num_events(w->base, EVENT_BASE_COUNT_ACTIVE) == 0)
            break;
    }
}

static void *worker_main(void *arg)
{
    struct mesh_worker *w = arg;
    worker_loop(w);
    /* close whatever the drain deadline left, then let deferred teardowns run */
    struct mesh_list *pos, *tmp;
    mesh_list_foreach_safe(pos, tmp, &w->conns)
    {
        struct mesh_conn *c = mesh_list_entry(pos, struct mesh_conn, link);
        mesh_conn_close(c);
    }
    mesh_worker_settle(w);
    atomic_fetch_add(&w->rt->workers_done, 1);
    event_active(w->rt->done_ev, EV_TIMEOUT, 0);
    return NULL;
}

/* Main thread: the last worker to finish its drain ends the main loop. */
static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_runtime *rt = arg;
    /* a short grace lets the admin reply that started the drain (/quitquitquit) go out */
    struct timeval grace = {0, 100 * 1000};
    if (atomic_load(&rt->workers_done) == rt->n_workers)
        event_base_loopexit(rt->main_base, &grace);
}

/* ---- Listeners ---- */

static int listen_socket(const struct sockaddr_storage *sa, socklen_t salen, uint16_t port,
                         struct mesh_err *err, const char *path)
{
    struct sockaddr_storage a = *sa;
    if (a.ss_family == AF_INET)
        ((struct sockaddr_in *)&a)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a)->sin6_port = htons(port);
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mesh_err_add(err, 0, 0, path, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, salen) < 0 || listen(fd, 4096) < 0) {
        mesh_err_add(err, 0, 0, path, "cannot listen on port %u: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage a;
    socklen_t l = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        return 0;
    return ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
                                        : ((struct sockaddr_in6 *)&a)->sin6_port);
}

struct event_base *mesh_runtime_worker_base(struct mesh_runtime *rt, unsigned i)
{
    return i < rt->n_workers ? rt->workers[i].base : NULL;
}

struct mesh_runtime *mesh_runtime_new(struct event_base *main_base, struct mesh_snapshot *snap,
                                      unsigned n_workers, struct mesh_err *err)
{
    if (!n_workers)
        n_workers = 1;
    struct mesh_runtime *rt = mesh_xcalloc(1, sizeof(*rt));
    pthread_mutex_init(&rt->lock, NULL);
    rt->current = snap;
    rt->main_base = main_base;
    rt->done_ev = event_new(main_base, -1, 0, on_worker_done, rt);
    rt->n_workers = n_workers;
    rt->poll_spins = MESH_POLL_SPINS_DEFAULT;
    rt->workers = mesh_xcalloc(n_workers, sizeof(*rt->workers));
    rt->lb = mesh_lb_shared_new();
    uint16_t *ports = mesh_xcalloc(snap->n_listeners ? snap->n_listeners : 1, sizeof(*ports));
    rt->listen_ports = ports;
    bool ok = true;
    for (unsigned i = 0; i < n_workers; i++) {
        struct mesh_worker *w = &rt->workers[i];
        w->id = (int)i;
        w->rt = rt;
        /* workers' bases take no locks: nothing touches them from another thread except
         * through the eventfd below (a lock per event_add/del cost ~2% of a request) */
        struct event_config *cfg = event_config_new();
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->snap = mesh_snapshot_ref(snap);
        w->rand_state = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)time(NULL) << 16) ^ (i * 7919u + 1);
        w->lb = mesh_lb_worker_new(rt->lb, w, w->rand_state * 0xD6E8FEB86659FD93ULL);
        mesh_lb_worker_snapshot(w->lb, snap);
        mesh_list_init(&w->conns);
        w->notify = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, on_notify, w);
        event_add(w->notify, NULL);
        w->n_listen = snap->n_listeners;
        w->listen_fds = mesh_xcalloc(w->n_listen, sizeof(int));
        w->listen_evs = mesh_xcalloc(w->n_listen, sizeof(struct event *));
        for (size_t l = 0; l < snap->n_listeners; l++) {
            const struct mesh_listener_cfg *lc = &snap->listeners[l];
            char path[64];
            snprintf(path, sizeof(path), "listeners[%zu]", l);
            uint16_t port = i == 0 ? lc->port : ports[l];
            int fd = ok ? listen_socket(&lc->sa, lc->salen, port, err, path) : -1;
            w->listen_fds[l] = fd;
            if (fd < 0) {
                ok = false;
                continue;
            }
            if (i == 0)
                ports[l] = bound_port(fd);
            struct listen_ctx *ctx = mesh_xcalloc(1, sizeof(*ctx));
            ctx->w = w;
            ctx->idx = l;
            w->listen_evs[l] = event_new(w->base, fd, EV_READ | EV_PERSIST, accept_cb, ctx);
            event_add(w->listen_evs[l], NULL);
        }
    }
    if (!ok) {
        mesh_snapshot_ref(snap); /* the caller keeps its reference on failure */
        mesh_runtime_free(rt);
        return NULL;
    }
    return rt;
}

uint16_t mesh_runtime_listener_port(const struct mesh_runtime *rt, size_t i)
{
    return rt->listen_ports[i];
}

void mesh_runtime_set_access_log(struct mesh_runtime *rt, bool on)
{
    rt->access_log = on;
}

void mesh_runtime_set_io(struct mesh_runtime *rt, enum mesh_io_mode mode, int spins)
{
    rt->io_mode = mode;
    rt->poll_spins = spins < 0 ? MESH_POLL_SPINS_DEFAULT : MESH_MIN((unsigned)spins, MESH_POLL_SPINS_MAX);
}

int mesh_runtime_start(struct mesh_runtime *rt)
{
    /*
     * A batch holds up to 128 reads' 16 KiB buffers at once (io_batch.c), freed together
     * once parsed. With glibc's default 128 KiB trim threshold each round then gave the
     * worker arena's top back (madvise) and faulted it in again on the next: a third of
     * the CPU under load. Keep up to 4 MiB of free heap instead (docs/performance.md).
     */
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    for (size_t i = 0; i < rt->n_workers; i++) {
        struct mesh_worker *w = &rt->workers[i];
        char why[160];
        w->io = mesh_io_batch_new(rt->io_mode, why, sizeof(why));
        w->spin_budget = rt->poll_spins;
        if (!w->io) {
            mesh_log_error("worker %zu: %s (--io syscalls does without)", i, why);
            return MESH_EIO;
        }
        if (mesh_io_batch_uring(w->io))
            MESH_STAT_INC(&w->stats, io_uring_workers);
        else if (i == 0 && rt->io_mode == MESH_IO_AUTO)
            mesh_log_info("io_uring is not available: one system call per socket read and write");
        /* the main thread takes the signals (libevent's evsignal): a worker's epoll_wait
         * or io_uring_enter is never cut short by one */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            mesh_log_error("cannot start worker %zu: %s", i, strerror(rc));
            return MESH_EIO;
        }
    }
    return MESH_OK;
}

static bool same_listeners(const struct mesh_snapshot *a, const struct mesh_snapshot *b)
{
    if (a->n_listeners != b->n_listeners)
        return false;
    for (size_t i = 0; i < a->n_listeners; i++)
        if (a->listeners[i].port != b->listeners[i].port ||
            strcmp(a->listeners[i].address, b->listeners[i].address) != 0)
            return false;
    return true;
}

int mesh_runtime_swap(struct mesh_runtime *rt, struct mesh_snapshot *snap, struct mesh_err *err)
{
    pthread_mutex_lock(&rt->lock);
    struct mesh_snapshot *old = rt->current;
    if (!same_listeners(old, snap)) {
        pthread_mutex_unlock(&rt->lock);
        mesh_err_add(err, 0, 0, "listeners", "listener addresses or ports changed: restart meshd "
                                              "to apply them");
        return MESH_EINVAL;
    }
    rt->current = snap;
    rt->generation++;
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < rt->n_workers; i++)
        notify_worker(&rt->workers[i]);
    mesh_snapshot_unref(old);
    return MESH_OK;
}

struct mesh_snapshot *mesh_runtime_snapshot(struct mesh_runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    struct mesh_snapshot *s = mesh_snapshot_ref(rt->current);
    pthread_mutex_unlock(&rt->lock);
    return s;
}

void mesh_runtime_drain(struct mesh_runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    rt->draining = true;
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < rt->n_workers; i++)
        notify_worker(&rt->workers[i]);
}

bool mesh_runtime_draining(struct mesh_runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    bool d = rt->draining;
    pthread_mutex_unlock(&rt->lock);
    return d;
}

void mesh_runtime_free(struct mesh_runtime *rt)
{
    for (size_t i = 0; i < rt->n_workers; i++) {
        struct mesh_worker *w = &rt->workers[i];
        if (w->thread)
            pthread_join(w->thread, NULL);
        if (!w->base)
            continue;
        close_listeners(w);
        mesh_mirror_free_all(w); /* shadows hold pool connections */
        mesh_pools_free(w);
        mesh_worker_settle(w);
        mesh_stream_worker_free(w); /* after the settle: a teardown it runs may free a stream */
        mesh_io_batch_free(w->io);
        if (w->notify)
            event_free(w->notify);
        if (w->notify_fd >= 0)
            close(w->notify_fd);
        event_base_free(w->base);
        mesh_lb_worker_free(w->lb);
        mesh_snapshot_unref(w->snap);
        free(w->listen_fds);
        free(w->listen_evs);
    }
    free(rt->workers);
    mesh_lb_shared_free(rt->lb);
    free(rt->listen_ports);
    for (size_t i = 0; i < rt->n_handlers; i++)
        free(rt->handlers[i].name);
    event_free(rt->done_ev);
    mesh_snapshot_unref(rt->current);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

void mesh_runtime_stats(struct mesh_runtime *rt, uint64_t out[MESH_STAT__COUNT])
{
    memset(out, 0, sizeof(uint64_t) * MESH_STAT__COUNT);
    for (size_t i = 0; i < rt->n_workers; i++)
        for (size_t k = 0; k < MESH_STAT__COUNT; k++)
            out[k] += atomic_load_explicit(&rt->workers[i].stats.v[k], memory_order_relaxed);
}
