/* spool — see spool.h.
 *
 * The index of batches on disk is an array in sequence order; `first` is the
 * oldest still present (popping advances it, appending compacts the array
 * when more than half of it is spent).
 *
 * The limit is on disk space, not on the bytes of the batches: a file takes
 * whole filesystem blocks (a 40-byte batch takes 4 KiB on ext4), so many
 * small batches counted by their length used 15 times the limit. Each file
 * counts as its length rounded up to the filesystem's allocation unit (at
 * least one unit), and the directory counts as what it has allocated (it
 * grows with the number of files and, on ext4, never shrinks) plus one
 * unit, the room it may take to grow by the next name. */
#include "spool.h"

#include "tb_err.h"
#include "tb_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define LOG_COMPONENT "spool"

typedef struct {
    uint64_t seq;
    uint64_t points;
    uint64_t bytes;
    uint64_t created_ns;
} entry_t;

struct tb_spool {
    char *dir;
    uint64_t max_bytes;
    entry_t *e;
    size_t first, n, cap; /* live entries are e[first..n) */
    uint64_t next_seq;
    uint64_t pinned; /* seq of the head being delivered (never evicted), 0 none */
    uint64_t bytes, points;
    uint64_t dropped;
    uint64_t unit;      /* the filesystem's allocation unit */
    uint64_t disk;      /* the files' cost: s_cost() of each */
    uint64_t dir_bytes; /* the directory's allocation, as last seen */
};

/* What a file of len bytes takes on disk. */
static uint64_t s_cost(const tb_spool_t *s, uint64_t len)
{
    uint64_t units = len / s->unit + (len % s->unit != 0);
    return (units > 0 ? units : 1) * s->unit;
}

/* Disk space counted against the limit (see the top of the file). */
static uint64_t s_used(const tb_spool_t *s)
{
    return s->disk + s->dir_bytes + s->unit;
}

static void s_dir_seen(tb_spool_t *s, const struct stat *sb)
{
    uint64_t alloc = (uint64_t)sb->st_blocks * 512;
    uint64_t size = (uint64_t)sb->st_size;
    s->dir_bytes = alloc > size ? alloc : size; /* tmpfs allocates nothing */
}

static void s_path(const tb_spool_t *s, const entry_t *e, char *buf, size_t size)
{
    snprintf(buf, size, "%s/tb-%020" PRIu64 "-%" PRIu64 "-%" PRIu64 ".lp", s->dir, e->seq,
             e->points, e->created_ns);
}

static int s_cmp(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_append(tb_spool_t *s, const entry_t *e)
{
    if (s->first > 0 && s->first * 2 >= s->n) {
        memmove(s->e, s->e + s->first, (s->n - s->first) * sizeof *s->e);
        s->n -= s->first;
        s->first = 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        entry_t *ne = realloc(s->e, cap * sizeof *ne);
        if (ne == NULL) {
            return TB_ENOMEM;
        }
        s->e = ne;
        s->cap = cap;
    }
    s->e[s->n++] = *e;
    s->bytes += e->bytes;
    s->disk += s_cost(s, e->bytes);
    s->points += e->points;
    return 0;
}

/* Forget entry i (first <= i < n) and delete its file. */
static void s_remove_at(tb_spool_t *s, size_t i)
{
    entry_t *e = &s->e[i];
    char path[4096];
    s_path(s, e, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "cannot delete %s: %s", path, strerror(errno));
    }
    s->bytes -= e->bytes;
    s->disk -= s_cost(s, e->bytes);
    s->points -= e->points;
    if (e->seq == s->pinned) {
        s->pinned = 0;
    }
    if (i == s->first) {
        s->first++;
    } else {
        memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof *s->e);
        s->n--;
    }
}

static void s_remove_first(tb_spool_t *s)
{
    s_remove_at(s, s->first);
}

void tb_spool_close(tb_spool_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_spool_t *s = *p;
    *p = NULL;
    free(s->e);
    free(s->dir);
    free(s);
}

tb_spool_t *tb_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errsize)
{
    if (max_bytes == 0) {
        snprintf(err, errsize, "spool limit must be above zero");
        return NULL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errsize, "cannot create spool directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errsize, "cannot open spool directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    tb_spool_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        snprintf(err, errsize, "out of memory");
        closedir(d);
        if (s != NULL) {
            tb_spool_close(&s);
        }
        return NULL;
    }
    s->max_bytes = max_bytes;
    struct statvfs vfs;
    s->unit = statvfs(dir, &vfs) == 0 && vfs.f_frsize >= 512 ? (uint64_t)vfs.f_frsize : 4096;
    struct stat dsb;
    if (stat(dir, &dsb) == 0) {
        s_dir_seen(s, &dsb);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        entry_t e = {0};
        int used = 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t nlen = strlen(de->d_name);
        if (strncmp(de->d_name, ".tb-", 4) == 0 && nlen > 8 &&
            strcmp(de->d_name + nlen - 4, ".tmp") == 0) {
            unlink(path); /* a batch whose writing was interrupted */
            continue;
        }
        if (sscanf(de->d_name, "tb-%20" SCNu64 "-%20" SCNu64 "-%20" SCNu64 ".lp%n", &e.seq,
                   &e.points, &e.created_ns, &used) != 3 ||
            de->d_name[used] != '\0') {
            continue;
        }
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        e.bytes = (uint64_t)sb.st_size;
        if (s_append(s, &e) != 0) {
            snprintf(err, errsize, "out of memory indexing the spool");
            closedir(d);
            tb_spool_close(&s);
            return NULL;
        }
    }
    closedir(d);
    if (s->n > 1) {
        qsort(s->e, s->n, sizeof *s->e, s_cmp);
    }
    s->next_seq = s->n > 0 ? s->e[s->n - 1].seq + 1 : 1;
    if (s->n > 0) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT,
               "%s holds %zu batch(es), %" PRIu64 " points, %" PRIu64 " bytes to replay", dir, s->n,
               s->points, s->bytes);
    }
    return s;
}

