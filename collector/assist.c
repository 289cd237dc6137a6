/* assist — see assist.h. */
#include "assist.h"

#include "tb_time.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* How long a thread polls (yielding the core to anything runnable) before
 * it sleeps: the loop for a job to end, the other thread for the next job
 * while jobs come back to back (gaps shorter than this); after a longer gap
 * it polls only briefly, so that an idle collector sleeps. */
#define SPIN_NS       (1 * TB_NS_PER_MS)
#define SPIN_SHORT_NS (50 * TB_NS_PER_MS / 1000)

struct tb_assist {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a job, or the end, for the thread */
    pthread_cond_t done; /* the job returned, for the loop */
    tb_assist_fn fn;     /* the job handed over last (written before posted) */
    void *arg;
    atomic_ulong posted;   /* jobs handed over */
    atomic_ulong finished; /* jobs returned */
    atomic_int sleeping;   /* the thread waits on wake */
    atomic_int waiting;    /* the loop waits on done */
    atomic_int quit;
};

/* Poll until *v != old (differs: 1) or ns pass (0). */
static int s_spin_ne(atomic_ulong *v, unsigned long old, uint64_t ns)
{
    uint64_t until = tb_time_mono_ns() + ns;
    for (;;) {
        if (atomic_load(v) != old) {
            return 1;
        }
        if (tb_time_mono_ns() >= until) {
            return 0;
        }
        sched_yield();
    }
}

static void *s_main(void *arg)
{
    tb_assist_t *a = arg;
    unsigned long seen = 0;
    uint64_t spin = SPIN_SHORT_NS;
    for (;;) {
        uint64_t idle_from = tb_time_mono_ns();
        if (!s_spin_ne(&a->posted, seen, spin)) {
            /* Sleep. The flag is set before posted is looked at, and the
             * loop looks at the flag after it posts: one of the two sees
             * the other (both sequentially consistent), and the loop
             * signals under the lock, which this thread holds until it
             * waits. */
            pthread_mutex_lock(&a->lock);
            atomic_store(&a->sleeping, 1);
            while (atomic_load(&a->posted) == seen && !atomic_load(&a->quit)) {
                pthread_cond_wait(&a->wake, &a->lock);
            }
            atomic_store(&a->sleeping, 0);
            pthread_mutex_unlock(&a->lock);
        }
        if (atomic_load(&a->posted) == seen) {
            break; /* quit, with no job left */
        }
        spin = tb_time_mono_ns() - idle_from < SPIN_NS ? SPIN_NS : SPIN_SHORT_NS;
        a->fn(a->arg);
        seen++;
        atomic_store(&a->finished, seen);
        if (atomic_load(&a->waiting)) {
            pthread_mutex_lock(&a->lock);
            pthread_cond_signal(&a->done);
            pthread_mutex_unlock(&a->lock);
        }
    }
    return NULL;
}

tb_assist_t *tb_assist_start(void)
{
    tb_assist_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return NULL;
    }
    atomic_init(&a->posted, 0);
    atomic_init(&a->finished, 0);
    atomic_init(&a->sleeping, 0);
    atomic_init(&a->waiting, 0);
    atomic_init(&a->quit, 0);
    int rc = pthread_mutex_init(&a->lock, NULL);
    if (rc != 0) {
        free(a);
        errno = rc;
        return NULL;
    }
    if ((rc = pthread_cond_init(&a->wake, NULL)) != 0) {
        goto fail_lock;
    }
    if ((rc = pthread_cond_init(&a->done, NULL)) != 0) {
        goto fail_wake;
    }
    if ((rc = pthread_create(&a->thread, NULL, s_main, a)) != 0) {
        goto fail_done;
    }
    return a;
fail_done:
    pthread_cond_destroy(&a->done);
fail_wake:
    pthread_cond_destroy(&a->wake);
fail_lock:
    pthread_mutex_destroy(&a->lock);
    free(a);
    errno = rc;
    return NULL;
}

void tb_assist_stop(tb_assist_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_assist_t *a = *p;
    *p = NULL;
    tb_assist_end(a);
    pthread_mutex_lock(&a->lock);
    atomic_store(&a->quit, 1);
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->done);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void tb_assist_begin(tb_assist_t *a, tb_assist_fn fn, void *arg)
{
    a->fn = fn;
    a->arg = arg;
    atomic_fetch_add(&a->posted, 1); /* publishes fn and arg */
    if (atomic_load(&a->sleeping)) {
        pthread_mutex_lock(&a->lock);
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->lock);
    }
}

void tb_assist_end(tb_assist_t *a)
{
    unsigned long want = atomic_load(&a->posted);
    unsigned long now = atomic_load(&a->finished);
    if (now == want || (s_spin_ne(&a->finished, now, SPIN_NS) &&
                        atomic_load(&a->finished) == want)) {
        return;
    }
    pthread_mutex_lock(&a->lock);
    atomic_store(&a->waiting, 1);
    while (atomic_load(&a->finished) != want) {
        pthread_cond_wait(&a->done, &a->lock);
    }
    atomic_store(&a->waiting, 0);
    pthread_mutex_unlock(&a->lock);
}
