/* tb_summary — the fixed-size summary of one captured packet, and the packet
 * decoder that produces it.
 *
 * A summary is plain data (no pointers, no ownership): the probe fills one per
 * packet, the wire format carries it, the collector aggregates it. The decoder
 * is a pure function: it reads only [data, data + caplen), never allocates,
 * keeps no state, and is safe to call from any thread.
 *
 * Which header a summary describes: the first IP header found after the link
 * layer and the encapsulations in front of IP (VLAN tags, LLC/SNAP, MPLS
 * label stacks, PPP and PPPoE, MACsec integrity-only frames, Arista
 * timestamps). Tunnels are not unwrapped: a GRE packet is summarised as
 * proto 47 between the outer addresses. IPv6 extension headers are walked to
 * the upper-layer protocol. A non-first IP fragment has its protocol and no
 * ports (TB_SUM_FRAGMENT). */
#ifndef TB_SUMMARY_H
#define TB_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

/* Link types, numbered as libpcap's LINKTYPE_/DLT_ values. pcap_datalink()
 * returns DLT values; tb_decode() accepts both spellings where they differ. */
enum {
    TB_LINK_NULL = 0,            /* BSD loopback, host-order 4-byte family */
    TB_LINK_ETHERNET = 1,        /* Ethernet II / 802.3, with 802.1Q/802.1ad tags */
    TB_LINK_ARCNET_BSD = 7,      /* ARCnet, BSD header (RFC 1051 / RFC 1201) */
    TB_LINK_PPP = 9,             /* PPP, with or without HDLC-like framing */
    TB_LINK_RAW_DLT = 12,        /* DLT_RAW on most platforms: raw IPv4 or IPv6 */
    TB_LINK_RAW_DLT_ALT = 14,    /* DLT_RAW on OpenBSD */
    TB_LINK_PPP_HDLC = 50,       /* PPP in HDLC-like framing (or Cisco HDLC) */
    TB_LINK_PPP_ETHER = 51,      /* PPPoE header without Ethernet */
    TB_LINK_RAW = 101,           /* LINKTYPE_RAW: raw IPv4 or IPv6 */
    TB_LINK_C_HDLC = 104,        /* Cisco HDLC */
    TB_LINK_IEEE802_11 = 105,    /* IEEE 802.11 frames */
    TB_LINK_FRELAY = 107,        /* Frame Relay (RFC 2427, or Cisco's ethertype) */
    TB_LINK_LOOP = 108,          /* OpenBSD loopback, network-order family */
    TB_LINK_LINUX_SLL = 113,     /* Linux cooked capture v1 */
    TB_LINK_RADIOTAP = 127,      /* IEEE 802.11 after a radiotap header */
    TB_LINK_ARCNET_LINUX = 129,  /* ARCnet, Linux header */
    TB_LINK_PKTAP_DLT = 149,     /* DLT_PKTAP on Apple systems (DLT_USER2) */
    TB_LINK_JUNIPER_ETHER = 178, /* Juniper "MGC" header, then Ethernet */
    TB_LINK_PPP_WITH_DIR = 204,  /* direction byte, then PPP */
    TB_LINK_IPNET = 226,         /* Solaris IPNET */
    TB_LINK_IPV4 = 228,          /* raw IPv4 */
    TB_LINK_IPV6 = 229,          /* raw IPv6 */
    TB_LINK_NFLOG = 239,         /* Linux netfilter NFLOG */
    TB_LINK_IPOIB = 242,         /* IP over InfiniBand (RFC 4391 header) */
    TB_LINK_PKTAP = 258,         /* Apple PKTAP */
    TB_LINK_LINUX_SLL2 = 276,    /* Linux cooked capture v2 */
};

/* Network family of the summarised header. */
enum { TB_FAMILY_NONE = 0, TB_FAMILY_IPV4 = 4, TB_FAMILY_IPV6 = 6 };

/* Summary flag bits (tb_summary_t.flags). */
enum {
    TB_SUM_VLAN = 1u << 0,      /* vlan holds the outermost 802.1Q/802.1ad id */
    TB_SUM_PORTS = 1u << 1,     /* sport/dport are valid (TCP, UDP, SCTP, UDP-Lite,
                                   DCCP) or hold ICMP type/code */
    TB_SUM_TRUNC = 1u << 2,     /* the captured bytes ended inside a header */
    TB_SUM_MALFORMED = 1u << 3, /* a header carried an impossible value */
    TB_SUM_FRAGMENT = 1u << 4,  /* an IP fragment other than the first: no ports */
    TB_SUM_TCPFLAGS = 1u << 5,  /* tcp_flags is valid */
};

/* Protocol classes the statistics are kept by. */
typedef enum {
    TB_PC_TCP = 0,
    TB_PC_UDP,
    TB_PC_ICMP,
    TB_PC_ICMPV6,
    TB_PC_OTHER, /* any other IP protocol */
    TB_PC_NON_IP,
    TB_PC_COUNT
} tb_proto_class_t;

/* One packet. Addresses: IPv4 in the first 4 bytes of src/dst, the rest zero;
 * all-zero when family is TB_FAMILY_NONE. Ports in host byte order. */
typedef struct {
    uint64_t ts_ns;     /* capture time, nanoseconds since the Unix epoch */
    uint32_t wire_len;  /* original length on the wire (tshark frame.len) */
    uint32_t cap_len;   /* bytes captured */
    uint8_t family;     /* TB_FAMILY_* */
    uint8_t proto;      /* upper-layer IP protocol number (valid if family) */
    uint8_t tcp_flags;  /* TCP flag byte (CWR..FIN), valid with TB_SUM_TCPFLAGS */
    uint8_t flags;      /* TB_SUM_* bits */
    uint16_t sport;     /* source port, or ICMP type */
    uint16_t dport;     /* destination port, or ICMP code */
    uint16_t vlan;      /* outermost VLAN id (12 bits), valid with TB_SUM_VLAN */
    uint16_t ethertype; /* ethertype (or equivalent) of the network layer, 0 if none */
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t point; /* 0: none; else a 1-based index into the source's point table
                       (tb_point.h); on the wire, into the batch's table */
} tb_summary_t;

/* Decode one captured frame of link type `linktype` into *out (fully
 * overwritten). Returns:
 *   0           decoded completely;
 *   TB_ETRUNC   the capture ended inside a header (TB_SUM_TRUNC set): *out holds
 *               everything that was validly decoded before that point;
 *   TB_EPROTO   a header was invalid (TB_SUM_MALFORMED set), same partial rule;
 *   TB_ENOTSUP  unsupported link type: *out has times and lengths, family NONE.
 * Never reads outside [data, data + caplen). */
int tb_decode(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen, uint64_t ts_ns,
              tb_summary_t *out);

/* True if tb_decode() understands this link type. */
int tb_decode_linktype_supported(int linktype);

/* Protocol class of a summary. */
tb_proto_class_t tb_proto_class(const tb_summary_t *s);

/* Name of a protocol class: "tcp", "udp", "icmp", "icmpv6", "other", "non_ip". */
const char *tb_proto_class_name(tb_proto_class_t pc);

/* Format the address of a summary (src if which == 0, else dst) into buf:
 * dotted quad, RFC 5952 IPv6, or "" for non-IP. Returns buf. */
char *tb_summary_addr(const tb_summary_t *s, int which, char *buf, size_t size);

#endif
