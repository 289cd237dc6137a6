/* dbquery — answers `tapbusctl db` from the database, on its own thread.
 *
 * The collector's loop must not wait for HTTP, so a db request is handed to
 * this thread over an inproc ZeroMQ pair, behind the routing frames of the
 * client that asked, and the reply (a complete control reply, msgpack) comes
 * back the same way behind the same frames; the loop forwards that message
 * to its ROUTER socket, so other control requests are served meanwhile.
 * Queries run one at a time, in the order given. Requests:
 *
 *   args ["measurements"]                      what the database holds
 *   args ["points", MEASUREMENT, N], [STREAM]  the latest N points of a
 *                                              measurement (of one stream)
 *
 * Reply data: {"query": str, "columns": [str...], "rows": [[value...]...]}
 * with the query that was run (InfluxQL for 1.x, Flux for 2.x). */
#ifndef TB_DBQUERY_H
#define TB_DBQUERY_H

#include "influx.h"
#include "tb_ctl.h"

#include <stddef.h>
#include <zmq.h>

#define TB_DBQUERY_MAX_ROWS 10000

typedef struct tb_dbquery tb_dbquery_t;

/* Start the thread with its own client for the database in cfg (whose
 * strings must outlive it). NULL with a reason in err. */
tb_dbquery_t *tb_dbquery_new(void *zctx, const tb_influx_config_t *cfg, char *err, size_t errsize);
void tb_dbquery_destroy(tb_dbquery_t **p);

/* The loop's end of the pair: readable when a reply is ready. The reply is
 * the routing frames given to tb_dbquery_submit followed by one frame of
 * msgpack. */
void *tb_dbquery_socket(tb_dbquery_t *q);

/* Most routing frames a request may carry. */
#define TB_DBQUERY_ENVELOPE_MAX 8

/* Hand over a request (copied) and the nenv (<= TB_DBQUERY_ENVELOPE_MAX)
 * routing frames its reply must carry (copied too). Returns 0 or TB_EIO. */
int tb_dbquery_submit(tb_dbquery_t *q, zmq_msg_t *env, size_t nenv, const tb_ctl_request_t *req);

/* Check a db request before it is handed over; on a usage error, 0 is
 * returned and err holds the message for the reply. */
int tb_dbquery_valid(const tb_ctl_request_t *req, char *err, size_t errsize);

#endif
