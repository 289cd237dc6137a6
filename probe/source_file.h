/* source_file — pcap and pcapng files (source_file.c). */
#ifndef TB_PROBE_SOURCE_FILE_H
#define TB_PROBE_SOURCE_FILE_H

#include "source.h"

/* The file source: a pcap or pcapng file, nanosecond timestamps kept; speed
 * > 0 replays at the capture's own pace times speed. */
tb_source_t *tb_source_file_new(const char *path, double speed, char *err, size_t errsize);

#endif
