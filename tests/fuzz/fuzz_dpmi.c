/* libFuzzer target: DPMI measurement frames (probe/dpmi.c).
 *
 * The input is one received frame. What must hold: a frame is accepted only
 * when its records, walked one by one, end exactly at its end (or inside
 * Ethernet's padding of a 60-byte frame), each with at least one captured
 * byte, all inside the input; a refused frame says why. */
#include "dpmi.h"
#include "tb_err.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tb_dpmi_frame_t f;
    char err[160] = "";
    int rc = tb_dpmi_frame_parse(data, size, &f, err, sizeof err);
    if (rc != 0) {
        if (err[0] == '\0' || (rc != TB_ETRUNC && rc != TB_EPROTO && rc != TB_EVERSION)) {
            abort();
        }
        return 0;
    }
    if (f.major != 0 || f.minor != 7 || size < TB_DPMI_HEADERS_LEN) {
        abort();
    }
    size_t off = TB_DPMI_HEADERS_LEN;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < f.count; i++) {
        tb_capfile_rec_t rec;
        const uint8_t *rdata;
        tb_dpmi_record(data, &f, &off, &rec, &rdata);
        if (rec.caplen == 0 || off > size) {
            abort();
        }
        for (uint32_t k = 0; k < rec.caplen; k++) {
            sum += rdata[k]; /* every byte is readable (ASan) */
        }
    }
    if (off != size && !(size == TB_DPMI_MIN_FRAME && off < size)) {
        abort();
    }
    return sum == UINT64_MAX; /* keep sum alive */
}
