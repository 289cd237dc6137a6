/* source_dir_checkpoint — the directory source's checkpoint (see
 * source_dir.c for the design, source_dir_int.h for the state).
 *
 * The file holds a version line, the last finished file, the current one
 * and the offset taken in it (bytes; packets for pcapng). Only what has been
 * published is written (the safe position, moved by tb_dir_sync), so a stop,
 * a full bus or an unsubscription never skips a packet; the file is written
 * atomically (temporary + fsync + rename). Finished files are kept, deleted
 * or moved only after the checkpoint has recorded that they are done. */
#include "source_dir_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_COMPONENT "probe"

int tb_dir_save(dir_source_t *self)
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
    if (tb_dir_path(self, name, path, sizeof path) != 0) {
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
void tb_dir_sync(tb_source_t *src)
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
        if (tb_dir_save(self) != 0) {
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
int tb_dir_load(dir_source_t *self, char *err, size_t errsize)
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
