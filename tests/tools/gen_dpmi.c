/* tb-gen-dpmi — send a pcap's packets as a live DPMI measurement stream, for
 * tests.
 *
 *   tb-gen-dpmi [--iface IF | --out FILE.pcap] [--address ADDR] [--src MAC]
 *               [--mtu N] [--records N] [--ci NAME[,NAME...]] [--mp NAME]
 *               [--seq N] [--skip FRAME:N]... [--bad FRAME:MODE]... [--terminate]
 *               [--big-endian] [--rate FRAMES_PER_S] [--repeat N] IN
 *
 * Frames follow the format probe/dpmi.h describes (DPMI libcap_utils:
 * struct sendhead in network order, then struct cap_header records): an
 * Ethernet header to ADDR (default 01:00:00:00:10:01) from MAC (default
 * 02:00:00:00:00:01) with ethertype 0x0810, the 16-byte sendhead (sequence
 * number, record count, flags, version 0.7), then records — each a 36-byte
 * header (CI, MP, seconds, picoseconds, wire length, captured length;
 * little-endian, or big-endian with --big-endian) and the captured bytes —
 * as many as fit in MTU bytes after the Ethernet header (default 9000) and
 * at most --records per frame. Sequence numbers start at --seq (0) and wrap
 * after 0xFFFE; --skip F:N leaves N numbers out after frame F (0-based), a
 * gap a receiver counts as N lost frames. --bad F:MODE sends frame F broken:
 * `cut` (its last 10 bytes missing), `extra` (3 bytes more than its
 * records), `zero` (a record's captured length 0), `version` (format 9.9);
 * a broken frame still takes its sequence number, and its records are not
 * counted as sent. --terminate sets the sender-terminating flag on the last
 * frame. Frames go out on IF through a packet socket (root), or into
 * FILE.pcap as Ethernet frames. The input must be Ethernet.
 *
 * On success prints one line of JSON: frames written, good frames, records
 * and bytes (the packets of good frames), and sequence numbers skipped. */
#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#ifdef __linux__
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#endif

#define FRAME_MAX  65535
#define CI_MAX     8
#define MARKS_MAX  64
#define REC_LEN    36
#define HEAD_LEN   30
#define SEQ_MOD    0xFFFFu

typedef struct {
    long frame;
    long n;      /* --skip: numbers left out */
    char mode[8]; /* --bad */
} mark_t;

typedef struct {
    uint8_t dst[6], src[6];
    int be;
    size_t mtu;
    long max_records;
    char ci[CI_MAX][9];
    int nci;
    char mp[9];
    uint32_t seq;
    mark_t skips[MARKS_MAX], bads[MARKS_MAX];
    int nskips, nbads;
    double rate;
    int sock, ifindex;
    pcap_dumper_t *dump;
    /* the frame being filled */
    uint8_t buf[FRAME_MAX];
    size_t len;
    uint32_t count;
    uint64_t count_bytes;
    long frames, good, ci_turn;
    uint64_t records, bytes, skipped;
    struct timespec next;
} gen_t;

static int s_usage(void)
{
    fprintf(stderr,
            "usage: tb-gen-dpmi [--iface IF | --out FILE.pcap] [--address ADDR] [--src MAC] "
            "[--mtu N] [--records N] [--ci NAME[,NAME...]] [--mp NAME] [--seq N] "
            "[--skip FRAME:N]... [--bad FRAME:cut|extra|zero|version]... [--terminate] "
            "[--big-endian] [--rate FRAMES_PER_S] [--repeat N] IN\n");
    return 2;
}

