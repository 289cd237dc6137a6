/* source_dir — a directory of capture files that `tcpdump -w FILE -C SIZE`
 * and/or `-G SECONDS` keeps filling, as one lossless, never-ending source.
 * This file holds the source's operations and the design below; the parts
 * are listed in source_dir_int.h.
 *
 * Order: files are taken in natural name order ("trace" < "trace1" <
 * "trace2" < "trace10"; strftime names sort by time), which is the order
 * tcpdump writes them. Hidden files (".name") and files under a temporary
 * name (x.tmp, x.part, x~, ... see source_dir_scan.c) are ignored: a file
 * delivered the atomic way (written as .x or x.tmp, then renamed) is read
 * under its final name, whole. Regular files reached by a symlink are read;
 * FIFOs, sockets, devices and sub-directories are skipped, each counted once.
 *
 * Nothing is skipped silently: a file that cannot be opened is retried for
 * a bounded time (unreadable_s), then skipped; a file that is not a capture,
 * vanished, was cut short, or arrived under a name before files already read
 * (it will never be reached) is counted in files_skipped, logged and named in
 * the source's description, which heartbeats carry to `status`.
 *
 * Completeness: the newest file may still be written. A classic pcap file is
 * read up to its last complete record and the position remembered; when more
 * is written (inotify IN_MODIFY) reading resumes there. A file is finished
 * when a newer file exists: tcpdump has moved on. A pcapng file is read once
 * it is finished (its blocks cannot be resumed half-way), or earlier when it
 * is known to be complete (source_dir_watch.c): delivered by rename, closed
 * by its writer, or (after a restart, when no event can tell) untouched since
 * long before the source started watching.
 *
 * Exactly once: a checkpoint file (written atomically: temporary + rename)
 * records the file being read and the byte offset of the end of the last
 * record taken (for pcapng, the number of packets taken); files before it
 * are done. A restarted probe resumes there. The
 * checkpoint follows what was read, at most a second behind and exactly at
 * every file's end and at close; after a crash (no close) up to a second of
 * packets can be read again.
 *
 * DPMI capfiles (capfile.h), recognised by their magic number, are read
 * like classic pcap files: by byte offset, resumed after the last whole
 * record of a file still being written.
 *
 * Finished files can be kept, deleted or moved to another directory. */
#include "source_dir_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_COMPONENT "probe"

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    dir_source_t *self = (dir_source_t *)src;
    memset(&self->st, 0, sizeof self->st);
    tb_point_table_reset(&self->points);
    self->done[0] = self->current[0] = '\0';
    self->offset = 0;
    self->safe_done[0] = self->safe_current[0] = '\0';
    self->safe_offset = 0;
    self->unsynced = 0;
    self->nfinished = 0;
    self->waiting = 0;
    self->wait_why = W_NONE;
    self->unreadable_since = 0;
    self->moved_pending = 0;
    self->renamed_to[0] = '\0';
    self->nnoted = 0;
    self->noted_full_logged = 0;
    self->last_skip[0] = '\0';
    self->files_done = 0;
    self->legacy_loaded = 0;
    self->ncomplete = 0;
    self->settled_tried = 0;
    self->taken_known = 0;
    self->read_as[0] = '\0';
    self->watch_since = time(NULL);
    struct stat sb;
    if (stat(self->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsize, "%s is not a readable directory", self->dir);
        return TB_EIO;
    }
    if (tb_dir_load(self, err, errsize) != 0) {
        return TB_EPROTO;
    }
    self->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (self->inotify < 0 || inotify_add_watch(self->inotify, self->dir,
                                               IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE |
                                                   IN_MOVED_TO | IN_MOVED_FROM) < 0) {
        snprintf(err, errsize, "cannot watch %s: %s", self->dir, strerror(errno));
        if (self->inotify >= 0) {
            close(self->inotify);
            self->inotify = -1;
        }
        return TB_EIO;
    }
    self->dirty = 1;
    if (self->move_to != NULL && stat(self->move_to, &sb) == 0) {
        self->move_known = 1;
        self->move_dev = sb.st_dev;
        self->move_ino = sb.st_ino;
    }
    if (tb_dir_save(self) != 0) {
        snprintf(err, errsize, "cannot write checkpoint %s: %s", self->checkpoint, strerror(errno));
        close(self->inotify);
        self->inotify = -1;
        return TB_EIO;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "directory %s: resuming after '%s', at '%s' offset %llu",
           self->dir, self->done, self->current, (unsigned long long)self->offset);
    return 0;
}

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    dir_source_t *self = (dir_source_t *)src;
    *eof = 0;
    if (self->inotify < 0 || max == 0) {
        return 0;
    }
    tb_dir_drain_events(self);
    uint64_t now = tb_time_mono_ns();
    if (now >= self->next_scan) {
        self->dirty = 1; /* a periodic look, in case an event was missed */
        self->next_scan = now + TB_NS_PER_SEC;
    }
    if (self->dirty && tb_dir_rescan(self) != 0) {
        snprintf(err, errsize, "cannot list %s: %s", self->dir, strerror(errno));
        *eof = 1;
        return 0;
    }
    if (self->current[0] == '\0') {
        return 0;
    }
    if (!tb_dir_reading(self) && !tb_dir_open_current(self, now)) {
        return 0;
    }
    size_t n = tb_dir_read_current(self, out, max);
    if (self->safe_changed && now - self->last_save >= TB_NS_PER_SEC && tb_dir_save(self) != 0) {
        snprintf(err, errsize, "cannot write checkpoint %s: %s", self->checkpoint, strerror(errno));
        *eof = 1;
    }
    return (int)n;
}

