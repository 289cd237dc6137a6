/* collector — subscribes to the streams an operator starts, keeps their
 * statistics and answers control requests.
 *
 * One thread, one zmq_poll loop over the SUB socket (connected to every
 * probe), the ROUTER control socket and a stop descriptor. Per stream it keeps
 * tb_stats_t plus loss accounting per (probe, stream): sequence gaps, probe
 * restarts, capture and bus drops from heartbeats, and packets announced in
 * end-of-stream messages but never received. */
#ifndef TB_COLLECTOR_H
#define TB_COLLECTOR_H

#include "influx_sink.h"
#include "tb_curve.h"

#include <stddef.h>
#include <stdint.h>

#define TB_COLLECTOR_MAX_PROBES 64

typedef struct {
    const char *probes[TB_COLLECTOR_MAX_PROBES]; /* borrowed endpoints */
    size_t nprobes;
    const char *listen[TB_COLLECTOR_MAX_PROBES]; /* endpoints probes connect to */
    size_t nlisten;
    const char *control;  /* control endpoint to bind, e.g. "tcp://0.0.0.0:5557" */
    size_t max_streams;   /* streams that can be started at once */
    size_t flow_capacity; /* entries of each stream's top-flows table */
    size_t host_capacity; /* entries of each stream's top-hosts table */
    size_t top_n;         /* flows/hosts listed in a stats reply */
    int rcvhwm;           /* SUB receive high-water mark, in messages */
    size_t threads;       /* 1: count on the loop thread; 2: and a second one; 0: 2 with 4+ CPUs */
    const tb_influx_sink_config_t *db; /* write to InfluxDB; NULL: no database */
    const char *state_dir;             /* keep the streams across restarts here; NULL: don't */
    /* CURVE on the bus and on control (docs/security.md): the collector's
     * own certificate (with its secret key), or NULL for none; then the
     * allow-lists of the guard (guard.h): control clients that may act,
     * that may only read, and probes. */
    const tb_curve_cert_t *curve;
    const char *curve_allow;
    const char *curve_allow_read;
    const char *curve_allow_probes;
} tb_collector_config_t;

typedef struct tb_collector tb_collector_t;

void tb_collector_config_defaults(tb_collector_config_t *cfg);

/* The threads that count packets cfg asks for: 1 or 2 (auto: 2 when the
 * process may use at least 4 CPUs: cpus.h). */
size_t tb_collector_threads(const tb_collector_config_t *cfg);

/* Check cfg and create the parts: the streams' table and sinks, the offer
 * table, the ZeroMQ context and sockets with their options. Nothing is
 * bound, connected or started (tb_collector_start). NULL with a one-line
 * reason in err on failure. cfg's strings (and certificate) must outlive
 * the collector. */
tb_collector_t *tb_collector_new(const tb_collector_config_t *cfg, char *err, size_t errsize);

/* Start, once: with CURVE, the guard (ZAP handler) thread first, before any
 * socket binds or connects; then connect to the probes, bind --listen, start
 * the database query thread, bind control, and bring back the streams of
 * the snapshot (--state-dir). Returns 0, or a negative tb_err_t with a
 * one-line reason in err (destroy the collector then). */
int tb_collector_start(tb_collector_t *c, char *err, size_t errsize);

/* Run until stop_fd becomes readable (-1: until an error). Returns 0 or a
 * negative tb_err_t (not started, a socket failed, or the CURVE
 * authentication handler stopped). */
int tb_collector_run(tb_collector_t *c, int stop_fd);

/* Accepts NULL, sets *p = NULL. */
void tb_collector_destroy(tb_collector_t **p);

#endif
