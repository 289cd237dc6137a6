/* source_dir — a directory of capture files that `tcpdump -w FILE -C SIZE`
 * and/or `-G SECONDS` keeps filling, as one lossless, never-ending source.
 *
 * Order: files are taken in natural name order ("trace" < "trace1" <
 * "trace2" < "trace10"; strftime names sort by time), which is the order
 * tcpdump writes them. Hidden files (".name") are ignored.
 *
 * Completeness: the newest file may still be written. A classic pcap file is
 * read up to its last complete record and the position remembered; when more
 * is written (inotify IN_MODIFY) reading resumes there. A file is finished
 * when a newer file exists: tcpdump has moved on. A pcapng file is read only
 * once it is finished (its blocks cannot be resumed half-way).
 *
 * Exactly once: a checkpoint file (written atomically: temporary + rename)
 * records the file being read and the byte offset of the end of the last
 * record taken (for pcapng, the number of packets taken); files before it
 * are done. A restarted probe resumes there. The
 * checkpoint follows what was read, at most a second behind and exactly at
 * every file's end and at close; after a crash (no close) up to a second of
 * packets can be read again.
 *
 * Finished files can be kept, deleted or moved to another directory. */
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
#include <unistd.h>

#define LOG_COMPONENT  "probe"
#define S_NAME_MAX     256
#define S_MAX_FINISHED 64 /* files finished between two syncs */

typedef struct {
    tb_source_t base;
    char *dir;
    char *checkpoint;   /* checkpoint file path */
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
    int hdr_size;       /* pcap record header: 16, or 24 (modified format) */
    int waiting;        /* the current file could not be opened yet */
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

/* Scan the directory: the first regular, non-hidden file after `after`
 * (natural order) goes to next (or "" if none). */
static int s_scan(dir_source_t *self, const char *after, char *next, size_t size)
{
    DIR *d = opendir(self->dir);
    if (d == NULL) {
        return TB_EIO;
    }
    next[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= S_NAME_MAX) {
            continue;
        }
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) {
            continue;
        }
        if (e->d_type == DT_UNKNOWN) {
            char path[PATH_MAX];
            struct stat sb;
            if (s_path(self, e->d_name, path, sizeof path) != 0 || stat(path, &sb) != 0 ||
                !S_ISREG(sb.st_mode)) {
                continue;
            }
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
    FILE *f = fopen(self->checkpoint, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        snprintf(err, errsize, "cannot read checkpoint %s: %s", self->checkpoint, strerror(errno));
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
                 self->checkpoint);
        return TB_EPROTO;
    }
    if (strlen(line[1]) >= sizeof self->done || strlen(line[2]) >= sizeof self->current) {
        snprintf(err, errsize, "checkpoint %s is damaged (a name is too long)", self->checkpoint);
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
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    dir_source_t *self = (dir_source_t *)src;
    memset(&self->st, 0, sizeof self->st);
    self->done[0] = self->current[0] = '\0';
    self->offset = 0;
    self->safe_done[0] = self->safe_current[0] = '\0';
    self->safe_offset = 0;
    self->unsynced = 0;
    self->nfinished = 0;
    self->waiting = 0;
    struct stat sb;
    if (stat(self->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsize, "%s is not a readable directory", self->dir);
        return TB_EIO;
    }
    if (s_load(self, err, errsize) != 0) {
        return TB_EPROTO;
    }
    self->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (self->inotify < 0 ||
        inotify_add_watch(self->inotify, self->dir,
                          IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        snprintf(err, errsize, "cannot watch %s: %s", self->dir, strerror(errno));
        if (self->inotify >= 0) {
            close(self->inotify);
            self->inotify = -1;
        }
        return TB_EIO;
    }
    self->dirty = 1;
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

/* Drain inotify: any event means the directory or a file in it changed. */
static void s_drain_events(dir_source_t *self)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(self->inotify, buf, sizeof buf)) > 0) {
        /* Only a new or completed file calls for listing the directory; a
         * write to the file being read (IN_MODIFY, constant while tcpdump
         * writes) just wakes the loop, which reads on from where it was. */
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_Q_OVERFLOW)) {
                self->dirty = 1;
            }
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
}

/* A finished file: it becomes the last done one; once its packets are
 * published (sync) it is recorded, then kept, deleted or moved. */
static void s_finish_file(dir_source_t *self)
{
    s_close_file(self);
    if (self->nfinished < S_MAX_FINISHED) {
        memcpy(self->finished[self->nfinished++], self->current, sizeof self->current);
    }
    memcpy(self->done, self->current, sizeof self->done);
    self->current[0] = '\0';
    self->offset = 0;
    self->files_done++;
    self->unsynced = 1;
    self->dirty = 1;
}

