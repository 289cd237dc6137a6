/* tb_decode — packet decoder: one captured frame -> one tb_summary_t.
 *
 * See tb_summary.h for the contract. A pure function: no allocation, no state,
 * no system call, safe from any thread. It runs once per captured packet, so
 * the common case (Ethernet, maybe a VLAN tag, IPv4/IPv6, TCP/UDP) is a short
 * straight line of bounds checks.
 *
 * Reading discipline (after tcpdump's extract.h, without its longjmp): every
 * parser receives a slice (p, len) of the bytes it may read, checks `len`
 * before touching a field, and extracts multi-byte fields byte by byte in
 * network order. Headers are never cast to structs (captures are not aligned).
 * The first problem found stops the decode: exactly one of TB_SUM_TRUNC /
 * TB_SUM_MALFORMED is then set, and the summary keeps what was decoded before.
 *
 * Scope: the first IP header after the link layer, VLAN tags and the
 * encapsulations of tb_decode_link.c (MPLS, PPPoE, MACsec, Arista) is
 * summarised. Tunnels (GRE, IP-in-IP, VXLAN, ...) are not unwrapped. Every
 * other ethertype gives a non-IP summary that still records the ethertype.
 * This file holds the hot path and IP; the other link types are in
 * tb_decode_link.c (tb_decode_int.h is the interface between the two). */
#include "tb_summary.h"

#include "tb_decode_int.h"
#include "tb_err.h"

#include <arpa/inet.h>
#include <assert.h>
#include <string.h>
#include <sys/socket.h>

enum {
    S_ETHERTYPE_IPV4 = TB_ETHERTYPE_IPV4,
    S_ETHERTYPE_IPV6 = TB_ETHERTYPE_IPV6,
    S_ETHERTYPE_8021Q = 0x8100,  /* IEEE 802.1Q customer tag */
    S_ETHERTYPE_8021AD = 0x88a8, /* IEEE 802.1ad service tag */
    S_ETHERTYPE_QINQ = 0x9100,   /* pre-standard QinQ service tag */
    S_ETHERTYPE_MIN = 0x0600,    /* 802.3 length field when <= 1500 */
    S_ETH_MAX_LENGTH = 1500,
    S_MAX_LINK_LAYERS = 8, /* VLAN tags + LLC/SNAP walked before giving up */
    S_MAX_IPV6_EXT = 16,   /* IPv6 extension headers walked before giving up */
};

/* Upper-layer protocol numbers (IANA "Assigned Internet Protocol Numbers"). */
enum {
    S_IPPROTO_HOPOPTS = 0,
    S_IPPROTO_ICMP = 1,
    S_IPPROTO_TCP = 6,
    S_IPPROTO_UDP = 17,
    S_IPPROTO_DCCP = 33,
    S_IPPROTO_ROUTING = 43,
    S_IPPROTO_FRAGMENT = 44,
    S_IPPROTO_AH = 51,
    S_IPPROTO_ICMPV6 = 58,
    S_IPPROTO_DSTOPTS = 60,
    S_IPPROTO_SCTP = 132,
    S_IPPROTO_UDPLITE = 136,
};

/* Record a decode failure (TB_ETRUNC or TB_EPROTO) and pass it on. */
static int s_fail(tb_summary_t *out, int err)
{
    out->flags |= (uint8_t)(err == TB_ETRUNC ? TB_SUM_TRUNC : TB_SUM_MALFORMED);
    return err;
}

int tb_dec_fail(tb_summary_t *out, int err)
{
    return s_fail(out, err);
}

/* Upper layer: the first bytes of TCP (RFC 9293 3.1), UDP (RFC 768),
 * UDP-Lite (RFC 3828 3.1), SCTP (RFC 9260 3.1) and DCCP (RFC 4340 5.1) are the
 * source and destination ports; ICMP (RFC 792) and ICMPv6 (RFC 4443 2.1) start
 * with type and code (ICMP counts 4 bytes: type, code, checksum). `short_err` is
 * what a header cut short means: TB_ETRUNC when the capture ended inside it,
 * TB_EPROTO when the whole datagram was captured and is too short for it. */
