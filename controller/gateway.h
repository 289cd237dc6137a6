/* gateway — `tapbusctl serve --http ADDR:PORT`: a small HTTP front end to a
 * collector (or several, see fanout.h) for scripts that use curl
 * (libmicrohttpd); it listens on IPv4 or IPv6.
 *
 *   GET /start?streamname1=01::10:01&streamname2=...   start streams
 *   GET /stop[?stream=...]                             stop some or all
 *   GET /forget?stream=...                             drop ended or never-fed streams
 *   GET /status                                        collector, streams, database
 *   GET /stats?stream=NAME                             one stream's statistics
 *   GET /probes                                        every probe heard
 *   GET /streams                                       streams probes offer, who measures them
 *   GET /db[?measurement=M[&stream=S][&n=N]]           what the database holds
 *
 * Every answer is JSON: the collector's data with 200, or {"error": ...}
 * with 400 (bad request, unknown argument, a body), 401 (authentication),
 * 404 (unknown path or stream), 405 (not GET or POST), 409 (the collector
 * refused), 502/504 (the collector answered badly / not at all). HTTP basic
 * authentication is required for everything, checked (with the method and
 * the absence of a body) before anything else; the credentials are compared
 * in constant time. With a certificate and key (tls.h) it serves HTTPS only:
 * a plain HTTP request on its port fails the handshake and is closed
 * unanswered; the limits below apply the same (the handshake counts in the
 * time to send a request's headers). */
#ifndef TB_GATEWAY_H
#define TB_GATEWAY_H

#include "tb_ctl.h"

#include <jansson.h>
#include <stddef.h>

/* Connections served at once, each on its own thread; more wait in the
 * listen queue (at most TB_GW_HEADER_S for a slot held by a slow client). */
#define TB_GW_CONNECTIONS 32

/* Connections one client address may hold at once; more are refused. */
#define TB_GW_PER_IP 8

/* Seconds a client has to send a request's headers, counted from the
 * connection's opening (or its previous answer); then it is closed. */
#define TB_GW_HEADER_S 10

/* Seconds a connection may stay silent. */
#define TB_GW_IDLE_S 30

/* Memory for each connection's request (libmicrohttpd's pool). */
#define TB_GW_CONNECTION_MEMORY (256u << 10)

/* The gateway's result codes for a call. */
enum { TB_GW_OK = 0, TB_GW_REFUSED, TB_GW_UNREACHABLE, TB_GW_BADREPLY };

/* Send one control request; returns its data (new reference) or NULL with
 * *result set and a message in err. Called from several threads at once. */
typedef json_t *(*tb_gw_call_fn)(void *arg, const tb_ctl_request_t *req, int *result, char *err,
                                 size_t errsize);

typedef struct {
    const char *listen;   /* "ADDR:PORT" */
    const char *user;     /* required */
    const char *password; /* required */
    tb_gw_call_fn call;
    void *arg;
    const char *tls_cert; /* PEM text (tls.h), or NULL: plain HTTP */
    const char *tls_key;  /* PEM text, with tls_cert */
} tb_gateway_config_t;

/* Most query arguments a request may carry. */
#define TB_GW_ARGS_MAX 80

typedef struct {
    const char *key;
    const char *value; /* NULL: the key had no '=' */
} tb_gw_arg_t;

/* The control request an HTTP request asks for, from its path and query
 * arguments (in order): 0 with *req filled, or the HTTP status to answer
 * (400 a bad or unknown argument, 404 an unknown path) with the message in
 * err. A pure function of its arguments. */
unsigned tb_gw_request(const char *path, const tb_gw_arg_t *args, size_t nargs,
                       tb_ctl_request_t *req, char *err, size_t errsize);

/* The HTTP status of a call's result (err: the collector's message). */
unsigned tb_gw_status_of(int result, const char *err);

/* Serve until SIGINT or SIGTERM. Returns 0, or with a one-line reason
 * printed 2 (a malformed address) or 1 (cannot listen there, or TLS asked
 * of a libmicrohttpd without it). */
int tb_gateway_run(const tb_gateway_config_t *cfg);

#endif
