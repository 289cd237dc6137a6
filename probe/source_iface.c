/* source_iface — a network interface captured live with libpcap.
 *
 * The capture handle goes through libpcap's two-phase lifecycle on every open:
 * pcap_create, the setters (snap length, promiscuous mode, buffer size, a
 * 20 ms read timeout with immediate mode off, nanosecond timestamps where the
 * platform has them), pcap_activate, then the BPF filter and non-blocking
 * mode. On Linux libpcap uses a TPACKET_V3 ring of blocks; its selectable
 * descriptor becomes readable when the kernel hands a block over (full, or
 * after the timeout), so the probe polls it with its sockets and reads in
 * bounded pcap_dispatch calls.
 *
 * A live source never ends by itself (finite = 0); it ends with an error when
 * the capture fails (the interface disappears). Sampling (`sample` N > 1) is a
 * deterministic counter over the packets the filter passed since the capture
 * started: the 1st, (N+1)th, (2N+1)th ... are kept, the others counted in
 * `sampled_out`. Single-threaded; owned by its probe stream. */
#include "source_iface.h"

#include "tb_err.h"
#include "tb_log.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_COMPONENT "iface"
/* Read timeout: how long the kernel holds a partly filled block back. */
#define S_TIMEOUT_MS 20

typedef struct {
    tb_source_t base;
    char *name;
    tb_source_live_cfg_t cfg;
    pcap_t *pcap;
    int linktype;
    int nano;      /* timestamps come in ns (else in us) */
    uint64_t seen; /* packets the filter passed since open, for sampling */
    /* Decoder and sampling counters; the pcap counters of the last capture
     * once it is closed (while it is open they come from pcap_stats). */
    tb_source_stats_t st;
} iface_source_t;

/* Capture time in ns. A live capture's clock is now, far from the 64-bit
 * limit; a negative time (a broken clock) reads as 0. */
static uint64_t s_timestamp(const struct timeval *tv, int nano)
{
    uint64_t sec = tv->tv_sec < 0 ? 0 : (uint64_t)tv->tv_sec;
    uint64_t frac = tv->tv_usec < 0 ? 0 : (uint64_t)tv->tv_usec;
    return sec * 1000000000ull + (nano ? frac : frac * 1000ull);
}

void tb_source_pcap_counters(pcap_t *p, tb_source_stats_t *st)
{
    struct pcap_stat ps;
    if (pcap_stats(p, &ps) == 0) {
        st->pcap_recv = ps.ps_recv;
        st->pcap_drop = ps.ps_drop;
        st->pcap_ifdrop = ps.ps_ifdrop;
    }
}

static void s_close(tb_source_t *src)
{
    iface_source_t *self = (iface_source_t *)src;
    if (self->pcap != NULL) {
        tb_source_pcap_counters(self->pcap, &self->st);
        pcap_close(self->pcap);
        self->pcap = NULL;
    }
}

/* The status name, and libpcap's own message where it has one (it names the
 * device and the system error). */
void tb_source_activate_error(pcap_t *p, int rc, const char *name, char *err, size_t errsize)
{
    const char *msg = pcap_geterr(p);
    const char *status = pcap_statustostr(rc);
    if (msg[0] == '\0' || strcmp(msg, status) == 0) {
        snprintf(err, errsize, "cannot capture on %s: %s", name, status);
    } else if (rc == PCAP_ERROR) { /* "Generic error": the message says it all */
        snprintf(err, errsize, "cannot capture on %s: %s", name, msg);
    } else {
        snprintf(err, errsize, "cannot capture on %s: %s (%s)", name, status, msg);
    }
}

