/* control — the collector's control requests (docs/control-protocol.md):
 * status, stats, streams, start, stop, forget, db and the rest, each
 * answered from the collector's state (control.c). */
#ifndef TB_COLLECTOR_CONTROL_H
#define TB_COLLECTOR_CONTROL_H

#include "collector_int.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Handle one control request and leave the reply in sbuf. Returns 1 when
 * the request went to the database query thread instead, with the routing
 * frames in c->env (its reply comes later), 0 when sbuf holds the reply. */
int tb_coll_control(tb_collector_t *c, const uint8_t *req, size_t len, msgpack_sbuffer *sbuf);

#endif
