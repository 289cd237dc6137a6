/* source_dir — a directory of capture files that `tcpdump -w FILE -C SIZE`
 * and/or `-G SECONDS` keeps filling, as one lossless, never-ending source.
 *
 * Order: files are taken in natural name order ("trace" < "trace1" <
 * "trace2" < "trace10"; strftime names sort by time), which is the order
 * tcpdump writes them. Hidden files (".name") and files under a temporary
 * name (x.tmp, x.part, x~, ... see s_temp_name) are ignored: a file
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
 * is known to be complete (see s_complete_mark): delivered by rename, closed
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
#include "capfile.h"
#include "source.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_text.h"
#include "tb_time.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_COMPONENT  "probe"
#define S_NAME_MAX     256
#define S_MAX_FINISHED 64 /* files finished between two syncs */
#define S_MAX_NOTED    64 /* entries that are not regular files, remembered */
#define S_WHY_MAX      96
#define S_MAX_COMPLETE 64 /* names known complete, remembered */
/* After a (re)start no event tells how a file arrived: a pcapng file last
 * written this long before the source started watching is taken as complete
 * (see s_settled). */
#define S_SETTLED_S 60
/* s_open_file: the file was read already, under the name it had then. */
#define S_READ_BEFORE 2

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
     * successor. See s_complete_mark. */
    char complete[S_MAX_COMPLETE][S_NAME_MAX];
    size_t ncomplete;
    int settled_tried;  /* the restart rule (s_settled) was applied to current */
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

/* Natural order: digit runs compare as numbers, the rest bytewise. */
static int s_natcmp(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0') {
                a++;
            }
            while (*b == '0') {
                b++;
            }
            size_t la = 0;
            size_t lb = 0;
            while (isdigit((unsigned char)a[la])) {
                la++;
            }
            while (isdigit((unsigned char)b[lb])) {
                lb++;
            }
            if (la != lb) {
                return la < lb ? -1 : 1;
            }
            int c = strncmp(a, b, la);
            if (c != 0) {
                return c;
            }
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b) {
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        }
        a++;
        b++;
    }
    return (*a != '\0') - (*b != '\0');
}

static int s_path(const dir_source_t *self, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", self->dir, name);
    return n > 0 && (size_t)n < size ? 0 : TB_ELIMIT;
}

/* Names of files still being delivered: written under a temporary name and
 * renamed when complete (cp f dir/x.tmp && mv dir/x.tmp dir/x; rsync and
 * browsers use hidden or .part names). Reading one would take a file half
 * written, then lose it to the rename. */
