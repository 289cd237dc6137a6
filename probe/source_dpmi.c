/* source_dpmi — a live DPMI measurement stream (see dpmi.h) received on an
 * Ethernet interface.
 *
 * The capture is libpcap's, like an iface source's, with a kernel filter
 * that passes only measurement frames (ethertype 0x0810) sent to the
 * stream's address, a snap length that keeps whole jumbo frames, incoming
 * frames only (a sender on the same host is not read twice), and no
 * promiscuous mode: while the source is open its socket is a member of the
 * stream's multicast group (PACKET_ADD_MEMBERSHIP), and the kernel drops the
 * membership when the capture closes, so the group is joined only while
 * the stream has subscribers. Several sources may share an interface; each
 * has its own capture and group.
 *
 * Each frame is checked whole before any record is used: a frame whose
 * records do not fill it exactly (or of another record version) is a bad
 * frame, dropped and counted (frames_bad); when its headers could be read, its
 * sequence number still counts as received. Sequence numbers are followed per
 * sender (the frame's source address, up to S_SENDERS_MAX senders): a gap
 * counts the frames missing (frames_lost); a jump backwards by more than
 * half the sequence space is a sender that started over, logged and shown,
 * not counted as loss. A frame with the terminate flag is the sender's last:
 * logged, shown in the source's description, and the sender's next frame
 * starts a new sequence. The records are Ethernet frames, summarised with
 * the common decoder; --sample and --filter apply to them (the filter runs
 * on each record, not on the measurement frames). Each record's MP and CI
 * names go into the source's point table (the per-MP/CI breakdown). A live
 * source never ends
 * by itself; single-threaded, owned by its probe stream. */
#include "dpmi.h"
#include "source_dpmi.h"
#include "source_iface.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#endif

#define LOG_COMPONENT "dpmi"
#define S_TIMEOUT_MS  20
#define S_SENDERS_MAX 16
/* Frames taken from the capture per read call, so a flood of frames without
 * records still returns control to the probe's loop. */
#define S_FRAMES_PER_READ 256
/* Bad frames are logged at most this often (the count goes on). */
#define S_LOG_EVERY_NS 10000000000ull

typedef struct {
    uint8_t mac[6];
    int synced;      /* expect is set */
    uint32_t expect; /* the next sequence number */
    uint64_t frames;
} sender_t;

typedef struct {
    tb_source_t base;
    char *iface;
    uint8_t addr[6];
    char addr_text[TB_DPMI_ADDR_TEXT];
    tb_source_live_cfg_t cfg;
    pcap_t *pcap;
    struct bpf_program filter; /* the user's filter, run on each record */
    int have_filter;
    /* The frame whose records are being summarised. */
    uint8_t *frame;
    tb_dpmi_frame_t f;
    size_t off;
    uint32_t left;
    sender_t senders[S_SENDERS_MAX];
    size_t nsenders;
    uint64_t untracked; /* frames of senders beyond S_SENDERS_MAX */
    uint64_t frames;    /* valid frames received */
    uint64_t restarts;  /* senders whose sequence started over */
    uint64_t terminated;
    char last_terminated[TB_DPMI_ADDR_TEXT];
    uint64_t seen; /* records, for sampling */
    tb_point_table_t points; /* the records' (MP, CI) names */
    uint64_t bad_logged_ns;
    tb_source_stats_t st;
} dpmi_source_t;

static void s_close(tb_source_t *src)
{
    dpmi_source_t *self = (dpmi_source_t *)src;
    if (self->pcap != NULL) {
        tb_source_pcap_counters(self->pcap, &self->st);
        pcap_close(self->pcap); /* leaves the group with the socket */
        self->pcap = NULL;
    }
    if (self->have_filter) {
        pcap_freecode(&self->filter);
        self->have_filter = 0;
    }
    self->left = 0;
}

/* Compile the user's filter for the records (Ethernet frames). */
static int s_compile_user_filter(dpmi_source_t *self, char *err, size_t errsize)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, (int)TB_DPMI_FRAME_MAX);
    if (dead == NULL) {
        snprintf(err, errsize, "out of memory");
        return TB_ENOMEM;
    }
    int rc = 0;
    if (pcap_compile(dead, &self->filter, self->cfg.filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errsize, "bad filter '%s': %s", self->cfg.filter, pcap_geterr(dead));
        rc = TB_EINVAL;
    } else {
        self->have_filter = 1;
    }
    pcap_close(dead);
    return rc;
}

