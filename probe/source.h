/* source — where a probe's packets come from.
 *
 * A source turns captured frames into packet summaries. Every kind (a capture
 * file, a live interface; directories later) implements the same small
 * operations table, so the probe's reactor treats them alike:
 *
 *   open   start reading (a finite source starts from its beginning, a live
 *          one starts capturing);
 *   read   fill up to `max` summaries without blocking, report the end;
 *   close  release the capture handle (the source can be opened again);
 *   stats  capture counters for heartbeats;
 *   fd     (optional) a descriptor that becomes readable when packets wait,
 *          for the probe's poll loop; -1 when there is none.
 *
 * A source is owned by the probe stream it feeds; it is single-threaded. */
#ifndef TB_PROBE_SOURCE_H
#define TB_PROBE_SOURCE_H

#include "tb_point.h"
#include "tb_summary.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>

typedef struct tb_source tb_source_t;

typedef struct {
    uint64_t pcap_recv;
    uint64_t pcap_drop;
    uint64_t pcap_ifdrop;
    uint64_t decode_errors; /* truncated or malformed packets */
    uint64_t unsupported;   /* packets of a link type the decoder does not know */
    uint64_t sampled_out;   /* packets passed over by --sample (live sources) */
    uint64_t files_skipped; /* files skipped, abandoned or cut short (file, dir sources) */
    uint64_t frames_lost;   /* measurement frames missing from the sequence (dpmi sources) */
    uint64_t frames_bad;    /* measurement frames dropped as malformed (dpmi sources) */
} tb_source_stats_t;

/* Settings of live capture sources (the probe's global options, applied to
 * every iface source). Plain data; filter is borrowed and must outlive the
 * sources. */
typedef struct {
    int snaplen;        /* bytes kept of each packet */
    int buffer_mb;      /* capture buffer (the TPACKET_V3 ring), MiB */
    int promisc;        /* 1: promiscuous mode */
    const char *filter; /* BPF expression, or NULL for every packet */
    uint32_t sample;    /* keep 1 in `sample` packets; 1 keeps all */
} tb_source_live_cfg_t;

/* Largest --buffer-mb: libpcap takes the size in bytes as an int. */
#define TB_SOURCE_BUFFER_MB_MAX 2047

/* The defaults: snaplen 128, 128 MiB, promiscuous, no filter, no sampling. */
void tb_source_live_cfg_defaults(tb_source_live_cfg_t *cfg);

/* Settings of directory sources. Plain data; strings are borrowed. */
typedef struct {
    const char *checkpoint_dir; /* where checkpoints go; NULL: the watched directory */
    const char *move_to;        /* move finished files there, or NULL */
    int delete_done;            /* delete finished files */
    uint32_t unreadable_s;      /* a file that cannot be opened is retried this long, then
                                   skipped; 0: TB_SOURCE_UNREADABLE_S */
    int legacy_shared;          /* another stream of the probe had the same checkpoint name
                                   before names were escaped: an old-style checkpoint is not used */
} tb_source_dir_cfg_t;

/* Default seconds a directory source retries a file it cannot open. */
#define TB_SOURCE_UNREADABLE_S     30
#define TB_SOURCE_UNREADABLE_S_MAX 86400

/* The checkpoint file name of a directory stream: ".tapbus-NAME.checkpoint"
 * with every '/' of the stream name written "%2F" (names never hold '%', so
 * distinct streams never share a file). legacy: the name before escaping
 * ('/' became '_'), or "" when it is the same. Returns 0 or TB_ELIMIT. */
int tb_source_checkpoint_name(const char *stream, char *name, size_t size, char *legacy,
                              size_t legacy_size);

/* Open a capture file for reading without ever blocking (a FIFO would wait
 * for a writer): only a regular file (a symlink to one is fine) is accepted.
 * Returns 0 with *fp open (the caller owns it), TB_ENOENT, TB_EINVAL for
 * something that is not a regular file, or TB_EIO (errno kept); err says
 * why. */
int tb_source_open_regular(const char *path, FILE **fp, char *err, size_t errsize);

/* Everything a source may need besides its own argument. */
typedef struct {
    tb_source_live_cfg_t live;
    tb_source_dir_cfg_t dir;
    double replay_speed; /* file and cap sources: pace factor, 0 = as fast as possible */
} tb_source_cfg_t;

#define TB_SOURCE_SPEED_MAX 1e6