static int s_temp_name(const char *name)
{
    static const char *const suffixes[] = {".tmp",      ".temp",       ".part", ".partial",
                                           ".filepart", ".crdownload", "~"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcasecmp(name + n - k, suffixes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A name the source considers at all: not hidden, not temporary, short
 * enough to remember. */
static int s_candidate_name(const char *name)
{
    return name[0] != '.' && strlen(name) < S_NAME_MAX && !s_temp_name(name);
}

/* Record a skipped file: counted, logged, and named in the description. */
static void s_count_skip(dir_source_t *self, const char *name, const char *why)
{
    self->st.files_skipped++;
    /* A long name or reason is cut (at a character): the log has it whole. */
    char text[S_NAME_MAX + 256];
    snprintf(text, sizeof text, "%s: %.200s", name, why);
    tb_text_copy(self->last_skip, sizeof self->last_skip, text);
    tb_log(TB_LOG_WARN, LOG_COMPONENT, "directory %s: skipping %s: %s (%llu skipped so far)",
           self->dir, name, why, (unsigned long long)self->st.files_skipped);
}

/* An entry that is not a regular file, in the part of the directory still to
 * be read: counted once (the first S_MAX_NOTED of them; more are logged once
 * and not counted, so a directory full of them cannot make memory grow). */
static void s_note_other(dir_source_t *self, const char *name, const char *what)
{
    for (size_t i = 0; i < self->nnoted; i++) {
        if (strcmp(self->noted[i], name) == 0) {
            return;
        }
    }
    if (self->nnoted == S_MAX_NOTED) {
        if (!self->noted_full_logged) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "directory %s: more than %d entries that are not files; not counting more",
                   self->dir, S_MAX_NOTED);
            self->noted_full_logged = 1;
        }
        return;
    }
    snprintf(self->noted[self->nnoted++], S_NAME_MAX, "%s", name);
    s_count_skip(self, name, what);
}

/* Forget noted entries the reading has passed (they are behind `done`). */
static void s_prune_noted(dir_source_t *self)
{
    size_t k = 0;
    for (size_t i = 0; i < self->nnoted; i++) {
        if (s_natcmp(self->noted[i], self->done) > 0) {
            memmove(self->noted[k++], self->noted[i], S_NAME_MAX);
        }
    }
    self->nnoted = k;
}

/* Names known complete. A pcapng file cannot be followed while it is being
 * written, so the newest one normally waits for a successor. A file is known
 * complete when the events say so:
 *
 * - IN_MOVED_TO: it arrived by rename, the atomic delivery (cp f dir/x.tmp &&
 *   mv dir/x.tmp dir/x): whoever renames a file has finished writing it;
 * - IN_CLOSE_WRITE: its writer closed it (cp, a delivery script, tcpdump when
 *   it exits). tcpdump -C/-G closes a file only when it moves on to the next
 *   one, so the file it is writing is never marked.
 *
 * Any later write (IN_MODIFY) takes the mark away: a writer is at it again.
 *
 * A mark only lets the file be read now; it is still finished (after-read
 * action, checkpoint past it) only once a newer file exists, as every newest
 * file is. So a mark that was wrong (a second writer, a file appended to
 * after its close) costs nothing: the reading stops at the last complete
 * block, remembers how many packets it took, and takes the rest when the
 * file is complete again or a successor exists.
 *
 * Only the newest file needs a mark; when the list is full, the name first
 * in reading order (which has successors) makes room. */
static int s_complete_find(const dir_source_t *self, const char *name)
{
    for (size_t i = 0; i < self->ncomplete; i++) {
        if (strcmp(self->complete[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void s_complete_drop(dir_source_t *self, size_t i)
{
    self->ncomplete--;
    if (i != self->ncomplete) {
        memcpy(self->complete[i], self->complete[self->ncomplete], S_NAME_MAX);
    }
}

static void s_complete_forget(dir_source_t *self, const char *name)
{
    int i = s_complete_find(self, name);
    if (i >= 0) {
        s_complete_drop(self, (size_t)i);
    }
}

static void s_complete_mark(dir_source_t *self, const char *name)
{
    if (s_complete_find(self, name) >= 0) {
        return;
    }
    size_t at = self->ncomplete;
    if (at == S_MAX_COMPLETE) {
        size_t first = 0;
        for (size_t i = 1; i < self->ncomplete; i++) {
            if (s_natcmp(self->complete[i], self->complete[first]) < 0) {
                first = i;
            }
        }
        if (s_natcmp(name, self->complete[first]) < 0) {
            return; /* before every marked name: it has successors */
        }
        at = first;
    } else {
        self->ncomplete++;
    }
    snprintf(self->complete[at], S_NAME_MAX, "%s", name);
}

/* Forget marks the reading has passed. */
static void s_prune_complete(dir_source_t *self)
{
    for (size_t i = 0; i < self->ncomplete;) {
        if (s_natcmp(self->complete[i], self->done) <= 0) {
            s_complete_drop(self, i);
        } else {
            i++;
        }
    }
}

/* After a (re)start, a file delivered before has left no event behind. A
 * pcapng file last written S_SETTLED_S seconds or more before the source
 * started watching is taken as complete, once per file and run: any write
 * since would have moved its mtime past that point, so nobody wrote it while
 * watched or shortly before. If it was in fact still being written (tcpdump
 * without -U on a quiet link flushes rarely), the reading stops at its last
 * complete block and waits, as for a wrong mark (see above). */
static int s_settled(const dir_source_t *self, FILE *fp)
{
    struct stat sb;
    return fstat(fileno(fp), &sb) == 0 && sb.st_mtime <= self->watch_since - S_SETTLED_S;
}

/* What a directory entry is: 1 a regular file (or a symlink to one), 0 an
 * entry to leave out silently, -1 something else (*what says what). */
static int s_entry_kind(const dir_source_t *self, const struct dirent *e, const char **what)
{
    if (e->d_type == DT_REG) {
        return 1;
    }
    char path[PATH_MAX];
    struct stat sb;
    if (s_path(self, e->d_name, path, sizeof path) != 0) {
        *what = "path too long";
        return -1;
    }
    if (stat(path, &sb) != 0) { /* follows symlinks */
        if (errno == ENOENT && e->d_type != DT_LNK) {
            return 0; /* gone since the listing */
        }
        *what = e->d_type == DT_LNK ? "a symlink to nothing" : "cannot be examined";
        return -1;
    }
    if (S_ISREG(sb.st_mode)) {
        return 1;
    }
    if (S_ISDIR(sb.st_mode) && self->move_known && sb.st_dev == self->move_dev &&
        sb.st_ino == self->move_ino) {
        return 0; /* where finished files go */
    }
    *what = S_ISDIR(sb.st_mode)    ? "a sub-directory, not a file"
            : S_ISFIFO(sb.st_mode) ? "a FIFO, not a file"
            : S_ISSOCK(sb.st_mode) ? "a socket, not a file"
                                   : "not a regular file";
    return -1;
}

/* Scan the directory: the first regular file (natural order) after `after`
 * goes to next (or "" if none). Entries that are not files and lie after the
 * last finished file are counted once each. */
static int s_scan(dir_source_t *self, const char *after, char *next, size_t size)
{
    DIR *d = opendir(self->dir);
    if (d == NULL) {
        return TB_EIO;
    }
    next[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!s_candidate_name(e->d_name)) {
            continue;
        }
        const char *what = NULL;
        int kind = s_entry_kind(self, e, &what);
        if (kind <= 0) {
            if (kind < 0 && (self->done[0] == '\0' || s_natcmp(e->d_name, self->done) > 0)) {
                s_note_other(self, e->d_name, what);
            }
            continue;
        }
        if (after[0] != '\0' && s_natcmp(e->d_name, after) <= 0) {
            continue;
        }
        if (next[0] == '\0' || s_natcmp(e->d_name, next) < 0) {
            snprintf(next, size, "%s", e->d_name);
        }
    }
    closedir(d);
    return 0;
}

/* A new current file (or none): what was known about the previous one goes. */
static void s_set_current(dir_source_t *self, const char *name)
{
    snprintf(self->current, sizeof self->current, "%s", name);
    self->offset = 0;
    self->unreadable_since = 0;
    self->moved_pending = 0;
    self->renamed_to[0] = '\0';
    self->wait_why = W_NONE;
    self->waiting = 0;
    self->settled_tried = 0;
    self->taken_known = 0;
}

static int s_save(dir_source_t *self)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", self->checkpoint) >= (int)sizeof tmp) {
        return TB_ELIMIT;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return TB_EIO;
    }
    fprintf(f, "tapbus-dir-checkpoint 1\n%s\n%s\n%llu\n", self->safe_done, self->safe_current,
            (unsigned long long)self->safe_offset);
    int bad = ferror(f);
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, self->checkpoint) != 0) {
        unlink(tmp);
        return TB_EIO;
    }
    self->safe_changed = 0;
    self->last_save = tb_time_mono_ns();
    if (self->legacy_loaded) {
        /* Taken over: the old name may now only mislead another stream. */
        if (unlink(self->legacy) == 0) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "checkpoint %s moved to %s", self->legacy,
                   self->checkpoint);
        }
        self->legacy_loaded = 0;
    }
    return 0;
}

