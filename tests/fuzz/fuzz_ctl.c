/* libFuzzer target: control requests and replies as a collector and
 * tapbusctl receive them. */
#include "tb_ctl.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tb_ctl_request_t req;
    char err[TB_CTL_ERROR_MAX];
    tb_ctl_request_decode(data, size, &req, err, sizeof err);
    int ok;
    tb_mp_reader_t r;
    if (tb_ctl_reply_decode(data, size, &ok, err, sizeof err, &r) == 0) {
        tb_mp_skip(&r);
    }
    return 0;
}
