/* probe — the capture agent's reactor: sources in, batches of summaries out.
 *
 * One thread, one zmq_poll loop: the XPUB socket (subscriptions arrive on
 * it), a stop descriptor (a signalfd in main), and the sources. A finite
 * source starts reading when its stream gains its first subscriber and stops
 * when the last one leaves; it is read from the beginning on every new first
 * subscription. A live source starts capturing when its stream gains its
 * first subscriber and stops when the last one leaves; a subscriber joining a
 * running capture does not restart it. Live sources' selectable descriptors
 * join the poll. The bus is lossless for finite sources (ZMQ_XPUB_NODROP: a
 * full queue makes the probe wait) and lossy for live ones (a full queue drops
 * the batch and counts it, and capture goes on).
 *
 * Stream discovery: every offer_ms, and at once when somebody subscribes to
 * the offer topic, the probe publishes one OFFER listing its streams, their
 * source kinds and states (docs/wire-format.md section 5.5). */
#ifndef TB_PROBE_H
#define TB_PROBE_H

#include "source.h"
#include "tb_curve.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

#define TB_PROBE_MAX_SOURCES 64
#define TB_PROBE_MAX_CONNECT 16
/* Newcomers that may restart a file or directory stream from its beginning
 * before the source ends; later ones join the run under way. */
#define TB_PROBE_RESTARTS 3
/* Subscriptions to streams the probe does not offer it lets the bus socket
 * hold (collectors subscribe to streams other probes offer); past that the
 * socket is opened anew. */
#define TB_PROBE_JUNK_MAX 1024

typedef struct {
    char stream[TB_STREAM_MAX + 1];
    const char *spec;   /* borrowed: "file:PATH", "iface:NAME", "dir:PATH" */
    const char *filter; /* borrowed: BPF filter of this live source, or NULL */
} tb_probe_source_cfg_t;

typedef struct {
    char id[TB_PROBE_ID_MAX + 1];
    const char *publish; /* ZeroMQ endpoint to bind, e.g. "tcp://0.0.0.0:5556", or NULL */
    const char *connect[TB_PROBE_MAX_CONNECT]; /* collectors to connect to (they bind) */
    size_t nconnect;
    size_t batch_size;     /* most summaries in one batch */
    uint32_t batch_ms;     /* oldest age of a batch before it is sent anyway */
    int sndhwm;            /* ZeroMQ send high-water mark, in messages */
    uint32_t heartbeat_ms; /* heartbeat period per stream */
    uint32_t offer_ms;     /* period of the offer of every stream (stream discovery) */
    tb_source_cfg_t src;   /* settings of every live (iface) and directory source */
    size_t nsources;
    tb_probe_source_cfg_t sources[TB_PROBE_MAX_SOURCES];
    /* CURVE (docs/security.md): the probe's own certificate (with its secret
     * key) and the collector's public key, or NULL for none. The collector is
     * the CURVE server whichever side binds; a probe that binds talks only to
     * the holder of that key. */
    const tb_curve_cert_t *curve;
    const char *curve_server_key; /* Z85 */
} tb_probe_config_t;

typedef struct tb_probe tb_probe_t;

/* Fill a configuration with defaults (no sources, publish tcp://0.0.0.0:5556,
 * live sources as tb_source_live_cfg_defaults). */
void tb_probe_config_defaults(tb_probe_config_t *cfg);

/* Create the probe: check the configuration, create its streams and their
 * sources (nothing is opened, bound or connected yet). Returns NULL with a
 * one-line reason in err. cfg is copied; its strings must outlive the
 * probe. */
tb_probe_t *tb_probe_new(const tb_probe_config_t *cfg, char *err, size_t errsize);

/* Create the XPUB socket, bind --publish and connect to every --connect
 * collector. Returns 0, or a negative tb_err_t (TB_EIO: a socket, bind or
 * connect failed; TB_EINVAL: started already) with a one-line reason in
 * err; tb_probe_destroy then releases what was made. */
int tb_probe_start(tb_probe_t *probe, char *err, size_t errsize);

/* Run a started probe until stop_fd becomes readable (or forever if
 * stop_fd < 0 and every source is finite and finished — never, in
 * practice). On return the open batches have been flushed and a final
 * heartbeat sent. Returns 0 or a negative tb_err_t on a fatal socket error
 * (TB_EINVAL: the probe was not started). */
int tb_probe_run(tb_probe_t *probe, int stop_fd);

/* Release everything; accepts NULL and sets *p = NULL. */
void tb_probe_destroy(tb_probe_t **p);

#endif