static int s_upper(uint8_t proto, const uint8_t *p, size_t len, int short_err, tb_summary_t *out)
{
    size_t hdr_len;
    switch (proto) {
    case S_IPPROTO_TCP:
        hdr_len = 20;
        break;
    case S_IPPROTO_UDP:
    case S_IPPROTO_UDPLITE:
        hdr_len = 8;
        break;
    case S_IPPROTO_SCTP:
    case S_IPPROTO_DCCP:
        hdr_len = 12;
        break;
    case S_IPPROTO_ICMP:
    case S_IPPROTO_ICMPV6:
        /* type, code, checksum */
        if (len < 2) {
            return s_fail(out, short_err);
        }
        out->sport = p[0];
        out->dport = p[1];
        out->flags |= TB_SUM_PORTS;
        return len < 4 ? s_fail(out, short_err) : 0;
    default:
        return 0;
    }
    if (len < 4) {
        return s_fail(out, short_err);
    }
    out->sport = tb_dec_be16(p);
    out->dport = tb_dec_be16(p + 2);
    out->flags |= TB_SUM_PORTS;
    if (proto == S_IPPROTO_TCP && len >= 14) {
        out->tcp_flags = p[13];
        out->flags |= TB_SUM_TCPFLAGS;
    }
    /* Only the fixed header counts: TCP options are not needed for a summary. */
    return len < hdr_len ? s_fail(out, short_err) : 0;
}

/* IPv4, RFC 791 3.1. */
static int s_ipv4(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return s_fail(out, TB_ETRUNC);
    }
    size_t hl = (size_t)(p[0] & 0x0f) * 4;
    if ((p[0] >> 4) != 4 || hl < 20) {
        return s_fail(out, TB_EPROTO);
    }
    if (len < 20) {
        return s_fail(out, TB_ETRUNC);
    }
    out->family = TB_FAMILY_IPV4;
    out->proto = p[9];
    memcpy(out->src, p + 12, 4);
    memcpy(out->dst, p + 16, 4);

    /* Total length 0 is what Linux reports for TCP segmentation offload
     * (a "super packet" handed to the NIC before it is cut into frames):
     * tcpdump and Wireshark then use the captured length, and so do we.
     * Otherwise the datagram ends at its total length when the capture holds
     * more (Ethernet padding), and at the capture end when it holds less. */
    size_t total = tb_dec_be16(p + 2);
    if (total != 0 && total < hl) {
        return s_fail(out, TB_EPROTO);
    }
    if (len < hl) {
        return s_fail(out, TB_ETRUNC);
    }
    uint16_t frag = tb_dec_be16(p + 6);
    if ((frag & 0x1fff) != 0) {
        out->flags |= TB_SUM_FRAGMENT;
        return 0;
    }
    /* When the whole datagram was captured, a transport header that does not
     * fit in it is malformed, unless more fragments follow (MF): then the
     * rest is in the next one. When the capture ended first, it is a
     * truncation. */
    int short_err = TB_ETRUNC;
    if (total != 0 && total <= len) {
        len = total;
        short_err = (frag & 0x2000) ? TB_ETRUNC : TB_EPROTO;
    }
    return s_upper(out->proto, p + hl, len - hl, short_err, out);
}

