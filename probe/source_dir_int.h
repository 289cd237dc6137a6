/* source_dir_int — the directory source's state and what its files share.
 * Internal to the directory source (source_dir.h is its public face):
 *
 *   source_dir.c             the source's operations: open, read, close,
 *                            describe; what the design is (top of the file)
 *   source_dir_scan.c        which file comes next: names in natural order,
 *                            names left out, entries that are not files
 *   source_dir_watch.c       what the inotify events say: new files, renames,
 *                            files known complete
 *   source_dir_checkpoint.c  the checkpoint file: read at open, written as
 *                            what was read is published; after-read actions
 *   source_dir_file.c        the current file: opening (pcap, pcapng, DPMI
 *                            capfile), reading its records, following it
 *                            when it is renamed, replaced or vanishes
 *
 * Everything runs on the probe's thread. */
#ifndef TB_PROBE_SOURCE_DIR_INT_H
#define TB_PROBE_SOURCE_DIR_INT_H

#include "capfile.h"
#include "source_dir.h"

#include <pcap/pcap.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#define S_NAME_MAX     256
#define S_MAX_FINISHED 64 /* files finished between two syncs */
#define S_MAX_NOTED    64 /* entries that are not regular files, remembered */
#define S_WHY_MAX      96
#define S_MAX_COMPLETE 64 /* names known complete, remembered */
/* After a (re)start no event tells how a file arrived: a pcapng file last
 * written this long before the source started watching is taken as complete
 * (see tb_dir_settled, source_dir_watch.c). */
#define S_SETTLED_S 60

/* Why the current file is not being read. */
typedef enum {
    W_NONE = 0,
    W_PCAPNG,      /* newest file, pcapng: read once a newer file exists */
    W_PCAPNG_READ, /* newest file, pcapng known complete: read to its end */
    W_HEADER,      /* newest file, not (yet) a capture: its header may be coming */
    W_UNREADABLE,  /* cannot be opened: retried until unreadable_ns has passed */
} wait_t;

typedef struct {
    tb_source_t base;
    char *dir;
    char *checkpoint;   /* checkpoint file path */
    char *legacy;       /* the checkpoint's path under the old naming, or NULL */
    int legacy_shared;  /* ... which another stream of the probe may own */
    int legacy_loaded;  /* the checkpoint was read from legacy: remove it once saved */
    char *move_to;      /* directory for finished files, or NULL */
    int delete_done;    /* delete finished files */
    int inotify;        /* -1 when closed */
    int dirty;          /* the directory changed since the last scan */
    uint64_t next_scan; /* monotonic ns of the next periodic scan */

    char done[S_NAME_MAX];    /* last finished file ("" = none) */
    char current[S_NAME_MAX]; /* file being read ("" = none) */
    uint64_t offset;          /* bytes of current taken (end of last record) */
    int newer_exists;         /* a file after current exists */
    FILE *fp;
    pcap_t *pcap;
    tb_capfile_t *cap;       /* a DPMI capfile is read instead of pcap */
    char cap_err[S_WHY_MAX]; /* why a capfile record could not be read */
    tb_point_table_t points; /* the MP/CI pairs of the capfiles' records since open */
    int linktype;
    int pcapng;
    /* What has been published: the probe calls sync when nothing it read is
     * still unsent. Only this is written to the checkpoint, so a stop, a
     * shutdown with a full bus or an unsubscription never skips a packet. */
    char safe_done[S_NAME_MAX];
    char safe_current[S_NAME_MAX];
    uint64_t safe_offset;
    int unsynced;                              /* the read position moved since the last sync */
    int safe_changed;                          /* the safe position is not on disk yet */
    char finished[S_MAX_FINISHED][S_NAME_MAX]; /* finished, not yet synced */
    size_t nfinished;
    int hdr_size; /* pcap record header: 16, or 24 (modified format) */
    int waiting;  /* the current file could not be opened yet */
    wait_t wait_why;
    uint64_t unreadable_ns;    /* how long an unopenable file is retried */
    uint64_t unreadable_since; /* monotonic ns of the first failed open of current, or 0 */
    char unreadable_why[S_WHY_MAX];
    /* Rename of the current file seen in inotify events (mv within the
     * directory): its new name, so that it is read once, under that name. */
    uint32_t moved_cookie;
    int moved_pending;
    char renamed_to[S_NAME_MAX];
    /* Entries that are not regular files, already counted. */
    char noted[S_MAX_NOTED][S_NAME_MAX];
    size_t nnoted;
    int noted_full_logged;
    char last_skip[S_WHY_MAX];
    /* pcapng files known complete (delivered by rename, or closed by their
     * writer and not written since): the newest of them need not wait for a
     * successor. See source_dir_watch.c. */
    char complete[S_MAX_COMPLETE][S_NAME_MAX];
    size_t ncomplete;
    int settled_tried;  /* the restart rule (tb_dir_settled) was applied to current */
    time_t watch_since; /* wall clock when the source started watching */
    /* The file a pcapng position (offset, in packets) was taken in, so that
     * one replaced under the same name is read from its start. */
    dev_t taken_dev;
    ino_t taken_ino;
    int taken_known;
    dev_t move_dev; /* the move directory, to leave it out silently if inside */
    ino_t move_ino;
    int move_known;
    /* The file renamed while being read to a name the reading has still to
     * reach: that name and the file's identity, so it is not read again. */
    char read_as[S_NAME_MAX];
    dev_t read_as_dev;
    ino_t read_as_ino;
    int dirty_open;     /* the directory changed since the last open attempt */
    uint64_t last_save; /* monotonic ns */
    uint64_t files_done;
    tb_source_stats_t st;
} dir_source_t;

