/* tb_ctl — the control protocol between tapbusctl and the collector
 * (ZeroMQ REQ/REP, one msgpack map per message; docs/control-protocol.md).
 *
 *   request: {"v": 1, "cmd": "start"|"stop"|"forget"|"status"|"stats"|"probes"|"db",
 *             "streams": [str...], "args": [str...]}
 *   reply:   {"v": 1, "status": "ok"|"error", "error": str, "data": any}
 *
 * "streams" may be absent (stop = all, status); "args" (a command's other
 * words, e.g. db's) may be absent. "error" is present only when
 * status is "error". "data" is the command's result; its shape per command is
 * documented, and readers must ignore keys they do not know. */
#ifndef TB_CTL_H
#define TB_CTL_H

#include "tb_mp.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

#define TB_CTL_VERSION     1
#define TB_CTL_MAX_STREAMS 64
#define TB_CTL_MAX_MSG     (1u * 1024u * 1024u)  /* largest request */
#define TB_CTL_MAX_REPLY   (64u * 1024u * 1024u) /* largest reply (status of many streams) */
#define TB_CTL_CMD_MAX     16
#define TB_CTL_ERROR_MAX   256
#define TB_CTL_MAX_ARGS    8
#define TB_CTL_ARG_MAX     128

typedef struct {
    char cmd[TB_CTL_CMD_MAX + 1];
    size_t nstreams;
    char streams[TB_CTL_MAX_STREAMS][TB_STREAM_MAX + 1];
    size_t nargs;
    char args[TB_CTL_MAX_ARGS][TB_CTL_ARG_MAX + 1]; /* no NUL inside */
    uint32_t timeout_ms; /* how long the client waits for the reply; 0: not said */
} tb_ctl_request_t;

/* Append a stream name to req unless it is already there. Returns 0,
 * TB_EINVAL (not a valid stream name) or TB_ELIMIT (the request is full). */
int tb_ctl_request_add_stream(tb_ctl_request_t *req, const char *name);

/* Encode a request into out (capacity cap); *len receives its size.
 * Returns 0, TB_EINVAL (bad command or stream name) or TB_ELIMIT. */
int tb_ctl_request_encode(const tb_ctl_request_t *req, uint8_t *out, size_t cap, size_t *len);

/* Decode and validate a request. On error, err/errsize receives a message for
 * the reply (e.g. "stream name 'a b' is invalid"). */
int tb_ctl_request_decode(const uint8_t *buf, size_t len, tb_ctl_request_t *req, char *err,
                          size_t errsize);

/* Start a reply on pk: writes the map header, "v", "status", "error" (when
 * error != NULL) and the key "data"; the caller then packs exactly one value
 * (nil when there is nothing to say). */
void tb_ctl_reply_begin(msgpack_packer *pk, const char *error);

/* Decode a reply's envelope. *ok receives 1 for "ok"; on "error" the message
 * is copied to err. *data is left positioned on the data value (a nil reader
 * when absent). Returns 0, or an error for a malformed reply. */
int tb_ctl_reply_decode(const uint8_t *buf, size_t len, int *ok, char *err, size_t errsize,
                        tb_mp_reader_t *data);

#endif
