/* tb-gen-pcap — write a synthetic, reproducible Ethernet capture for tests
 * and benchmarks.
 *
 * Output: classic pcap, nanosecond magic (0xa1b23c4d), LINKTYPE_ETHERNET,
 * always little-endian, so one seed gives the same bytes on every host (the
 * flow popularity uses libm's exp()/log(), so strictly: on every host whose
 * libm rounds them alike).
 *
 * The traffic: a fixed per-packet mix of classes (IPv4 TCP 60%, IPv4 UDP 25%,
 * ICMP echo 5%, IPv6 TCP 5%, IPv6 UDP 3%, ARP 2%). The --flows distinct flows
 * are split among the classes in the same proportions; inside a class a
 * packet's flow is drawn from a Zipf-like law (P(rank k) ~ 1/(k+1.5)), so a
 * few flows carry most packets and top-N lists are meaningful. Every property
 * of a flow (addresses, ports, VLAN tag, direction) is a pure function of the
 * seed and the flow number: nothing per flow is stored, so --flows costs no
 * memory.
 *
 * Frames are 60..1514 bytes; a frame shorter than 60 bytes of headers (ARP,
 * a TCP segment without payload) is padded with zeros to 60 as on a real
 * wire, and every IP and UDP length field agrees with the frame. Payloads are
 * all zeros, which keeps the IPv4, TCP, UDP and ICMP checksums exact and
 * cheap (zero words add nothing to the ones'-complement sum) even though only
 * min(len, snaplen) bytes are written.
 *
 * Timestamps start at 2024-01-01T00:00:00Z and advance by exactly 1/pps
 * seconds per packet (integer arithmetic, no drift).
 *
 * Single-threaded; all state lives in one gen_t built in main(). Output goes
 * through one large buffer written with fwrite(), never per packet. */
#include "tb_err.h"
#include "tb_hash.h"
#include "tb_opt.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_MAGIC_NS     0xa1b23c4du
#define GEN_LINKTYPE_ETH 1u
#define GEN_START_SEC    1704067200ull /* 2024-01-01T00:00:00Z */
#define GEN_MIN_FRAME    60u           /* Ethernet minimum without FCS */
#define GEN_MAX_FRAME    1514u         /* Ethernet maximum without FCS, tag included */
#define GEN_HDR_MAX      96u           /* every header we build fits */
#define GEN_BUF_SIZE     (4u << 20)    /* output buffer */
#define GEN_EPHEMERAL_LO 32768u        /* client ports: 32768..60999 (Linux default) */
#define GEN_EPHEMERAL_N  28232u
#define GEN_MAX_FLOWS    (1ull << 26)
#define GEN_MAX_PACKETS  1000000000000ull
#define GEN_MAX_PPS      1000000000ull /* one packet per nanosecond */
#define GEN_MAX_SNAPLEN  262144ull     /* libpcap's MAXIMUM_SNAPLEN */

/* Traffic classes, in the order of s_mix. */
typedef enum { C_TCP4 = 0, C_UDP4, C_ICMP4, C_TCP6, C_UDP6, C_ARP, C_COUNT } gen_class_t;

/* Percent of packets (and of flows) per class; sums to 100. */
static const unsigned s_mix[C_COUNT] = {60, 25, 5, 5, 3, 2};

/* Server ports with weights (percent). Only ports whose tshark dissectors
 * accept an all-zero payload of any length, so the capture decodes without
 * expert errors: no DNS, NTP, SNMP, MySQL, Kafka, OpenVPN, IKE or VXLAN. */
typedef struct {
    uint16_t port;
    unsigned weight;
} gen_port_t;

static const gen_port_t s_tcp_ports[] = {
    {443, 45}, {80, 15}, {22, 6},   {8080, 5}, {3389, 5}, {5432, 4},
    {993, 4},  {25, 4},  {6379, 3}, {8443, 4}, {445, 3},  {1433, 2},
};

static const gen_port_t s_udp_ports[] = {
    {443, 15},  {51820, 15}, {514, 10},  {5004, 10},  {3478, 10},
    {5060, 10}, {1900, 10},  {8125, 10}, {27015, 10},
};

static const uint16_t s_vlans[] = {10, 20, 30, 100, 200, 4001};

