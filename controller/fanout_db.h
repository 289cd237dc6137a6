/* fanout_db — db with several collectors (fanout.h): every collector is
 * asked (their databases may be shared or not), and the answers merged
 * under the union of their columns: a shared database's rows once, newest
 * first when there is a time column, at most the N asked for. Internal to
 * tapbusctl. */
#ifndef TB_FANOUT_DB_H
#define TB_FANOUT_DB_H

#include "fanout.h"

#include <jansson.h>
#include <stddef.h>

/* As tb_fanout_call for req->cmd db: {"query", "columns", "rows",
 * "collectors"}. */
json_t *tb_fanout_db(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                     size_t errsize);

#endif
