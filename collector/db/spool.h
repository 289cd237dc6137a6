/* spool — the database writer's bounded on-disk queue.
 *
 * While the database cannot take data, the writer keeps its batches here and
 * replays them oldest first when it returns, also after the collector
 * restarts. One file per batch, named
 *
 *     tb-SEQUENCE-POINTS-CREATED_NS.lp
 *
 * holding the batch's line-protocol text. A file is written under a temporary
 * name, synced and renamed, so a crash never leaves half a batch under a real
 * name. When the spool would grow past its limit on disk space (each file by
 * the blocks it takes, the directory included) the oldest batches are
 * deleted and their points counted as dropped. Only the writer thread uses a
 * spool; it is not thread-safe. */
#ifndef TB_SPOOL_H
#define TB_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_spool tb_spool_t;

/* Open (creating the directory if needed) and index what a previous run left.
 * max_bytes > 0: the disk space the spool may take. NULL with a one-line
 * reason in err on failure. */
tb_spool_t *tb_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errsize);
void tb_spool_close(tb_spool_t **p);

/* Append a batch (the newest). Older batches are deleted to keep within the
 * byte limit; a batch larger than the whole limit is not kept. Returns 0 or a
 * negative tb_err_t (TB_EIO: the file could not be written; the caller still
 * holds the data). */
int tb_spool_push(tb_spool_t *s, const char *data, size_t len, uint64_t points,
                  uint64_t created_ns);

/* Read the oldest batch into a new buffer (free() it) and pin it: until it is
 * popped or unpinned, making room deletes the batches after it instead (it
 * is being delivered). Returns 0, TB_ENOENT
 * when empty, TB_ENOMEM, or TB_EIO for a file that cannot be read (it is
 * deleted and its points counted as dropped; try again). */
int tb_spool_head(tb_spool_t *s, char **data, size_t *len, uint64_t *points, uint64_t *created_ns);

/* Replace the oldest batch by its unsent remainder (after part of it was
 * written or rejected). */
int tb_spool_trim_head(tb_spool_t *s, const char *rest, size_t len, uint64_t points);

/* Delete the oldest batch (it was written). */
void tb_spool_pop(tb_spool_t *s);

/* The pinned head is no longer being delivered (it stays on disk). */
void tb_spool_unpin(tb_spool_t *s);

typedef struct {
    uint64_t batches;
    uint64_t bytes;      /* of the batches' text */
    uint64_t disk_bytes; /* counted against the limit: the files' blocks, the directory */
    uint64_t points;
    uint64_t oldest_ns; /* creation time of the oldest batch, 0 if empty */
    uint64_t dropped;   /* points deleted to stay within the limit, or unreadable */
} tb_spool_info_t;

void tb_spool_info(const tb_spool_t *s, tb_spool_info_t *info);

/* The spool's directory, as given to tb_spool_open (owned by the spool). */
const char *tb_spool_dir(const tb_spool_t *s);

#endif
