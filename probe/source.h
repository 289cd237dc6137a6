/* source — where a probe's packets come from.
 *
 * A source turns captured frames into packet summaries. Every kind (a capture
 * file now; live interfaces and directories later) implements the same small
 * operations table, so the probe's reactor treats them alike:
 *
 *   open   start reading (a finite source starts from its beginning);
 *   read   fill up to `max` summaries without blocking, report the end;
 *   close  release the capture handle (the source can be opened again);
 *   stats  capture counters for heartbeats.
 *
 * A source is owned by the probe stream it feeds; it is single-threaded. */
#ifndef TB_PROBE_SOURCE_H
#define TB_PROBE_SOURCE_H

#include "tb_summary.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tb_source tb_source_t;

typedef struct {
    uint64_t pcap_recv;
    uint64_t pcap_drop;
    uint64_t pcap_ifdrop;
    uint64_t decode_errors; /* truncated or malformed packets */
    uint64_t unsupported;   /* packets of a link type the decoder does not know */
} tb_source_stats_t;

typedef struct {
    const char *kind;
    int finite; /* 1: the source ends (file, directory); 0: live */
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
} tb_source_ops_t;

struct tb_source {
    const tb_source_ops_t *ops;
};

/* Parse "KIND:ARG" (e.g. "file:/data/trace.pcap") and create the source.
 * Returns NULL and fills err on an unknown kind or a bad argument. The caller
 * owns the result and releases it with tb_source_destroy(). */
tb_source_t *tb_source_new(const char *spec, char *err, size_t errsize);

/* Destroy a source (closing it first); accepts NULL, sets *p = NULL. */
void tb_source_destroy(tb_source_t **p);

/* The file source: a pcap or pcapng file, nanosecond timestamps kept. */
tb_source_t *tb_source_file_new(const char *path, char *err, size_t errsize);

#endif