typedef struct {
    uint64_t packets;
    uint64_t flows;
    uint64_t snaplen;
    uint64_t seed;
    uint64_t pps;
    int sequential; /* flows in turn (every packet a new flow while packets <= flows) */
    const char *path;
} gen_config_t;

typedef struct {
    gen_config_t cfg;
    uint64_t rng; /* splitmix64 state */
    uint64_t class_base[C_COUNT];
    uint64_t class_flows[C_COUNT];
    double class_log[C_COUNT]; /* ln(class_flows + 1), for the Zipf draw */
    uint64_t nclients;
    uint64_t nservers;
    uint64_t next_rank[C_COUNT]; /* --sequential: the next flow of each class */
    uint16_t ip_id;
    /* Capture clock. */
    uint64_t ts_sec;
    uint64_t ts_nsec;
    uint64_t ts_step;     /* whole nanoseconds per packet */
    uint64_t ts_rem_step; /* 1e9 % pps, carried in ts_rem */
    uint64_t ts_rem;
    /* Output. */
    FILE *out;
    uint8_t *buf;
    size_t buf_len;
    uint64_t bytes_written;
} gen_t;

/* One flow, derived from (seed, flow number) by s_flow(). */
typedef struct {
    gen_class_t cls;
    int swapped; /* server -> client */
    int tagged;
    uint16_t vid;
    uint8_t src_mac[6];
    uint8_t dst_mac[6];
    uint8_t src[16]; /* IPv4 in the first 4 bytes */
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint8_t ttl;
    uint32_t flow_label;
    uint16_t window;
} gen_flow_t;

/* ---- random numbers ----------------------------------------------------- */

