/* source_iface — live capture on a network interface (source_iface.c). */
#ifndef TB_PROBE_SOURCE_IFACE_H
#define TB_PROBE_SOURCE_IFACE_H

#include "source.h"

/* The live source: an interface captured with libpcap (not finite). Nothing
 * is opened until the source's open; cfg is copied (its filter borrowed). */
tb_source_t *tb_source_iface_new(const char *name, const tb_source_live_cfg_t *cfg, char *err,
                                 size_t errsize);

#endif
