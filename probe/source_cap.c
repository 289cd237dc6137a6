/* source_cap — a DPMI capfile (see capfile.h) as a finite source.
 *
 * Read like a pcap file source: from its start for each run, lossless, an
 * end-of-stream at its end. Each record is an Ethernet frame, summarised
 * with the common decoder; picosecond timestamps are kept to the
 * nanosecond. A file that is missing, not a capfile, of a version not read
 * here, or cut inside its header puts the stream in the error state with
 * the reason; a record cut at the end (or a corrupt one) ends the stream
 * with the reason after every whole record before it was delivered, and
 * counts the file as skipped (files_skipped). Each summary names its
 * record's measurement point and capture interface (tb_point.h). With a
 * replay speed the records go out at the pace they were captured (times
 * the speed), as a pcap file's packets do (source_file.c). */
#include "capfile.h"
#include "source_cap.h"

#include "tb_err.h"
#include "tb_time.h"

#include <pcap/dlt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tb_source_t base;
    char *path;
    tb_capfile_t *cf;
    tb_source_stats_t st;
    tb_point_table_t points; /* the MP/CI pairs met in this run */
    double speed;            /* replay pacing factor; 0 reads as fast as possible */
    /* Pacing: the record read but not yet due, and the run's time origin. */
    int held_valid;
    tb_summary_t held;
    int paced;
    uint64_t pace_mono0; /* monotonic ns when the first record went out */
    uint64_t pace_ts0;   /* capture time of the first record */
} cap_source_t;

static void s_close(tb_source_t *src)
{
    cap_source_t *self = (cap_source_t *)src;
    tb_capfile_destroy(&self->cf);
}

static int s_open(tb_source_t *src, char *err, size_t errsize)
{
    cap_source_t *self = (cap_source_t *)src;
    s_close(src);
    memset(&self->st, 0, sizeof self->st);
    tb_point_table_reset(&self->points);
    self->held_valid = 0;
    self->paced = 0;
    FILE *fp = NULL;
    int rc = tb_source_open_regular(self->path, &fp, err, errsize);
    if (rc != 0) {
        self->st.files_skipped = 1;
        return rc == TB_EINVAL ? TB_EINVAL : TB_EIO;
    }
    char why[200] = "";
    rc = tb_capfile_open(fp, &self->cf, why, sizeof why);
    if (rc != 0) {
        fclose(fp);
        snprintf(err, errsize, "cannot read %s: %s", self->path, why);
        self->st.files_skipped = 1;
        return rc == TB_ENOMEM ? TB_ENOMEM : TB_EIO;
    }
    return 0;
}

/* The next record, summarised into *out: 1; 0 at the end of the file; a
 * negative tb_err_t when the file ends on an error (TB_ETRUNC, TB_EPROTO,
 * TB_EIO: a record cut short or corrupt, or a read error; err says which,
 * and the file counts as skipped). */
static int s_next(cap_source_t *self, tb_summary_t *out, char *err, size_t errsize)
{
    tb_capfile_rec_t rec;
    const uint8_t *data = NULL;
    char why[200] = "";
    int rc = tb_capfile_next(self->cf, &rec, &data, why, sizeof why);
    if (rc == 1) {
        tb_source_summarise(DLT_EN10MB, data, rec.caplen, rec.len, tb_capfile_rec_ns(&rec), out,
                            &self->st);
        out->point = tb_point_table_intern(&self->points, rec.mp, rec.ci);
        self->st.pcap_recv++;
        return 1;
    }
    if (rc < 0) {
        snprintf(err, errsize, "%s: %s", self->path, why);
        self->st.files_skipped = 1; /* cut short */
        return rc;
    }
    return 0;
}

/* Replay at the capture's own pace times `speed`, as source_file.c does: a
 * record goes out when as much time has passed since the first one as
 * separated their capture times (divided by speed); the first record not yet
 * due is held for the next call (the probe's loop calls again within a few
 * milliseconds); one captured before the first goes out at once. */
static int s_read_paced(cap_source_t *self, tb_summary_t *out, size_t max, int *eof, char *err,
                        size_t errsize)
{
    uint64_t now = tb_time_mono_ns();
    size_t n = 0;
    while (n < max) {
        if (!self->held_valid) {
            if (s_next(self, &self->held, err, errsize) != 1) {
                *eof = 1;
                break;
            }
            self->held_valid = 1;
            if (!self->paced) {
                self->paced = 1;
                self->pace_mono0 = now;
                self->pace_ts0 = self->held.ts_ns;
            }
        }
        uint64_t offset = self->held.ts_ns > self->pace_ts0 ? self->held.ts_ns - self->pace_ts0 : 0;
        double due = (double)self->pace_mono0 + (double)offset / self->speed;
        if (due > (double)now) {
            break;
        }
        out[n++] = self->held;
        self->held_valid = 0;
    }
    return (int)n;
}

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    cap_source_t *self = (cap_source_t *)src;
    *eof = 0;
    if (self->cf == NULL) {
        *eof = 1;
        return 0;
    }
    if (self->speed > 0) {
        return s_read_paced(self, out, max, eof, err, errsize);
    }
    size_t n = 0;
    while (n < max) {
        int rc = s_next(self, &out[n], err, errsize);
        if (rc != 1) {
            *eof = 1;
            break;
        }
        n++;
    }
    return (int)n;
}

static void s_stats(const tb_source_t *src, tb_source_stats_t *st)
{
    const cap_source_t *self = (const cap_source_t *)src;
    *st = self->st;
}

static const tb_point_table_t *s_points(const tb_source_t *src)
{
    return &((const cap_source_t *)src)->points;
}

static void s_destroy(tb_source_t *src)
{
    cap_source_t *self = (cap_source_t *)src;
    free(self->path);
    free(self);
}

static const tb_source_ops_t s_cap_ops = {
    .kind = "cap",
    .finite = 1,
    .lossless = 1,
    .open = s_open,
    .read = s_read,
    .close = s_close,
    .stats = s_stats,
    .destroy = s_destroy,
    .points = s_points,
};

tb_source_t *tb_source_cap_new(const char *path, double speed, char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errsize, "cap source needs a path");
        return NULL;
    }
    cap_source_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        free(self);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->base.ops = &s_cap_ops;
    self->speed = speed;
    return &self->base;
}
