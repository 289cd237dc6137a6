/* guard — who may talk to the collector when CURVE is on: the ZAP handler
 * (ZeroMQ's authentication protocol, rfc.zeromq.org spec 27) and its
 * allow-lists.
 *
 * With CURVE, libzmq asks whoever is bound to inproc://zeromq.zap.01 about
 * every client that completed the CURVE handshake with one of the
 * collector's sockets. If nothing is bound there, libzmq lets every client
 * in: the handler must be running before any socket binds or connects, and
 * the collector must stop when it is gone. The guard is that handler, a
 * thread of its own (CZMQ's actor pattern: a thread plus a pipe, a
 * synchronous start, $TERM to stop). It answers from three allow-lists,
 * directories of public certificates (tb_curve.h):
 *   control domain   act_dir: may start, stop, forget and read;
 *                    read_dir: may only read (status, stats, streams, db)
 *   bus domain       probe_dir: probes that may send
 * and gives each client it lets in a User-Id (its public key, Z85) and the
 * message properties TB_GUARD_PROP_ROLE ("act", "read" or "probe") and
 * TB_GUARD_PROP_NAME (the file its key came from), which the collector reads
 * from every message with zmq_msg_gets.
 *
 * The directories are read again when they change (at the next handshake,
 * at most once a second otherwise): adding or removing a file takes effect
 * without a restart, for new connections. A directory that cannot be read
 * any more lets nobody in.
 *
 * It also watches the control socket's handshakes (tb_guard_watch): clients
 * without CURVE, or with another server key, never reach ZAP; they are
 * counted and logged here.
 *
 * A handler that dies (it does not, short of a bug or memory running out)
 * leaves its ZAP socket bound and unanswered, so handshakes wait instead of
 * passing, and makes tb_guard_dead_fd readable: the collector's loop ends
 * then, and the program with it.
 *
 * Threads: tb_guard_* are called by the collector's thread only; the
 * counters are read under a lock. */
#ifndef TB_GUARD_H
#define TB_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define TB_GUARD_DOMAIN_BUS     "tapbus-bus"
#define TB_GUARD_DOMAIN_CONTROL "tapbus-control"
#define TB_GUARD_PROP_ROLE      "X-Tapbus-Role"
#define TB_GUARD_PROP_NAME      "X-Tapbus-Cert"
#define TB_GUARD_MAX_KEYS       4096 /* keys of one allow-list; more are left out, with a warning */
#define TB_GUARD_DETAIL_MAX     240

typedef struct {
    const char *act_dir;   /* --curve-allow, or NULL */
    const char *read_dir;  /* --curve-allow-read, or NULL */
    const char *probe_dir; /* --curve-allow-probes, or NULL (no probe gets in) */
} tb_guard_config_t;

typedef struct {
    uint64_t allowed;                    /* clients let in, all domains */
    uint64_t refused_control;            /* control clients whose key is in no list */
    uint64_t refused_bus;                /* probes whose key is not in probe_dir */
    uint64_t control_handshake_failures; /* control clients without CURVE or with another
                                            server key (tb_guard_watch) */
    size_t act_keys, read_keys, probe_keys; /* keys in each list now */
    char last_refused[TB_GUARD_DETAIL_MAX]; /* the latest refusal in words, "" before any */
} tb_guard_counters_t;

typedef struct tb_guard tb_guard_t;

/* Read the allow-lists and bind the ZAP endpoint in zctx (borrowed). A
 * directory that cannot be read is an error. NULL with a one-line reason in
 * err. cfg's strings must outlive the guard. */
tb_guard_t *tb_guard_new(void *zctx, const tb_guard_config_t *cfg, char *err, size_t errsize);

/* Watch the handshakes of sock (the control socket; borrowed: it must stay
 * open until tb_guard_unwatch or tb_guard_destroy). Before tb_guard_start
 * and before sock binds. 0 or TB_EIO. */
int tb_guard_watch(tb_guard_t *g, void *sock, char *err, size_t errsize);

/* Stop watching (before the watched socket is closed; the guard keeps
 * answering ZAP). Waits for the handler thread to close the monitor, or to
 * have ended. Harmless when nothing is watched, and a second time. */
void tb_guard_unwatch(tb_guard_t *g);

/* Start the handler thread; it answers from now on. 0 or TB_EIO. */
int tb_guard_start(tb_guard_t *g, char *err, size_t errsize);

/* A descriptor that becomes readable when the handler thread has ended:
 * poll it for input. */
int tb_guard_dead_fd(const tb_guard_t *g);

/* End the handler thread as a failure would: its ZAP socket stays bound
 * and unanswered, the dead descriptor becomes readable. For tests of what
 * the collector does then. */
void tb_guard_halt(tb_guard_t *g);

/* A copy of the counters. */
void tb_guard_counters(tb_guard_t *g, tb_guard_counters_t *out);

/* Stop the thread and release everything; before the context is
 * terminated. Accepts NULL, sets *p = NULL. */
void tb_guard_destroy(tb_guard_t **p);

#endif
