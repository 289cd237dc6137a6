/* tb_decode_int — what the decoder's two files share; not a public interface.
 *
 * tb_decode.c holds the hot path (Ethernet, VLAN, LLC/SNAP, Linux cooked,
 * raw IP, loopback) and the IP and transport parsers; tb_decode_link.c holds
 * the other link types (PPP, Cisco HDLC, Frame Relay, Juniper, IEEE 802.11,
 * PKTAP, ARCnet, NFLOG, IPoIB, IPNET) and the encapsulations found behind an
 * ethertype (MPLS, PPPoE, MACsec, Arista). Every function here follows the
 * reading discipline of tb_decode.c: it reads only the slice (p, len) it is
 * given, and returns 0, TB_ETRUNC or TB_EPROTO (the latter two through
 * tb_dec_fail(), which sets the summary flag). Pure functions, no state. */
#ifndef TB_DECODE_INT_H
#define TB_DECODE_INT_H

#include "tb_summary.h"

#include <stddef.h>
#include <stdint.h>

enum {
    TB_ETHERTYPE_IPV4 = 0x0800,
    TB_ETHERTYPE_IPV6 = 0x86dd,
    TB_ETHERTYPE_MPLS = 0x8847,       /* RFC 3032, unicast */
    TB_ETHERTYPE_MPLS_MCAST = 0x8848, /* RFC 5332, multicast */
    TB_ETHERTYPE_PPPOE_SESS = 0x8864, /* RFC 2516 session stage */
    TB_ETHERTYPE_MACSEC = 0x88e5,     /* IEEE 802.1AE */
    TB_ETHERTYPE_ARISTA = 0xd28b,     /* Arista vendor ethertype (timestamps) */
};

static inline uint16_t tb_dec_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static inline uint32_t tb_dec_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t tb_dec_le16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[1] << 8) | p[0]);
}

static inline uint32_t tb_dec_le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* Record a decode failure (TB_ETRUNC or TB_EPROTO) and pass it on. */
int tb_dec_fail(tb_summary_t *out, int err);

/* The network layer named by an ethertype: IPv4, IPv6, or an encapsulation
 * of tb_decode_link.c (MPLS, PPPoE); anything else is a valid non-IP frame.
 * Records the ethertype. */
int tb_dec_network(uint16_t ethertype, const uint8_t *p, size_t len, tb_summary_t *out);

/* From a type/length field through VLAN tags, 802.2 LLC/SNAP, MACsec and
 * Arista headers to the network layer. A type <= 1500 (an 802.3 length)
 * means an LLC header starts at p. */
int tb_dec_ethertype_chain(uint16_t type, const uint8_t *p, size_t len, tb_summary_t *out);

/* A link type of tb_decode.c, by number (PKTAP names its inner link type). */
int tb_dec_link(int linktype, const uint8_t *p, size_t len, tb_summary_t *out);

/* The link types of tb_decode_link.c: TB_ENOTSUP (nothing written) for one
 * it does not know. */
int tb_dec_link_more(int linktype, const uint8_t *p, size_t len, tb_summary_t *out);
int tb_dec_link_more_supported(int linktype);

/* The encapsulations behind an ethertype that end the chain (MPLS, PPPoE
 * session); 0 (non-IP) for any other ethertype. */
int tb_dec_encap(uint16_t ethertype, const uint8_t *p, size_t len, tb_summary_t *out);

/* A header the ethertype chain walks through (MACsec, Arista): 0 with *hdr
 * (its length) and *next (the ethertype after it) set; 1 when nothing
 * decodable follows (an encrypted MACsec frame, an unknown Arista subtype):
 * a valid non-IP frame; or TB_ETRUNC / TB_EPROTO. */
int tb_dec_shim(uint16_t type, const uint8_t *p, size_t len, size_t *hdr, uint16_t *next,
                tb_summary_t *out);

#endif
