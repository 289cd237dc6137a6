/* influx_sink — the collector's statistics as InfluxDB points (docs/schema.md).
 *
 * Per stream it keeps the per-second per-protocol series (by capture time,
 * with a lateness window) and the current interval's counters, distinct-flow
 * estimate and bounded top-N tables; each closed second and interval becomes
 * points, formatted as line protocol into a batch that goes to the writer
 * thread when it holds `batch_lines` points or is `batch_ms` old, and at once
 * when a stream ends. Every point has a timestamp and tags that identify it,
 * so writing one again (a replay after an outage) overwrites it: the database
 * never holds a point twice. */
#ifndef TB_INFLUX_SINK_H
#define TB_INFLUX_SINK_H

#include "sink.h"
#include "writer.h"

typedef struct {
    tb_writer_config_t writer;
    uint32_t interval_s;   /* interval points, seconds of capture time */
    uint32_t lateness_s;   /* per-second series: how long a second stays open */
    size_t top_n;          /* top flows and hosts per interval */
    size_t table_capacity; /* entries of each interval's top-N tables */
    size_t batch_lines;    /* points per request */
    uint32_t batch_ms;     /* oldest point waits at most this long */
} tb_influx_sink_config_t;

void tb_influx_sink_config_defaults(tb_influx_sink_config_t *cfg);

/* Create the sink and its writer (tb_writer_new: no thread yet; points
 * formatted before tb_influx_sink_start wait in the writer's queue). NULL
 * with a reason in err. */
tb_sink_t *tb_influx_sink_new(const tb_influx_sink_config_t *cfg, uint64_t seed, char *err,
                              size_t errsize);

/* Start the writer thread of a sink from tb_influx_sink_new (a formatter has
 * none: 0). Returns 0 or a tb_err_t with a reason in err (tb_writer_start). */
int tb_influx_sink_start(tb_sink_t *sink, char *err, size_t errsize);

/* The sink as a formatter only: every batch of lines (points of them) goes
 * to deliver(arg, ...) instead of a writer thread (cfg->writer is not
 * used); the lines are valid during the call. For tests and tools. */
typedef void (*tb_influx_sink_deliver_fn)(void *arg, const char *lines, size_t len,
                                          uint64_t points);
tb_sink_t *tb_influx_sink_formatter(const tb_influx_sink_config_t *cfg, uint64_t seed,
                                    tb_influx_sink_deliver_fn deliver, void *arg, char *err,
                                    size_t errsize);

#endif