/* After-read action for a file whose packets have all been published. */
static void s_after_read(dir_source_t *self, const char *name)
{
    char path[PATH_MAX];
    if (s_path(self, name, path, sizeof path) != 0) {
        return;
    }
    if (self->delete_done) {
        if (unlink(path) != 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "cannot delete %s: %s", path, strerror(errno));
        }
    } else if (self->move_to != NULL) {
        char to[PATH_MAX];
        if (snprintf(to, sizeof to, "%s/%s", self->move_to, name) >= (int)sizeof to) {
            return;
        }
        if (access(to, F_OK) == 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "not moving %s: %s exists", path, to);
        } else if (rename(path, to) != 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "cannot move %s to %s: %s", path, self->move_to,
                   strerror(errno));
        }
    }
}

/* Everything read so far is published: it becomes the safe position, and
 * the files finished before it can be deleted or moved. */
static void s_sync(tb_source_t *src)
{
    dir_source_t *self = (dir_source_t *)src;
    if (!self->unsynced) {
        return;
    }
    memcpy(self->safe_done, self->done, sizeof self->done);
    memcpy(self->safe_current, self->current, sizeof self->current);
    self->safe_offset = self->offset;
    self->unsynced = 0;
    self->safe_changed = 1;
    if (self->nfinished > 0) {
        /* Record the progress before files disappear from the directory. */
        if (s_save(self) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot write checkpoint %s: %s", self->checkpoint,
                   strerror(errno));
            return;
        }
        for (size_t i = 0; i < self->nfinished; i++) {
            s_after_read(self, self->finished[i]);
        }
        self->nfinished = 0;
    }
}

/* Read the checkpoint, if there is one. A damaged one is an error: reading
 * everything again would count it twice. */
