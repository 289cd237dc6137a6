/* tb_decode_link — the link types and encapsulations off the decoder's hot
 * path: PPP (and PPPoE), MPLS, Cisco HDLC, Frame Relay, Juniper Ethernet,
 * MACsec, Arista timestamps, IEEE 802.11 (with radiotap), PKTAP, ARCnet,
 * Linux NFLOG, IP over InfiniBand and Solaris IPNET.
 *
 * Same contract and reading discipline as tb_decode.c (see tb_decode_int.h):
 * every parser gets a slice (p, len), checks len before each field, reads
 * multi-byte fields byte by byte, and stops at the first problem. Each leads
 * to the first IP header, which tb_decode.c summarises; what does not lead to
 * one (control protocols, encrypted or fragmented payloads) is a valid non-IP
 * frame. Nesting is bounded: MPLS and PPP lead only to IP or MPLS, PKTAP
 * refuses to nest itself, and the ethertype chain counts its layers. */
#include "tb_decode_int.h"
#include "tb_err.h"

#include <string.h>

enum {
    S_MAX_MPLS_LABELS = 16, /* label stack entries walked before giving up */
    S_MAX_NFLOG_TLVS = 64,  /* NFLOG TLVs walked before giving up */
};

/* PPP protocol numbers (RFC 1661 2, IANA "PPP DLL Protocol Numbers"). */
enum {
    S_PPP_IPV4 = 0x0021,
    S_PPP_IPV6 = 0x0057,
    S_PPP_MPLS = 0x0281,
    S_PPP_MPLS_MCAST = 0x0283,
};

/* Cisco HDLC addresses (the first byte of a Cisco HDLC frame). */
enum { S_CHDLC_UNICAST = 0x0f, S_CHDLC_MULTICAST = 0x8f };

/* IP by the version nibble, for headers that do not name what follows (MPLS,
 * Juniper without L2): 4 and 6 are IP, anything else a valid non-IP frame. */
static int s_ip_guess(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    switch (p[0] >> 4) {
    case 4:
        return tb_dec_network(TB_ETHERTYPE_IPV4, p, len, out);
    case 6:
        return tb_dec_network(TB_ETHERTYPE_IPV6, p, len, out);
    default:
        return 0;
    }
}

/* MPLS label stack, RFC 3032 2.1: 4-byte entries (label 20 bits, TC 3, S 1,
 * TTL 8) up to the one with S set. Nothing names the payload: RFC 4385's
 * pseudowire control word starts with nibble 0, IP with 4 or 6, so the nibble
 * decides, as routers and Wireshark do. Pseudowires are left non-IP: with a
 * control word always; without one (Ethernet over MPLS) unless the
 * destination MAC address happens to start with nibble 4 or 6, which is then
 * read as IP (the ambiguity RFC 4385 introduced the control word for). */
static int s_mpls(const uint8_t *p, size_t len, tb_summary_t *out)
{
    for (int n = 0; n < S_MAX_MPLS_LABELS; n++) {
        if (len < 4) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        int bottom = p[2] & 0x01;
        p += 4;
        len -= 4;
        if (bottom) {
            return s_ip_guess(p, len, out);
        }
    }
    return 0; /* deeper than any real stack: non-IP */
}

/* The PPP protocol field (RFC 1661 2): two bytes, or one when compressed
 * (RFC 1661 6.5: protocol numbers are odd in their low byte and even in the
 * high one, so an odd first byte is a whole compressed field). */
static int s_ppp_proto(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint16_t proto;
    if (p[0] & 0x01) {
        proto = p[0];
        p += 1;
        len -= 1;
    } else {
        if (len < 2) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        proto = tb_dec_be16(p);
        p += 2;
        len -= 2;
    }
    switch (proto) {
    case S_PPP_IPV4:
        return tb_dec_network(TB_ETHERTYPE_IPV4, p, len, out);
    case S_PPP_IPV6:
        return tb_dec_network(TB_ETHERTYPE_IPV6, p, len, out);
    case S_PPP_MPLS:
        return tb_dec_network(TB_ETHERTYPE_MPLS, p, len, out);
    case S_PPP_MPLS_MCAST:
        return tb_dec_network(TB_ETHERTYPE_MPLS_MCAST, p, len, out);
    default:
        return 0; /* LCP, IPCP, CHAP, multilink fragments, ...: non-IP */
    }
}

