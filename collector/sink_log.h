/* sink_log — the sink that logs one line per finished measurement (sink_log.c). */
#ifndef TB_COLLECTOR_SINK_LOG_H
#define TB_COLLECTOR_SINK_LOG_H

#include "sink.h"

/* A sink that logs one line per finished or stopped stream. */
tb_sink_t *tb_sink_log_new(void);

#endif