/* IPv6, RFC 8200 3 (fixed header) and 4 (extension headers). */
static int s_ipv6(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return s_fail(out, TB_ETRUNC);
    }
    if ((p[0] >> 4) != 6) {
        return s_fail(out, TB_EPROTO);
    }
    if (len < 40) {
        return s_fail(out, TB_ETRUNC);
    }
    out->family = TB_FAMILY_IPV6;
    memcpy(out->src, p + 8, 16);
    memcpy(out->dst, p + 24, 16);
    uint8_t nh = p[6];
    out->proto = nh;

    /* Payload length 0 means a jumbogram (RFC 2675, hop-by-hop option) or a
     * segmentation-offload / "big TCP" packet: the capture bounds it.
     * Otherwise as for IPv4: a header that does not fit in a fully captured
     * payload is malformed, one cut by the capture end is truncated. */
    int short_err = TB_ETRUNC;
    size_t payload = tb_dec_be16(p + 4);
    if (payload != 0 && payload <= len - 40) {
        len = 40 + payload;
        short_err = TB_EPROTO;
    }
    size_t off = 40;
    for (int n = 0;; n++) {
        size_t ext_len;
        switch (nh) {
        case S_IPPROTO_HOPOPTS:
        case S_IPPROTO_ROUTING:
        case S_IPPROTO_DSTOPTS:
            if (len - off < 2) {
                return s_fail(out, short_err);
            }
            ext_len = ((size_t)p[off + 1] + 1) * 8; /* RFC 8200 4.3, 4.4, 4.6 */
            break;
        case S_IPPROTO_AH:
            if (len - off < 2) {
                return s_fail(out, short_err);
            }
            ext_len = ((size_t)p[off + 1] + 2) * 4; /* RFC 4302 2.2 */
            break;
        case S_IPPROTO_FRAGMENT: {
            /* RFC 8200 4.5: next header, reserved, offset<<3 | M, id. A
             * non-first fragment carries no upper-layer header; its next
             * header names what the reassembled payload starts with. */
            if (len - off < 8) {
                return s_fail(out, short_err);
            }
            uint16_t fo = tb_dec_be16(p + off + 2);
            if ((fo & 0xfff8) != 0) {
                out->proto = p[off];
                out->flags |= TB_SUM_FRAGMENT;
                return 0;
            }
            if (fo & 1) {
                short_err = TB_ETRUNC; /* the rest is in later fragments */
            }
            ext_len = 8;
            break;
        }
        default:
            /* Upper layer, including ESP (50), no next header (59) and
             * mobility (135), whose contents are not summarised. */
            return s_upper(nh, p + off, len - off, short_err, out);
        }
        /* No real packet chains this many headers; the bound keeps a crafted
         * chain of 8-byte options from costing a loop per byte. */
        if (n >= S_MAX_IPV6_EXT) {
            return s_fail(out, TB_EPROTO);
        }
        if (len - off < ext_len) {
            return s_fail(out, short_err);
        }
        /* proto follows the chain, so a decode stopped inside it reports the
         * header it stopped at (0, 43, 44, 51, 60), classed "other". */
        nh = p[off];
        out->proto = nh;
        off += ext_len;
    }
}

/* Network layer by ethertype: IPv4, IPv6, or an encapsulation that ends in
 * one (MPLS, PPPoE: tb_decode_link.c); anything else is a valid non-IP
 * frame. */
static int s_network(uint16_t ethertype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    out->ethertype = ethertype;
    if (ethertype == S_ETHERTYPE_IPV4) {
        return s_ipv4(p, len, out);
    }
    if (ethertype == S_ETHERTYPE_IPV6) {
        return s_ipv6(p, len, out);
    }
    return tb_dec_encap(ethertype, p, len, out);
}

int tb_dec_network(uint16_t ethertype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    return s_network(ethertype, p, len, out);
}

/* From a type/length field at the start of (p, len) through VLAN tags
 * (IEEE 802.1Q 9.6: TCI then the next type; the outermost id is kept),
 * 802.2 LLC / SNAP (IEEE 802.2, RFC 1042: AA AA 03, OUI, ethertype) and the
 * MACsec and Arista headers (tb_dec_shim) to the network layer. */
static int s_ethertype_walk(uint16_t type, const uint8_t *p, size_t len, tb_summary_t *out)
{
    for (int n = 0; n < S_MAX_LINK_LAYERS; n++) {
        if (type == S_ETHERTYPE_IPV4 || type == S_ETHERTYPE_IPV6) {
            return s_network(type, p, len, out);
        }
        if (type == S_ETHERTYPE_8021Q || type == S_ETHERTYPE_8021AD || type == S_ETHERTYPE_QINQ) {
            if (len < 4) {
                return s_fail(out, TB_ETRUNC);
            }
            if (!(out->flags & TB_SUM_VLAN)) {
                out->vlan = tb_dec_be16(p) & 0x0fff;
                out->flags |= TB_SUM_VLAN;
            }
            type = tb_dec_be16(p + 2);
            p += 4;
            len -= 4;
        } else if (type <= S_ETH_MAX_LENGTH) {
            /* 802.3 length: an LLC header follows. Only SNAP with an
             * ethertype OUI (RFC 1042's 00-00-00, 802.1H's 00-00-F8)
             * continues; other SAPs (STP, IPX, NetBIOS, ...) are non-IP. */
            if (len < 3) {
                return s_fail(out, TB_ETRUNC);
            }
            if (p[0] != 0xaa || p[1] != 0xaa || p[2] != 0x03) {
                return 0;
            }
            if (len < 8) {
                return s_fail(out, TB_ETRUNC);
            }
            if (p[3] != 0 || p[4] != 0 || (p[5] != 0 && p[5] != 0xf8)) {
                return 0;
            }
            type = tb_dec_be16(p + 6);
            p += 8;
            len -= 8;
        } else if (type < S_ETHERTYPE_MIN) {
            return 0; /* 1501..1535: neither a length nor an ethertype */
        } else if (type == TB_ETHERTYPE_MACSEC || type == TB_ETHERTYPE_ARISTA) {
            size_t hdr = 0;
            uint16_t next = 0;
            out->ethertype = type;
            int rc = tb_dec_shim(type, p, len, &hdr, &next, out);
            if (rc != 0) {
                return rc < 0 ? rc : 0;
            }
            type = next;
            p += hdr;
            len -= hdr;
        } else {
            return s_network(type, p, len, out);
        }
    }
    return 0; /* deeper than any sane stack: give up, non-IP */
}

