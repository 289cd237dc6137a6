/* influx — one InfluxDB HTTP client: writes line-protocol batches and runs
 * queries, for InfluxDB 1.x (/write, /query; database, retention policy,
 * basic authentication) and 2.x (/api/v2/write, /api/v2/query; organisation,
 * bucket, token).
 *
 * Requests are synchronous (libcurl easy interface, one kept-alive
 * connection) and bounded by the configured timeouts; each client is used by
 * one thread at a time. The caller decides what an outcome means for its data
 * (retry, split, drop); this module only classifies the answer. */
#ifndef TB_INFLUX_H
#define TB_INFLUX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *url; /* base URL, e.g. http://db:8086 or https://db:8086 */
    int version;     /* 1 or 2 */
    /* 1.x */
    const char *db; /* database */
    const char *rp; /* retention policy, NULL or "" for the default */
    const char *user;
    const char *password;
    int create_db; /* create the database when a write finds it missing */
    /* 2.x */
    const char *org;
    const char *bucket;
    const char *token;
    /* both */
    const char *ca_file; /* CA bundle for https, NULL for the system's */
    long timeout_ms;     /* whole request */
    long connect_timeout_ms;
    int gzip; /* compress request bodies */
} tb_influx_config_t;

typedef enum {
    TB_IFX_OK = 0,    /* written (2xx) */
    TB_IFX_REJECTED,  /* the data is bad (400, 422): retrying cannot help */
    TB_IFX_TOO_LARGE, /* 413: send it in smaller pieces */
    TB_IFX_RETRY,     /* network error, timeout, 408, 429, 5xx: try again later */
    TB_IFX_HOLD,      /* 401, 403, 404 and other refusals: keep the data, an operator must act */
    TB_IFX_PARTIAL,   /* 400 "partial write": stored except res.dropped points (settled) */
} tb_ifx_outcome_t;

typedef struct {
    long status;         /* HTTP status, 0 when no answer came */
    long retry_after_ms; /* from Retry-After, 0 if absent */
    uint64_t dropped;    /* TB_IFX_PARTIAL: points the database refused */
    char error[256];     /* one line: what went wrong (empty on success) */
} tb_ifx_result_t;

typedef struct tb_influx tb_influx_t;

/* Call once, before any thread starts (libcurl global state). */
int tb_influx_global_init(void);

/* NULL with a one-line reason in err (bad URL, bad version, no memory). The
 * configuration's strings are copied. */
tb_influx_t *tb_influx_new(const tb_influx_config_t *cfg, char *err, size_t errsize);
void tb_influx_destroy(tb_influx_t **p);

/* POST a batch of complete lines. Returns a tb_ifx_outcome_t; details in res. */
int tb_influx_write(tb_influx_t *ix, const char *lines, size_t len, tb_ifx_result_t *res);

/* Run a query: InfluxQL for 1.x (answer: JSON), Flux for 2.x (answer:
 * annotated CSV). The answer (NUL-terminated, at most max bytes) is returned
 * in *body (free() it) on TB_IFX_OK, and also on failures when one came. */
int tb_influx_query(tb_influx_t *ix, const char *query, size_t max, char **body, size_t *len,
                    tb_ifx_result_t *res);

/* Make the request in progress, and every later one, end at once with an
 * error ("aborted"); safe to call from another thread. For shutdown. */
void tb_influx_cancel(tb_influx_t *ix);

/* Requests from now on, and the one in progress, also end (with an error)
 * at this tb_time_mono_ns() time; 0: only at their timeout. Safe to call
 * from another thread (the writer's stop sets its shutdown deadline). */
void tb_influx_deadline(tb_influx_t *ix, uint64_t mono_ns);

/* "1.x http://db:8086 database tapbus" — for logs and status (no secrets). */
const char *tb_influx_describe(const tb_influx_t *ix);

int tb_influx_version(const tb_influx_t *ix);

#endif