static int s_load(dir_source_t *self, char *err, size_t errsize)
{
    const char *path = self->checkpoint;
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT && self->legacy != NULL) {
        /* Before stream names were escaped, '/' became '_': streams "a/b"
         * and "a_b" shared one file. The old one is taken over unless
         * another stream of this probe could own it. */
        f = fopen(self->legacy, "r");
        if (f != NULL && self->legacy_shared) {
            fclose(f);
            snprintf(err, errsize,
                     "old-style checkpoint %s may belong to another stream: rename it to %s "
                     "if it is this stream's, or remove it",
                     self->legacy, self->checkpoint);
            return TB_EPROTO;
        }
        if (f != NULL) {
            path = self->legacy;
            self->legacy_loaded = 1;
        } else if (errno != ENOENT) {
            path = self->legacy;
        }
    }
    if (f == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(err, errsize, "cannot read checkpoint %s: %s", path, strerror(errno));
        return TB_EIO;
    }
    char line[4][S_NAME_MAX + 2];
    int n = 0;
    while (n < 4 && fgets(line[n], sizeof line[n], f) != NULL) {
        line[n][strcspn(line[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    char *end = NULL;
    unsigned long long off = n == 4 ? strtoull(line[3], &end, 10) : 0;
    if (n != 4 || strcmp(line[0], "tapbus-dir-checkpoint 1") != 0 || end == line[3] ||
        *end != '\0') {
        snprintf(err, errsize, "checkpoint %s is damaged (remove it to read everything again)",
                 path);
        return TB_EPROTO;
    }
    if (strlen(line[1]) >= sizeof self->done || strlen(line[2]) >= sizeof self->current) {
        snprintf(err, errsize, "checkpoint %s is damaged (a name is too long)", path);
        return TB_EPROTO;
    }
    memcpy(self->done, line[1], strlen(line[1]) + 1);
    memcpy(self->current, line[2], strlen(line[2]) + 1);
    self->offset = off;
    memcpy(self->safe_done, self->done, sizeof self->done);
    memcpy(self->safe_current, self->current, sizeof self->current);
    self->safe_offset = off;
    return 0;
}

static void s_close_file(dir_source_t *self)
{
    if (self->pcap != NULL) {
        pcap_close(self->pcap); /* closes fp too */
        self->pcap = NULL;
        self->fp = NULL;
    }
    if (self->cap != NULL) {
        tb_capfile_destroy(&self->cap); /* closes fp too */
        self->fp = NULL;
    }
}

/* A file is open for reading (pcap or capfile). */
static int s_reading(const dir_source_t *self)
{
    return self->pcap != NULL || self->cap != NULL;
}

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
    if (s_load(self, err, errsize) != 0) {
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
    if (s_save(self) != 0) {
        snprintf(err, errsize, "cannot write checkpoint %s: %s", self->checkpoint, strerror(errno));
        close(self->inotify);
        self->inotify = -1;
        return TB_EIO;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "directory %s: resuming after '%s', at '%s' offset %llu",
           self->dir, self->done, self->current, (unsigned long long)self->offset);
    return 0;
}

/* One inotify event about `name` (may be ""). */
static void s_event(dir_source_t *self, const struct inotify_event *ev, const char *name)
{
    if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_Q_OVERFLOW)) {
        self->dirty = 1;
    }
    if (name[0] == '\0') {
        return;
    }
    if ((ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) && !(ev->mask & IN_ISDIR) &&
        s_candidate_name(name)) {
        s_complete_mark(self, name);
    } else if (ev->mask & (IN_MODIFY | IN_MOVED_FROM)) {
        s_complete_forget(self, name);
    }
    /* The current file renamed within the directory (mv): IN_MOVED_FROM and
     * IN_MOVED_TO share a cookie. */
    if ((ev->mask & IN_MOVED_FROM) && self->current[0] != '\0' &&
        strcmp(name, self->current) == 0) {
        self->moved_cookie = ev->cookie;
        self->moved_pending = 1;
        return;
    }
    int rename_of_current =
        (ev->mask & IN_MOVED_TO) && self->moved_pending && ev->cookie == self->moved_cookie;
    if (rename_of_current) {
        snprintf(self->renamed_to, sizeof self->renamed_to, "%s", name);
        self->moved_pending = 0;
    }
    /* A file arriving under a name at or before the last finished one, or
     * before the file being read, is never reached by the reading order:
     * say so and count it. */
    int started = s_reading(self) || self->offset > 0;
    int behind = (self->done[0] != '\0' && s_natcmp(name, self->done) <= 0) ||
                 (started && s_natcmp(name, self->current) < 0);
    if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && !(ev->mask & IN_ISDIR) && !rename_of_current &&
        s_candidate_name(name) && behind) {
        s_count_skip(self, name, "arrived after later files were read (out of order)");
    }
}

/* Drain inotify: only a new, renamed or completed file calls for listing the
 * directory; a write to the file being read (IN_MODIFY, constant while
 * tcpdump writes) just wakes the loop, which reads on from where it was. */
static void s_drain_events(dir_source_t *self)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(self->inotify, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            if ((ssize_t)(sizeof *ev + ev->len) > n - off) {
                break;
            }
            char name[S_NAME_MAX] = "";
            if (ev->len > 0) {
                size_t len = strnlen(ev->name, ev->len);
                if (len < sizeof name) {
                    memcpy(name, ev->name, len);
                    name[len] = '\0';
                }
            }
            s_event(self, ev, name);
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
}

/* A file passed: it becomes the last done one. A file read whole
 * (read_whole) is, once its packets are published (sync), recorded, then
 * kept, deleted or moved; a skipped or cut-short one is left where it is for
 * the operator to look at. */
