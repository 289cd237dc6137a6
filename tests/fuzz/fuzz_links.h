/* The link types fuzz_decode chooses from with its first input byte (index
 * modulo the count); fuzz_seeds writes seeds with the same choice, and the
 * hand-made seeds in corpus/decode/ start with these indices: only append. */
#ifndef FUZZ_LINKS_H
#define FUZZ_LINKS_H

#include "tb_summary.h"

static const int fuzz_links[] = {
    TB_LINK_NULL,        TB_LINK_ETHERNET,     TB_LINK_RAW_DLT,       TB_LINK_RAW,
    TB_LINK_LOOP,        TB_LINK_LINUX_SLL,    TB_LINK_IPV4,          TB_LINK_IPV6,
    TB_LINK_LINUX_SLL2,  TB_LINK_PPP,          TB_LINK_PPP_HDLC,      TB_LINK_PPP_WITH_DIR,
    TB_LINK_PPP_ETHER,   TB_LINK_C_HDLC,       TB_LINK_FRELAY,        TB_LINK_JUNIPER_ETHER,
    TB_LINK_IEEE802_11,  TB_LINK_RADIOTAP,     TB_LINK_PKTAP,         TB_LINK_PKTAP_DLT,
    TB_LINK_ARCNET_BSD,  TB_LINK_ARCNET_LINUX, TB_LINK_NFLOG,         TB_LINK_IPOIB,
    TB_LINK_IPNET};
#define FUZZ_NLINKS (sizeof fuzz_links / sizeof fuzz_links[0])

#endif
