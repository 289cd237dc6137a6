/* dpmi — DPMI measurement frames (live measurement streams), decoded.
 *
 * A DPMI measurement point (MP) sends the packets it captures to consumers as
 * Ethernet frames addressed to the stream's (usually multicast) address. The
 * layout, as DPMI's libcap_utils defines it (caputils/send.h struct sendhead,
 * caputils/capture.h struct cap_header; checked on receipt by
 * stream_ethernet.c and valid_framesize()/match_inc_seqnr() in stream.c):
 *
 *   Ethernet header, 14 bytes: destination (the stream address), source (the
 *   sender), ethertype 0x0810;
 *   sendhead, 16 bytes, network byte order:
 *     0   sequencenr u32  frames sent before this one, modulo 0xFFFF (the
 *                         counter runs 0..0xFFFE and wraps to 0)
 *     4   nopkts     u32  records in this frame
 *     8   flags      u32  bit 0: the sender is terminating (its last frame)
 *     12  major      u16  version of the record format (0.7)
 *     14  minor      u16
 *   then nopkts records, each a cap_head (36 bytes, see capfile.h) and its
 *   caplen captured bytes (an Ethernet frame).
 *
 * Byte order: the sendhead is in network order; the records inside are
 * stored as the sender holds them in memory, like a capfile's — little-endian
 * from the x86 MPs DPMI runs on. A frame does not say which, so the order is
 * the one under which the records fill the frame exactly (little-endian
 * tried first).
 *
 * A frame is valid when its records, walked one by one, end exactly at the
 * frame's end (a frame shorter than Ethernet's 60-byte minimum may carry
 * padding up to it) and none has a captured length of 0; anything else is a
 * bad frame. Plain functions over byte arrays; no state. */
#ifndef TB_PROBE_DPMI_H
#define TB_PROBE_DPMI_H

#include "capfile.h"

#include <stddef.h>
#include <stdint.h>

#define TB_DPMI_ETHERTYPE     0x0810u
#define TB_DPMI_ETH_LEN       14
#define TB_DPMI_SENDHEAD_LEN  16
#define TB_DPMI_HEADERS_LEN   (TB_DPMI_ETH_LEN + TB_DPMI_SENDHEAD_LEN)
#define TB_DPMI_FLAG_TERMINATE 1u
#define TB_DPMI_SEQ_MOD       0xFFFFu /* sequence numbers run 0 .. TB_DPMI_SEQ_MOD - 1 */
#define TB_DPMI_MIN_FRAME     60      /* Ethernet's minimum, without the FCS */
#define TB_DPMI_FRAME_MAX     65535u  /* the largest frame read (jumbo frames are 9014) */
#define TB_DPMI_ADDR_TEXT     18      /* "01:00:00:00:10:01" and its NUL */

typedef struct {
    uint8_t dst[6];
    uint8_t src[6];
    uint32_t seq;
    uint32_t count; /* records */
    uint32_t flags;
    uint16_t major;
    uint16_t minor;
    int big_endian; /* the records' byte order */
    int sendhead;   /* the fields above were read (also from a frame refused for its
                       records or version: its sender and sequence number are known) */
} tb_dpmi_frame_t;

/* Parse a DPMI stream address: six hexadecimal octets separated by ':'
 * ("01:00:00:00:10:01"), where one "::" stands for as many zero octets as are
 * missing ("01::10:01"). Returns 0 or TB_EINVAL. */
int tb_dpmi_addr_parse(const char *text, uint8_t addr[6]);

/* "01:00:00:00:10:01" into buf (at least TB_DPMI_ADDR_TEXT bytes). */
void tb_dpmi_addr_format(const uint8_t addr[6], char *buf, size_t size);

/* 1 if the address is a multicast (group) address. */
int tb_dpmi_addr_is_multicast(const uint8_t addr[6]);

/* Check one received frame of len bytes. Returns 0 with *f filled (the
 * records may then be walked with tb_dpmi_record); TB_ETRUNC when it is
 * shorter than its headers; TB_EPROTO when it is not a DPMI frame (another
 * ethertype) or its records do not fill it exactly; TB_EVERSION for a record
 * format other than 0.7. err says why. */
int tb_dpmi_frame_parse(const uint8_t *buf, size_t len, tb_dpmi_frame_t *f, char *err,
                        size_t errsize);

/* The record at *off of a frame that tb_dpmi_frame_parse accepted (the first
 * is at TB_DPMI_HEADERS_LEN): fills *rec and *data and moves *off past it. */
void tb_dpmi_record(const uint8_t *buf, const tb_dpmi_frame_t *f, size_t *off,
                    tb_capfile_rec_t *rec, const uint8_t **data);

/* Frames missing between a sender's expected sequence number and the one
 * received: (got - expected) modulo TB_DPMI_SEQ_MOD. */
uint32_t tb_dpmi_seq_gap(uint32_t expected, uint32_t got);

/* The sequence number after seq. */
uint32_t tb_dpmi_seq_next(uint32_t seq);

#endif
