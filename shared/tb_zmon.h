/* tb_zmon — a ZeroMQ socket's events (zmq_socket_monitor) read through an
 * inproc PAIR socket, opened and stopped without hanging libzmq.
 *
 * libzmq's I/O thread sends each event with a blocking send while it holds
 * the watched socket's monitor lock. Two things follow:
 * - When the queue between the monitor and the reader is full, the I/O
 *   thread waits for the reader, and with it every connection of the context
 *   (no accept, no message). With libzmq's default limits the queue holds
 *   2,000 events (1,000 on each side of the inproc pipe): two thousand peers
 *   that connect while the reader is busy would stall the bus. The reader's
 *   side here holds `queue` events more (TB_ZMON_QUEUE for the programs), a
 *   fixed bound on the events that wait: each a small message, with its
 *   endpoint's text when that is longer than 33 bytes.
 * - Stopping the monitor takes that lock. Stopped while the I/O thread waits
 *   on a full queue nobody reads any more, it never returns, and neither does
 *   the program's shutdown. tb_zmon_close stops the monitor on a thread of
 *   its own while it keeps emptying the queue, so the I/O thread always gets
 *   on and the stop always gets the lock (should no thread be had, it
 *   empties the queue first and stops then, which the I/O thread could only
 *   block by filling the whole queue in between).
 *
 * Not thread-safe: one thread reads and closes a monitor (another may have
 * opened it before handing it over); nobody may use the watched socket
 * while the monitor closes. */
#ifndef TB_ZMON_H
#define TB_ZMON_H

#include <stddef.h>
#include <stdint.h>

#define TB_ZMON_QUEUE    65536 /* events the reader's side holds (the programs' monitors) */
#define TB_ZMON_ADDR_MAX 256   /* bytes of an event's endpoint, with the NUL */

typedef struct {
    void *watched; /* borrowed */
    void *pair;    /* the reader's end, or NULL when not open */
} tb_zmon_t;

typedef struct {
    uint16_t event; /* ZMQ_EVENT_* */
    uint32_t value; /* the event's value: a descriptor, an errno, a protocol error */
    int addr_cut;   /* the endpoint was longer than addr holds (addr is cut) */
    char addr[TB_ZMON_ADDR_MAX];
} tb_zmon_event_t;

/* Watch sock's events (a ZMQ_EVENT_* mask) through a new PAIR socket of
 * zctx whose side of the queue holds `queue` events (> 0). Call before sock
 * connects or binds, so that no event is missed; the monitor must be closed
 * before sock. what names sock in an error ("the bus socket"). Returns 0,
 * or TB_EIO with the reason in err (m is then closed). */
int tb_zmon_open(tb_zmon_t *m, void *zctx, void *sock, const char *what, int events, int queue,
                 char *err, size_t errsize);

/* The reader's socket, for zmq_poll; NULL when not open. */
void *tb_zmon_socket(const tb_zmon_t *m);

/* The next waiting event into *ev, without waiting. Returns 1 when one was
 * read, 0 when none waits (or m is not open). Malformed events (too short a
 * first frame) are skipped. */
int tb_zmon_next(tb_zmon_t *m, tb_zmon_event_t *ev);

/* Stop the monitor (emptying the queue meanwhile, the events dropped) and
 * close the reader. Safe on a closed or zeroed m; m is zeroed; errno is kept. */
void tb_zmon_close(tb_zmon_t *m);

#endif