/* The kernel filter: measurement frames sent to the stream's address. */
static int s_set_frame_filter(dpmi_source_t *self, pcap_t *p, char *err, size_t errsize)
{
    char expr[96];
    snprintf(expr, sizeof expr, "ether proto 0x%04x and ether dst %s", TB_DPMI_ETHERTYPE,
             self->addr_text);
    struct bpf_program prog;
    if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errsize, "cannot filter %s: %s", self->iface, pcap_geterr(p));
        return TB_EIO;
    }
    int rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) {
        snprintf(err, errsize, "cannot filter %s: %s", self->iface, pcap_geterr(p));
        return TB_EIO;
    }
    return 0;
}

/* Join the stream's multicast group on the capture's socket. */
static int s_join(dpmi_source_t *self, pcap_t *p, char *err, size_t errsize)
{
    if (!tb_dpmi_addr_is_multicast(self->addr)) {
        return 0; /* a unicast stream is addressed to this interface */
    }
#ifdef __linux__
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = (int)if_nametoindex(self->iface);
    mr.mr_type = PACKET_MR_MULTICAST;
    mr.mr_alen = 6;
    memcpy(mr.mr_address, self->addr, 6);
    int fd = pcap_get_selectable_fd(p);
    if (mr.mr_ifindex == 0 || fd < 0 ||
        setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
        snprintf(err, errsize, "cannot join %s on %s: %s", self->addr_text, self->iface,
                 strerror(errno));
        return TB_EIO;
    }
    return 0;
#else
    (void)p;
    snprintf(err, errsize, "cannot join %s on %s: multicast membership needs Linux",
             self->addr_text, self->iface);
    return TB_ENOTSUP;
#endif
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    dpmi_source_t *self = (dpmi_source_t *)src;
    s_close(src);
    memset(&self->st, 0, sizeof self->st);
    self->nsenders = 0;
    self->untracked = self->frames = self->restarts = self->terminated = self->seen = 0;
    self->last_terminated[0] = '\0';
    tb_point_table_reset(&self->points);
    if (self->cfg.filter != NULL) {
        int rc = s_compile_user_filter(self, err, errsize);
        if (rc != 0) {
            return rc;
        }
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(self->iface, perr);
    if (p == NULL) {
        snprintf(err, errsize, "cannot capture on %s: %s", self->iface, perr);
        s_close(src);
        return TB_EIO;
    }
    pcap_set_snaplen(p, (int)TB_DPMI_FRAME_MAX);
    pcap_set_promisc(p, 0);
    pcap_set_timeout(p, S_TIMEOUT_MS);
    pcap_set_immediate_mode(p, 0);
    pcap_set_buffer_size(p, self->cfg.buffer_mb * 1024 * 1024);
    int rc = pcap_activate(p);
    if (rc < 0) {
        tb_source_activate_error(p, rc, self->iface, err, errsize);
        rc = TB_EIO;
        goto fail;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        snprintf(err, errsize, "%s is not an Ethernet interface (link type %s)", self->iface,
                 pcap_datalink_val_to_name(pcap_datalink(p)));
        rc = TB_EINVAL;
        goto fail;
    }
    if (pcap_setdirection(p, PCAP_D_IN) != 0) {
        tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "%s: frames sent from this host are read too (%s)",
               self->iface, pcap_geterr(p));
    }
    if ((rc = s_set_frame_filter(self, p, err, errsize)) != 0 ||
        (rc = s_join(self, p, err, errsize)) != 0) {
        goto fail;
    }
    if (pcap_setnonblock(p, 1, perr) != 0) {
        snprintf(err, errsize, "cannot capture on %s: %s", self->iface, perr);
        rc = TB_EIO;
        goto fail;
    }
    self->pcap = p;
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "receiving measurement stream %s on %s", self->addr_text,
           self->iface);
    return 0;
fail:
    pcap_close(p);
    s_close(src);
    return rc;
}

static sender_t *s_sender(dpmi_source_t *self, const uint8_t mac[6])
{
    for (size_t i = 0; i < self->nsenders; i++) {
        if (memcmp(self->senders[i].mac, mac, 6) == 0) {
            return &self->senders[i];
        }
    }
    if (self->nsenders == S_SENDERS_MAX) {
        if (self->untracked++ == 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "stream %s on %s: over %d senders; the sequence of the others is not "
                   "followed",
                   self->addr_text, self->iface, S_SENDERS_MAX);
        }
        return NULL;
    }
    sender_t *s = &self->senders[self->nsenders++];
    memset(s, 0, sizeof *s);
    memcpy(s->mac, mac, 6);
    return s;
}