static void s_finish_file(dir_source_t *self, int read_whole)
{
    s_close_file(self);
    /* Renamed while being read (mv, seen in the events): it lives under its
     * new name now; one still ahead in the reading order is not read again. */
    int moved = 0;
    if (self->renamed_to[0] != '\0' && self->taken_known) {
        char path[PATH_MAX];
        struct stat sb;
        moved = s_path(self, self->renamed_to, path, sizeof path) == 0 && stat(path, &sb) == 0 &&
                sb.st_dev == self->taken_dev && sb.st_ino == self->taken_ino;
    }
    const char *now_at = moved ? self->renamed_to : self->current;
    if (moved && s_natcmp(self->renamed_to, self->current) > 0) {
        memcpy(self->read_as, self->renamed_to, sizeof self->read_as);
        self->read_as_dev = self->taken_dev;
        self->read_as_ino = self->taken_ino;
    }
    if (read_whole && self->nfinished < S_MAX_FINISHED) {
        snprintf(self->finished[self->nfinished++], S_NAME_MAX, "%s", now_at);
    }
    memcpy(self->done, self->current, sizeof self->done);
    s_set_current(self, "");
    self->files_done += read_whole != 0;
    self->unsynced = 1;
    self->dirty = 1;
    s_prune_noted(self);
    s_prune_complete(self);
}

/* Skip the current file: counted, and the reading moves past it. */
static void s_skip_current(dir_source_t *self, const char *why)
{
    s_count_skip(self, self->current, why);
    s_finish_file(self, 0);
}

/* Open the current file and seek to the offset taken so far. Returns 1 when
 * open, 0 when it cannot be read yet (header still being written, a pcapng
 * file still the newest, or an error that may pass), S_READ_BEFORE when it
 * was read under another name already, TB_ENOENT when it is gone, or another
 * negative error when it is to be skipped (err says why, without the path). */
/* The current file, open in fp, starts with the DPMI capfile magic: read
 * its header (the capfile takes fp) and go to the offset to resume from.
 * Returns 1 when reading, 0 to wait (the header is not all written yet),
 * or a negative error with err (a capfile not read here). */
static int s_open_capfile(dir_source_t *self, FILE *fp, char *err, size_t errsize)
{
    char why[S_WHY_MAX] = "";
    int rc = tb_capfile_open(fp, &self->cap, why, sizeof why);
    if (rc != 0) {
        fclose(fp);
        if (rc == TB_ETRUNC && !self->newer_exists) {
            self->wait_why = W_HEADER;
            return 0; /* the header or comment is still being written */
        }
        snprintf(err, errsize, "not readable (%s)", why);
        return rc == TB_EIO ? TB_EIO : TB_EPROTO;
    }
    self->wait_why = W_NONE;
    self->fp = fp;
    self->pcapng = 0;
    self->linktype = DLT_EN10MB;
    struct stat fsb;
    self->taken_known = fstat(fileno(fp), &fsb) == 0;
    if (self->taken_known) {
        self->taken_dev = fsb.st_dev;
        self->taken_ino = fsb.st_ino;
    }
    if (self->offset == 0) {
        self->offset = (uint64_t)ftell(fp); /* just past the header and comment */
    } else if (fseek(fp, (long)self->offset, SEEK_SET) != 0) {
        s_close_file(self);
        snprintf(err, errsize, "cannot seek to %llu", (unsigned long long)self->offset);
        return TB_EIO;
    }
    return 1;
}

