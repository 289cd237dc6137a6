/* serve — `tapbusctl serve`: the HTTP gateway (gateway.h) in front of the
 * collectors, each HTTP request sent through a copy of the fanout
 * (fanout.h), so connections served on their own threads share no state.
 * The credentials come from a file only its owner may read (tb_secret.h) or
 * from $TAPBUS_HTTP_CREDENTIALS; none is built in. HTTPS with a certificate
 * and key checked at start (tls.h). */
#ifndef TB_SERVE_H
#define TB_SERVE_H

#include "cmd.h"
#include "fanout.h"

/* The serve options as given (borrowed strings; NULL: not given). */
typedef struct {
    const char *http;        /* --http ADDR:PORT, required */
    const char *credentials; /* --credentials FILE */
    const char *tls_cert;    /* --tls-cert FILE, with tls_key */
    const char *tls_key;     /* --tls-key FILE */
} tb_serve_opts_t;

/* Serve until SIGINT or SIGTERM. words: serve's own (none is accepted).
 * fan is borrowed for the whole run, never changed. Returns tapbusctl's
 * exit code: 0, TB_CALL_USAGE (2) for a usage error, a bad credentials
 * file or TLS files, with one line printed, or tb_gateway_run's. */
int tb_serve_run(const tb_serve_opts_t *o, const tb_cmd_words_t *words, tb_fanout_t *fan);

#endif