/* Open the current file and seek to the offset taken so far. Returns 1 when
 * open, 0 when it cannot be read yet (header still being written), or a
 * negative error (the file is not a capture). */
static int s_open_file(dir_source_t *self, char *err, size_t errsize)
{
    char path[PATH_MAX];
    if (s_path(self, self->current, path, sizeof path) != 0) {
        snprintf(err, errsize, "path of %s too long", self->current);
        return TB_ELIMIT;
    }
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        if (errno == ENOENT) {
            snprintf(err, errsize, "%s disappeared before it was read", path);
            return TB_ENOENT;
        }
        /* Perhaps passing (no descriptor left, permissions being fixed):
         * never skip a file for it; try again when the directory changes or
         * a second later. */
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "cannot open %s (will retry): %s", path,
               strerror(errno));
        return 0;
    }
    uint8_t magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    rewind(fp);
    self->pcapng =
        got == 4 && magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a;
    /* The "modified" pcap format (magic a1b2cd34) has 24-byte record headers. */
    static const uint8_t modified_le[4] = {0x34, 0xcd, 0xb2, 0xa1};
    static const uint8_t modified_be[4] = {0xa1, 0xb2, 0xcd, 0x34};
    self->hdr_size =
        got == 4 && (memcmp(magic, modified_le, 4) == 0 || memcmp(magic, modified_be, 4) == 0) ? 24
                                                                                               : 16;
    if (self->pcapng && !self->newer_exists) {
        fclose(fp); /* read pcapng files only once they are finished */
        return 0;
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (p == NULL) {
        fclose(fp);
        if (!self->newer_exists) {
            return 0; /* perhaps only part of the header is written yet */
        }
        snprintf(err, errsize, "%s: %s", path, perr);
        return TB_EPROTO;
    }
    self->pcap = p;
    self->fp = fp;
    self->linktype = pcap_datalink(p);
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
        snprintf(err, errsize, "%s: cannot seek to %llu", path, (unsigned long long)self->offset);
        return TB_EIO;
    }
    return 1;
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
        if (self->current[0] == '\0') {
            rc = s_scan(self, self->done, next, sizeof next);
            if (rc == 0 && next[0] != '\0') {
                snprintf(self->current, sizeof self->current, "%s", next);
                self->offset = 0;
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
    if (self->pcap == NULL) {
        if (self->waiting && !self->dirty_open) {
            return 0; /* not readable yet: try again when the directory changes */
        }
        int rc = s_open_file(self, err, errsize);
        self->waiting = rc == 0;
        self->dirty_open = 0;
        if (rc < 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "directory %s: skipping %s", self->dir, err);
            self->st.decode_errors++;
            err[0] = '\0';
            s_finish_file(self);
            return 0;
        }
        if (rc == 0) {
            return 0;
        }
    }
    read_ctx_t ctx = {.self = self, .out = out, .n = 0};
    int cnt = max > INT32_MAX ? INT32_MAX : (int)max;
    int rc = pcap_dispatch(self->pcap, cnt, s_on_packet, (u_char *)&ctx);
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
                tb_log(TB_LOG_WARN, LOG_COMPONENT, "directory %s: %s ends early: %s", self->dir,
                       self->current, pcap_geterr(self->pcap));
            }
            s_finish_file(self);
        } else if (!self->pcapng) {
            s_check_replaced(self);
            if (self->fp != NULL) {
                /* Growing: back to the end of the last complete record (this
                 * also clears the stream's end-of-file flag); wait for more. */
                (void)fseek(self->fp, (long)self->offset, SEEK_SET);
            }
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
    if (self->current[0] != '\0') {
        snprintf(buf, size, "reading %s; %llu files done", self->current,
                 (unsigned long long)self->files_done);
    } else {
        snprintf(buf, size, "waiting for a file after '%s'; %llu files done", self->done,
                 (unsigned long long)self->files_done);
    }
}

static void s_destroy(tb_source_t *src)
{
    dir_source_t *self = (dir_source_t *)src;
    free(self->dir);
    free(self->checkpoint);
    free(self->move_to);
    free(self);
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
};

tb_source_t *tb_source_dir_new(const char *path, const char *checkpoint,
                               const tb_source_dir_cfg_t *cfg, char *err, size_t errsize)
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
    if (self->dir == NULL || self->checkpoint == NULL ||
        (cfg->move_to != NULL && self->move_to == NULL)) {
        s_destroy(&self->base);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    return &self->base;
}