/* splitmix64 (Steele, Lea, Flood 2014): tiny state, passes BigCrush. */
static uint64_t s_rand(gen_t *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. The modulo bias is below 2^-40 for our n. */
static uint64_t s_below(gen_t *g, uint64_t n)
{
    return s_rand(g) % n;
}

/* Uniform in [lo, hi]. */
static unsigned s_range(gen_t *g, unsigned lo, unsigned hi)
{
    return lo + (unsigned)s_below(g, (uint64_t)(hi - lo) + 1);
}

/* Zipf-like rank in [0, n): the continuous law with density 1/x on
 * [1, n + 1) sampled by inversion, x = (n + 1)^u, rank = floor(x) - 1. So
 * P(rank k) = ln((k + 2) / (k + 1)) / ln(n + 1) ~ 1 / ((k + 1.5) ln(n + 1)):
 * Zipf with exponent 1, in O(1) time and no table. */
static uint64_t s_zipf(gen_t *g, gen_class_t cls)
{
    double u = (double)(s_rand(g) >> 11) * 0x1.0p-53; /* [0, 1) */
    double x = exp(u * g->class_log[cls]);
    uint64_t r = x >= 1.0 ? (uint64_t)x - 1 : 0;
    return r < g->class_flows[cls] ? r : g->class_flows[cls] - 1;
}

static uint16_t s_pick_port(const gen_port_t *ports, size_t n, uint64_t h)
{
    unsigned total = 0;
    for (size_t i = 0; i < n; i++) {
        total += ports[i].weight;
    }
    unsigned r = (unsigned)(h % total);
    for (size_t i = 0; i < n; i++) {
        if (r < ports[i].weight) {
            return ports[i].port;
        }
        r -= ports[i].weight;
    }
    return ports[0].port;
}

/* ---- flows -------------------------------------------------------------- */

static void s_put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void s_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void s_le16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void s_mac(uint8_t *mac, uint64_t n)
{
    /* Locally administered unicast: 02:xx:xx:xx:xx:xx. */
    mac[0] = 0x02;
    mac[1] = (uint8_t)(n >> 32);
    s_put32(mac + 2, (uint32_t)n);
}

/* Flow number -> flow. Distinctness: for TCP and UDP the client is
 * id % nclients and its port 32768 + (id / nclients), and nclients >= id's
 * range / 8, so no two flows share (client, client port). */
static void s_flow(const gen_t *g, gen_class_t cls, uint64_t local, gen_flow_t *f)
{
    uint64_t id = g->class_base[cls] + local;
    uint64_t h1 = tb_hash_mix64(g->cfg.seed ^ (id * 0x9e3779b97f4a7c15ull + 1));
    uint64_t h2 = tb_hash_mix64(h1 + 0x632be59bd9b4e019ull);
    memset(f, 0, sizeof *f);
    f->cls = cls;
    f->swapped = (h1 & 1) != 0;
    f->tagged = (h1 >> 1) % 100 < 15; /* 15% of flows on an 802.1Q VLAN */
    f->vid = s_vlans[(h1 >> 8) % (sizeof s_vlans / sizeof s_vlans[0])];
    f->ttl = (uint8_t)(f->swapped ? 48 + (h1 >> 16) % 16 : 64);
    f->flow_label = (uint32_t)(h2 & 0xfffff);
    f->window = (uint16_t)(1024 + (h2 >> 20) % 64512);

    uint64_t client = id % g->nclients;
    uint64_t server = (h2 >> 40) % g->nservers;
    if (cls == C_ICMP4) {
        client = local % g->nclients; /* ICMP flows have no ports: vary the client */
    }
    uint8_t cmac[6], smac[6];
    s_mac(cmac, 0x5400000000ull | client);
    s_mac(smac, 0x00000000fe01ull); /* the gateway */
    uint8_t caddr[16] = {0}, saddr[16] = {0};
    uint16_t cport = (uint16_t)(GEN_EPHEMERAL_LO + (id / g->nclients) % GEN_EPHEMERAL_N);
    uint16_t sport = 0;
    /* Scramble the client number (an odd multiplier is a bijection mod 2^24)
     * so consecutive flows do not sit on consecutive addresses. */
    uint32_t cn = (uint32_t)((client * 0x9e3779b1ull + 0x1234) & 0xffffff);
    switch (cls) {
    case C_TCP4:
    case C_UDP4:
    case C_ICMP4:
    case C_ARP:
        caddr[0] = 10; /* clients: 10.0.0.0/8 */
        caddr[1] = (uint8_t)(cn >> 16);
        caddr[2] = (uint8_t)(cn >> 8);
        caddr[3] = (uint8_t)cn;
        /* Servers: 198.18.0.0/15 (RFC 2544, for benchmarks). */
        s_put32(saddr, 0xc6120000u + 1u + (uint32_t)server);
        break;
    case C_TCP6:
    case C_UDP6:
        /* 2001:db8::/32 (RFC 3849): clients 2001:db8:c::/48, servers 2001:db8:5::/48. */
        s_put16(caddr, 0x2001);
        s_put16(caddr + 2, 0x0db8);
        s_put16(caddr + 4, 0x000c);
        s_put32(caddr + 12, cn + 1);
        s_put16(saddr, 0x2001);
        s_put16(saddr + 2, 0x0db8);
        s_put16(saddr + 4, 0x0005);
        s_put32(saddr + 12, (uint32_t)server + 1);
        break;
    default:
        break;
    }
    if (cls == C_TCP4 || cls == C_TCP6) {
        sport = s_pick_port(s_tcp_ports, sizeof s_tcp_ports / sizeof s_tcp_ports[0], h2);
    } else if (cls == C_UDP4 || cls == C_UDP6) {
        sport = s_pick_port(s_udp_ports, sizeof s_udp_ports / sizeof s_udp_ports[0], h2);
    }
    if (cls == C_ARP) {
        /* ARP stays inside the client's /24: the gateway at .1 asks or answers. */
        memcpy(saddr, caddr, 4);
        saddr[3] = 1;
    }
    if (f->swapped) {
        memcpy(f->src_mac, smac, 6);
        memcpy(f->dst_mac, cmac, 6);
        memcpy(f->src, saddr, 16);
        memcpy(f->dst, caddr, 16);
        f->sport = sport;
        f->dport = cport;
    } else {
        memcpy(f->src_mac, cmac, 6);
        memcpy(f->dst_mac, smac, 6);
        memcpy(f->src, caddr, 16);
        memcpy(f->dst, saddr, 16);
        f->sport = cport;
        f->dport = sport;
    }
}

/* ---- checksums (RFC 1071) ----------------------------------------------- */

static uint32_t s_sum(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += ((uint32_t)p[i] << 8) | p[i + 1];
    }
    if (len & 1) {
        sum += (uint32_t)p[len - 1] << 8;
    }
    return sum;
}