/* "01:00:00:00:10:01" or with "::" for zero octets. */
static int s_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    const char *gap = strstr(s, "::");
    if (gap == NULL) {
        if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) {
            return -1;
        }
    } else {
        unsigned head[6], tail[6];
        int nh = 0, nt = 0;
        char copy[64];
        snprintf(copy, sizeof copy, "%s", s);
        copy[gap - s] = '\0';
        for (char *t = strtok(copy, ":"); t != NULL && nh < 6; t = strtok(NULL, ":")) {
            head[nh++] = (unsigned)strtoul(t, NULL, 16);
        }
        snprintf(copy, sizeof copy, "%s", gap + 2);
        for (char *t = strtok(copy, ":"); t != NULL && nt < 6; t = strtok(NULL, ":")) {
            tail[nt++] = (unsigned)strtoul(t, NULL, 16);
        }
        if (nh + nt > 5) {
            return -1;
        }
        for (int i = 0; i < 6; i++) {
            v[i] = i < nh ? head[i] : i >= 6 - nt ? tail[i - (6 - nt)] : 0;
        }
    }
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255) {
            return -1;
        }
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

static void s_put(uint8_t *p, uint64_t v, int bytes, int be)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (be ? 8 * (bytes - 1 - i) : 8 * i));
    }
}

static const mark_t *s_mark(const mark_t *m, int n, long frame)
{
    for (int i = 0; i < n; i++) {
        if (m[i].frame == frame) {
            return &m[i];
        }
    }
    return NULL;
}

static void s_pace(gen_t *g)
{
    if (g->rate <= 0) {
        return;
    }
    if (g->next.tv_sec == 0) {
        clock_gettime(CLOCK_MONOTONIC, &g->next);
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &g->next, NULL);
    long step = (long)(1e9 / g->rate);
    g->next.tv_nsec += step;
    while (g->next.tv_nsec >= 1000000000L) {
        g->next.tv_nsec -= 1000000000L;
        g->next.tv_sec++;
    }
}

static int s_emit(gen_t *g, const uint8_t *frame, size_t len)
{
    s_pace(g);
    if (g->dump != NULL) {
        struct pcap_pkthdr h = {.caplen = (bpf_u_int32)len, .len = (bpf_u_int32)len};
        gettimeofday(&h.ts, NULL);
        pcap_dump((u_char *)g->dump, &h, frame);
        return 0;
    }
#ifdef __linux__
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = g->ifindex, .sll_halen = 6};
    memcpy(to.sll_addr, frame, 6);
    for (;;) {
        if (sendto(g->sock, frame, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len) {
            return 0;
        }
        if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "tb-gen-dpmi: send: %s\n", strerror(errno));
            return -1;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
#else
    return -1;
#endif
}

/* Finish the frame being filled (sendhead, breakage) and send it. */
static int s_flush(gen_t *g, int terminate)
{
    if (g->len == 0) {
        return 0;
    }
    uint8_t *sh = g->buf + 14;
    s_put(sh, g->seq, 4, 1);
    s_put(sh + 4, g->count, 4, 1);
    s_put(sh + 8, terminate ? 1 : 0, 4, 1);
    s_put(sh + 12, 0, 2, 1);
    s_put(sh + 14, 7, 2, 1);
    size_t len = g->len;
    const mark_t *bad = s_mark(g->bads, g->nbads, g->frames);
    if (bad != NULL) {
        if (strcmp(bad->mode, "cut") == 0) {
            len -= 10;
        } else if (strcmp(bad->mode, "extra") == 0) {
            memset(g->buf + len, 0xee, 3);
            len += 3;
        } else if (strcmp(bad->mode, "zero") == 0) {
            s_put(g->buf + HEAD_LEN + 32, 0, 4, g->be);
        } else {
            s_put(sh + 12, 9, 2, 1);
            s_put(sh + 14, 9, 2, 1);
        }
    } else {
        g->good++;
        g->records += g->count;
        g->bytes += g->count_bytes;
    }
    if (s_emit(g, g->buf, len) != 0) {
        return -1;
    }
    const mark_t *skip = s_mark(g->skips, g->nskips, g->frames);
    uint32_t step = 1 + (skip != NULL ? (uint32_t)skip->n : 0);
    g->skipped += step - 1;
    g->seq = (uint32_t)((g->seq + step) % SEQ_MOD);
    g->frames++;
    g->len = 0;
    g->count = 0;
    g->count_bytes = 0;
    return 0;
}

