/* source_file — a pcap or pcapng capture file as a finite source.
 *
 * The file is opened with nanosecond precision, so microsecond files are
 * scaled and nanosecond files keep every digit. A file that cannot be read to
 * its end (truncated, corrupt) ends the source with an error after every
 * packet that could be read has been delivered. With a replay speed the
 * packets go out at the pace they were captured (times the speed).
 *
 * Only a regular file (or a symlink to one) is read: anything else, a FIFO
 * above all, is refused at open with "not a regular file" (the stream goes
 * to the error state). Opening never blocks, so a FIFO without a writer
 * cannot stop the probe's other streams. A file refused or cut short counts
 * as one file skipped (files_skipped) in the stream's loss. */
#include "source_file.h"

#include "pcapmap.h"
#include "tb_err.h"
#include "tb_time.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_READ_BUFFER (1u << 20) /* stdio buffer of the capture file */

typedef struct {
    tb_source_t base;
    char *path;
    double speed; /* replay pacing factor; 0 reads as fast as possible */
    pcap_t *pcap;
    char *iobuf; /* the open file's stdio buffer, S_READ_BUFFER bytes (NULL: stdio's own) */
    tb_pcapmap_t map; /* the records read from a mapping, while mapped */
    int mapped;
    int linktype;
    tb_source_stats_t st;
    /* Pacing: the packet read but not yet due, and the run's time origin. */
    int held_valid;
    tb_summary_t held;
    int paced;
    uint64_t pace_mono0; /* monotonic ns when the first packet went out */
    uint64_t pace_ts0;   /* capture time of the first packet */
} file_source_t;

static void s_unmap(file_source_t *self)
{
    if (self->mapped) {
        tb_pcapmap_close(&self->map);
        self->mapped = 0;
    }
}

typedef struct {
    file_source_t *self;
    tb_summary_t *out;
    size_t n;
} read_ctx_t;

static void s_on_record(void *user, const struct pcap_pkthdr *hdr, const uint8_t *data)
{
    read_ctx_t *ctx = user;
    file_source_t *self = ctx->self;
    tb_source_summarise(self->linktype, data, hdr->caplen, hdr->len, tb_source_timestamp(&hdr->ts),
                        &ctx->out[ctx->n++], &self->st);
}

/* The records from the mapping, up to max; when the mapping stops (the
 * file's end, or a record libpcap must judge), libpcap's stream is moved
 * there and the mapping goes. Returns the records read; *failed with err
 * when the file shrank while it was read or cannot be sought (the records
 * before stay read). */
