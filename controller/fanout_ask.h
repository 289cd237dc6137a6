/* fanout_ask — the transport of fanout.c: one request to each of several
 * collectors at once over REQ sockets, retried on a new socket within the
 * timeout when it changes nothing (lazy pirate), with the reason of a
 * failed handshake from ZeroMQ's socket monitor (fanout_ask.c); and the
 * end every merged answer shares (tb_fanout_finish). fanout.c,
 * fanout_place.c and fanout_db.c merge the answers per command. Internal to
 * tapbusctl. */
#ifndef TB_FANOUT_ASK_H
#define TB_FANOUT_ASK_H

#include "fanout.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TB_FANOUT_ERR_MAX   (TB_CTL_ERROR_MAX + TB_ENDPOINT_MAX + 64)
#define TB_FANOUT_NOT_ASKED (-1) /* an answer's code when that collector was not asked */

/* One collector's answer. */
typedef struct {
    int code;     /* TB_CALL_*, or TB_FANOUT_NOT_ASKED */
    json_t *data; /* TB_CALL_OK: the reply's data */
    char err[TB_FANOUT_ERR_MAX];
    /* What the socket monitor said of the handshakes, over all attempts. */
    int hs_ok;         /* one succeeded */
    int hs_event;      /* the latest ZMQ_EVENT_HANDSHAKE_FAILED_*, 0: none */
    uint32_t hs_value; /* its value */
} tb_fanout_answer_t;

/* Release the answers' data. */
void tb_fanout_answers_free(tb_fanout_answer_t *ans, size_t n);

/* Send reqs[i] to collector i (NULL: not asked), to all at once. A REQ
 * socket that got no reply is stuck, so a collector silent for its share
 * of the timeout is asked again on a new socket, up to `attempts` times.
 * Returns 0 with every asked collector's answer, or TB_CALL_USAGE with the
 * reason in err (a malformed endpoint: nothing was sent). */
int tb_fanout_ask(const tb_fanout_t *f, const tb_ctl_request_t *const *reqs, int attempts,
                  tb_fanout_answer_t *ans, char *err, size_t errsize);

/* The same request to every collector. */
int tb_fanout_ask_all(const tb_fanout_t *f, const tb_ctl_request_t *req, int attempts,
                      tb_fanout_answer_t *ans, char *err, size_t errsize);

/* The first failure among the asked collectors (its code and reason, named
 * by its endpoint when it is a refusal); returns how many failed. */
size_t tb_fanout_failures(const tb_fanout_t *f, const tb_fanout_answer_t *ans, int *code, char *err,
                          size_t errsize);

/* The end of a merged call: out (taken) gets "collectors", an entry
 * {"endpoint", "ok", "error"} per asked collector (with_parts: also the
 * keys of its answer but "streams", a collector's own part of status); the
 * answers are released. Returns out, partial (with the first failure's code
 * and reason) when some collector failed, or NULL with the first failure
 * when none answered (answered == 0), or TB_CALL_BADREPLY when memory ran
 * out. */
json_t *tb_fanout_finish(const tb_fanout_t *f, tb_fanout_answer_t *ans, json_t *out,
                         size_t answered, int with_parts, int *code, char *err, size_t errsize);

#endif
