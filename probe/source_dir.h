/* source_dir — directories that tcpdump -C/-G or capdump keep filling (source_dir.c). */
#ifndef TB_PROBE_SOURCE_DIR_H
#define TB_PROBE_SOURCE_DIR_H

#include "source.h"

/* The directory source: capture files that tcpdump -C/-G keeps writing,
 * followed with inotify, resumed from a checkpoint file. legacy_checkpoint
 * (or NULL): where the checkpoint was kept under the old naming; read when
 * there is none at `checkpoint` (unless cfg->legacy_shared), then removed. */
tb_source_t *tb_source_dir_new(const char *path, const char *checkpoint,
                               const char *legacy_checkpoint, const tb_source_dir_cfg_t *cfg,
                               char *err, size_t errsize);

#endif