/* The ethertype chain with its fast path: IPv4 or IPv6 right after the link
 * header, nearly every frame, goes straight to the network layer without
 * entering the walk (whose loop and locals cost a stack frame). */
static inline int s_ethertype_chain(uint16_t type, const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (type == S_ETHERTYPE_IPV4 || type == S_ETHERTYPE_IPV6) {
        return s_network(type, p, len, out);
    }
    return s_ethertype_walk(type, p, len, out);
}

int tb_dec_ethertype_chain(uint16_t type, const uint8_t *p, size_t len, tb_summary_t *out)
{
    return s_ethertype_chain(type, p, len, out);
}

/* Raw IP: the version nibble chooses the family. */
static int s_raw(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return s_fail(out, TB_ETRUNC);
    }
    switch (p[0] >> 4) {
    case 4:
        return s_network(S_ETHERTYPE_IPV4, p, len, out);
    case 6:
        return s_network(S_ETHERTYPE_IPV6, p, len, out);
    default:
        return s_fail(out, TB_EPROTO);
    }
}

/* BSD loopback (DLT_NULL, DLT_LOOP): a 4-byte address family. AF_INET6 is
 * 10 on Linux, 24 on OpenBSD/NetBSD, 28 on FreeBSD, 30 on macOS. */
static int s_family(uint32_t family, const uint8_t *p, size_t len, tb_summary_t *out)
{
    switch (family) {
    case 2:
        return s_network(S_ETHERTYPE_IPV4, p, len, out);
    case 10:
    case 24:
    case 28:
    case 30:
        return s_network(S_ETHERTYPE_IPV6, p, len, out);
    default:
        return 0; /* OSI, IPX, AppleTalk, ...: non-IP */
    }
}

static int s_link(int linktype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    switch (linktype) {
    case TB_LINK_ETHERNET:
        /* Ethernet II / IEEE 802.3: destination, source, type or length. */
        if (len < 14) {
            return s_fail(out, TB_ETRUNC);
        }
        return s_ethertype_chain(tb_dec_be16(p + 12), p + 14, len - 14, out);
    case TB_LINK_LINUX_SLL:
    case TB_LINK_LINUX_SLL2: {
        /* Linux cooked capture (libpcap LINKTYPE_LINUX_SLL/SLL2): v1 is 16
         * bytes with the protocol last, v2 is 20 with the protocol first.
         * Protocol values below 0x0600 are Linux ETH_P_* pseudo-types (802.2
         * LLC, Novell 802.3, CAN, netlink family, ...): all non-IP. libpcap
         * re-inserts a stripped VLAN tag after the header with 0x8100. */
        size_t hdr = linktype == TB_LINK_LINUX_SLL ? 16 : 20;
        if (len < hdr) {
            return s_fail(out, TB_ETRUNC);
        }
        uint16_t proto = tb_dec_be16(linktype == TB_LINK_LINUX_SLL ? p + 14 : p);
        if (proto < S_ETHERTYPE_MIN) {
            return 0;
        }
        return s_ethertype_chain(proto, p + hdr, len - hdr, out);
    }
    case TB_LINK_RAW_DLT:
    case TB_LINK_RAW_DLT_ALT:
    case TB_LINK_RAW:
        return s_raw(p, len, out);
    case TB_LINK_IPV4:
        return s_network(S_ETHERTYPE_IPV4, p, len, out);
    case TB_LINK_IPV6:
        return s_network(S_ETHERTYPE_IPV6, p, len, out);
    case TB_LINK_NULL: {
        /* Host order of the capturing machine: a family never has bits in
         * the upper half, so a value that does was written the other way. */
        if (len < 4) {
            return s_fail(out, TB_ETRUNC);
        }
        uint32_t family = tb_dec_be32(p);
        if (family & 0xffff0000u) {
            family = ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
        }
        return s_family(family, p + 4, len - 4, out);
    }
    case TB_LINK_LOOP:
        if (len < 4) {
            return s_fail(out, TB_ETRUNC);
        }
        return s_family(tb_dec_be32(p), p + 4, len - 4, out);
    default:
        return tb_dec_link_more(linktype, p, len, out);
    }
}

