/* source — source specifications and lifecycle; see source.h. */
#include "source.h"

#include "tb_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tb_source_live_cfg_defaults(tb_source_live_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->snaplen = 128;
    cfg->buffer_mb = 128;
    cfg->promisc = 1;
    cfg->sample = 1;
}

int tb_source_checkpoint_name(const char *stream, char *name, size_t size, char *legacy,
                              size_t legacy_size)
{
    size_t n = 0;
    size_t m = 0;
    int escaped = 0;
    static const char prefix[] = ".tapbus-";
    static const char suffix[] = ".checkpoint";
    if (size < sizeof prefix || legacy_size < sizeof prefix) {
        return TB_ELIMIT;
    }
    memcpy(name, prefix, sizeof prefix - 1);
    memcpy(legacy, prefix, sizeof prefix - 1);
    n = m = sizeof prefix - 1;
    for (const char *p = stream; *p != '\0'; p++) {
        const char *piece = *p == '/' ? "%2F" : NULL;
        size_t plen = piece != NULL ? 3 : 1;
        if (n + plen >= size || m + 1 >= legacy_size) {
            return TB_ELIMIT;
        }
        if (piece != NULL) {
            memcpy(name + n, piece, plen);
            escaped = 1;
        } else {
            name[n] = *p;
        }
        n += plen;
        legacy[m++] = *p == '/' ? '_' : *p;
    }
    if (n + sizeof suffix > size || m + sizeof suffix > legacy_size) {
        return TB_ELIMIT;
    }
    memcpy(name + n, suffix, sizeof suffix);
    memcpy(legacy + m, suffix, sizeof suffix);
    if (!escaped) {
        legacy[0] = '\0';
    }
    return 0;
}

int tb_source_open_regular(const char *path, FILE **fp, char *err, size_t errsize)
{
    *fp = NULL;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, and with it every stream of the probe. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        struct stat sb;
        if (e == ENXIO && stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
            snprintf(err, errsize, "%s is not a regular file (a socket)", path);
            return TB_EINVAL;
        }
        snprintf(err, errsize, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return e == ENOENT ? TB_ENOENT : TB_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        snprintf(err, errsize, "cannot stat %s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return TB_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        const char *what = "special";
        if (S_ISFIFO(sb.st_mode)) {
            what = "a FIFO";
        } else if (S_ISSOCK(sb.st_mode)) {
            what = "a socket";
        } else if (S_ISDIR(sb.st_mode)) {
            what = "a directory";
        } else if (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)) {
            what = "a device";
        }
        snprintf(err, errsize, "%s is not a regular file (%s)", path, what);
        close(fd);
        return TB_EINVAL;
    }
    /* A regular file never blocks; plain blocking reads from here on. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || (*fp = fdopen(fd, "rb")) == NULL) {
        int e = errno;
        snprintf(err, errsize, "cannot open %s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return TB_EIO;
    }
    return 0;
}

/* Checkpoint of a directory stream: its name (tb_source_checkpoint_name) in
 * the checkpoint directory, or in the watched directory. */
static tb_source_t *s_dir_new(const char *stream, const char *path, const tb_source_dir_cfg_t *cfg,
                              char *err, size_t errsize)
{
    char name[3 * TB_STREAM_MAX + 32];
    char legacy[TB_STREAM_MAX + 32];
    if (tb_source_checkpoint_name(stream, name, sizeof name, legacy, sizeof legacy) != 0) {
        snprintf(err, errsize, "stream name %s is too long for a checkpoint", stream);
        return NULL;
    }
    const char *where = cfg->checkpoint_dir != NULL ? cfg->checkpoint_dir : path;
    char checkpoint[4096];
    char old[4096];
    int n = snprintf(checkpoint, sizeof checkpoint, "%s/%s", where, name);
    int m = snprintf(old, sizeof old, "%s/%s", where, legacy);
    if (n < 0 || (size_t)n >= sizeof checkpoint || m < 0 || (size_t)m >= sizeof old) {
        snprintf(err, errsize, "checkpoint path for %s is too long", path);
        return NULL;
    }
    return tb_source_dir_new(path, checkpoint, legacy[0] != '\0' ? old : NULL, cfg, err, errsize);
}

tb_source_t *tb_source_new(const char *stream, const char *spec, const tb_source_cfg_t *cfg,
                           char *err, size_t errsize)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errsize, "source '%s' is not KIND:ARGUMENT (e.g. file:trace.pcap)", spec);
        return NULL;
    }
    size_t kind_len = (size_t)(colon - spec);
    if (kind_len == 4 && strncmp(spec, "file", 4) == 0) {
        return tb_source_file_new(colon + 1, cfg->replay_speed, err, errsize);
    }
    if (kind_len == 3 && strncmp(spec, "cap", 3) == 0) {
        return tb_source_cap_new(colon + 1, cfg->replay_speed, err, errsize);
    }
    if (kind_len == 5 && strncmp(spec, "iface", 5) == 0) {
        return tb_source_iface_new(colon + 1, &cfg->live, err, errsize);
    }
    if (kind_len == 3 && strncmp(spec, "dir", 3) == 0) {
        return s_dir_new(stream, colon + 1, &cfg->dir, err, errsize);
    }
    if (kind_len == 4 && strncmp(spec, "dpmi", 4) == 0) {
        return tb_source_dpmi_new(stream, colon + 1, &cfg->live, err, errsize);
    }
    snprintf(err, errsize, "unknown source kind '%.*s' (supported: file, cap, iface, dir, dpmi)",
             (int)kind_len, spec);
    return NULL;
}

void tb_source_summarise(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                         uint64_t ts_ns, tb_summary_t *out, tb_source_stats_t *st)
{
    int rc = tb_decode(linktype, data, caplen, wirelen, ts_ns, out);
    if (rc == TB_ETRUNC || rc == TB_EPROTO) {
        st->decode_errors++;
    } else if (rc == TB_ENOTSUP) {
        st->unsupported++;
    }
}

uint64_t tb_source_timestamp(const struct timeval *tv)
{
    uint64_t sec = tv->tv_sec < 0 ? (uint64_t)(uint32_t)tv->tv_sec : (uint64_t)tv->tv_sec;
    uint64_t frac = tv->tv_usec < 0 ? 0 : (uint64_t)tv->tv_usec;
    if (sec >= UINT64_MAX / 1000000000ull) {
        return UINT64_MAX;
    }
    return sec * 1000000000ull + frac;
}

void tb_source_destroy(tb_source_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_source_t *src = *p;
    *p = NULL;
    src->ops->close(src);
    src->ops->destroy(src);
}