/* Cisco HDLC: address (0x0f unicast, 0x8f multicast), control (0), then an
 * ethertype. Values below 0x0600 are not ethertypes: non-IP. */
static int s_chdlc(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 4) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint16_t type = tb_dec_be16(p + 2);
    if (type < 0x0600) {
        return 0;
    }
    return tb_dec_ethertype_chain(type, p + 4, len - 4, out);
}

/* PPP as libpcap's LINKTYPE_PPP and LINKTYPE_PPP_HDLC deliver it: RFC 1662
 * HDLC-like framing (address 0xff, control 0x03) or none (RFC 1661 with
 * address-and-control-field compression), then the protocol. A first byte
 * of 0x0f or 0x8f is Cisco HDLC (RFC 1547 4.3.1), which the same link types
 * carry. */
static int s_ppp(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 1) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (p[0] == S_CHDLC_UNICAST || p[0] == S_CHDLC_MULTICAST) {
        return s_chdlc(p, len, out);
    }
    if (p[0] == 0xff) {
        if (len < 2) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[1] == 0x03) {
            p += 2;
            len -= 2;
        }
    }
    return s_ppp_proto(p, len, out);
}

/* PPPoE, RFC 2516 4: version and type (0x11), code (0 in a session),
 * session id, payload length, then the PPP protocol field. The length bounds
 * the payload (Ethernet padding follows). */
static int s_pppoe(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 6) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (p[0] != 0x11 || p[1] != 0x00) {
        return 0;
    }
    size_t plen = tb_dec_be16(p + 4);
    len -= 6;
    if (plen < len) {
        len = plen;
    }
    return s_ppp_proto(p + 6, len, out);
}

int tb_dec_encap(uint16_t ethertype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    switch (ethertype) {
    case TB_ETHERTYPE_MPLS:
    case TB_ETHERTYPE_MPLS_MCAST:
        return s_mpls(p, len, out);
    case TB_ETHERTYPE_PPPOE_SESS:
        return s_pppoe(p, len, out);
    default:
        return 0;
    }
}

int tb_dec_shim(uint16_t type, const uint8_t *p, size_t len, size_t *hdr, uint16_t *next,
                tb_summary_t *out)
{
    size_t n;
    if (type == TB_ETHERTYPE_MACSEC) {
        /* IEEE 802.1AE 9.3 SecTAG: TCI/AN (V 0x80, ES, SC 0x20, SCB, E 0x08,
         * C 0x04, AN), short length, packet number (4), SCI (8) if SC. With E
         * and C clear the frame is integrity-only: the user data, starting
         * with its ethertype, is in clear between SecTAG and ICV. Otherwise
         * it is encrypted (or V is not 0): non-IP. */
        if (len < 6) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[0] & (0x80 | 0x08 | 0x04)) {
            return 1;
        }
        n = (p[0] & 0x20) ? 14 : 6;
    } else {
        /* Arista's timestamp header (after ethertype 0xd28b): subtype (1 =
         * timestamp), version (0x0010/0x0110: 64-bit seconds and
         * nanoseconds; 0x0020/0x0120: 48-bit), the timestamp, then the
         * original ethertype. */
        if (len < 4) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        uint16_t version = tb_dec_be16(p + 2);
        if (tb_dec_be16(p) != 0x0001) {
            return 1;
        }
        if ((version & 0xf0) == 0x10) {
            n = 4 + 8;
        } else if ((version & 0xf0) == 0x20) {
            n = 4 + 6;
        } else {
            return 1;
        }
    }
    if (len < n + 2) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    *next = tb_dec_be16(p + n);
    *hdr = n + 2;
    return 0;
}

/* Frame Relay, RFC 2427: a Q.922 address of 2 to 4 bytes (the last has EA,
 * bit 0, set), control 0x03 (UI), an optional pad 0x00, then an NLPID: 0xcc
 * IPv4, 0x8e IPv6, 0x80 SNAP (OUI 00-00-00 and an ethertype). Without the UI
 * control byte it is Cisco's encapsulation: an ethertype after the address. */