/* Follow the sender's sequence numbers and its terminate flag. */
static void s_sequence(dpmi_source_t *self, const tb_dpmi_frame_t *f)
{
    sender_t *s = s_sender(self, f->src);
    if (s == NULL) {
        return;
    }
    char who[TB_DPMI_ADDR_TEXT];
    s->frames++;
    if (s->synced) {
        uint32_t gap = tb_dpmi_seq_gap(s->expect, f->seq);
        if (gap > 0 && gap < TB_DPMI_SEQ_MOD / 2) {
            self->st.frames_lost += gap;
            tb_dpmi_addr_format(s->mac, who, sizeof who);
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "stream %s on %s: %u frame(s) from %s lost (expected sequence %u, got %u)",
                   self->addr_text, self->iface, gap, who, s->expect, f->seq);
        } else if (gap != 0) {
            self->restarts++;
            tb_dpmi_addr_format(s->mac, who, sizeof who);
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "stream %s on %s: sender %s started over (expected sequence %u, got %u)",
                   self->addr_text, self->iface, who, s->expect, f->seq);
        }
    }
    s->expect = tb_dpmi_seq_next(f->seq);
    s->synced = 1;
    if (f->flags & TB_DPMI_FLAG_TERMINATE) {
        s->synced = 0; /* its next frame begins a new sequence */
        self->terminated++;
        tb_dpmi_addr_format(s->mac, self->last_terminated, sizeof self->last_terminated);
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s on %s: sender %s terminated its stream",
               self->addr_text, self->iface, self->last_terminated);
    }
}

/* Take one captured frame: check it whole, then keep it for its records. */
static void s_frame(dpmi_source_t *self, const struct pcap_pkthdr *hdr, const uint8_t *data)
{
    char why[160] = "";
    tb_dpmi_frame_t f;
    memset(&f, 0, sizeof f);
    int rc;
    if (hdr->caplen > TB_DPMI_FRAME_MAX) {
        snprintf(why, sizeof why, "a frame of %u bytes is larger than any measurement frame",
                 hdr->caplen);
        rc = TB_ELIMIT;
    } else if (hdr->caplen < hdr->len) {
        snprintf(why, sizeof why, "a frame of %u bytes was cut to %u", hdr->len, hdr->caplen);
        rc = TB_ETRUNC;
    } else {
        rc = tb_dpmi_frame_parse(data, hdr->caplen, &f, why, sizeof why);
    }
    if (rc != TB_ETRUNC && rc != TB_ELIMIT && memcmp(f.dst, self->addr, 6) != 0) {
        return; /* another stream's (the kernel filter passes none) */
    }
    if (rc != 0) {
        self->st.frames_bad++;
        if (rc != TB_ETRUNC && f.sendhead) {
            s_sequence(self, &f); /* received, if not usable: not lost */
        }
        uint64_t now = tb_time_mono_ns();
        if (self->bad_logged_ns == 0 || now - self->bad_logged_ns >= S_LOG_EVERY_NS) {
            self->bad_logged_ns = now;
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "stream %s on %s: bad frame dropped: %s (%llu so far)",
                   self->addr_text, self->iface, why, (unsigned long long)self->st.frames_bad);
        }
        return;
    }
    self->frames++;
    s_sequence(self, &f);
    if (f.count > 0) {
        memcpy(self->frame, data, hdr->caplen);
        self->f = f;
        self->off = TB_DPMI_HEADERS_LEN;
        self->left = f.count;
    }
}

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    dpmi_source_t *self = (dpmi_source_t *)src;
    *eof = self->pcap == NULL;
    size_t n = 0;
    int frames = 0;
    while (self->pcap != NULL && n < max) {
        if (self->left > 0) {
            tb_capfile_rec_t rec;
            const uint8_t *data;
            tb_dpmi_record(self->frame, &self->f, &self->off, &rec, &data);
            self->left--;
            if (self->seen++ % self->cfg.sample != 0) {
                self->st.sampled_out++;
                continue;
            }
            if (self->have_filter) {
                struct pcap_pkthdr h = {.caplen = rec.caplen, .len = rec.len};
                if (pcap_offline_filter(&self->filter, &h, data) == 0) {
                    continue;
                }
            }
            tb_source_summarise(DLT_EN10MB, data, rec.caplen, rec.len, tb_capfile_rec_ns(&rec),
                                &out[n], &self->st);
            out[n++].point = tb_point_table_intern(&self->points, rec.mp, rec.ci);
            continue;
        }
        if (frames++ == S_FRAMES_PER_READ) {
            break;
        }
        struct pcap_pkthdr *hdr;
        const u_char *data;
        int rc = pcap_next_ex(self->pcap, &hdr, &data);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            snprintf(err, errsize, "capture on %s failed: %s", self->iface,
                     pcap_geterr(self->pcap));
            *eof = 1;
            break;
        }
        s_frame(self, hdr, data);
    }
    return (int)n;
}

