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
 * record's measurement point and capture interface (tb_point.h). */
#include "capfile.h"
#include "source.h"

#include "tb_err.h"

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

static int s_read(tb_source_t *src, tb_summary_t *out, size_t max, int *eof, char *err,
                  size_t errsize)
{
    cap_source_t *self = (cap_source_t *)src;
    *eof = 0;
    if (self->cf == NULL) {
        *eof = 1;
        return 0;
    }
    size_t n = 0;
    while (n < max) {
        tb_capfile_rec_t rec;
        const uint8_t *data = NULL;
        char why[200] = "";
        int rc = tb_capfile_next(self->cf, &rec, &data, why, sizeof why);
        if (rc == 1) {
            tb_source_summarise(DLT_EN10MB, data, rec.caplen, rec.len, tb_capfile_rec_ns(&rec),
                                &out[n], &self->st);
            out[n++].point = tb_point_table_intern(&self->points, rec.mp, rec.ci);
            continue;
        }
        if (rc < 0) {
            snprintf(err, errsize, "%s: %s", self->path, why);
            self->st.files_skipped = 1; /* cut short */
        }
        *eof = 1;
        break;
    }
    self->st.pcap_recv += n;
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

tb_source_t *tb_source_cap_new(const char *path, char *err, size_t errsize)
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
    return &self->base;
}