static int s_open_file(dir_source_t *self, uint64_t now, char *err, size_t errsize)
{
    char path[PATH_MAX];
    if (s_path(self, self->current, path, sizeof path) != 0) {
        snprintf(err, errsize, "path too long");
        return TB_ELIMIT;
    }
    FILE *fp = NULL;
    char why[256] = "";
    int orc = tb_source_open_regular(path, &fp, why, sizeof why);
    if (orc == TB_ENOENT) {
        return TB_ENOENT;
    }
    if (orc == TB_EINVAL) {
        snprintf(err, errsize, "not a regular file");
        return TB_EINVAL;
    }
    if (orc != 0) {
        /* Perhaps passing (no descriptor left, permissions being fixed):
         * retried every second or when the directory changes, for a bounded
         * time, then skipped: one unreadable file must not stall the stream
         * forever. */
        snprintf(self->unreadable_why, sizeof self->unreadable_why, "%s", strerror(errno));
        self->wait_why = W_UNREADABLE;
        if (self->unreadable_since == 0) {
            self->unreadable_since = now;
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "directory %s: cannot open %s (retrying, skipped after %llu s): %s", self->dir,
                   self->current, (unsigned long long)(self->unreadable_ns / TB_NS_PER_SEC),
                   self->unreadable_why);
        } else if (now - self->unreadable_since >= self->unreadable_ns) {
            snprintf(err, errsize, "cannot be opened (%s) for %llu s", self->unreadable_why,
                     (unsigned long long)(self->unreadable_ns / TB_NS_PER_SEC));
            return TB_EIO;
        }
        return 0;
    }
    self->unreadable_since = 0;
    if (self->read_as[0] != '\0' && strcmp(self->read_as, self->current) == 0) {
        struct stat sb;
        int same = fstat(fileno(fp), &sb) == 0 && sb.st_dev == self->read_as_dev &&
                   sb.st_ino == self->read_as_ino;
        self->read_as[0] = '\0';
        if (same) {
            fclose(fp);
            tb_log(TB_LOG_INFO, LOG_COMPONENT,
                   "directory %s: %s was read under its name before: not read again", self->dir,
                   self->current);
            return S_READ_BEFORE;
        }
    }
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, 8, fp);
    rewind(fp);
    if (tb_capfile_is_magic(magic, got)) {
        return s_open_capfile(self, fp, err, errsize);
    }
    got = got > 4 ? 4 : got;
    self->pcapng =
        got == 4 && magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a;
    /* The "modified" pcap format (magic a1b2cd34) has 24-byte record headers. */
    static const uint8_t modified_le[4] = {0x34, 0xcd, 0xb2, 0xa1};
    static const uint8_t modified_be[4] = {0xa1, 0xb2, 0xcd, 0x34};
    self->hdr_size =
        got == 4 && (memcmp(magic, modified_le, 4) == 0 || memcmp(magic, modified_be, 4) == 0) ? 24
                                                                                               : 16;
    if (self->pcapng && !self->newer_exists) {
        /* Read pcapng files once they are finished, or known complete. */
        int complete = s_complete_find(self, self->current) >= 0;
        if (complete) {
            s_complete_forget(self, self->current); /* until marked again */
            self->settled_tried = 1;                /* a mark says more than an age */
        } else if (!self->settled_tried) {
            self->settled_tried = 1;
            complete = s_settled(self, fp);
            if (complete) {
                tb_log(TB_LOG_INFO, LOG_COMPONENT,
                       "directory %s: %s is pcapng, unchanged for %d s before the start: "
                       "taken as complete",
                       self->dir, self->current, S_SETTLED_S);
            }
        }
        if (!complete) {
            fclose(fp);
            self->wait_why = self->offset > 0 ? W_PCAPNG_READ : W_PCAPNG;
            return 0;
        }
    }
    if (self->pcapng && self->offset > 0 && self->taken_known) {
        /* The packets taken were taken from this file, not from another one
         * put under its name since (a name delivered again). */
        struct stat sb;
        if (fstat(fileno(fp), &sb) == 0 &&
            (sb.st_dev != self->taken_dev || sb.st_ino != self->taken_ino)) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "directory %s: %s was replaced; reading it from its start", self->dir,
                   self->current);
            self->offset = 0;
            self->unsynced = 1;
        }
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (p == NULL) {
        fclose(fp);
        if (!self->newer_exists) {
            self->wait_why = W_HEADER;
            return 0; /* perhaps only part of the header is written yet */
        }
        snprintf(err, errsize, "not a capture (%s)", perr);
        return TB_EPROTO;
    }
    self->wait_why = W_NONE;
    self->pcap = p;
    self->fp = fp;
    self->linktype = pcap_datalink(p);
    struct stat fsb;
    self->taken_known = fstat(fileno(fp), &fsb) == 0;
    if (self->taken_known) {
        self->taken_dev = fsb.st_dev;
        self->taken_ino = fsb.st_ino;
    }
    if (self->pcapng) {
        /* offset counts packets: skip those already taken. */
        struct pcap_pkthdr *h;
        const u_char *d;
        for (uint64_t i = 0; i < self->offset; i++) {
            if (pcap_next_ex(p, &h, &d) != 1) {
                break;
            }
        }
    } else if (self->offset == 0) {
        self->offset = (uint64_t)ftell(fp); /* just past the file header */
    } else if (fseek(fp, (long)self->offset, SEEK_SET) != 0) {
        s_close_file(self);
        snprintf(err, errsize, "cannot seek to %llu", (unsigned long long)self->offset);
        return TB_EIO;
    }
    return 1;
}

/* The current file was renamed to self->renamed_to while being read: the
 * same file under its new name, read on from where it was; following the
 * name keeps the checkpoint right and the file from being read twice. */
static void s_follow_rename(dir_source_t *self)
{
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "directory %s: %s was renamed to %s while being read",
           self->dir, self->current, self->renamed_to);
    snprintf(self->current, sizeof self->current, "%s", self->renamed_to);
    self->renamed_to[0] = '\0';
    self->unsynced = 1;
    self->dirty = 1;
}

/* The current file is gone before it could be opened. Renamed within the
 * directory (seen in the events), it is read under its new name in its turn;
 * otherwise what was not read of it is lost, and counted. Either way the
 * last finished file stays where it was, so a new name after it is found. */
static void s_current_vanished(dir_source_t *self)
{
    s_drain_events(self); /* the rename's events are queued by now */
    if (self->renamed_to[0] != '\0' && self->done[0] != '\0' &&
        s_natcmp(self->renamed_to, self->done) <= 0) {
        char why[S_WHY_MAX];
        snprintf(why, sizeof why, "renamed to %.50s, before files read", self->renamed_to);
        s_count_skip(self, self->current, why);
    } else if (self->renamed_to[0] != '\0' && self->offset > 0) {
        /* Taken in part already (a pcapng file read early): the same file
         * under its new name, read on from where it was (its identity is
         * checked when it is opened); what was taken stays taken. */
        s_follow_rename(self);
        return;
    } else if (self->renamed_to[0] != '\0') {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "directory %s: %s was renamed to %s before it was read",
               self->dir, self->current, self->renamed_to);
    } else if (self->offset == 0) {
        s_count_skip(self, self->current, "disappeared before it was read");
    } else {
        char why[S_WHY_MAX];
        snprintf(why, sizeof why, "disappeared; read up to byte/packet %llu of it",
                 (unsigned long long)self->offset);
        s_count_skip(self, self->current, why);
        s_finish_file(self, 0);
        return;
    }
    s_set_current(self, "");
    self->dirty = 1;
}