static int s_frelay(const uint8_t *p, size_t len, tb_summary_t *out)
{
    size_t off = 0;
    for (;;) {
        if (len <= off) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[off++] & 0x01) {
            break;
        }
        if (off == 4) {
            return tb_dec_fail(out, TB_EPROTO);
        }
    }
    if (off < 2) {
        return tb_dec_fail(out, TB_EPROTO);
    }
    if (len - off < 2) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (p[off] != 0x03) {
        uint16_t type = tb_dec_be16(p + off);
        return type < 0x0600 ? 0 : tb_dec_ethertype_chain(type, p + off + 2, len - off - 2, out);
    }
    off++;
    if (p[off] == 0x00) {
        off++;
        if (len <= off) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
    }
    uint8_t nlpid = p[off++];
    switch (nlpid) {
    case 0xcc:
        return tb_dec_network(TB_ETHERTYPE_IPV4, p + off, len - off, out);
    case 0x8e:
        return tb_dec_network(TB_ETHERTYPE_IPV6, p + off, len - off, out);
    case 0x80:
        if (len - off < 5) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[off] != 0 || p[off + 1] != 0 || p[off + 2] != 0) {
            return 0; /* bridged frames (00-80-C2) and others: non-IP */
        }
        return tb_dec_network(tb_dec_be16(p + off + 3), p + off + 5, len - off - 5, out);
    default:
        return 0; /* Q.933, CLNP, ES-IS, IS-IS, ...: non-IP */
    }
}

/* Juniper's capture header (LINKTYPE_JUNIPER_ETHER, as tcpdump's
 * print-juniper.c reads it): magic "MGC", flags (0x80: extensions follow,
 * 0x02: no layer-2 header), with extensions a 2-byte total length and TLVs;
 * then an Ethernet frame, or the IP packet itself when there is no L2. */
static int s_juniper_ether(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 4) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (p[0] != 'M' || p[1] != 'G' || p[2] != 'C') {
        return tb_dec_fail(out, TB_EPROTO);
    }
    uint8_t flags = p[3];
    size_t hdr = 4;
    if (flags & 0x80) {
        if (len < 6) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        hdr = 6 + (size_t)tb_dec_be16(p + 4);
    }
    if (len < hdr) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (flags & 0x02) {
        return s_ip_guess(p + hdr, len - hdr, out);
    }
    return tb_dec_link(TB_LINK_ETHERNET, p + hdr, len - hdr, out);
}

/* IEEE 802.11 data frames (IEEE 802.11-2020 9.2, 9.3.2): frame control (type
 * 2 = data; subtype bit 0x4: no data, 0x8: QoS), duration, three addresses,
 * sequence control; address 4 when both ToDS and FromDS are set; QoS control
 * (its A-MSDU bit means subframes: non-IP here); HT control when the +HTC
 * (order) bit is set on a QoS frame. `datapad` (radiotap's flag) aligns the
 * body to 4 bytes. Protected frames are encrypted: non-IP. The body starts
 * with LLC/SNAP, which the ethertype chain reads when given an 802.3-style
 * length (0). */
static int s_80211(const uint8_t *p, size_t len, int datapad, tb_summary_t *out)
{
    if (len < 2) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint8_t fc0 = p[0], fc1 = p[1];
    unsigned type = (fc0 >> 2) & 0x3, subtype = fc0 >> 4;
    if ((fc0 & 0x3) != 0 || type != 2 || (subtype & 0x4) || (fc1 & 0x40)) {
        return 0;
    }
    size_t hdr = 24;
    if ((fc1 & 0x03) == 0x03) {
        hdr += 6;
    }
    if (subtype & 0x8) {
        if (len < hdr + 2) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[hdr] & 0x80) {
            return 0; /* A-MSDU */
        }
        hdr += 2;
        if (fc1 & 0x80) {
            hdr += 4;
        }
    }
    if (datapad) {
        hdr = (hdr + 3) & ~(size_t)3;
    }
    if (len < hdr) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    return tb_dec_ethertype_chain(0, p + hdr, len - hdr, out);
}

/* Radiotap (radiotap.org): version 0, pad, length (little-endian), present
 * bitmaps (bit 31: another follows). Only the Flags field (bit 1) matters:
 * its 0x20 says the 802.11 header is padded; it follows TSFT (bit 0, 8
 * bytes aligned to 8) when that is present. */
