/* source_dir_watch — what the directory's inotify events say (see
 * source_dir.c for the design, source_dir_int.h for the state): a file
 * created, delivered by rename or closed by its writer calls for a new look
 * at the directory; a rename of the file being read is followed; a file
 * arriving under a name the reading has passed is counted as skipped; and
 * pcapng files are known complete (below). */
#include "source_dir_int.h"

#include "tb_err.h"

#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

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
int tb_dir_complete_find(const dir_source_t *self, const char *name)
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

void tb_dir_complete_forget(dir_source_t *self, const char *name)
{
    int i = tb_dir_complete_find(self, name);
    if (i >= 0) {
        s_complete_drop(self, (size_t)i);
    }
}

static void s_complete_mark(dir_source_t *self, const char *name)
{
    if (tb_dir_complete_find(self, name) >= 0) {
        return;
    }
    size_t at = self->ncomplete;
    if (at == S_MAX_COMPLETE) {
        size_t first = 0;
        for (size_t i = 1; i < self->ncomplete; i++) {
            if (tb_dir_natcmp(self->complete[i], self->complete[first]) < 0) {
                first = i;
            }
        }
        if (tb_dir_natcmp(name, self->complete[first]) < 0) {
            return; /* before every marked name: it has successors */
        }
        at = first;
    } else {
        self->ncomplete++;
    }
    snprintf(self->complete[at], S_NAME_MAX, "%s", name);
}

/* Forget marks the reading has passed. */
void tb_dir_prune_complete(dir_source_t *self)
{
    for (size_t i = 0; i < self->ncomplete;) {
        if (tb_dir_natcmp(self->complete[i], self->done) <= 0) {
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
int tb_dir_settled(const dir_source_t *self, FILE *fp)
{
    struct stat sb;
    return fstat(fileno(fp), &sb) == 0 && sb.st_mtime <= self->watch_since - S_SETTLED_S;
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
        tb_dir_candidate_name(name)) {
        s_complete_mark(self, name);
    } else if (ev->mask & (IN_MODIFY | IN_MOVED_FROM)) {
        tb_dir_complete_forget(self, name);
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
    int started = tb_dir_reading(self) || self->offset > 0;
    int behind = (self->done[0] != '\0' && tb_dir_natcmp(name, self->done) <= 0) ||
                 (started && tb_dir_natcmp(name, self->current) < 0);
    if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && !(ev->mask & IN_ISDIR) && !rename_of_current &&
        tb_dir_candidate_name(name) && behind) {
        tb_dir_count_skip(self, name, "arrived after later files were read (out of order)");
    }
}

/* Drain inotify: only a new, renamed or completed file calls for listing the
 * directory; a write to the file being read (IN_MODIFY, constant while
 * tcpdump writes) just wakes the loop, which reads on from where it was. */
void tb_dir_drain_events(dir_source_t *self)
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
