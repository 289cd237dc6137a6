/* mpjson — convert one msgpack value (a control reply's data) to a jansson
 * value. Maps need string keys; bins become hex strings; integers above
 * INT64_MAX become reals; nesting is limited to TB_MP_MAX_DEPTH. */
#ifndef TB_MPJSON_H
#define TB_MPJSON_H

#include "tb_mp.h"

#include <jansson.h>

/* Returns a new reference, or NULL (r->error tells why) on malformed input. */
json_t *tb_mpjson_read(tb_mp_reader_t *r);

#endif