static int s_radiotap(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 4) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    size_t rt_len = tb_dec_le16(p + 2);
    if (p[0] != 0 || rt_len < 8) {
        return tb_dec_fail(out, TB_EPROTO);
    }
    if (len < rt_len) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint32_t present = tb_dec_le32(p + 4);
    size_t off = 8;
    for (uint32_t more = present; more & 0x80000000u; off += 4) {
        if (rt_len < off + 4) {
            return tb_dec_fail(out, TB_EPROTO);
        }
        more = tb_dec_le32(p + off);
    }
    int datapad = 0;
    if (present & 0x2) {
        if (present & 0x1) {
            off = ((off + 7) & ~(size_t)7) + 8;
        }
        if (rt_len <= off) {
            return tb_dec_fail(out, TB_EPROTO);
        }
        datapad = (p[off] & 0x20) != 0;
    }
    return s_80211(p + rt_len, len - rt_len, datapad, out);
}

/* PKTAP (Apple; libpcap pcap/pktap.h): a header in the capturing host's byte
 * order (little-endian on every Apple machine) starting with its length,
 * the type of what follows and the inner link type (DLT), then the frame.
 * A PKTAP frame inside PKTAP is refused (non-IP): nesting stays bounded. An
 * inner link type tapbus does not decode is non-IP. */
static int s_pktap(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 12) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    size_t hdr = tb_dec_le32(p);
    uint32_t dlt = tb_dec_le32(p + 8);
    if (hdr < 12) {
        return tb_dec_fail(out, TB_EPROTO);
    }
    if (len < hdr) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    if (dlt == TB_LINK_PKTAP || dlt == TB_LINK_PKTAP_DLT || dlt > 0xffff) {
        return 0;
    }
    int rc = tb_dec_link((int)dlt, p + hdr, len - hdr, out);
    return rc == TB_ENOTSUP ? 0 : rc;
}

/* ARCnet (RFC 1051, RFC 1201; tcpdump print-arcnet.c). BSD: source,
 * destination, type; for the RFC 1201 types a split flag (0xff: an
 * exception packet, with 4 more bytes and the flag repeated) and a sequence
 * number follow. Linux: source, destination, a 2-byte offset, type, and for
 * RFC 1201 types flag and sequence (Linux reassembles: no exception
 * packets). Types 0xf0 (IP, RFC 1051) and 0xd4 (IP, RFC 1201) carry IPv4,
 * 0xc4 IPv6. An RFC 1201 fragment other than the first (even, non-zero
 * flag) carries no IP header: non-IP. */
enum {
    S_ARC_IP_OLD = 0xf0,
    S_ARC_ARP_OLD = 0xf1,
    S_ARC_DIAGNOSE = 0x80,
    S_ARC_IP = 0xd4,
    S_ARC_INET6 = 0xc4,
};

static int s_arcnet(const uint8_t *p, size_t len, int linux_hdr, tb_summary_t *out)
{
    size_t at = linux_hdr ? 4 : 2; /* the type byte */
    if (len <= at) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint8_t type = p[at];
    size_t hdr = at + 1;
    if (type != S_ARC_IP_OLD && type != S_ARC_ARP_OLD && type != S_ARC_DIAGNOSE) {
        if (len < at + 4) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        uint8_t flag = p[at + 1];
        hdr = at + 4;
        if (!linux_hdr && flag == 0xff) {
            if (len < at + 8) {
                return tb_dec_fail(out, TB_ETRUNC);
            }
            flag = p[at + 5];
            hdr = at + 8;
        }
        if (flag != 0 && (flag & 1) == 0) {
            return 0;
        }
    }
    if (len < hdr) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    switch (type) {
    case S_ARC_IP_OLD:
    case S_ARC_IP:
        return tb_dec_network(TB_ETHERTYPE_IPV4, p + hdr, len - hdr, out);
    case S_ARC_INET6:
        return tb_dec_network(TB_ETHERTYPE_IPV6, p + hdr, len - hdr, out);
    default:
        return 0;
    }
}

/* Linux NFLOG (libpcap pcap/nflog.h): family (AF_INET 2, AF_INET6 10),
 * version, resource id, then TLVs: length (including its 4-byte header) and
 * type, in host byte order (libpcap swaps them when it reads a file of the
 * other order), each padded to 4 bytes. NFULA_PAYLOAD (9) is the packet; a
 * payload cut by the capture is decoded as far as it goes. */
