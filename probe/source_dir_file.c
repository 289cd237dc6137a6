/* source_dir_file — the directory source's current file (see source_dir.c
 * for the design, source_dir_int.h for the state): opening it at the offset
 * taken so far (classic pcap and DPMI capfiles by byte offset, pcapng by
 * packet count, and a pcapng file still the newest only once it is known
 * complete), reading its records, and what happens at the end of what is
 * written: finished when a newer file exists, otherwise waiting for more,
 * read again from its start when it was replaced or cut back, followed when
 * it was renamed, counted when it vanished. */
#include "source_dir_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define LOG_COMPONENT "probe"
/* s_open_file: the file was read already, under the name it had then. */
#define S_READ_BEFORE 2

/* A new current file (or none): what was known about the previous one goes. */
void tb_dir_set_current(dir_source_t *self, const char *name)
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

void tb_dir_close_file(dir_source_t *self)
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
int tb_dir_reading(const dir_source_t *self)
{
    return self->pcap != NULL || self->cap != NULL;
}

/* A file passed: it becomes the last done one. A file read whole
 * (read_whole) is, once its packets are published (sync), recorded, then
 * kept, deleted or moved; a skipped or cut-short one is left where it is for
 * the operator to look at. */
static void s_finish_file(dir_source_t *self, int read_whole)
{
    tb_dir_close_file(self);
    /* Renamed while being read (mv, seen in the events): it lives under its
     * new name now; one still ahead in the reading order is not read again. */
    int moved = 0;
    if (self->renamed_to[0] != '\0' && self->taken_known) {
        char path[PATH_MAX];
        struct stat sb;
        moved = tb_dir_path(self, self->renamed_to, path, sizeof path) == 0 &&
                stat(path, &sb) == 0 && sb.st_dev == self->taken_dev &&
                sb.st_ino == self->taken_ino;
    }
    const char *now_at = moved ? self->renamed_to : self->current;
    if (moved && tb_dir_natcmp(self->renamed_to, self->current) > 0) {
        memcpy(self->read_as, self->renamed_to, sizeof self->read_as);
        self->read_as_dev = self->taken_dev;
        self->read_as_ino = self->taken_ino;
    }
    if (read_whole && self->nfinished < S_MAX_FINISHED) {
        snprintf(self->finished[self->nfinished++], S_NAME_MAX, "%s", now_at);
    }
    memcpy(self->done, self->current, sizeof self->done);
    tb_dir_set_current(self, "");
    self->files_done += read_whole != 0;
    self->unsynced = 1;
    self->dirty = 1;
    tb_dir_prune_noted(self);
    tb_dir_prune_complete(self);
}

/* Skip the current file: counted, and the reading moves past it. */
static void s_skip_current(dir_source_t *self, const char *why)
{
    tb_dir_count_skip(self, self->current, why);
    s_finish_file(self, 0);
}

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
        tb_dir_close_file(self);
        snprintf(err, errsize, "cannot seek to %llu", (unsigned long long)self->offset);
        return TB_EIO;
    }
    return 1;
}

/* Open the current file and seek to the offset taken so far. Returns 1 when
 * open, 0 when it cannot be read yet (header still being written, a pcapng
 * file still the newest, or an error that may pass), S_READ_BEFORE when it
 * was read under another name already, TB_ENOENT when it is gone, or another
 * negative error when it is to be skipped (err says why, without the path). */
static int s_open_file(dir_source_t *self, uint64_t now, char *err, size_t errsize)
{
    char path[PATH_MAX];
    if (tb_dir_path(self, self->current, path, sizeof path) != 0) {
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
    if (got < 4 && !self->newer_exists) {
        /* Not even the magic number is written yet. libpcap, reading next,
         * may find the writer further on and open the file, whose format
         * (a pcapng file waits until it is complete) must come from the
         * bytes that open it: wait for the header. */
        fclose(fp);
        self->wait_why = W_HEADER;
        return 0;
    }
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
        int complete = tb_dir_complete_find(self, self->current) >= 0;
        if (complete) {
            tb_dir_complete_forget(self, self->current); /* until marked again */
            self->settled_tried = 1;                     /* a mark says more than an age */
        } else if (!self->settled_tried) {
            self->settled_tried = 1;
            complete = tb_dir_settled(self, fp);
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
        tb_dir_close_file(self);
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
    tb_dir_drain_events(self); /* the rename's events are queued by now */
    if (self->renamed_to[0] != '\0' && self->done[0] != '\0' &&
        tb_dir_natcmp(self->renamed_to, self->done) <= 0) {
        char why[S_WHY_MAX];
        snprintf(why, sizeof why, "renamed to %.50s, before files read", self->renamed_to);
        tb_dir_count_skip(self, self->current, why);
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
        tb_dir_count_skip(self, self->current, "disappeared before it was read");
    } else {
        char why[S_WHY_MAX];
        snprintf(why, sizeof why, "disappeared; read up to byte/packet %llu of it",
                 (unsigned long long)self->offset);
        tb_dir_count_skip(self, self->current, why);
        s_finish_file(self, 0);
        return;
    }
    tb_dir_set_current(self, "");
    self->dirty = 1;
}

/* The newest file, at the end of what is written: if it was replaced or cut
 * back (a name reused, e.g. by tcpdump -W), what was read of it is gone;
 * read it again from its start. */
static void s_check_replaced(dir_source_t *self)
{
    char path[PATH_MAX];
    struct stat now_sb, open_sb;
    if (tb_dir_path(self, self->current, path, sizeof path) != 0 ||
        fstat(fileno(self->fp), &open_sb) != 0) {
        return;
    }
    int gone = stat(path, &now_sb) != 0;
    if (gone) {
        tb_dir_drain_events(self);
    }
    if (gone && self->renamed_to[0] != '\0' && tb_dir_natcmp(self->renamed_to, self->done) > 0) {
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
    tb_dir_close_file(self);
    self->offset = 0;
    self->unsynced = 1;
}

/* Open the current file; handle what stops it from being read now. */
int tb_dir_open_current(dir_source_t *self, uint64_t now)
{
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
    return 1;
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
 * the end of what is written, or a negative tb_err_t (tb_capfile_next's) for
 * a record cut short or corrupt (cap_err says which) once no record is left
 * before it. The file stays after the last whole record. */
static int s_cap_dispatch(dir_source_t *self, int cnt, read_ctx_t *ctx)
{
    int n = 0;
    while (n < cnt) {
        tb_capfile_rec_t rec;
        const uint8_t *data = NULL;
        int rc = tb_capfile_next(self->cap, &rec, &data, self->cap_err, sizeof self->cap_err);
        if (rc != 1) {
            return n > 0 || rc == 0 ? n : rc;
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

size_t tb_dir_read_current(dir_source_t *self, tb_summary_t *out, size_t max)
{
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
                tb_dir_count_skip(self, self->current, why);
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
            tb_dir_close_file(self);
            self->wait_why = W_PCAPNG_READ;
            self->waiting = 1;
            self->dirty_open = 0; /* opened again on the next change, not before */
        }
    }
    return ctx.n;
}
