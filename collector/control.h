/* control — the collector's control socket (docs/control-protocol.md).
 *
 * Requests come in on a ROUTER socket: routing frames up to an empty
 * delimiter, then one msgpack frame. Each gets one reply, in any order:
 * status, stats and streams are packed from the collector's state
 * (report.h); start, stop and forget act on its streams (stream.h); db goes
 * to the database query thread (dbquery.h), whose answer is forwarded when
 * it comes. A client that does not read its replies has them dropped and
 * counted, never queued without bound. Called from the collector's loop
 * only. */
#ifndef TB_COLLECTOR_CONTROL_H
#define TB_COLLECTOR_CONTROL_H

#include "collector_int.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Receive the request waiting on the control socket, if any, and answer
 * it (or hand it to the query thread). */
void tb_control_serve(tb_collector_t *c);

/* Forward the query thread's answer waiting on its socket, if any, to the
 * client that asked. */
void tb_control_forward_db(tb_collector_t *c);

/* Handle one request (req[0..len), borrowed) and leave the reply in sbuf.
 * Returns 1 when the request went to the database query thread instead,
 * with the routing frames in c->env (its reply comes later), 0 when sbuf
 * holds the reply. */
int tb_control_handle(tb_collector_t *c, const uint8_t *req, size_t len, msgpack_sbuffer *sbuf);

#endif
