/* tb_zmon — a socket's events through a PAIR socket that never stalls
 * libzmq's I/O thread for long and stops without a deadlock (tb_zmon.h). */
#include "tb_zmon.h"

#include "tb_err.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

/* Monitors opened so far: each inproc address is new, even where a closed
 * monitor's address is still being released. */
static atomic_ulong s_opened;

int tb_zmon_open(tb_zmon_t *m, void *zctx, void *sock, const char *what, int events, int queue,
                 char *err, size_t errsize)
{
    memset(m, 0, sizeof *m);
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://tapbus-mon-%lu", atomic_fetch_add(&s_opened, 1));
    if (zmq_socket_monitor(sock, addr, events) != 0) {
        snprintf(err, errsize, "cannot watch %s: %s", what, zmq_strerror(errno));
        return TB_EIO;
    }
    m->watched = sock;
    /* Connected before any event is sent (the monitor drops what it cannot
     * deliver); the queue of an inproc pipe is the sum of both sides'. */
    int linger = 0;
    int hwm = queue > 0 ? queue : 1;
    m->pair = zmq_socket(zctx, ZMQ_PAIR);
    if (m->pair == NULL || zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(m->pair, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_connect(m->pair, addr) != 0) {
        snprintf(err, errsize, "cannot read the events of %s: %s", what, zmq_strerror(errno));
        tb_zmon_close(m);
        return TB_EIO;
    }
    return 0;
}

void *tb_zmon_socket(const tb_zmon_t *m)
{
    return m->pair;
}

/* The rest of a message whose first frame was read. */
static void s_skip_rest(void *pair, zmq_msg_t *last)
{
    while (zmq_msg_more(last)) {
        zmq_msg_close(last);
        zmq_msg_init(last);
        if (zmq_msg_recv(last, pair, 0) < 0) {
            break;
        }
    }
}

int tb_zmon_next(tb_zmon_t *m, tb_zmon_event_t *ev)
{
    while (m->pair != NULL) {
        /* An event: a frame of 6 bytes (event number, value; native byte
         * order) and a frame with the endpoint; a newer libzmq may send
         * more frames. */
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        zmq_msg_init(&addr);
        if (zmq_msg_recv(&head, m->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            zmq_msg_close(&addr);
            return 0;
        }
        int ok = zmq_msg_size(&head) >= 6;
        if (ok) {
            memcpy(&ev->event, zmq_msg_data(&head), sizeof ev->event);
            memcpy(&ev->value, (const uint8_t *)zmq_msg_data(&head) + 2, sizeof ev->value);
        }
        ev->addr[0] = '\0';
        ev->addr_cut = 0;
        if (zmq_msg_more(&head) && zmq_msg_recv(&addr, m->pair, 0) >= 0) {
            size_t n = zmq_msg_size(&addr);
            ev->addr_cut = n >= sizeof ev->addr;
            n = ev->addr_cut ? sizeof ev->addr - 1 : n;
            memcpy(ev->addr, zmq_msg_data(&addr), n);
            ev->addr[n] = '\0';
            s_skip_rest(m->pair, &addr);
        } else {
            s_skip_rest(m->pair, &head);
        }
        zmq_msg_close(&head);
        zmq_msg_close(&addr);
        if (ok) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    void *watched;
    atomic_int done;
} stopper_t;

static void *s_stop(void *arg)
{
    stopper_t *st = arg;
    zmq_socket_monitor(st->watched, NULL, 0);
    atomic_store(&st->done, 1);
    return NULL;
}

void tb_zmon_close(tb_zmon_t *m)
{
    int saved = errno;
    tb_zmon_event_t ev;
    if (m->watched != NULL && m->pair != NULL) {
        /* The stop waits for the lock the I/O thread holds while it waits
         * for room in the queue: the queue is emptied until the stop is
         * through. */
        stopper_t st = {.watched = m->watched};
        atomic_init(&st.done, 0);
        pthread_t thread;
        if (pthread_create(&thread, NULL, s_stop, &st) == 0) {
            while (!atomic_load(&st.done)) {
                if (tb_zmon_next(m, &ev) != 1) {
                    zmq_pollitem_t it = {.socket = m->pair, .events = ZMQ_POLLIN};
                    zmq_poll(&it, 1, 1);
                }
            }
            pthread_join(thread, NULL);
            m->watched = NULL;
        } else {
            /* No thread to be had: empty the queue first, which leaves the
             * I/O thread a moment to fill all of it again (only then would
             * the stop below wait for ever). */
            while (tb_zmon_next(m, &ev) == 1) {
            }
        }
    }
    if (m->watched != NULL) {
        zmq_socket_monitor(m->watched, NULL, 0);
    }
    if (m->pair != NULL) {
        zmq_close(m->pair);
    }
    memset(m, 0, sizeof *m);
    errno = saved;
}
