/* top — tapbusctl's live view of one stream: refreshed every second from
 * `stats` replies, quits on q (or Ctrl-C). When stdout is not a terminal it
 * prints the view once and returns. */
#ifndef TB_TOP_H
#define TB_TOP_H

#include <jansson.h>
#include <stddef.h>

/* Ask the collector for one stream's stats: a new reference, or NULL with
 * the exit code in *code and the reason already printed. */
typedef json_t *(*tb_top_fetch_fn)(void *arg, int *code);

/* Returns the exit code for tapbusctl. */
int tb_top_run(tb_top_fetch_fn fetch, void *arg, size_t n, double interval_s);

#endif