/* The newest file, at the end of what is written: if it was replaced or cut
 * back (a name reused, e.g. by tcpdump -W), what was read of it is gone;
 * read it again from its start. */
static void s_check_replaced(dir_source_t *self)
{
    char path[PATH_MAX];
    struct stat now_sb, open_sb;
    if (s_path(self, self->current, path, sizeof path) != 0 ||
        fstat(fileno(self->fp), &open_sb) != 0) {
        return;
    }
    int gone = stat(path, &now_sb) != 0;
    if (gone) {
        s_drain_events(self);
    }
    if (gone && self->renamed_to[0] != '\0' && s_natcmp(self->renamed_to, self->done) > 0) {
        /* Renamed while being read: the same file under its new name (the
         * open descriptor reads on); following the name keeps the checkpoint
         * right and the file from being read a second time. */
        s_follow_rename(self);
        return;
    }
    int replaced = !gone && (now_sb.st_ino != open_sb.st_ino || now_sb.st_dev != open_sb.st_dev);
    if (!replaced && (uint64_t)open_sb.st_size >= self->offset) {
        return;
    }
    tb_log(TB_LOG_WARN, LOG_COMPONENT, "directory %s: %s was %s; reading it from its start",
           self->dir, self->current, replaced ? "replaced" : "cut back");
    s_close_file(self);
    self->offset = 0;
    self->unsynced = 1;
}

typedef struct {
    dir_source_t *self;
    tb_summary_t *out;
    size_t n;
} read_ctx_t;

static void s_on_packet(u_char *user, const struct pcap_pkthdr *hdr, const u_char *data)
{
    read_ctx_t *ctx = (read_ctx_t *)user;
    dir_source_t *self = ctx->self;
    tb_source_summarise(self->linktype, data, hdr->caplen, hdr->len, tb_source_timestamp(&hdr->ts),
                        &ctx->out[ctx->n++], &self->st);
    /* Classic pcap: the byte offset of the next record; pcapng: packets. */
    self->offset += self->pcapng ? 1 : (uint64_t)self->hdr_size + hdr->caplen;
    self->unsynced = 1;
}

/* pcap_dispatch for a capfile: up to cnt records; the count read, 0 at
 * the end of what is written, or -1 for a record cut short or corrupt
 * (cap_err says which) once no record is left before it. The file stays
 * after the last whole record. */
