/* pcapmap — the records of a classic pcap file read from a memory mapping.
 *
 * libpcap reads a savefile record by record with two fread calls each: the
 * kernel copies the file into the stdio buffer, stdio copies the record into
 * libpcap's buffer. For the common case this module hands out the records
 * where they lie in a read-only mapping of the file instead: no copy at all.
 *
 * libpcap stays in charge: it opens the file and parses its header (link
 * type, snapshot length, byte order, time stamp precision), and whatever the
 * mapping does not handle it reads itself. The fast path takes a file only
 * when it is a classic pcap in this machine's byte order (microsecond or
 * nanosecond magic, version 2.4, no FCS bits in the link type) of a link
 * type libpcap passes through untouched, and a record only when it lies
 * whole in the file with a captured length within the snapshot length. At
 * the first record that is not so (cut short, oversized, or the file's
 * end), tb_pcapmap_next stops and says where: the caller seeks libpcap's
 * stream there and lets libpcap read on, so errors and odd records are
 * libpcap's, word for word.
 *
 * The mapping is a window of TB_PCAPMAP_WINDOW bytes that slides along the
 * file (what was read is unmapped), so memory does not grow with the file.
 * A file cut while it is read (its pages then raise SIGBUS) ends the
 * reading with m->shrunk, not the process: tb_pcapmap_read guards itself. */
#ifndef TB_PROBE_PCAPMAP_H
#define TB_PROBE_PCAPMAP_H

#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TB_PCAPMAP_WINDOW (32u << 20)

typedef struct {
    int fd;
    uint64_t size;       /* the file's size when it was opened */
    uint64_t off;        /* file offset of the next record */
    uint64_t win_off;    /* file offset of the window (page-aligned) */
    const uint8_t *win;  /* the window, NULL when none is mapped */
    size_t win_len;
    size_t window;       /* the window's size: TB_PCAPMAP_WINDOW (a test may set less) */
    uint32_t snaplen;    /* libpcap's snapshot length of the file */
    uint32_t frac_scale; /* 1000 for microsecond files, 1 for nanosecond */
    int shrunk;          /* tb_pcapmap_read met pages that are gone */
    uint64_t shrunk_at;
} tb_pcapmap_t;

/* Take over the records of the savefile p was opened on (fp its stream,
 * just past the file header; p opened with nanosecond precision). Returns 0
 * when the fast path applies, or a negative tb_err_t when libpcap must read
 * the file itself (not a classic pcap in native byte order, a link type
 * libpcap rewrites, no mapping): then nothing has changed. */
int tb_pcapmap_open(tb_pcapmap_t *m, FILE *fp, pcap_t *p);

/* The next record: 1 with its header and data (valid until the next call),
 * or 0 when the mapping stops at m->off: the file's end as it was, or a
 * record libpcap must read. */
int tb_pcapmap_next(tb_pcapmap_t *m, struct pcap_pkthdr *hdr, const uint8_t **data);

/* A record handed out by tb_pcapmap_read. */
typedef void (*tb_pcapmap_fn)(void *user, const struct pcap_pkthdr *hdr, const uint8_t *data);

/* Up to max records, each to fn (which may read the record's bytes: they
 * stay valid during the call). Returns how many; fewer when the mapping
 * stops (as tb_pcapmap_next), or when the file shrank under the mapping
 * (truncated or rewritten while read): then m->shrunk is set, and
 * m->shrunk_at is the offset of the record that could not be read. A
 * shrinking file raises SIGBUS on the pages that are gone; inside this call
 * that SIGBUS ends the reading instead of the process. */
size_t tb_pcapmap_read(tb_pcapmap_t *m, size_t max, tb_pcapmap_fn fn, void *user);

/* Unmap; the file stays libpcap's. */
void tb_pcapmap_close(tb_pcapmap_t *m);

#endif
