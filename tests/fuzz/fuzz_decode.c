/* libFuzzer target: the packet decoder on arbitrary frames of every link
 * type. The first two bytes pick the link type; the rest is the frame. */
#include "tb_summary.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int links[] = {TB_LINK_NULL, TB_LINK_ETHERNET, TB_LINK_RAW_DLT,
                                TB_LINK_RAW,  TB_LINK_LOOP,     TB_LINK_LINUX_SLL,
                                TB_LINK_IPV4, TB_LINK_IPV6,     TB_LINK_LINUX_SLL2};
    if (size < 1) {
        return 0;
    }
    int link = links[data[0] % (sizeof links / sizeof links[0])];
    tb_summary_t s;
    tb_decode(link, data + 1, (uint32_t)(size - 1), (uint32_t)(size - 1), 0, &s);
    return 0;
}
