/* fanout — one control command to one collector or to several.
 *
 * With one collector a command is one request (retried on a new connection
 * within the timeout when it changes nothing: lazy pirate) and its reply's
 * data comes back as it is.
 *
 * With several, every collector is asked at once and a stream lives on one
 * collector:
 *   status         every collector; their streams in one list, each with its
 *                  "collector", and "collectors" with each one's own status
 *   stats (top)    every collector; the one holding the stream answers (and
 *                  is asked alone from then on, for top)
 *   start          a stream a collector holds starts there; a new one on the
 *                  collector with the fewest running streams (room first)
 *   stop           each stream on the collector holding it; none named: all
 *   forget         each stream on the collector holding it; unknown names refused
 *   streams        every collector (one too): the streams probes offer, one
 *                  entry per (stream, probe), with "measured_by" [{collector,
 *                  state}]; start's "warnings" are those of every collector
 *   db             every collector; rows merged, a shared database's
 *                  duplicates once, newest first, at most N
 * A merged answer carries "collectors": [{"endpoint", "ok", "error", ...}].
 * A collector that refuses the connection's handshake (CURVE on one side
 * only, a key it does not allow, another server key) is unreachable, with
 * the reason in words (from ZeroMQ's socket monitor) rather than only a
 * timeout.
 * When some collector failed, the others' answer is still returned, with
 * the code of the failure and its reason: a partial answer.
 *
 * fanout.c merges the answers of status, stats and streams; start, stop and
 * forget (where a stream lives) are fanout_place.c, db fanout_db.c; the
 * asking itself (sockets, retries, handshake reasons) is fanout_ask.c. */
#ifndef TB_FANOUT_H
#define TB_FANOUT_H

#include "tb_ctl.h"
#include "tb_curve.h"

#include <jansson.h>
#include <stddef.h>

#define TB_FANOUT_MAX   32  /* collectors */
#define TB_ENDPOINT_MAX 256 /* bytes of an endpoint */

/* Results; tapbusctl's exit codes. */
enum {
    TB_CALL_OK = 0,
    TB_CALL_REFUSED = 1,     /* the collector refused (its reason in err) */
    TB_CALL_USAGE = 2,       /* a bad endpoint */
    TB_CALL_UNREACHABLE = 3, /* no reply within the timeout */
    TB_CALL_BADREPLY = 4,    /* a reply that does not decode */
};

typedef struct {
    char endpoint[TB_FANOUT_MAX][TB_ENDPOINT_MAX];
    size_t n;
    int timeout_ms; /* for the whole command */
    int attempts;   /* for requests that change nothing (>= 1) */
    int pinned;     /* stats: the collector that answered for pinned_stream, or -1 */
    char pinned_stream[TB_STREAM_MAX + 1];
    /* CURVE on every connection (docs/security.md): this client's keys and
     * the collectors' public key. */
    int curve;
    tb_curve_cert_t curve_own;
    char curve_server[TB_CURVE_KEY_LEN + 1];
} tb_fanout_t;

/* Add the endpoints of `list` (separated by commas or spaces). Returns 0, or
 * with the reason in err TB_EINVAL (empty, a tcp:// endpoint without a host
 * and port) or TB_ELIMIT (too many, too long). */
int tb_fanout_add(tb_fanout_t *f, const char *list, char *err, size_t errsize);

/* Send req (cmd start, stop, forget, status, stats, streams or db). Returns the data (a new
 * reference) with *code TB_CALL_OK; a partial answer with another code and
 * the reason in err; or NULL with the code and reason. */
json_t *tb_fanout_call(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize);

#endif