/* ---- source_dir_scan.c ---- */

/* Natural order: digit runs compare as numbers, the rest bytewise ("trace" <
 * "trace2" < "trace10"). */
int tb_dir_natcmp(const char *a, const char *b);

/* dir/name into buf. Returns 0 or TB_ELIMIT. */
int tb_dir_path(const dir_source_t *self, const char *name, char *buf, size_t size);

/* Whether the source considers a name at all: not hidden, not a temporary
 * name (x.tmp, x.part, x~, ...), short enough to remember. */
int tb_dir_candidate_name(const char *name);

/* Record a skipped file: counted, logged, and named in the description. */
void tb_dir_count_skip(dir_source_t *self, const char *name, const char *why);

/* Forget the entries that are not files once the reading has passed them. */
void tb_dir_prune_noted(dir_source_t *self);

/* The directory changed (or a second passed): list it, make the first file
 * after the last finished one current unless the current one is started,
 * and note whether a newer file exists. Returns 0, or TB_EIO (errno set)
 * when the directory cannot be listed. */
int tb_dir_rescan(dir_source_t *self);

/* ---- source_dir_watch.c ---- */

/* Index of `name` among the names known complete, or -1. */
int tb_dir_complete_find(const dir_source_t *self, const char *name);

/* `name` is no longer known complete. */
void tb_dir_complete_forget(dir_source_t *self, const char *name);

/* Forget the marks the reading has passed. */
void tb_dir_prune_complete(dir_source_t *self);

/* After a (re)start: the file open in fp was last written long enough before
 * the source started watching to be taken as complete. */
int tb_dir_settled(const dir_source_t *self, FILE *fp);

/* Read every inotify event queued: mark the directory dirty, note files
 * known complete, renames of the current file and files arriving out of
 * order. */
void tb_dir_drain_events(dir_source_t *self);

/* ---- source_dir_checkpoint.c ---- */

/* Write the safe position to the checkpoint file (temporary + rename).
 * Returns 0, TB_ELIMIT or TB_EIO (errno set). */
int tb_dir_save(dir_source_t *self);

/* The source's sync operation: everything read is published. */
void tb_dir_sync(tb_source_t *src);

/* Read the checkpoint, if there is one. Returns 0, or TB_EIO / TB_EPROTO
 * (damaged, or an old-style one another stream may own) with err. */
int tb_dir_load(dir_source_t *self, char *err, size_t errsize);

/* ---- source_dir_file.c ---- */

/* A new current file (or none, ""): what was known about the previous one
 * goes. */
void tb_dir_set_current(dir_source_t *self, const char *name);

/* Close the current file if it is open. */
void tb_dir_close_file(dir_source_t *self);

/* A file is open for reading (pcap or capfile). */
int tb_dir_reading(const dir_source_t *self);

/* Open the current file (at the offset taken so far) unless it has to wait.
 * Returns 1 when it is open for reading, 0 when not (it waits, was skipped,
 * vanished, or was read under another name before: each handled here). */
int tb_dir_open_current(dir_source_t *self, uint64_t now);

/* Read up to max records of the open current file into out; at the end of
 * what is written, finish the file (a newer one exists), wait for more, or
 * close it to be opened again. Returns the number read. */
size_t tb_dir_read_current(dir_source_t *self, tb_summary_t *out, size_t max);

#endif