static int s_nflog(const uint8_t *p, size_t len, tb_summary_t *out)
{
    if (len < 4) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    uint8_t family = p[0];
    size_t off = 4;
    for (int n = 0; n < S_MAX_NFLOG_TLVS && off < len; n++) {
        if (len - off < 4) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        uint16_t tlv_len, tlv_type;
        memcpy(&tlv_len, p + off, 2);
        memcpy(&tlv_type, p + off + 2, 2);
        if (tlv_len < 4) {
            return tb_dec_fail(out, TB_EPROTO);
        }
        if ((tlv_type & 0x3fff) == 9) {
            size_t vlen = len - off - 4;
            if (tlv_len - 4u < vlen) {
                vlen = tlv_len - 4u;
            }
            if (family == 2) {
                return tb_dec_network(TB_ETHERTYPE_IPV4, p + off + 4, vlen, out);
            }
            if (family == 10) {
                return tb_dec_network(TB_ETHERTYPE_IPV6, p + off + 4, vlen, out);
            }
            return 0;
        }
        if (len - off < tlv_len) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        size_t step = ((size_t)tlv_len + 3) & ~(size_t)3;
        off = len - off < step ? len : off + step;
    }
    /* No payload. Where the capture was cut, the payload may have been in
     * what was not captured. */
    if (out->cap_len < out->wire_len) {
        return tb_dec_fail(out, TB_ETRUNC);
    }
    return 0;
}

int tb_dec_link_more(int linktype, const uint8_t *p, size_t len, tb_summary_t *out)
{
    switch (linktype) {
    case TB_LINK_PPP:
    case TB_LINK_PPP_HDLC:
        return s_ppp(p, len, out);
    case TB_LINK_PPP_WITH_DIR:
        /* One direction byte, then PPP as LINKTYPE_PPP. */
        if (len < 1) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        return s_ppp(p + 1, len - 1, out);
    case TB_LINK_PPP_ETHER:
        return s_pppoe(p, len, out);
    case TB_LINK_C_HDLC:
        return s_chdlc(p, len, out);
    case TB_LINK_FRELAY:
        return s_frelay(p, len, out);
    case TB_LINK_JUNIPER_ETHER:
        return s_juniper_ether(p, len, out);
    case TB_LINK_IEEE802_11:
        return s_80211(p, len, 0, out);
    case TB_LINK_RADIOTAP:
        return s_radiotap(p, len, out);
    case TB_LINK_PKTAP:
    case TB_LINK_PKTAP_DLT:
        return s_pktap(p, len, out);
    case TB_LINK_ARCNET_BSD:
        return s_arcnet(p, len, 0, out);
    case TB_LINK_ARCNET_LINUX:
        return s_arcnet(p, len, 1, out);
    case TB_LINK_NFLOG:
        return s_nflog(p, len, out);
    case TB_LINK_IPOIB: {
        /* RFC 4391 6: a 4-byte header, the ethertype and 2 reserved bytes. */
        if (len < 4) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        uint16_t type = tb_dec_be16(p);
        return type < 0x0600 ? 0 : tb_dec_ethertype_chain(type, p + 4, len - 4, out);
    }
    case TB_LINK_IPNET:
        /* Solaris IPNET (libpcap pcap/ipnet.h): version, family (Solaris
         * AF_INET 2, AF_INET6 26), then 22 bytes of lengths, interfaces
         * and zones. */
        if (len < 24) {
            return tb_dec_fail(out, TB_ETRUNC);
        }
        if (p[1] == 2) {
            return tb_dec_network(TB_ETHERTYPE_IPV4, p + 24, len - 24, out);
        }
        if (p[1] == 26) {
            return tb_dec_network(TB_ETHERTYPE_IPV6, p + 24, len - 24, out);
        }
        return 0;
    default:
        return TB_ENOTSUP;
    }
}

int tb_dec_link_more_supported(int linktype)
{
    switch (linktype) {
    case TB_LINK_PPP:
    case TB_LINK_PPP_HDLC:
    case TB_LINK_PPP_WITH_DIR:
    case TB_LINK_PPP_ETHER:
    case TB_LINK_C_HDLC:
    case TB_LINK_FRELAY:
    case TB_LINK_JUNIPER_ETHER:
    case TB_LINK_IEEE802_11:
    case TB_LINK_RADIOTAP:
    case TB_LINK_PKTAP:
    case TB_LINK_PKTAP_DLT:
    case TB_LINK_ARCNET_BSD:
    case TB_LINK_ARCNET_LINUX:
    case TB_LINK_NFLOG:
    case TB_LINK_IPOIB:
    case TB_LINK_IPNET:
        return 1;
    default:
        return 0;
    }
}
