/* source_iface — live capture on a network interface (source_iface.c). */
#ifndef TB_PROBE_SOURCE_IFACE_H
#define TB_PROBE_SOURCE_IFACE_H

#include "source.h"

#include <pcap/pcap.h>

/* The live source: an interface captured with libpcap (not finite). Nothing
 * is opened until the source's open; cfg is copied (its filter borrowed). */
tb_source_t *tb_source_iface_new(const char *name, const tb_source_live_cfg_t *cfg, char *err,
                                 size_t errsize);

/* What the two live sources (iface, dpmi) share: libpcap's counters of an
 * open handle into st (recv, drop, ifdrop), and why pcap_activate failed,
 * in one line naming the device. */
void tb_source_pcap_counters(pcap_t *p, tb_source_stats_t *st);
void tb_source_activate_error(pcap_t *p, int rc, const char *name, char *err, size_t errsize);

#endif
