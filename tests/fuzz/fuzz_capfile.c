/* libFuzzer target: the DPMI capfile reader (probe/capfile.c).
 *
 * The input is a whole capfile, read through a memory stream as the cap:
 * and dir: sources read files. What must hold: the header is accepted only
 * for version 0.7 with a header of at least 216 bytes, or for the legacy
 * 0.5 (212 bytes) and 0.6 (208 bytes); every record handed
 * out holds at most TB_CAPFILE_CAPLEN_MAX bytes, all inside the input; the
 * reader ends with a clean end or one of its errors, positioned after the
 * last whole record; nothing leaks. */
#include "capfile.h"
#include "tb_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0; /* fmemopen refuses an empty buffer */
    }
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (fp == NULL) {
        return 0;
    }
    tb_capfile_t *cf = NULL;
    char err[200];
    if (tb_capfile_open(fp, &cf, err, sizeof err) != 0) {
        fclose(fp);
        return 0;
    }
    const tb_capfile_header_t *h = tb_capfile_header(cf);
    int v07 = h->minor == 7 && h->header_offset >= TB_CAPFILE_HEADER_LEN;
    int v05 = h->minor == 5 && h->header_offset == TB_CAPFILE_HEADER05_LEN && !h->big_endian;
    int v06 = h->minor == 6 && h->header_offset == TB_CAPFILE_HEADER06_LEN && !h->big_endian;
    if (h->major != 0 || !(v07 || v05 || v06)) {
        abort();
    }
    long end = ftell(tb_capfile_file(cf));
    tb_capfile_rec_t rec;
    const uint8_t *frame = NULL;
    int rc;
    while ((rc = tb_capfile_next(cf, &rec, &frame, err, sizeof err)) == 1) {
        end += TB_CAPFILE_REC_LEN + (long)rec.caplen;
        if (rec.caplen > TB_CAPFILE_CAPLEN_MAX || end > (long)size) {
            abort();
        }
        uint64_t sum = 0;
        for (uint32_t i = 0; i < rec.caplen; i++) {
            sum += frame[i]; /* every byte is readable (ASan) */
        }
        if (sum > 255ull * rec.caplen) {
            abort();
        }
        (void)tb_capfile_rec_ns(&rec);
    }
    if ((rc != 0 && rc != TB_ETRUNC && rc != TB_EPROTO && rc != TB_EIO && rc != TB_ENOMEM) ||
        ftell(tb_capfile_file(cf)) != end) {
        abort();
    }
    tb_capfile_destroy(&cf);
    return 0;
}
