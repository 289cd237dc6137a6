/* source_dir_scan — which file of the directory comes next (see
 * source_dir.c for the design, source_dir_int.h for the state).
 *
 * Files are taken in natural name order, which is the order tcpdump -C/-G
 * writes them. Hidden and temporary names are left out; entries that are
 * not regular files (FIFOs, sockets, devices, sub-directories) are counted
 * once each, as skipped. */
#include "source_dir_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define LOG_COMPONENT "probe"

/* Natural order: digit runs compare as numbers, the rest bytewise. */
int tb_dir_natcmp(const char *a, const char *b)
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

int tb_dir_path(const dir_source_t *self, const char *name, char *buf, size_t size)
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
int tb_dir_candidate_name(const char *name)
{
    return name[0] != '.' && strlen(name) < S_NAME_MAX && !s_temp_name(name);
}

/* Record a skipped file: counted, logged, and named in the description. */
void tb_dir_count_skip(dir_source_t *self, const char *name, const char *why)
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
    tb_dir_count_skip(self, name, what);
}

/* Forget noted entries the reading has passed (they are behind `done`). */
void tb_dir_prune_noted(dir_source_t *self)
{
    size_t k = 0;
    for (size_t i = 0; i < self->nnoted; i++) {
        if (tb_dir_natcmp(self->noted[i], self->done) > 0) {
            memmove(self->noted[k++], self->noted[i], S_NAME_MAX);
        }
    }
    self->nnoted = k;
}

/* What a directory entry is: a classification, not an error. */
typedef enum {
    S_ENTRY_FILE,   /* a regular file, or a symlink to one: read */
    S_ENTRY_SILENT, /* gone since the listing, or the move directory: left out */
    S_ENTRY_OTHER,  /* anything else: counted as skipped (*what says what) */
} entry_kind_t;

static entry_kind_t s_entry_kind(const dir_source_t *self, const struct dirent *e,
                                 const char **what)
{
    if (e->d_type == DT_REG) {
        return S_ENTRY_FILE;
    }
    char path[PATH_MAX];
    struct stat sb;
    if (tb_dir_path(self, e->d_name, path, sizeof path) != 0) {
        *what = "path too long";
        return S_ENTRY_OTHER;
    }
    if (stat(path, &sb) != 0) { /* follows symlinks */
        if (errno == ENOENT && e->d_type != DT_LNK) {
            return S_ENTRY_SILENT; /* gone since the listing */
        }
        *what = e->d_type == DT_LNK ? "a symlink to nothing" : "cannot be examined";
        return S_ENTRY_OTHER;
    }
    if (S_ISREG(sb.st_mode)) {
        return S_ENTRY_FILE;
    }
    if (S_ISDIR(sb.st_mode) && self->move_known && sb.st_dev == self->move_dev &&
        sb.st_ino == self->move_ino) {
        return S_ENTRY_SILENT; /* where finished files go */
    }
    *what = S_ISDIR(sb.st_mode)    ? "a sub-directory, not a file"
            : S_ISFIFO(sb.st_mode) ? "a FIFO, not a file"
            : S_ISSOCK(sb.st_mode) ? "a socket, not a file"
                                   : "not a regular file";
    return S_ENTRY_OTHER;
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
        if (!tb_dir_candidate_name(e->d_name)) {
            continue;
        }
        const char *what = NULL;
        entry_kind_t kind = s_entry_kind(self, e, &what);
        if (kind != S_ENTRY_FILE) {
            if (kind == S_ENTRY_OTHER &&
                (self->done[0] == '\0' || tb_dir_natcmp(e->d_name, self->done) > 0)) {
                s_note_other(self, e->d_name, what);
            }
            continue;
        }
        if (after[0] != '\0' && tb_dir_natcmp(e->d_name, after) <= 0) {
            continue;
        }
        if (next[0] == '\0' || tb_dir_natcmp(e->d_name, next) < 0) {
            snprintf(next, size, "%s", e->d_name);
        }
    }
    closedir(d);
    return 0;
}

/* Scan the directory (on a change, or every second in case an event was
 * missed). */
int tb_dir_rescan(dir_source_t *self)
{
    self->dirty_open = 1;
    char next[S_NAME_MAX];
    int rc = 0;
    /* Until the current file is started, a file that arrived since
     * with a name before it is read first: order is by name. */
    int started = tb_dir_reading(self) || self->offset > 0;
    if (self->current[0] == '\0' || !started) {
        rc = s_scan(self, self->done, next, sizeof next);
        if (rc == 0 && next[0] != '\0' &&
            (self->current[0] == '\0' || tb_dir_natcmp(next, self->current) < 0)) {
            tb_dir_set_current(self, next);
        }
    }
    if (rc == 0 && self->current[0] != '\0') {
        rc = s_scan(self, self->current, next, sizeof next);
        self->newer_exists = next[0] != '\0';
    }
    if (rc != 0) {
        return rc;
    }
    self->dirty = 0;
    return 0;
}