static size_t s_read_mapped(file_source_t *self, tb_summary_t *out, size_t max, int *failed,
                            char *err, size_t errsize)
{
    read_ctx_t ctx = {.self = self, .out = out, .n = 0};
    size_t n = tb_pcapmap_read(&self->map, max, s_on_record, &ctx);
    self->st.pcap_recv += n;
    if (self->map.shrunk) {
        snprintf(err, errsize, "%s: the file shrank while it was read (at byte %llu)", self->path,
                 (unsigned long long)self->map.shrunk_at);
        s_unmap(self);
        *failed = 1;
        return n;
    }
    if (n < max) {
        off_t at = (off_t)self->map.off;
        s_unmap(self);
        if (fseeko(pcap_file(self->pcap), at, SEEK_SET) != 0) {
            snprintf(err, errsize, "%s: cannot seek to byte %lld", self->path, (long long)at);
            *failed = 1;
        }
    }
    return n;
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    file_source_t *self = (file_source_t *)src;
    s_unmap(self);
    if (self->pcap != NULL) {
        pcap_close(self->pcap);
        self->pcap = NULL; /* not left dangling should the file be gone now */
    }
    memset(&self->st, 0, sizeof self->st);
    FILE *fp = NULL;
    int rc = tb_source_open_regular(self->path, &fp, err, errsize);
    if (rc != 0) {
        self->st.files_skipped = 1;
        return rc == TB_EINVAL ? TB_EINVAL : TB_EIO;
    }
    /* libpcap reads each record with two fread calls; a large stdio buffer
     * turns the file into few large reads instead of one per 4 KiB. The
     * buffer outlives every file (freed with the source). */
    if (self->iobuf == NULL) {
        self->iobuf = malloc(S_READ_BUFFER); /* without it, stdio's own */
    }
    if (self->iobuf != NULL) {
        (void)setvbuf(fp, self->iobuf, _IOFBF, S_READ_BUFFER);
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    self->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (self->pcap == NULL) {
        fclose(fp);
        snprintf(err, errsize, "cannot read %s: %s", self->path, perr);
        self->st.files_skipped = 1;
        return TB_EIO;
    }
    self->linktype = pcap_datalink(self->pcap);
    /* A plain pcap file read as fast as possible: its records straight
     * from a mapping of the file (pcapmap.h); libpcap reads the rest. */
    self->mapped = self->speed <= 0 && tb_pcapmap_open(&self->map, fp, self->pcap) == 0;
    self->held_valid = 0;
    self->paced = 0;
    return 0;
}

static void s_on_packet(u_char *user, const struct pcap_pkthdr *hdr, const u_char *data)
{
    s_on_record(user, hdr, data);
}

/* Replay at the capture's own pace times `speed`: a packet goes out when as
 * much time has passed since the first one as separated their capture times
 * (divided by speed). The first packet not yet due is held for the next call;
 * the probe's loop calls again within a few milliseconds. A packet with an
 * earlier capture time than the first goes out at once. */
static int s_read_paced(file_source_t *self, tb_summary_t *out, size_t max, int *eof, char *err,
                        size_t errsize)
{
    uint64_t now = tb_time_mono_ns();
    size_t n = 0;
    while (n < max) {
        if (!self->held_valid) {
            struct pcap_pkthdr *hdr;
            const u_char *data;
            int rc = pcap_next_ex(self->pcap, &hdr, &data);
            if (rc != 1) {
                if (rc != PCAP_ERROR_BREAK) {
                    snprintf(err, errsize, "%s: %s", self->path, pcap_geterr(self->pcap));
                    self->st.files_skipped = 1; /* cut short */
                }
                *eof = 1;
                break;
            }
            tb_source_summarise(self->linktype, data, hdr->caplen, hdr->len,
                                tb_source_timestamp(&hdr->ts), &self->held, &self->st);
            self->st.pcap_recv++;
            self->held_valid = 1;
            if (!self->paced) {
                self->paced = 1;
                self->pace_mono0 = now;
                self->pace_ts0 = self->held.ts_ns;
            }
        }
        uint64_t offset = self->held.ts_ns > self->pace_ts0 ? self->held.ts_ns - self->pace_ts0 : 0;
        double due = (double)self->pace_mono0 + (double)offset / self->speed;
        if (due > (double)now) {
            break;
        }
        out[n++] = self->held;
        self->held_valid = 0;
    }
    return (int)n;
}

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    file_source_t *self = (file_source_t *)src;
    *eof = 0;
    if (self->pcap == NULL || max == 0) {
        *eof = self->pcap == NULL;
        return 0;
    }
    if (self->speed > 0) {
        return s_read_paced(self, out, max, eof, err, errsize);
    }
    size_t done = 0;
    if (self->mapped) {
        int failed = 0;
        done = s_read_mapped(self, out, max, &failed, err, errsize);
        if (failed) {
            self->st.files_skipped = 1; /* cut short */
            *eof = 1;
            return (int)done;
        }
        if (done == max) {
            return (int)done;
        }
    }
    /* pcap_dispatch hands over up to max packets in one call, without the
     * per-packet bookkeeping of pcap_next_ex. */
    read_ctx_t ctx = {.self = self, .out = out, .n = done};
    size_t left = max - done;
    int cnt = left > INT32_MAX ? INT32_MAX : (int)left;
    int rc = pcap_dispatch(self->pcap, cnt, s_on_packet, (u_char *)&ctx);
    self->st.pcap_recv += ctx.n - done;
    if (rc == 0 || rc == PCAP_ERROR_BREAK) {
        *eof = 1; /* a savefile returns 0 only at its end */
    } else if (rc < 0) {
        snprintf(err, errsize, "%s: %s", self->path, pcap_geterr(self->pcap));
        self->st.files_skipped = 1; /* cut short */
        *eof = 1;
    }
    return (int)ctx.n;
}

static void s_close(tb_source_t *src)
{
    file_source_t *self = (file_source_t *)src;
    s_unmap(self);
    if (self->pcap != NULL) {
        pcap_close(self->pcap);
        self->pcap = NULL;
    }
}

static void s_stats(const tb_source_t *src, tb_source_stats_t *st)
{
    const file_source_t *self = (const file_source_t *)src;
    *st = self->st;
}

static void s_destroy(tb_source_t *src)
{
    file_source_t *self = (file_source_t *)src;
    s_unmap(self);
    if (self->pcap != NULL) {
        pcap_close(self->pcap); /* before the buffer its file uses */
        self->pcap = NULL;
    }
    free(self->iobuf);
    free(self->path);
    free(self);
}

static const tb_source_ops_t s_file_ops = {
    .kind = "file",
    .finite = 1,
    .lossless = 1,
    .open = s_open,
    .read = s_read,
    .close = s_close,
    .stats = s_stats,
    .destroy = s_destroy,
};

tb_source_t *tb_source_file_new(const char *path, double speed, char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errsize, "file source needs a path");
        return NULL;
    }
    file_source_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        free(self);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->base.ops = &s_file_ops;
    self->speed = speed;
    return &self->base;
}