/* Compile and install the BPF filter. */
static int s_set_filter(iface_source_t *self, pcap_t *p, char *err, size_t errsize)
{
    struct bpf_program prog;
    if (pcap_compile(p, &prog, self->cfg.filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errsize, "bad filter '%s': %s", self->cfg.filter, pcap_geterr(p));
        return TB_EINVAL;
    }
    int rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) {
        snprintf(err, errsize, "cannot set filter on %s: %s", self->name, pcap_geterr(p));
        return TB_EIO;
    }
    return 0;
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    iface_source_t *self = (iface_source_t *)src;
    s_close(src);
    memset(&self->st, 0, sizeof self->st);
    self->seen = 0;
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(self->name, perr);
    if (p == NULL) {
        snprintf(err, errsize, "cannot capture on %s: %s", self->name, perr);
        return TB_EIO;
    }
    /* The setters fail only on an activated handle, which this is not. The
     * buffer is the ring's size: it absorbs bursts while the probe is busy,
     * and what overflows it shows in ps_drop. */
    pcap_set_snaplen(p, self->cfg.snaplen);
    pcap_set_promisc(p, self->cfg.promisc);
    pcap_set_timeout(p, S_TIMEOUT_MS);
    pcap_set_immediate_mode(p, 0);
    pcap_set_buffer_size(p, self->cfg.buffer_mb * 1024 * 1024);
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO); /* else micro, scaled */
    int rc = pcap_activate(p);
    if (rc < 0) {
        tb_source_activate_error(p, rc, self->name, err, errsize);
        goto fail;
    }
    if (rc > 0) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "%s: %s (%s)", self->name, pcap_statustostr(rc),
               pcap_geterr(p));
    }
    self->nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    self->linktype = pcap_datalink(p);
    if (self->cfg.filter != NULL && (rc = s_set_filter(self, p, err, errsize)) != 0) {
        goto fail;
    }
    if (pcap_setnonblock(p, 1, perr) != 0) {
        snprintf(err, errsize, "cannot capture on %s: %s", self->name, perr);
        goto fail;
    }
    self->pcap = p;
    return 0;
fail:
    pcap_close(p);
    return rc == TB_EINVAL ? TB_EINVAL : TB_EIO;
}

typedef struct {
    iface_source_t *self;
    tb_summary_t *out;
    size_t n;
} read_ctx_t;

static void s_on_packet(u_char *user, const struct pcap_pkthdr *hdr, const u_char *data)
{
    read_ctx_t *ctx = (read_ctx_t *)user;
    iface_source_t *self = ctx->self;
    if (self->seen++ % self->cfg.sample != 0) {
        self->st.sampled_out++;
        return;
    }
    tb_source_summarise(self->linktype, data, hdr->caplen, hdr->len,
                        s_timestamp(&hdr->ts, self->nano), &ctx->out[ctx->n++], &self->st);
}

/* One bounded pcap_dispatch: at most max packets pass the filter, so at most
 * max summaries are written, and the probe's loop regains control after
 * each call. A failing capture (the interface went away) ends the source. */
static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    iface_source_t *self = (iface_source_t *)src;
    *eof = self->pcap == NULL;
    if (self->pcap == NULL || max == 0) {
        return 0;
    }
    read_ctx_t ctx = {.self = self, .out = out, .n = 0};
    int cnt = max > INT32_MAX ? INT32_MAX : (int)max;
    if (pcap_dispatch(self->pcap, cnt, s_on_packet, (u_char *)&ctx) == PCAP_ERROR) {
        snprintf(err, errsize, "capture on %s failed: %s", self->name, pcap_geterr(self->pcap));
        *eof = 1;
    }
    return (int)ctx.n;
}

static void s_stats(const tb_source_t *src, tb_source_stats_t *st)
{
    const iface_source_t *self = (const iface_source_t *)src;
    *st = self->st;
    if (self->pcap != NULL) {
        tb_source_pcap_counters(self->pcap, st);
    }
}

static int s_fd(const tb_source_t *src)
{
    const iface_source_t *self = (const iface_source_t *)src;
    return self->pcap != NULL ? pcap_get_selectable_fd(self->pcap) : -1;
}

static void s_destroy(tb_source_t *src)
{
    iface_source_t *self = (iface_source_t *)src;
    free(self->name);
    free(self);
}

static const tb_source_ops_t s_iface_ops = {
    .kind = "iface",
    .finite = 0,
    .lossless = 0,
    .open = s_open,
    .read = s_read,
    .close = s_close,
    .stats = s_stats,
    .destroy = s_destroy,
    .fd = s_fd,
};

tb_source_t *tb_source_iface_new(const char *name, const tb_source_live_cfg_t *cfg, char *err,
                                 size_t errsize)
{
    if (name == NULL || name[0] == '\0') {
        snprintf(err, errsize, "iface source needs an interface name");
        return NULL;
    }
    if (cfg == NULL || cfg->snaplen <= 0 || cfg->buffer_mb <= 0 ||
        cfg->buffer_mb > TB_SOURCE_BUFFER_MB_MAX || cfg->sample == 0) {
        snprintf(err, errsize, "iface source %s: invalid capture settings", name);
        return NULL;
    }
    iface_source_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->name = strdup(name)) == NULL) {
        free(self);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->base.ops = &s_iface_ops;
    self->cfg = *cfg;
    return &self->base;
}
