/* capfile — DPMI capture files; see capfile.h for the format and its source. */
#include "capfile.h"

#include "tb_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tb_capfile {
    FILE *fp;
    tb_capfile_header_t hdr;
    uint8_t *buf; /* one record's frame */
    size_t cap;
};

static uint16_t s_u16(const uint8_t *p, int be)
{
    return be ? (uint16_t)((p[0] << 8) | p[1]) : (uint16_t)((p[1] << 8) | p[0]);
}

static uint32_t s_u32(const uint8_t *p, int be)
{
    if (be) {
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    }
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static uint64_t s_u64(const uint8_t *p, int be)
{
    uint64_t a = s_u32(p, be);
    uint64_t b = s_u32(p + 4, be);
    return be ? (a << 32) | b : (b << 32) | a;
}

/* 1: little-endian magic, 2: big-endian, 0: none. */
static int s_magic(const uint8_t *buf, size_t len)
{
    if (len < 8) {
        return 0;
    }
    if (s_u64(buf, 0) == TB_CAPFILE_MAGIC) {
        return 1;
    }
    return s_u64(buf, 1) == TB_CAPFILE_MAGIC ? 2 : 0;
}

int tb_capfile_is_magic(const uint8_t *buf, size_t len)
{
    return s_magic(buf, len) != 0;
}

static void s_text(char *dst, const uint8_t *src, size_t n)
{
    size_t i = 0;
    for (; i < n && src[i] != '\0'; i++) {
        dst[i] = (char)src[i];
    }
    dst[i] = '\0';
}

/* The headers before 0.7, which carry no magic number: recognised by their
 * version fields, as the reference recognises them (little-endian, as
 * every DPMI host wrote them; 0.5 is tried first). The records after the
 * comment are those of 0.7 (the reference reads them alike). Returns 1 with
 * *h filled, 0 when buf is neither, or TB_ETRUNC (err set). */
static int s_legacy(const uint8_t *buf, size_t len, tb_capfile_header_t *h, char *err,
                    size_t errsize)
{
    size_t size;
    size_t mpid_at;
    if (len >= 12 && s_u32(buf + 4, 0) == 0 && s_u32(buf + 8, 0) == 5) {
        h->minor = 5;
        size = TB_CAPFILE_HEADER05_LEN;
        mpid_at = 12;
    } else if (len >= 6 && buf[4] == 0 && buf[5] == 6) {
        h->minor = 6;
        size = TB_CAPFILE_HEADER06_LEN;
        mpid_at = 6;
    } else {
        return 0;
    }
    if (len < size) {
        snprintf(err, errsize, "DPMI capfile (version 0.%u) header cut short (%zu of %zu bytes)",
                 (unsigned)h->minor, len, size);
        return TB_ETRUNC;
    }
    h->major = 0;
    h->header_offset = (uint16_t)size;
    h->comment_size = s_u32(buf, 0);
    s_text(h->mpid, buf + mpid_at, 200);
    return 1;
}

int tb_capfile_header_parse(const uint8_t *buf, size_t len, tb_capfile_header_t *h, char *err,
                            size_t errsize)
{
    memset(h, 0, sizeof *h);
    int m = s_magic(buf, len);
    if (m == 0) {
        int rc = s_legacy(buf, len, h, err, errsize);
        if (rc != 0) {
            return rc < 0 ? rc : 0;
        }
        if (len < 8) {
            snprintf(err, errsize, "too short for a DPMI capfile header (%zu bytes)", len);
            return TB_ETRUNC;
        }
        snprintf(err, errsize, "not a DPMI capfile (unknown magic number)");
        return TB_EPROTO;
    }
    if (len < TB_CAPFILE_HEADER_LEN) {
        snprintf(err, errsize, "DPMI capfile header cut short (%zu of %d bytes)", len,
                 TB_CAPFILE_HEADER_LEN);
        return TB_ETRUNC;
    }
    int be = m == 2;
    h->big_endian = be;
    h->major = s_u16(buf + 8, be);
    h->minor = s_u16(buf + 10, be);
    h->header_offset = s_u16(buf + 12, be);
    h->comment_size = s_u16(buf + 14, be);
    s_text(h->mpid, buf + 16, 200);
    if (h->major != 0 || h->minor != 7) {
        snprintf(err, errsize, "DPMI capfile version %u.%u is not supported (reads 0.7)",
                 (unsigned)h->major, (unsigned)h->minor);
        return TB_EVERSION;
    }
    if (h->header_offset < TB_CAPFILE_HEADER_LEN) {
        snprintf(err, errsize, "corrupt DPMI capfile header: header size %u < %d",
                 (unsigned)h->header_offset, TB_CAPFILE_HEADER_LEN);
        return TB_EPROTO;
    }
    return 0;
}

void tb_capfile_rec_parse(const uint8_t *b, int big_endian, tb_capfile_rec_t *r)
{
    s_text(r->ci, b, 8);
    s_text(r->mp, b + 8, 8);
    r->sec = s_u32(b + 16, big_endian);
    r->psec = s_u64(b + 20, big_endian);
    r->len = s_u32(b + 28, big_endian);
    r->caplen = s_u32(b + 32, big_endian);
}

uint64_t tb_capfile_rec_ns(const tb_capfile_rec_t *r)
{
    uint64_t ns = (uint64_t)r->sec * 1000000000ull; /* < 2^63: no overflow */
    uint64_t frac = r->psec / 1000u;
    return ns > UINT64_MAX - frac ? UINT64_MAX : ns + frac;
}

/* Read exactly n bytes: 0, TB_ETRUNC at an early end, TB_EIO on error. */
static int s_read(FILE *fp, void *dst, size_t n)
{
    size_t got = fread(dst, 1, n, fp);
    if (got == n) {
        return 0;
    }
    return ferror(fp) ? TB_EIO : TB_ETRUNC;
}

int tb_capfile_open(FILE *fp, tb_capfile_t **out, char *err, size_t errsize)
{
    *out = NULL;
    uint8_t head[TB_CAPFILE_HEADER_LEN];
    size_t got = fread(head, 1, sizeof head, fp);
    if (got < sizeof head && ferror(fp)) {
        snprintf(err, errsize, "read error: %s", strerror(errno));
        return TB_EIO;
    }
    tb_capfile_header_t h;
    int rc = tb_capfile_header_parse(head, got, &h, err, errsize);
    if (rc != 0) {
        return rc;
    }
    /* Extension headers (header_offset > 216) only pad or inform: the
     * comment starts at header_offset, as the reference reads it. */
    if (fseek(fp, (long)h.header_offset + (long)h.comment_size, SEEK_SET) != 0) {
        snprintf(err, errsize, "cannot seek past the header: %s", strerror(errno));
        return TB_EIO;
    }
    /* fseek may go past the end: check the header and comment are there. */
    long pos = ftell(fp);
    if (fseek(fp, 0, SEEK_END) != 0 || ftell(fp) < pos || fseek(fp, pos, SEEK_SET) != 0) {
        snprintf(err, errsize, "DPMI capfile cut short in its header or comment");
        (void)fseek(fp, 0, SEEK_SET);
        return TB_ETRUNC;
    }
    tb_capfile_t *cf = calloc(1, sizeof *cf);
    if (cf == NULL) {
        snprintf(err, errsize, "out of memory");
        return TB_ENOMEM;
    }
    cf->fp = fp;
    cf->hdr = h;
    *out = cf;
    return 0;
}

int tb_capfile_next(tb_capfile_t *cf, tb_capfile_rec_t *rec, const uint8_t **data, char *err,
                    size_t errsize)
{
    long start = ftell(cf->fp);
    uint8_t b[TB_CAPFILE_REC_LEN];
    size_t got = fread(b, 1, sizeof b, cf->fp);
    if (got == 0 && !ferror(cf->fp)) {
        return 0;
    }
    int rc = got == sizeof b ? 0 : ferror(cf->fp) ? TB_EIO : TB_ETRUNC;
    if (rc == 0) {
        tb_capfile_rec_parse(b, cf->hdr.big_endian, rec);
        if (rec->caplen > TB_CAPFILE_CAPLEN_MAX) {
            snprintf(err, errsize, "corrupt record at byte %ld: captured length %u", start,
                     (unsigned)rec->caplen);
            rc = TB_EPROTO;
        } else if (rec->caplen > cf->cap) {
            uint8_t *nb = realloc(cf->buf, rec->caplen);
            if (nb == NULL) {
                snprintf(err, errsize, "out of memory");
                rc = TB_ENOMEM;
            } else {
                cf->buf = nb;
                cf->cap = rec->caplen;
            }
        }
        if (rc == 0 && rec->caplen > 0) {
            rc = s_read(cf->fp, cf->buf, rec->caplen);
        }
    }
    if (rc == 0) {
        *data = cf->buf;
        return 1;
    }
    if (rc == TB_ETRUNC) {
        snprintf(err, errsize, "record at byte %ld cut short", start);
    } else if (rc == TB_EIO) {
        snprintf(err, errsize, "read error: %s", strerror(errno));
    }
    if (start >= 0) {
        (void)fseek(cf->fp, start, SEEK_SET); /* back to the last whole record */
    }
    return rc;
}

FILE *tb_capfile_file(const tb_capfile_t *cf)
{
    return cf->fp;
}

const tb_capfile_header_t *tb_capfile_header(const tb_capfile_t *cf)
{
    return &cf->hdr;
}

void tb_capfile_destroy(tb_capfile_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_capfile_t *cf = *p;
    *p = NULL;
    if (cf->fp != NULL) {
        fclose(cf->fp);
    }
    free(cf->buf);
    free(cf);
}
