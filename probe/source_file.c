/* source_file — a pcap or pcapng capture file as a finite source.
 *
 * The file is opened with nanosecond precision, so microsecond files are
 * scaled and nanosecond files keep every digit. A file that cannot be read to
 * its end (truncated, corrupt) ends the source with an error after every
 * packet that could be read has been delivered. */
#include "source.h"

#include "tb_err.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tb_source_t base;
    char *path;
    pcap_t *pcap;
    int linktype;
    tb_source_stats_t st;
} file_source_t;

/* Capture time in ns. With nanosecond precision tv_usec holds nanoseconds.
 * The pcap format stores seconds as an unsigned 32-bit number, but libpcap
 * hands them over as a signed one: a negative value is a time after 2038.
 * Times beyond what 64-bit nanoseconds hold (year 2554) saturate. */
static uint64_t s_timestamp(const struct timeval *tv)
{
    uint64_t sec = tv->tv_sec < 0 ? (uint64_t)(uint32_t)tv->tv_sec : (uint64_t)tv->tv_sec;
    uint64_t frac = tv->tv_usec < 0 ? 0 : (uint64_t)tv->tv_usec;
    if (sec >= UINT64_MAX / 1000000000ull) {
        return UINT64_MAX;
    }
    return sec * 1000000000ull + frac;
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    file_source_t *self = (file_source_t *)src;
    if (self->pcap != NULL) {
        pcap_close(self->pcap);
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    self->pcap =
        pcap_open_offline_with_tstamp_precision(self->path, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (self->pcap == NULL) {
        snprintf(err, errsize, "cannot read %s: %s", self->path, perr);
        return TB_EIO;
    }
    self->linktype = pcap_datalink(self->pcap);
    memset(&self->st, 0, sizeof self->st);
    return 0;
}

typedef struct {
    file_source_t *self;
    tb_summary_t *out;
    size_t n;
} read_ctx_t;

static void s_on_packet(u_char *user, const struct pcap_pkthdr *hdr, const u_char *data)
{
    read_ctx_t *ctx = (read_ctx_t *)user;
    file_source_t *self = ctx->self;
    uint64_t ts = s_timestamp(&hdr->ts);
    int drc = tb_decode(self->linktype, data, hdr->caplen, hdr->len, ts, &ctx->out[ctx->n++]);
    if (drc == TB_ETRUNC || drc == TB_EPROTO) {
        self->st.decode_errors++;
    } else if (drc == TB_ENOTSUP) {
        self->st.unsupported++;
    }
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
    /* pcap_dispatch hands over up to max packets in one call, without the
     * per-packet bookkeeping of pcap_next_ex. */
    read_ctx_t ctx = {.self = self, .out = out, .n = 0};
    int cnt = max > INT32_MAX ? INT32_MAX : (int)max;
    int rc = pcap_dispatch(self->pcap, cnt, s_on_packet, (u_char *)&ctx);
    self->st.pcap_recv += ctx.n;
    if (rc == 0 || rc == PCAP_ERROR_BREAK) {
        *eof = 1; /* a savefile returns 0 only at its end */
    } else if (rc < 0) {
        snprintf(err, errsize, "%s: %s", self->path, pcap_geterr(self->pcap));
        *eof = 1;
    }
    return (int)ctx.n;
}

static void s_close(tb_source_t *src)
{
    file_source_t *self = (file_source_t *)src;
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

tb_source_t *tb_source_file_new(const char *path, char *err, size_t errsize)
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
    return &self->base;
}
