/* probe_int — the probe's state and what its files share: probe.c (the
 * reactor: streams, sources, the loop), probe_bus.c (the bus socket and the
 * subscriptions it reports) and probe_publish.c (the messages onto the
 * bus). Internal to the probe. */
#ifndef TB_PROBE_INT_H
#define TB_PROBE_INT_H

#include "probe.h"

#include <stddef.h>
#include <stdint.h>

/* Upper bound of a heartbeat or end-of-stream message (names and details at
 * their limits are well below it). */
#define TB_PROBE_CONTROL_MSG_MAX 1024

typedef struct {
    char name[TB_STREAM_MAX + 1];
    uint8_t topic[TB_TOPIC_MAX];
    size_t topic_len;
    tb_source_t *src;
    tb_src_state_t state;
    /* Subscriptions held by the XPUB that match this stream: one per
     * distinct prefix of its topic (held[len] for the prefix of that length;
     * "" matches everything), counted exactly because the socket reports an
     * unsubscription only when the last holder has gone (XPUB_VERBOSE). */
    int subscribers;
    uint8_t held[TB_TOPIC_MAX + 1];
    unsigned restarts; /* runs restarted by a newcomer since the source last ended */
    uint64_t joined;   /* newcomers that joined a run under way instead */
    int eof;           /* the source has delivered its last packet */
    int eos_due;       /* an end-of-stream message still has to go out */
    int final_hb_sent; /* the heartbeat before the end-of-stream went out */
    char detail[TB_DETAIL_MAX + 1];

    tb_summary_t *batch; /* batch_size summaries */
    size_t nbatch;
    uint64_t batch_started; /* monotonic ns of the first summary in batch */

    uint8_t *out; /* encoded message buffer */
    size_t out_cap;
    size_t out_len;     /* > 0 while a message waits for room on the bus */
    size_t out_packets; /* summaries in the waiting message if it is a batch */
    int out_is_batch;

    uint64_t seq;           /* next sequence number (advances only when sent) */
    uint64_t run;           /* current run of the source (0 before the first) */
    uint64_t run_first_seq; /* seq of the current run's first message */
    int hb_due;             /* a heartbeat is owed (retried until the bus takes it) */
    uint64_t packets;       /* packets published (sent to the bus) in this run */
    uint64_t batches;       /* batches published (sent to the bus) in this run */
    uint64_t bus_drops;
    uint64_t run_started; /* monotonic ns the current run began */
} probe_stream_t;

struct tb_probe {
    tb_probe_config_t cfg;
    uint64_t boot_ns;
    void *zctx;
    void *xpub;
    char bound[256];      /* the --publish address as bound (ZMQ_LAST_ENDPOINT) */
    uint64_t junk_held;   /* subscriptions held that match no stream nor the offers */
    uint64_t xpub_resets; /* times the XPUB was opened again to shed them */
    size_t nstreams;
    probe_stream_t *streams;
    uint64_t next_heartbeat;
    uint64_t next_offer; /* monotonic time of the next periodic offer */
    int offer_due;       /* somebody subscribed to the offers: one goes out now */
    uint64_t offer_seq;
    tb_wire_offer_t offer; /* built for each offer */
    uint8_t offer_buf[TB_WIRE_HEADER_MAX_BYTES +
                      TB_PROBE_MAX_SOURCES * (TB_STREAM_MAX + TB_KIND_MAX + 8)];
};

/* The envelope of the stream's next message of `type`. */
void tb_probe_header(const tb_probe_t *self, const probe_stream_t *st, int type,
                     tb_wire_header_t *h);

/* Send topic + body without waiting. Returns 0, TB_EAGAIN when the bus is
 * at its high-water mark (nothing was sent), or TB_EIO. */
int tb_probe_send(tb_probe_t *self, const probe_stream_t *st, const uint8_t *body, size_t len);

/* Try to send the message waiting in st->out: a lossless source keeps it
 * until the bus has room, a live one drops it and counts the drop; a batch
 * counts as published only once the bus took it. Returns as tb_probe_send. */
int tb_probe_flush_pending(tb_probe_t *self, probe_stream_t *st);

/* Encode the open batch (or the end-of-stream) into st->out. */
void tb_probe_encode_batch(tb_probe_t *self, probe_stream_t *st);
void tb_probe_encode_eos(tb_probe_t *self, probe_stream_t *st);

/* Send the heartbeat owed, if the bus takes it now (else it stays owed). */
void tb_probe_send_heartbeat(tb_probe_t *self, probe_stream_t *st);

/* Publish the offer of every stream, without waiting. */
void tb_probe_send_offer(tb_probe_t *self, uint64_t now);

/* probe_bus.c: open the XPUB socket, bind --publish (again: the address
 * first bound) and connect to every --connect collector. Returns 0 or
 * TB_EIO with a one-line reason in err. */
int tb_probe_xpub_open(tb_probe_t *self, char *err, size_t errsize);

/* probe_bus.c: read and apply every subscription the XPUB has queued.
 * Returns 0 or TB_EIO (a receive failed). */
int tb_probe_drain_subscriptions(tb_probe_t *self);

/* probe.c: a stream's source starts a run (its first subscriber, or a
 * newcomer restarting a file), or stops (its last subscriber left). */
void tb_probe_stream_start(tb_probe_t *self, probe_stream_t *st);
void tb_probe_stream_stop(probe_stream_t *st);

#endif