typedef struct {
    const char *kind;
    /* finite: the source ends with an end-of-stream, and each new subscriber
     * makes it start over from its beginning (a new run): files.
     * lossless: a full bus makes the probe wait instead of dropping the
     * batch: files and directories (a live capture never waits). */
    int finite;
    int lossless;
    int (*open)(tb_source_t *src, char *err, size_t errsize);
    /* Returns the number of summaries written to out (0..max); sets *eof
     * when a finite source has no more packets. A source that ends on an
     * error (a truncated or corrupt file) sets *eof and writes the reason to
     * err; the caller clears err before the call. */
    int (*read)(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                size_t errsize);
    void (*close)(tb_source_t *src);
    void (*stats)(const tb_source_t *src, tb_source_stats_t *st);
    void (*destroy)(tb_source_t *src);
    /* Optional (NULL for none): the selectable descriptor of an open source,
     * or -1. It is owned by the source and valid until close. */
    int (*fd)(const tb_source_t *src);
    /* Optional: what the source is doing, for heartbeats when all is well
     * (e.g. "reading trace4; 4 files done"). */
    void (*describe)(const tb_source_t *src, char *buf, size_t size);
    /* Optional: every packet read so far has been published (none is in an
     * open batch or waiting for the bus). A source that remembers progress
     * (a directory's checkpoint) records only positions passed to it. */
    void (*sync)(tb_source_t *src);
    /* Optional (NULL for sources without points): the table of measurement
     * points (MP/CI pairs, tb_point.h) that the summaries' point fields
     * index. Owned by the source; append-only while it is open (open
     * empties it), and still readable after close, so the last batch of a
     * run can be published with it. */
    const tb_point_table_t *(*points)(const tb_source_t *src);
} tb_source_ops_t;

struct tb_source {
    const tb_source_ops_t *ops;
};

/* Parse "KIND:ARG" (e.g. "file:/data/trace.pcap", "cap:/data/trace.cap",
 * "iface:eth0", "dir:/spool")
 * for the stream named `stream` and create the source; live and directory
 * sources take their settings from cfg (copied; its strings borrowed).
 * Returns NULL and fills err on an unknown kind or a bad argument. The caller
 * owns the result and releases it with tb_source_destroy(). */
tb_source_t *tb_source_new(const char *stream, const char *spec, const tb_source_cfg_t *cfg,
                           char *err, size_t errsize);

/* Destroy a source (closing it first); accepts NULL, sets *p = NULL. */
void tb_source_destroy(tb_source_t **p);

/* Summarise one captured frame into *out (tb_decode) and count what the
 * decoder could not read in st: the common step of every pcap-based source. */
void tb_source_summarise(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                         uint64_t ts_ns, tb_summary_t *out, tb_source_stats_t *st);

/* Capture time in ns of a libpcap timestamp read with nanosecond precision.
 * pcap stores seconds unsigned 32-bit and libpcap hands them over signed: a
 * negative value is a time after 2038. Beyond 64-bit ns (2554) saturates. */
uint64_t tb_source_timestamp(const struct timeval *tv);

/* The file source: a pcap or pcapng file, nanosecond timestamps kept; speed
 * > 0 replays at the capture's own pace times speed. */
tb_source_t *tb_source_file_new(const char *path, double speed, char *err, size_t errsize);

/* The DPMI capfile source (capfile.h): finite, lossless, Ethernet records
 * with picosecond timestamps kept to the nanosecond, each naming its
 * measurement point; speed > 0 replays at the capture's own pace times
 * speed. */
tb_source_t *tb_source_cap_new(const char *path, double speed, char *err, size_t errsize);

/* The directory source: capture files that tcpdump -C/-G keeps writing,
 * followed with inotify, resumed from a checkpoint file. legacy_checkpoint
 * (or NULL): where the checkpoint was kept under the old naming; read when
 * there is none at `checkpoint` (unless cfg->legacy_shared), then removed. */
tb_source_t *tb_source_dir_new(const char *path, const char *checkpoint,
                               const char *legacy_checkpoint, const tb_source_dir_cfg_t *cfg,
                               char *err, size_t errsize);

/* The live source: an interface captured with libpcap (not finite). Nothing
 * is opened until the source's open; cfg is copied (its filter borrowed). */
tb_source_t *tb_source_iface_new(const char *name, const tb_source_live_cfg_t *cfg, char *err,
                                 size_t errsize);

/* The live DPMI source: the measurement stream at the address after "/" in
 * arg ("IFACE/ADDRESS"), or at the stream's name when that is an address,
 * received on IFACE (not finite); cfg as for iface sources (its snap length
 * and promiscuous mode are not used: frames are kept whole, the group is
 * joined). */
tb_source_t *tb_source_dpmi_new(const char *stream, const char *arg,
                                const tb_source_live_cfg_t *cfg, char *err, size_t errsize);

#endif
