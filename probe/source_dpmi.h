/* source_dpmi — live DPMI measurement streams (source_dpmi.c, dpmi.h). */
#ifndef TB_PROBE_SOURCE_DPMI_H
#define TB_PROBE_SOURCE_DPMI_H

#include "source.h"

/* The live DPMI source: the measurement stream at the address after "/" in
 * arg ("IFACE/ADDRESS"), or at the stream's name when that is an address,
 * received on IFACE (not finite); cfg as for iface sources (its snap length
 * and promiscuous mode are not used: frames are kept whole, the group is
 * joined). */
tb_source_t *tb_source_dpmi_new(const char *stream, const char *arg,
                                const tb_source_live_cfg_t *cfg, char *err, size_t errsize);

#endif
