/* The link types fuzz_decode chooses from with its first input byte (index
 * modulo the count); fuzz_seeds writes seeds with the same choice. */
#ifndef FUZZ_LINKS_H
#define FUZZ_LINKS_H

#include "tb_summary.h"

static const int fuzz_links[] = {TB_LINK_NULL, TB_LINK_ETHERNET, TB_LINK_RAW_DLT,
                                 TB_LINK_RAW,  TB_LINK_LOOP,     TB_LINK_LINUX_SLL,
                                 TB_LINK_IPV4, TB_LINK_IPV6,     TB_LINK_LINUX_SLL2};
#define FUZZ_NLINKS (sizeof fuzz_links / sizeof fuzz_links[0])

#endif