static int s_add(gen_t *g, const struct pcap_pkthdr *h, const uint8_t *d)
{
    size_t need = REC_LEN + h->caplen;
    if (HEAD_LEN + need > g->mtu + 14) {
        fprintf(stderr, "tb-gen-dpmi: a packet of %u bytes does not fit in the MTU\n", h->caplen);
        return -1;
    }
    if (g->len > 0 && (g->len + need > g->mtu + 14 || (long)g->count == g->max_records)) {
        if (s_flush(g, 0) != 0) {
            return -1;
        }
    }
    if (g->len == 0) {
        memcpy(g->buf, g->dst, 6);
        memcpy(g->buf + 6, g->src, 6);
        g->buf[12] = 0x08;
        g->buf[13] = 0x10;
        g->len = HEAD_LEN;
    }
    uint8_t *r = g->buf + g->len;
    memset(r, 0, 16);
    const char *ci = g->ci[g->ci_turn++ % g->nci];
    memcpy(r, ci, strlen(ci));
    memcpy(r + 8, g->mp, strlen(g->mp));
    s_put(r + 16, (uint64_t)h->ts.tv_sec, 4, g->be);
    s_put(r + 20, (uint64_t)h->ts.tv_usec * 1000u, 8, g->be); /* ns (nano precision) to ps */
    s_put(r + 28, h->len, 4, g->be);
    s_put(r + 32, h->caplen, 4, g->be);
    memcpy(r + REC_LEN, d, h->caplen);
    g->len += need;
    g->count++;
    g->count_bytes += h->len;
    return 0;
}

static int s_mark_arg(const char *arg, mark_t *m, int *n, int bad)
{
    char *end;
    if (*n == MARKS_MAX) {
        return -1;
    }
    m[*n].frame = strtol(arg, &end, 10);
    if (*end != ':' || m[*n].frame < 0) {
        return -1;
    }
    if (bad) {
        snprintf(m[*n].mode, sizeof m[*n].mode, "%s", end + 1);
        if (strcmp(m[*n].mode, "cut") != 0 && strcmp(m[*n].mode, "extra") != 0 &&
            strcmp(m[*n].mode, "zero") != 0 && strcmp(m[*n].mode, "version") != 0) {
            return -1;
        }
    } else {
        m[*n].n = strtol(end + 1, &end, 10);
        if (*end != '\0' || m[*n].n < 1 || m[*n].n >= (long)SEQ_MOD) {
            return -1;
        }
    }
    (*n)++;
    return 0;
}