static void s_stats(const tb_source_t *src, tb_source_stats_t *st)
{
    const dpmi_source_t *self = (const dpmi_source_t *)src;
    *st = self->st;
    if (self->pcap != NULL) {
        tb_source_pcap_counters(self->pcap, st);
    }
}

static int s_fd(const tb_source_t *src)
{
    const dpmi_source_t *self = (const dpmi_source_t *)src;
    return self->pcap != NULL ? pcap_get_selectable_fd(self->pcap) : -1;
}

static void s_describe(const tb_source_t *src, char *buf, size_t size)
{
    const dpmi_source_t *self = (const dpmi_source_t *)src;
    int w = snprintf(buf, size, "receiving %s on %s: %llu frames from %zu sender%s", self->addr_text,
                     self->iface, (unsigned long long)self->frames, self->nsenders,
                     self->nsenders == 1 ? "" : "s");
    size_t used = w < 0 ? 0 : (size_t)w < size ? (size_t)w : size - 1;
    if (self->restarts > 0 && used < size) {
        w = snprintf(buf + used, size - used, "; %llu sequence restart%s",
                     (unsigned long long)self->restarts, self->restarts == 1 ? "" : "s");
        used = w < 0 ? used : used + (size_t)w < size ? used + (size_t)w : size - 1;
    }
    if (self->terminated > 0 && used < size) {
        snprintf(buf + used, size - used, "; %llu terminated (last: %s)",
                 (unsigned long long)self->terminated, self->last_terminated);
    }
}

static const tb_point_table_t *s_points(const tb_source_t *src)
{
    return &((const dpmi_source_t *)src)->points;
}

static void s_destroy(tb_source_t *src)
{
    dpmi_source_t *self = (dpmi_source_t *)src;
    s_close(src);
    free(self->frame);
    free(self->iface);
    free(self);
}

static const tb_source_ops_t s_dpmi_ops = {
    .kind = "dpmi",
    .finite = 0,
    .lossless = 0,
    .open = s_open,
    .read = s_read,
    .close = s_close,
    .stats = s_stats,
    .destroy = s_destroy,
    .fd = s_fd,
    .describe = s_describe,
    .points = s_points,
};

tb_source_t *tb_source_dpmi_new(const char *stream, const char *arg,
                                const tb_source_live_cfg_t *cfg, char *err, size_t errsize)
{
    const char *slash = arg != NULL ? strchr(arg, '/') : NULL;
    size_t iflen = arg == NULL ? 0 : slash != NULL ? (size_t)(slash - arg) : strlen(arg);
    if (iflen == 0 || iflen >= IF_NAMESIZE) {
        snprintf(err, errsize, "dpmi source needs an interface: dpmi:IFACE[/ADDRESS]");
        return NULL;
    }
    if (cfg == NULL || cfg->buffer_mb <= 0 || cfg->buffer_mb > TB_SOURCE_BUFFER_MB_MAX ||
        cfg->sample == 0) {
        snprintf(err, errsize, "dpmi source %s: invalid capture settings", arg);
        return NULL;
    }
    uint8_t addr[6];
    if (slash != NULL) {
        if (tb_dpmi_addr_parse(slash + 1, addr) != 0) {
            snprintf(err, errsize,
                     "dpmi source: '%s' is not a stream address (six hex octets such as "
                     "01:00:00:00:10:01, '::' for zero octets: 01::10:01)",
                     slash + 1);
            return NULL;
        }
    } else if (tb_dpmi_addr_parse(stream, addr) != 0) {
        snprintf(err, errsize,
                 "dpmi source: the stream name '%s' is not a stream address; give it: "
                 "dpmi:IFACE/ADDRESS (e.g. dpmi:eth1/01::10:01)",
                 stream != NULL ? stream : "");
        return NULL;
    }
    dpmi_source_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->iface = strndup(arg, iflen)) == NULL ||
        (self->frame = malloc(TB_DPMI_FRAME_MAX)) == NULL) {
        if (self != NULL) {
            free(self->iface);
        }
        free(self);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->base.ops = &s_dpmi_ops;
    self->cfg = *cfg;
    memcpy(self->addr, addr, 6);
    tb_dpmi_addr_format(addr, self->addr_text, sizeof self->addr_text);
    return &self->base;
}
