/* libFuzzer target: the packet decoder on arbitrary frames of every link
 * type. The first two bytes pick the link type; the rest is the frame. */
#include "fuzz_links.h"
#include "tb_summary.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int link = fuzz_links[data[0] % FUZZ_NLINKS];
    tb_summary_t s;
    tb_decode(link, data + 1, (uint32_t)(size - 1), (uint32_t)(size - 1), 0, &s);
    return 0;
}
