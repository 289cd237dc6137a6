/* dpmi — DPMI measurement frames; see dpmi.h for the format and its source. */
#include "dpmi.h"

#include "tb_err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static uint32_t s_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t s_u32(const uint8_t *p, int be)
{
    return be ? s_be32(p)
              : ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static int s_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tb_dpmi_addr_parse(const char *text, uint8_t addr[6])
{
    if (text == NULL) {
        return TB_EINVAL;
    }
    uint8_t head[6], tail[6];
    size_t nhead = 0, ntail = 0;
    int gap = 0; /* "::" seen */
    const char *p = text;
    if (p[0] == ':' && p[1] == ':') {
        gap = 1;
        p += 2;
    }
    while (*p != '\0') {
        int v = 0, digits = 0, d;
        while ((d = s_hex((unsigned char)*p)) >= 0 && digits < 2) {
            v = v * 16 + d;
            digits++;
            p++;
        }
        if (digits == 0 || nhead + ntail == 6) {
            return TB_EINVAL;
        }
        if (gap) {
            tail[ntail++] = (uint8_t)v;
        } else {
            head[nhead++] = (uint8_t)v;
        }
        if (*p == '\0') {
            break;
        }
        if (*p != ':') {
            return TB_EINVAL;
        }
        p++;
        if (*p == ':') {
            if (gap) {
                return TB_EINVAL; /* a second "::" */
            }
            gap = 1;
            p++;
            if (*p == '\0') {
                break; /* "01::" */
            }
        } else if (*p == '\0') {
            return TB_EINVAL; /* "01:" */
        }
    }
    size_t n = nhead + ntail;
    if ((!gap && n != 6) || (gap && n > 5)) {
        return TB_EINVAL;
    }
    memset(addr, 0, 6);
    memcpy(addr, head, nhead);
    memcpy(addr + 6 - ntail, tail, ntail);
    return 0;
}

void tb_dpmi_addr_format(const uint8_t addr[6], char *buf, size_t size)
{
    snprintf(buf, size, "%02x:%02x:%02x:%02x:%02x:%02x", addr[0], addr[1], addr[2], addr[3],
             addr[4], addr[5]);
}

int tb_dpmi_addr_is_multicast(const uint8_t addr[6])
{
    return addr[0] & 1;
}

/* Where the records of a frame end when read in byte order be, or 0 when
 * they do not fit (a record's header or bytes beyond len, a record of 0
 * bytes). Each record takes at least 37 bytes, so the walk is bounded by
 * the frame's length whatever count says. */
static size_t s_walk(const uint8_t *buf, size_t len, uint32_t count, int be)
{
    size_t off = TB_DPMI_HEADERS_LEN;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < TB_CAPFILE_REC_LEN) {
            return 0;
        }
        uint32_t caplen = s_u32(buf + off + 32, be);
        off += TB_CAPFILE_REC_LEN;
        if (caplen == 0 || caplen > len - off) {
            return 0;
        }
        off += caplen;
    }
    return off;
}

/* The records end where the frame ends, or inside Ethernet's padding. */
static int s_fills(size_t end, size_t len)
{
    return end != 0 && (end == len || (len == TB_DPMI_MIN_FRAME && end < len));
}

int tb_dpmi_frame_parse(const uint8_t *buf, size_t len, tb_dpmi_frame_t *f, char *err,
                        size_t errsize)
{
    memset(f, 0, sizeof *f);
    if (len < TB_DPMI_HEADERS_LEN) {
        snprintf(err, errsize, "a frame of %zu bytes is shorter than its headers (%d)", len,
                 TB_DPMI_HEADERS_LEN);
        return TB_ETRUNC;
    }
    memcpy(f->dst, buf, 6);
    memcpy(f->src, buf + 6, 6);
    unsigned type = (unsigned)(buf[12] << 8 | buf[13]);
    if (type != TB_DPMI_ETHERTYPE) {
        snprintf(err, errsize, "ethertype 0x%04x is not a measurement frame's", type);
        return TB_EPROTO;
    }
    const uint8_t *sh = buf + TB_DPMI_ETH_LEN;
    f->seq = s_be32(sh);
    f->count = s_be32(sh + 4);
    f->flags = s_be32(sh + 8);
    f->major = (uint16_t)(sh[12] << 8 | sh[13]);
    f->minor = (uint16_t)(sh[14] << 8 | sh[15]);
    f->sendhead = 1;
    if (f->major != 0 || f->minor != 7) {
        snprintf(err, errsize, "record format version %u.%u is not read (0.7 is)", f->major,
                 f->minor);
        return TB_EVERSION;
    }
    if (s_fills(s_walk(buf, len, f->count, 0), len)) {
        return 0;
    }
    if (f->count > 0 && s_fills(s_walk(buf, len, f->count, 1), len)) {
        f->big_endian = 1;
        return 0;
    }
    snprintf(err, errsize, "%u records do not fill the frame of %zu bytes", f->count, len);
    return TB_EPROTO;
}

void tb_dpmi_record(const uint8_t *buf, const tb_dpmi_frame_t *f, size_t *off,
                    tb_capfile_rec_t *rec, const uint8_t **data)
{
    tb_capfile_rec_parse(buf + *off, f->big_endian, rec);
    *data = buf + *off + TB_CAPFILE_REC_LEN;
    *off += TB_CAPFILE_REC_LEN + rec->caplen;
}

uint32_t tb_dpmi_seq_gap(uint32_t expected, uint32_t got)
{
    expected %= TB_DPMI_SEQ_MOD;
    got %= TB_DPMI_SEQ_MOD;
    return (got + TB_DPMI_SEQ_MOD - expected) % TB_DPMI_SEQ_MOD;
}

uint32_t tb_dpmi_seq_next(uint32_t seq)
{
    return (seq % TB_DPMI_SEQ_MOD + 1) % TB_DPMI_SEQ_MOD;
}
