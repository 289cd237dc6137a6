/* assist — a second thread that takes one job at a time off the loop
 * thread: fork and join.
 *
 * The loop hands a job over (tb_assist_begin), does work of its own that
 * touches none of the job's data, and waits for the job to be done
 * (tb_assist_end) before it reads that data again. The collector uses it to
 * count a chunk into a stream's cumulative top-N tables while the loop counts
 * the same chunk into the totals and the database sink's interval tables and
 * goes on decoding and grouping the next chunk (stream.c): the two sets of
 * tables are independent, and with a second core free a chunk takes the
 * longer of the two parts instead of their sum.
 *
 * Handing a job over and waiting for it poll for up to a millisecond
 * (yielding the core to anything runnable) before they sleep on a condition
 * variable: a sleeping thread on a virtual machine takes 50-200 us to wake,
 * longer than much of a chunk's work, while a polled hand-over takes a few
 * microseconds. Between jobs that come back to back the thread polls; after
 * a longer pause it polls only briefly, so an idle collector sleeps.
 * Only one thread may begin and end jobs. */
#ifndef TB_ASSIST_H
#define TB_ASSIST_H

typedef struct tb_assist tb_assist_t;
typedef void (*tb_assist_fn)(void *arg);

/* Start the thread. NULL when it cannot be started (errno set). */
tb_assist_t *tb_assist_start(void);

/* Wait for a job under way, end the thread and free it. Accepts NULL, sets
 * *p = NULL. */
void tb_assist_stop(tb_assist_t **p);

/* Run fn(arg) on the thread. The previous job must have been ended. */
void tb_assist_begin(tb_assist_t *a, tb_assist_fn fn, void *arg);

/* Wait until the job begun last has returned. Everything it wrote is then
 * visible to the caller. A call without a job under way returns at once. */
void tb_assist_end(tb_assist_t *a);

#endif