static uint16_t s_fold(uint32_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

/* Sum of the TCP/UDP pseudo-header (RFC 9293 3.1, RFC 8200 8.1). */
static uint32_t s_pseudo(const gen_flow_t *f, int v6, unsigned proto, unsigned l4_len)
{
    size_t alen = v6 ? 16 : 4;
    uint32_t sum = s_sum(0, f->src, alen);
    sum = s_sum(sum, f->dst, alen);
    return sum + proto + l4_len;
}

/* ---- packets ------------------------------------------------------------ */

/* Build the headers of one packet of flow f into hdr (GEN_HDR_MAX bytes,
 * zeroed by the caller). Returns the header length; *frame_len gets the full
 * frame length (headers, zero payload, zero padding to 60 bytes). */
static size_t s_build(gen_t *g, const gen_flow_t *f, uint8_t *hdr, uint32_t *frame_len)
{
    size_t n = 0;
    memcpy(hdr, f->dst_mac, 6);
    memcpy(hdr + 6, f->src_mac, 6);
    n = 12;
    if (f->tagged) {
        s_put16(hdr + n, 0x8100);
        s_put16(hdr + n + 2, (unsigned)(s_below(g, 8) << 13) | f->vid); /* PCP, VID */
        n += 4;
    }
    size_t l2 = n + 2;

    if (f->cls == C_ARP) {
        /* RFC 826, Ethernet/IPv4. */
        s_put16(hdr + n, 0x0806);
        uint8_t *a = hdr + l2;
        int reply = f->swapped;
        s_put16(a, 1);
        s_put16(a + 2, 0x0800);
        a[4] = 6;
        a[5] = 4;
        s_put16(a + 6, reply ? 2 : 1);
        memcpy(a + 8, f->src_mac, 6);
        memcpy(a + 14, f->src, 4);
        if (reply) {
            memcpy(a + 18, f->dst_mac, 6);
        } else {
            memset(hdr, 0xff, 6); /* a request is broadcast, target MAC unknown */
        }
        memcpy(a + 24, f->dst, 4);
        size_t len = l2 + 28;
        *frame_len = len < GEN_MIN_FRAME ? GEN_MIN_FRAME : (uint32_t)len;
        return len;
    }

    int v6 = f->cls == C_TCP6 || f->cls == C_UDP6;
    size_t ip_hlen = v6 ? 40 : 20;
    unsigned proto;
    size_t l4_hlen;
    size_t payload;
    unsigned r = (unsigned)s_below(g, 100);
    size_t hdrs = l2 + ip_hlen;
    switch (f->cls) {
    case C_TCP4:
    case C_TCP6:
        proto = 6;
        l4_hlen = 20;
        hdrs += l4_hlen;
        if (r < 45) {
            payload = 0; /* a bare ACK, SYN, FIN or RST */
        } else if (r < 60) {
            payload = s_range(g, 16, 300);
        } else if (r < 70) {
            payload = s_range(g, 300, 1400);
        } else {
            payload = GEN_MAX_FRAME - hdrs; /* a full-sized segment */
        }
        break;
    case C_ICMP4:
        proto = 1;
        l4_hlen = 8;
        hdrs += l4_hlen;
        payload = r < 85 ? 56 : s_range(g, 0, (unsigned)(GEN_MAX_FRAME - hdrs));
        break;
    default: /* UDP */
        proto = 17;
        l4_hlen = 8;
        hdrs += l4_hlen;
        {
            unsigned target = r < 40   ? s_range(g, 60, 200)
                              : r < 75 ? s_range(g, 200, 600)
                              : r < 90 ? s_range(g, 600, 1300)
                                       : s_range(g, 1300, GEN_MAX_FRAME);
            payload = target > hdrs ? target - hdrs : 0;
        }
        break;
    }
    if (hdrs + payload > GEN_MAX_FRAME) {
        payload = GEN_MAX_FRAME - hdrs;
    }
    unsigned ip_len = (unsigned)(ip_hlen + l4_hlen + payload);
    unsigned l4_len = (unsigned)(l4_hlen + payload);
    uint8_t *ip = hdr + l2;
    uint8_t *l4 = ip + ip_hlen;

    if (v6) {
        /* RFC 8200 3. */
        s_put16(hdr + n, 0x86dd);
        s_put32(ip, (6u << 28) | f->flow_label);
        s_put16(ip + 4, l4_len);
        ip[6] = (uint8_t)proto;
        ip[7] = f->ttl;
        memcpy(ip + 8, f->src, 16);
        memcpy(ip + 24, f->dst, 16);
    } else {
        /* RFC 791 3.1. */
        s_put16(hdr + n, 0x0800);
        ip[0] = 0x45;
        s_put16(ip + 2, ip_len);
        s_put16(ip + 4, g->ip_id++);
        s_put16(ip + 6, proto == 6 ? 0x4000 : 0); /* DF on TCP */
        ip[8] = f->ttl;
        ip[9] = (uint8_t)proto;
        memcpy(ip + 12, f->src, 4);
        memcpy(ip + 16, f->dst, 4);
        s_put16(ip + 10, s_fold(s_sum(0, ip, 20)));
    }

    if (proto == 6) {
        /* RFC 9293 3.1. */
        unsigned flags;
        unsigned fr = (unsigned)s_below(g, 100);
        if (payload > 0) {
            flags = fr < 70 ? 0x10 : 0x18; /* ACK, PSH|ACK */
        } else if (fr < 85) {
            flags = 0x10;
        } else if (fr < 92) {
            flags = f->swapped ? 0x12 : 0x02; /* SYN|ACK from the server, SYN */
        } else if (fr < 97) {
            flags = 0x11; /* FIN|ACK */
        } else {
            flags = 0x14; /* RST|ACK */
        }
        s_put16(l4, f->sport);
        s_put16(l4 + 2, f->dport);
        s_put32(l4 + 4, (uint32_t)s_rand(g));
        s_put32(l4 + 8, (flags & 0x10) ? (uint32_t)s_rand(g) : 0);
        l4[12] = 5 << 4;
        l4[13] = (uint8_t)flags;
        s_put16(l4 + 14, f->window);
        uint32_t sum = s_pseudo(f, v6, proto, l4_len);
        s_put16(l4 + 16, s_fold(s_sum(sum, l4, l4_hlen)));
    } else if (proto == 17) {
        /* RFC 768. */
        s_put16(l4, f->sport);
        s_put16(l4 + 2, f->dport);
        s_put16(l4 + 4, l4_len);
        uint32_t sum = s_pseudo(f, v6, proto, l4_len);
        uint16_t c = s_fold(s_sum(sum, l4, l4_hlen));
        s_put16(l4 + 6, c == 0 ? 0xffff : c); /* 0 means "no checksum" */
    } else {
        /* RFC 792 echo request (8) / reply (0). */
        l4[0] = (uint8_t)(f->swapped ? 0 : 8);
        s_put16(l4 + 4, (unsigned)(f->flow_label & 0xffff));
        s_put16(l4 + 6, (unsigned)s_below(g, 65536));
        s_put16(l4 + 2, s_fold(s_sum(0, l4, l4_hlen)));
    }
    size_t len = l2 + ip_len;
    *frame_len = len < GEN_MIN_FRAME ? GEN_MIN_FRAME : (uint32_t)len;
    return l2 + ip_hlen + l4_hlen;
}

/* ---- output ------------------------------------------------------------- */

static int s_flush(gen_t *g)
{
    if (g->buf_len > 0 && fwrite(g->buf, 1, g->buf_len, g->out) != g->buf_len) {
        return TB_EIO;
    }
    g->bytes_written += g->buf_len;
    g->buf_len = 0;
    return 0;
}

static int s_write_header(gen_t *g)
{
    uint8_t *p = g->buf + g->buf_len;
    s_le32(p, GEN_MAGIC_NS);
    s_le16(p + 4, 2);
    s_le16(p + 6, 4);
    s_le32(p + 8, 0);  /* thiszone */
    s_le32(p + 12, 0); /* sigfigs */
    s_le32(p + 16, (uint32_t)g->cfg.snaplen);
    s_le32(p + 20, GEN_LINKTYPE_ETH);
    g->buf_len += 24;
    return 0;
}

static int s_write_packet(gen_t *g)
{
    gen_class_t cls = C_TCP4;
    unsigned r = (unsigned)s_below(g, 100);
    for (unsigned acc = 0; cls < C_COUNT; cls++) {
        acc += s_mix[cls];
        if (r < acc) {
            break;
        }
    }
    gen_flow_t f;
    uint64_t rank;
    if (g->cfg.sequential) {
        rank = g->next_rank[cls]++ % g->class_flows[cls];
    } else {
        rank = s_zipf(g, cls);
    }
    s_flow(g, cls, rank, &f);
    uint8_t hdr[GEN_HDR_MAX];
    memset(hdr, 0, sizeof hdr);
    uint32_t len = 0;
    size_t hlen = s_build(g, &f, hdr, &len);
    uint32_t caplen = len < g->cfg.snaplen ? len : (uint32_t)g->cfg.snaplen;

    if (g->buf_len + 16 + caplen > GEN_BUF_SIZE && s_flush(g) != 0) {
        return TB_EIO;
    }
    uint8_t *p = g->buf + g->buf_len;
    s_le32(p, (uint32_t)g->ts_sec);
    s_le32(p + 4, (uint32_t)g->ts_nsec);
    s_le32(p + 8, caplen);
    s_le32(p + 12, len);
    size_t copy = hlen < caplen ? hlen : caplen;
    memcpy(p + 16, hdr, copy);
    memset(p + 16 + copy, 0, caplen - copy); /* zero payload and padding */
    g->buf_len += 16 + caplen;

    g->ts_nsec += g->ts_step;
    g->ts_rem += g->ts_rem_step;
    if (g->ts_rem >= g->cfg.pps) {
        g->ts_rem -= g->cfg.pps;
        g->ts_nsec++;
    }
    if (g->ts_nsec >= 1000000000ull) {
        g->ts_nsec -= 1000000000ull;
        g->ts_sec++;
    }
    return 0;
}

/* Split the flows among the classes in s_mix proportions (at least one
 * each, the rest to IPv4 TCP) and size the client and server pools. */
static void s_plan(gen_t *g)
{
    uint64_t given = 0;
    for (int c = 0; c < C_COUNT; c++) {
        uint64_t n = g->cfg.flows * s_mix[c] / 100;
        g->class_flows[c] = n > 0 ? n : 1;
        given += g->class_flows[c];
    }
    /* cfg.flows >= C_COUNT, so the shares never exceed it by more than
     * what the TCP share can give back. */
    if (given < g->cfg.flows) {
        g->class_flows[C_TCP4] += g->cfg.flows - given;
    } else {
        g->class_flows[C_TCP4] -= given - g->cfg.flows;
    }
    uint64_t base = 0;
    for (int c = 0; c < C_COUNT; c++) {
        g->class_base[c] = base;
        base += g->class_flows[c];
        g->class_log[c] = log((double)g->class_flows[c] + 1.0);
    }
    g->nclients = g->cfg.flows / 8 > 0 ? g->cfg.flows / 8 : 1;
    g->nservers = g->cfg.flows / 32 > 0 ? g->cfg.flows / 32 : 1;
    if (g->nservers > 131070) {
        g->nservers = 131070; /* 198.18.0.0/15 */
    }
    g->ts_sec = GEN_START_SEC;
    g->ts_nsec = 0;
    g->ts_step = 1000000000ull / g->cfg.pps;
    g->ts_rem_step = 1000000000ull % g->cfg.pps;
    g->ts_rem = 0;
}

/* ---- main --------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: tb-gen-pcap -o FILE [options]\n"
            "\n"
            "Write a synthetic Ethernet capture (pcap, nanosecond timestamps): a mix of\n"
            "IPv4 TCP 60%%, IPv4 UDP 25%%, ICMP 5%%, IPv6 TCP 5%%, IPv6 UDP 3%%, ARP 2%%,\n"
            "15%% of flows on 802.1Q VLANs, frames of 60-1514 bytes, and Zipf-like flow\n"
            "popularity. The same options and seed always give the same file.\n"
            "\n"
            "options:\n"
            "  -o, --output FILE   where to write ('-' for standard output)\n"
            "  --packets N         packets to write, 0-%llu (default 1000000)\n"
            "  --flows N           distinct flows, %d-%llu (default 10000)\n"
            "  --snaplen N         bytes captured per packet, 1-%llu (default 128)\n"
            "  --seed N            random seed (default 1)\n"
            "  --pps N             packets per second of capture time, 1-%llu\n"
            "                      (default 1000000)\n"
            "  --sequential        take the flows in turn instead of by popularity:\n"
            "                      with --flows >= --packets every packet is a new flow\n"
            "  --help              this text\n",
            GEN_MAX_PACKETS, C_COUNT, GEN_MAX_FLOWS, GEN_MAX_SNAPLEN, GEN_MAX_PPS);
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tb-gen-pcap: %s (see --help)\n", msg);
    return 2;
}

static double s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    gen_t g;
    memset(&g, 0, sizeof g);
    g.cfg.packets = 1000000;
    g.cfg.flows = 10000;
    g.cfg.snaplen = 128;
    g.cfg.seed = 1;
    g.cfg.pps = 1000000;

    enum { O_PACKETS = 256, O_FLOWS, O_SNAPLEN, O_SEED, O_PPS, O_SEQUENTIAL, O_HELP };
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"packets", required_argument, NULL, O_PACKETS},
        {"flows", required_argument, NULL, O_FLOWS},
        {"snaplen", required_argument, NULL, O_SNAPLEN},
        {"seed", required_argument, NULL, O_SEED},
        {"pps", required_argument, NULL, O_PPS},
        {"sequential", no_argument, NULL, O_SEQUENTIAL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char msg[512];
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        const char *name = NULL;
        uint64_t min = 0, max = 0, *dst = NULL;
        switch (c) {
        case 'o':
            g.cfg.path = optarg;
            continue;
        case O_PACKETS:
            name = "--packets", min = 0, max = GEN_MAX_PACKETS, dst = &g.cfg.packets;
            break;
        case O_FLOWS:
            name = "--flows", min = C_COUNT, max = GEN_MAX_FLOWS, dst = &g.cfg.flows;
            break;
        case O_SNAPLEN:
            name = "--snaplen", min = 1, max = GEN_MAX_SNAPLEN, dst = &g.cfg.snaplen;
            break;
        case O_SEED:
            name = "--seed", min = 0, max = UINT64_MAX, dst = &g.cfg.seed;
            break;
        case O_PPS:
            name = "--pps", min = 1, max = GEN_MAX_PPS, dst = &g.cfg.pps;
            break;
        case O_SEQUENTIAL:
            g.cfg.sequential = 1;
            continue;
        case O_HELP:
            s_usage(stdout);
            return 0;
        default:
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
            return s_fail(msg);
        }
        if (tb_opt_u64(optarg, min, max, dst) != 0) {
            snprintf(msg, sizeof msg, "%s must be a whole number in %llu-%llu, not '%s'", name,
                     (unsigned long long)min, (unsigned long long)max, optarg);
            return s_fail(msg);
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
        return s_fail(msg);
    }
    if (g.cfg.path == NULL) {
        return s_fail("no output file given (-o FILE)");
    }
    /* The record header's seconds are 32 bits: the last timestamp must fit. */
    if (GEN_START_SEC + g.cfg.packets / g.cfg.pps + 1 > UINT32_MAX) {
        return s_fail("--packets / --pps spans past the year 2106");
    }

    int to_stdout = strcmp(g.cfg.path, "-") == 0;
    g.out = to_stdout ? stdout : fopen(g.cfg.path, "wb");
    if (g.out == NULL) {
        fprintf(stderr, "tb-gen-pcap: cannot create %s: %s\n", g.cfg.path, strerror(errno));
        return 1;
    }
    g.buf = malloc(GEN_BUF_SIZE);
    if (g.buf == NULL) {
        fprintf(stderr, "tb-gen-pcap: out of memory\n");
        if (!to_stdout) {
            fclose(g.out);
        }
        return 1;
    }
    g.rng = tb_hash_mix64(g.cfg.seed ^ 0x7470627573ull); /* "tpbus" */
    s_plan(&g);

    double t0 = s_mono();
    int rc = s_write_header(&g);
    for (uint64_t i = 0; i < g.cfg.packets && rc == 0; i++) {
        rc = s_write_packet(&g);
    }
    if (rc == 0) {
        rc = s_flush(&g);
    }
    if (rc == 0 && fflush(g.out) != 0) {
        rc = TB_EIO;
    }
    int err = errno;
    if (!to_stdout && fclose(g.out) != 0 && rc == 0) {
        rc = TB_EIO;
        err = errno;
    }
    free(g.buf);
    if (rc != 0) {
        fprintf(stderr, "tb-gen-pcap: cannot write %s: %s\n", g.cfg.path, strerror(err));
        return 1;
    }
    double secs = s_mono() - t0;
    fprintf(stderr, "tb-gen-pcap: wrote %llu packets (%llu bytes, %llu flows) to %s in %.2f s\n",
            (unsigned long long)g.cfg.packets, (unsigned long long)g.bytes_written,
            (unsigned long long)g.cfg.flows, g.cfg.path, secs);
    return 0;
}