int tb_dec_link(int linktype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    return s_link(linktype, p, len, out);
}

int tb_decode(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen, uint64_t ts_ns,
              tb_summary_t *out)
{
    assert(out != NULL);
    assert(data != NULL || caplen == 0);
    memset(out, 0, sizeof(*out));
    out->ts_ns = ts_ns;
    out->wire_len = wirelen;
    out->cap_len = caplen;
    return s_link(linktype, data, caplen, out);
}

int tb_decode_linktype_supported(int linktype)
{
    switch (linktype) {
    case TB_LINK_NULL:
    case TB_LINK_ETHERNET:
    case TB_LINK_RAW_DLT:
    case TB_LINK_RAW_DLT_ALT:
    case TB_LINK_RAW:
    case TB_LINK_LOOP:
    case TB_LINK_LINUX_SLL:
    case TB_LINK_IPV4:
    case TB_LINK_IPV6:
    case TB_LINK_LINUX_SLL2:
        return 1;
    default:
        return tb_dec_link_more_supported(linktype);
    }
}

/* Protocol number -> its class XOR TB_PC_OTHER, so that the numbers left
 * out (zero) are TB_PC_OTHER. */
#define S_PC(c) ((uint8_t)((c) ^ TB_PC_OTHER))
static const uint8_t s_proto_class[256] = {
    [S_IPPROTO_TCP] = S_PC(TB_PC_TCP),
    [S_IPPROTO_UDP] = S_PC(TB_PC_UDP),
    [S_IPPROTO_ICMP] = S_PC(TB_PC_ICMP),
    [S_IPPROTO_ICMPV6] = S_PC(TB_PC_ICMPV6),
};

tb_proto_class_t tb_proto_class(const tb_summary_t *s)
{
    /* By protocol number alone: ICMP (1) inside IPv6 still counts as icmp.
     * From a table, not a switch: the protocols of a stream come mixed, and
     * the switch's branches mispredicted on a good share of its packets. */
    if (s->family == TB_FAMILY_NONE) {
        return TB_PC_NON_IP;
    }
    return (tb_proto_class_t)(s_proto_class[s->proto] ^ TB_PC_OTHER);
}

const char *tb_proto_class_name(tb_proto_class_t pc)
{
    static const char *const names[TB_PC_COUNT] = {
        [TB_PC_TCP] = "tcp",       [TB_PC_UDP] = "udp",     [TB_PC_ICMP] = "icmp",
        [TB_PC_ICMPV6] = "icmpv6", [TB_PC_OTHER] = "other", [TB_PC_NON_IP] = "non_ip",
    };
    if ((unsigned)pc >= TB_PC_COUNT) {
        return "unknown";
    }
    return names[pc];
}

char *tb_summary_addr(const tb_summary_t *s, int which, char *buf, size_t size)
{
    if (size == 0) {
        return buf;
    }
    buf[0] = '\0';
    const uint8_t *a = which == 0 ? s->src : s->dst;
    int af;
    if (s->family == TB_FAMILY_IPV4) {
        af = AF_INET;
    } else if (s->family == TB_FAMILY_IPV6) {
        af = AF_INET6;
    } else {
        return buf;
    }
    socklen_t n = size > 64 ? 64 : (socklen_t)size;
    if (inet_ntop(af, a, buf, n) == NULL) {
        buf[0] = '\0'; /* buffer too small: empty rather than cut */
    }
    return buf;
}
