/* sink — where a collector's results go.
 *
 * The collector computes statistics; sinks store or show them. A sink is told
 * when a stream's measurement ends (finished or stopped) with the final
 * statistics. The database writer is a sink; so is the log line every stream
 * gets at its end. Sinks are called from the collector's loop and must not
 * block it: a slow sink hands work to its own thread. */
#ifndef TB_SINK_H
#define TB_SINK_H

#include "stats.h"

typedef struct tb_sink tb_sink_t;

typedef struct {
    const char *name;
    /* The measurement of `stream` ended; `state` is "finished" or "stopped".
     * st is borrowed for the duration of the call. */
    void (*stream_final)(tb_sink_t *sink, const char *stream, const char *state,
                         const tb_stats_t *st);
    void (*destroy)(tb_sink_t *sink);
} tb_sink_ops_t;

struct tb_sink {
    const tb_sink_ops_t *ops;
};

/* Destroy a sink; accepts NULL and sets *p = NULL. */
void tb_sink_destroy(tb_sink_t **p);

/* A sink that logs one line per finished or stopped stream. */
tb_sink_t *tb_sink_log_new(void);

#endif