int main(int argc, char **argv)
{
    static gen_t g;
    const char *iface = NULL, *out = NULL;
    int terminate = 0;
    long repeat = 1;
    g.mtu = 9000;
    g.max_records = 1000000;
    g.nci = 1;
    snprintf(g.ci[0], sizeof g.ci[0], "eth0");
    snprintf(g.mp, sizeof g.mp, "mp-1");
    s_mac("01:00:00:00:10:01", g.dst);
    s_mac("02:00:00:00:00:01", g.src);
    g.sock = -1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(o, "--terminate") == 0) {
            terminate = 1;
            takes = 0;
        } else if (strcmp(o, "--big-endian") == 0) {
            g.be = 1;
            takes = 0;
        } else if (v == NULL) {
            return s_usage();
        } else if (strcmp(o, "--iface") == 0) {
            iface = v;
        } else if (strcmp(o, "--out") == 0) {
            out = v;
        } else if (strcmp(o, "--address") == 0) {
            if (s_mac(v, g.dst) != 0) {
                return s_usage();
            }
        } else if (strcmp(o, "--src") == 0) {
            if (s_mac(v, g.src) != 0) {
                return s_usage();
            }
        } else if (strcmp(o, "--mtu") == 0) {
            g.mtu = (size_t)strtoul(v, NULL, 10);
            if (g.mtu < 100 || g.mtu > FRAME_MAX - 14 - 16) {
                return s_usage();
            }
        } else if (strcmp(o, "--records") == 0) {
            g.max_records = strtol(v, NULL, 10);
            if (g.max_records < 1) {
                return s_usage();
            }
        } else if (strcmp(o, "--ci") == 0) {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", v);
            g.nci = 0;
            for (char *t = strtok(copy, ","); t != NULL && g.nci < CI_MAX; t = strtok(NULL, ",")) {
                snprintf(g.ci[g.nci++], sizeof g.ci[0], "%.8s", t);
            }
            if (g.nci == 0) {
                return s_usage();
            }
        } else if (strcmp(o, "--mp") == 0) {
            snprintf(g.mp, sizeof g.mp, "%.8s", v);
        } else if (strcmp(o, "--seq") == 0) {
            g.seq = (uint32_t)(strtoul(v, NULL, 10) % SEQ_MOD);
        } else if (strcmp(o, "--skip") == 0) {
            if (s_mark_arg(v, g.skips, &g.nskips, 0) != 0) {
                return s_usage();
            }
        } else if (strcmp(o, "--bad") == 0) {
            if (s_mark_arg(v, g.bads, &g.nbads, 1) != 0) {
                return s_usage();
            }
        } else if (strcmp(o, "--rate") == 0) {
            g.rate = strtod(v, NULL);
        } else if (strcmp(o, "--repeat") == 0) {
            repeat = strtol(v, NULL, 10);
            if (repeat < 1) {
                return s_usage();
            }
        } else {
            return s_usage();
        }
        i += takes;
    }
    if (i != argc - 1 || (iface == NULL) == (out == NULL)) {
        return s_usage();
    }
    const char *in = argv[i];
    if (iface != NULL) {
#ifdef __linux__
        g.ifindex = (int)if_nametoindex(iface);
        g.sock = socket(AF_PACKET, SOCK_RAW, 0);
        if (g.ifindex == 0 || g.sock < 0) {
            fprintf(stderr, "tb-gen-dpmi: %s: %s\n", iface, strerror(errno));
            return 1;
        }
        int sndbuf = 4 << 20;
        setsockopt(g.sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
#else
        fprintf(stderr, "tb-gen-dpmi: --iface needs Linux\n");
        return 1;
#endif
    }
    pcap_t *dead = NULL;
    if (out != NULL) {
        dead = pcap_open_dead(DLT_EN10MB, FRAME_MAX);
        g.dump = dead != NULL ? pcap_dump_open(dead, out) : NULL;
        if (g.dump == NULL) {
            fprintf(stderr, "tb-gen-dpmi: cannot write %s\n", out);
            return 1;
        }
    }
    int rc = 0;
    for (long round = 0; round < repeat && rc == 0; round++) {
        char perr[PCAP_ERRBUF_SIZE];
        pcap_t *p = pcap_open_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, perr);
        if (p == NULL) {
            fprintf(stderr, "tb-gen-dpmi: %s\n", perr);
            return 1;
        }
        if (pcap_datalink(p) != DLT_EN10MB) {
            fprintf(stderr, "tb-gen-dpmi: %s is not Ethernet\n", in);
            pcap_close(p);
            return 1;
        }
        struct pcap_pkthdr *h;
        const u_char *d;
        while (rc == 0 && pcap_next_ex(p, &h, &d) == 1) {
            rc = s_add(&g, h, d);
        }
        pcap_close(p);
    }
    if (rc == 0) {
        rc = s_flush(&g, terminate);
    }
    if (g.dump != NULL) {
        pcap_dump_close(g.dump);
        pcap_close(dead);
    }
    if (rc != 0) {
        return 1;
    }
    printf("{\"frames\": %ld, \"good_frames\": %ld, \"records\": %llu, \"bytes\": %llu, "
           "\"skipped\": %llu}\n",
           g.frames, g.good, (unsigned long long)g.records, (unsigned long long)g.bytes,
           (unsigned long long)g.skipped);
    return 0;
}
