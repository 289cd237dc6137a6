/* cmd_run — a tapbusctl command that asks the collectors (start, stop,
 * forget, status, stats, probes, streams, top, db), run: its request sent
 * through the fanout (fanout.h), the reply printed as a table (print.h) or
 * as one JSON document, or the live view of top (top.h). A refusal or a
 * failure is printed on stderr as one line; start's warnings too. */
#ifndef TB_CMD_RUN_H
#define TB_CMD_RUN_H

#include "fanout.h"
#include "tb_ctl.h"

#include <stdint.h>

/* Run command `name` with its request (tb_cmd_request; top changes its cmd
 * to stats); n: the rows of top. fan is used and updated (top pins the
 * collector holding the stream). Returns tapbusctl's exit code: 0, or the
 * TB_CALL_* of the first failure (also after a partial answer, which is
 * printed). */
int tb_cmd_run(tb_fanout_t *fan, const char *name, tb_ctl_request_t *req, uint64_t n, int json_out);

#endif