static void s_close(tb_source_t *src)
{
    dir_source_t *self = (dir_source_t *)src;
    if (self->inotify >= 0 && self->safe_changed && tb_dir_save(self) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot write checkpoint %s: %s", self->checkpoint,
               strerror(errno));
    }
    tb_dir_close_file(self);
    if (self->inotify >= 0) {
        close(self->inotify);
        self->inotify = -1;
    }
}

static void s_stats(const tb_source_t *src, tb_source_stats_t *st)
{
    *st = ((const dir_source_t *)src)->st;
}

static int s_fd(const tb_source_t *src)
{
    return ((const dir_source_t *)src)->inotify;
}

static void s_describe(const tb_source_t *src, char *buf, size_t size)
{
    const dir_source_t *self = (const dir_source_t *)src;
    int n = 0;
    if (self->current[0] == '\0') {
        n = snprintf(buf, size, "waiting for a file after '%s'", self->done);
    } else if (!tb_dir_reading(self) && self->wait_why == W_PCAPNG) {
        n = snprintf(buf, size, "%s is pcapng: read once a newer file exists", self->current);
    } else if (!tb_dir_reading(self) && self->wait_why == W_PCAPNG_READ) {
        n = snprintf(buf, size,
                     "%s is pcapng: %llu packets read; more once it is complete again "
                     "or a newer file exists",
                     self->current, (unsigned long long)self->offset);
    } else if (!tb_dir_reading(self) && self->wait_why == W_UNREADABLE) {
        uint64_t left = 0;
        uint64_t spent = tb_time_mono_ns() - self->unreadable_since;
        if (self->unreadable_since != 0 && spent < self->unreadable_ns) {
            left = (self->unreadable_ns - spent + TB_NS_PER_SEC - 1) / TB_NS_PER_SEC;
        }
        n = snprintf(buf, size, "cannot open %s (%s): skipped in %llu s", self->current,
                     self->unreadable_why, (unsigned long long)left);
    } else if (!tb_dir_reading(self) && self->wait_why == W_HEADER) {
        n = snprintf(buf, size, "%s is not a capture yet: waiting for its header", self->current);
    } else {
        n = snprintf(buf, size, "reading %s", self->current);
    }
    if (n < 0 || (size_t)n >= size) {
        return;
    }
    if (self->st.files_skipped > 0) {
        snprintf(buf + n, size - (size_t)n, "; %llu files done, %llu skipped (last: %s)",
                 (unsigned long long)self->files_done, (unsigned long long)self->st.files_skipped,
                 self->last_skip);
    } else {
        snprintf(buf + n, size - (size_t)n, "; %llu files done",
                 (unsigned long long)self->files_done);
    }
}

static void s_destroy(tb_source_t *src)
{
    dir_source_t *self = (dir_source_t *)src;
    free(self->dir);
    free(self->checkpoint);
    free(self->legacy);
    free(self->move_to);
    free(self);
}

static const tb_point_table_t *s_points(const tb_source_t *src)
{
    return &((const dir_source_t *)src)->points;
}

static const tb_source_ops_t s_dir_ops = {
    .kind = "dir",
    .finite = 0,
    .lossless = 1,
    .open = s_open,
    .read = s_read,
    .close = s_close,
    .stats = s_stats,
    .destroy = s_destroy,
    .fd = s_fd,
    .describe = s_describe,
    .sync = tb_dir_sync,
    .points = s_points,
};

tb_source_t *tb_source_dir_new(const char *path, const char *checkpoint,
                               const char *legacy_checkpoint, const tb_source_dir_cfg_t *cfg,
                               char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errsize, "dir source needs a path");
        return NULL;
    }
    dir_source_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->base.ops = &s_dir_ops;
    self->inotify = -1;
    self->dir = strdup(path);
    self->checkpoint = strdup(checkpoint);
    self->move_to = cfg->move_to != NULL ? strdup(cfg->move_to) : NULL;
    self->delete_done = cfg->delete_done;
    self->legacy = legacy_checkpoint != NULL ? strdup(legacy_checkpoint) : NULL;
    self->legacy_shared = cfg->legacy_shared;
    uint32_t secs = cfg->unreadable_s != 0 ? cfg->unreadable_s : TB_SOURCE_UNREADABLE_S;
    self->unreadable_ns = (uint64_t)secs * TB_NS_PER_SEC;
    if (self->dir == NULL || self->checkpoint == NULL ||
        (legacy_checkpoint != NULL && self->legacy == NULL) ||
        (cfg->move_to != NULL && self->move_to == NULL)) {
        s_destroy(&self->base);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    return &self->base;
}
