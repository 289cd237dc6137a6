/* source_cap — DPMI capfiles (source_cap.c). */
#ifndef TB_PROBE_SOURCE_CAP_H
#define TB_PROBE_SOURCE_CAP_H

#include "source.h"

/* The DPMI capfile source (capfile.h): finite, lossless, Ethernet records
 * with picosecond timestamps kept to the nanosecond, each naming its
 * measurement point; speed > 0 replays at the capture's own pace times
 * speed. */
tb_source_t *tb_source_cap_new(const char *path, double speed, char *err, size_t errsize);

#endif
