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

#include <msgpack.h>
#include <stddef.h>
#include <zmq.h>

#define TB_DBQUERY_MAX_ROWS 10000
/* Most columns of an answer that are read. */
#define TB_DBQUERY_CSV_MAX_COLS 256

typedef struct tb_dbquery tb_dbquery_t;

/* Create the query thread's parts: its own client for the database in cfg
 * (whose strings must outlive it) and the pair of inproc sockets in zctx
 * (borrowed). Nothing is bound and no thread runs until tb_dbquery_start.
 * NULL with a reason in err. */
tb_dbquery_t *tb_dbquery_new(void *zctx, const tb_influx_config_t *cfg, char *err, size_t errsize);

/* Bind and connect the pair and start the thread. Returns 0, or TB_EIO
 * (TB_EINVAL: started already) with a one-line reason in err. Requests are
 * submitted only to a started query thread. */
int tb_dbquery_start(tb_dbquery_t *q, char *err, size_t errsize);
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

/* The pieces of a query, pure functions (dbquery_codec.c; the thread uses
 * them, tests too). */

/* The query for a valid request: InfluxQL for 1.x (v2 = 0; the points
 * qualified by retention policy rp when it is not ""), Flux for 2.x (from
 * bucket). Names are escaped for the language: a stream or measurement
 * name never ends its string. */
void tb_dbquery_build(int v2, const char *bucket, const char *rp, const tb_ctl_request_t *req,
                      char *out, size_t size);

/* Split one CSV line in place (RFC 4180 quoting: "" inside quotes is one
 * quote; text after a closing quote up to the comma is dropped). Returns
 * the number of fields (at most max) pointing into line. */
size_t tb_dbquery_csv_split(char *line, char **fields, size_t max);

/* A complete control reply for an answer: 1.x JSON (body of len bytes) or
 * 2.x annotated CSV (body, NUL-terminated, split in place): {"query",
 * "columns", "rows"}, values typed as the answer says; an answer that is
 * not a query result, or carries the database's error, is an error reply. */
void tb_dbquery_pack_v1(msgpack_packer *pk, const char *query, const char *body, size_t len);
void tb_dbquery_pack_v2(msgpack_packer *pk, const char *query, char *body);

/* A control error reply: msg, and no data. */
void tb_dbquery_pack_error(msgpack_packer *pk, const char *msg);

/* Whether an answer (len bytes) holds no data row: 1.x no "values" in any
 * series, 2.x no line but annotations and headers. */
int tb_dbquery_no_rows(int v2, const char *body, size_t len);

#endif
