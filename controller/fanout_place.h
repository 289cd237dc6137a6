/* fanout_place — where a stream lives among several collectors, for the
 * commands that change streams (fanout.h): start places a new stream on the
 * collector with room and the fewest running streams, and one already held
 * where it is; stop and forget go to the collector(s) holding each stream.
 * Where streams live is read from every collector's status first; while a
 * collector is silent a stream that may live there is not started, stopped
 * or forgotten anywhere. Each collector then gets one request with its
 * streams, sent once. Internal to tapbusctl. */
#ifndef TB_FANOUT_PLACE_H
#define TB_FANOUT_PLACE_H

#include "fanout.h"

#include <jansson.h>
#include <stddef.h>

/* As tb_fanout_call, for req->cmd start (req->nstreams > 0), stop (none
 * named: every collector stops all) and forget (req->nstreams > 0; a name
 * no collector holds is refused before anything is forgotten). The merged
 * reply: the names done under "started", "stopped" or "forgotten",
 * "collector_of" (name -> endpoint), for start "warnings" and "forgotten"
 * (made room), and "collectors". */
json_t *tb_fanout_start(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                        size_t errsize);
json_t *tb_fanout_stop(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize);
json_t *tb_fanout_forget(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                         size_t errsize);

#endif