static int s_cap_dispatch(dir_source_t *self, int cnt, read_ctx_t *ctx)
{
    int n = 0;
    while (n < cnt) {
        tb_capfile_rec_t rec;
        const uint8_t *data = NULL;
        int rc = tb_capfile_next(self->cap, &rec, &data, self->cap_err, sizeof self->cap_err);
        if (rc != 1) {
            return n > 0 || rc == 0 ? n : -1;
        }
        tb_source_summarise(DLT_EN10MB, data, rec.caplen, rec.len, tb_capfile_rec_ns(&rec),
                            &ctx->out[ctx->n], &self->st);
        ctx->out[ctx->n++].point = tb_point_table_intern(&self->points, rec.mp, rec.ci);
        self->offset += TB_CAPFILE_REC_LEN + (uint64_t)rec.caplen;
        self->unsynced = 1;
        n++;
    }
    return n;
}

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    dir_source_t *self = (dir_source_t *)src;
    *eof = 0;
    if (self->inotify < 0 || max == 0) {
        return 0;
    }
    s_drain_events(self);
    uint64_t now = tb_time_mono_ns();
    if (now >= self->next_scan) {
        self->dirty = 1; /* a periodic look, in case an event was missed */
        self->next_scan = now + TB_NS_PER_SEC;
    }
    if (self->dirty) {
        self->dirty_open = 1;
        char next[S_NAME_MAX];
        int rc = 0;
        /* Until the current file is started, a file that arrived since
         * with a name before it is read first: order is by name. */
        int started = s_reading(self) || self->offset > 0;
        if (self->current[0] == '\0' || !started) {
            rc = s_scan(self, self->done, next, sizeof next);
            if (rc == 0 && next[0] != '\0' &&
                (self->current[0] == '\0' || s_natcmp(next, self->current) < 0)) {
                s_set_current(self, next);
            }
        }
        if (rc == 0 && self->current[0] != '\0') {
            rc = s_scan(self, self->current, next, sizeof next);
            self->newer_exists = next[0] != '\0';
        }
        if (rc != 0) {
            snprintf(err, errsize, "cannot list %s: %s", self->dir, strerror(errno));
            *eof = 1;
            return 0;
        }
        self->dirty = 0;
    }
    if (self->current[0] == '\0') {
        return 0;
    }
    if (!s_reading(self)) {
        if (self->waiting && !self->dirty_open) {
            return 0; /* not readable yet: try again when the directory changes */
        }
        char why[S_WHY_MAX + 64] = "";
        int rc = s_open_file(self, now, why, sizeof why);
        self->waiting = rc == 0;
        self->dirty_open = 0;
        if (rc == TB_ENOENT) {
            s_current_vanished(self);
            return 0;
        }
        if (rc < 0) {
            s_skip_current(self, why);
            return 0;
        }
        if (rc == 0) {
            return 0;
        }
        if (rc == S_READ_BEFORE) {
            s_finish_file(self, 0); /* counted and kept, deleted or moved before */
            return 0;
        }
    }
    read_ctx_t ctx = {.self = self, .out = out, .n = 0};
    int cnt = max > INT32_MAX ? INT32_MAX : (int)max;
    int rc = self->cap != NULL ? s_cap_dispatch(self, cnt, &ctx)
                               : pcap_dispatch(self->pcap, cnt, s_on_packet, (u_char *)&ctx);
    self->st.pcap_recv += ctx.n;
    if (rc >= 0 && !self->pcapng) {
        /* After whole records the stream's position is exact (libpcap reads
         * each record with fread): it also covers records whose stored length
         * exceeded the snapshot length. */
        long pos = ftell(self->fp);
        if (pos > 0) {
            self->offset = (uint64_t)pos;
        }
    }
    if (rc == 0 || rc < 0) {
        /* The end of what is written so far, or a record cut short. */
        if (self->newer_exists) {
            if (rc < 0) {
                char why[S_WHY_MAX];
                snprintf(why, sizeof why, "cut short after %llu: %.60s",
                         (unsigned long long)self->offset,
                         self->cap != NULL ? self->cap_err : pcap_geterr(self->pcap));
                s_count_skip(self, self->current, why);
            }
            s_finish_file(self, rc == 0);
        } else if (!self->pcapng) {
            s_check_replaced(self);
            if (self->fp != NULL) {
                /* Growing: back to the end of the last complete record (this
                 * also clears the stream's end-of-file flag); wait for more. */
                (void)fseek(self->fp, (long)self->offset, SEEK_SET);
            }
        } else {
            /* The newest file, pcapng, read because it was known complete:
             * it stays the current file (offset: the packets taken) until a
             * newer file exists or it is marked complete again; the rest of
             * it, if it grows or its end was cut, is read then. */
            if (rc < 0) {
                tb_log(TB_LOG_INFO, LOG_COMPONENT,
                       "directory %s: %s ends in an incomplete block after packet %llu (%s): "
                       "the rest is read once it is complete or a newer file exists",
                       self->dir, self->current, (unsigned long long)self->offset,
                       pcap_geterr(self->pcap));
            }
            s_close_file(self);
            self->wait_why = W_PCAPNG_READ;
            self->waiting = 1;
            self->dirty_open = 0; /* opened again on the next change, not before */
        }
    }
    if (self->safe_changed && now - self->last_save >= TB_NS_PER_SEC && s_save(self) != 0) {
        snprintf(err, errsize, "cannot write checkpoint %s: %s", self->checkpoint, strerror(errno));
        *eof = 1;
    }
    return (int)ctx.n;
}

static void s_close(tb_source_t *src)
{
    dir_source_t *self = (dir_source_t *)src;
    if (self->inotify >= 0 && self->safe_changed && s_save(self) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot write checkpoint %s: %s", self->checkpoint,
               strerror(errno));
    }
    s_close_file(self);
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
    } else if (!s_reading(self) && self->wait_why == W_PCAPNG) {
        n = snprintf(buf, size, "%s is pcapng: read once a newer file exists", self->current);
    } else if (!s_reading(self) && self->wait_why == W_PCAPNG_READ) {
        n = snprintf(buf, size,
                     "%s is pcapng: %llu packets read; more once it is complete again "
                     "or a newer file exists",
                     self->current, (unsigned long long)self->offset);
    } else if (!s_reading(self) && self->wait_why == W_UNREADABLE) {
        uint64_t left = 0;
        uint64_t spent = tb_time_mono_ns() - self->unreadable_since;
        if (self->unreadable_since != 0 && spent < self->unreadable_ns) {
            left = (self->unreadable_ns - spent + TB_NS_PER_SEC - 1) / TB_NS_PER_SEC;
        }
        n = snprintf(buf, size, "cannot open %s (%s): skipped in %llu s", self->current,
                     self->unreadable_why, (unsigned long long)left);
    } else if (!s_reading(self) && self->wait_why == W_HEADER) {
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
    .sync = s_sync,
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