/* Write all of buf to fd. Returns 0 or TB_EIO (errno set). */
static int s_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return TB_EIO;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write e's file atomically: temporary name, fsync, rename. */
static int s_write_file(tb_spool_t *s, const entry_t *e, const char *data, size_t len)
{
    char path[4096], tmp[4096];
    s_path(s, e, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.tb-%020" PRIu64 ".tmp", s->dir, e->seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot create %s: %s", tmp, strerror(errno));
        return TB_EIO;
    }
    int ok = s_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0) {
        ok = 0;
    }
    if (!ok || rename(tmp, path) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot write %s: %s", path,
               strerror(ok ? errno : saved));
        unlink(tmp);
        return TB_EIO;
    }
    /* The new name survives a power loss only once the directory is synced. */
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        struct stat dsb;
        if (fstat(dfd, &dsb) == 0) {
            s_dir_seen(s, &dsb);
        }
        close(dfd);
    }
    return 0;
}

int tb_spool_push(tb_spool_t *s, const char *data, size_t len, uint64_t points, uint64_t created_ns)
{
    uint64_t cost = s_cost(s, len);
    if (s->dir_bytes + s->unit + cost > s->max_bytes) {
        s->dropped += points;
        tb_log(TB_LOG_ERROR, LOG_COMPONENT,
               "a batch of %zu bytes (%" PRIu64 " on disk) exceeds the spool limit; %" PRIu64
               " points dropped",
               len, cost, points);
        return 0;
    }
    /* Make room first, so the limit holds at every moment: the oldest go,
     * except a head being delivered (it leaves when it is written). */
    uint64_t freed = 0;
    while (s_used(s) + cost > s->max_bytes) {
        size_t i = s->first;
        if (i < s->n && s->e[i].seq == s->pinned) {
            i++;
        }
        if (i >= s->n) {
            s->dropped += points;
            tb_log(TB_LOG_ERROR, LOG_COMPONENT,
                   "spool full with the batch being delivered; %" PRIu64 " new points dropped",
                   points);
            return 0;
        }
        freed += s->e[i].points;
        s_remove_at(s, i);
    }
    if (freed > 0) {
        s->dropped += freed;
        tb_log(TB_LOG_WARN, LOG_COMPONENT,
               "spool full (%" PRIu64 " bytes): dropped the oldest %" PRIu64 " points",
               s->max_bytes, freed);
    }
    entry_t e = {.seq = s->next_seq, .points = points, .bytes = len, .created_ns = created_ns};
    int rc = s_write_file(s, &e, data, len);
    if (rc != 0) {
        return rc;
    }
    s->next_seq++;
    if (s_append(s, &e) != 0) {
        /* Cannot index it: it stays on disk and is found after a restart. */
        return TB_ENOMEM;
    }
    return 0;
}

int tb_spool_head(tb_spool_t *s, char **data, size_t *len, uint64_t *points, uint64_t *created_ns)
{
    if (s->first == s->n) {
        return TB_ENOENT;
    }
    entry_t *e = &s->e[s->first];
    char path[4096];
    s_path(s, e, path, sizeof path);
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    int rc = TB_EIO;
    if (f != NULL) {
        buf = malloc(e->bytes + 1);
        if (buf == NULL) {
            fclose(f);
            return TB_ENOMEM;
        }
        if (fread(buf, 1, e->bytes, f) == e->bytes) {
            rc = 0;
        }
        fclose(f);
    }
    if (rc != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot read %s: %s; its %" PRIu64 " points dropped",
               path, f == NULL ? strerror(errno) : "short read", e->points);
        free(buf);
        s->dropped += e->points;
        s_remove_first(s);
        return TB_EIO;
    }
    buf[e->bytes] = '\0';
    s->pinned = e->seq;
    *data = buf;
    *len = e->bytes;
    *points = e->points;
    *created_ns = e->created_ns;
    return 0;
}

int tb_spool_trim_head(tb_spool_t *s, const char *rest, size_t len, uint64_t points)
{
    if (s->first == s->n) {
        return TB_ENOENT;
    }
    entry_t *e = &s->e[s->first];
    entry_t ne = *e;
    ne.points = points;
    ne.bytes = len;
    int rc = s_write_file(s, &ne, rest, len);
    if (rc != 0) {
        return rc;
    }
    char path[4096];
    if (ne.points != e->points) {
        s_path(s, e, path, sizeof path);
        unlink(path);
    }
    s->bytes = s->bytes - e->bytes + len;
    s->disk = s->disk - s_cost(s, e->bytes) + s_cost(s, len);
    s->points = s->points - e->points + points;
    *e = ne;
    return 0;
}

void tb_spool_pop(tb_spool_t *s)
{
    if (s->first < s->n) {
        s_remove_first(s);
    }
    s->pinned = 0;
}

void tb_spool_unpin(tb_spool_t *s)
{
    s->pinned = 0;
}

const char *tb_spool_dir(const tb_spool_t *s)
{
    return s->dir;
}

void tb_spool_info(const tb_spool_t *s, tb_spool_info_t *info)
{
    info->batches = s->n - s->first;
    info->bytes = s->bytes;
    info->disk_bytes = s_used(s);
    info->points = s->points;
    info->oldest_ns = s->first < s->n ? s->e[s->first].created_ns : 0;
    info->dropped = s->dropped;
}
