/* source — source specifications and lifecycle; see source.h. */
#include "source.h"

#include "tb_err.h"

#include <stdio.h>
#include <string.h>

void tb_source_live_cfg_defaults(tb_source_live_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->snaplen = 128;
    cfg->buffer_mb = 128;
    cfg->promisc = 1;
    cfg->sample = 1;
}

/* Checkpoint of a directory stream: DIR/.tapbus-STREAM.checkpoint, with the
 * characters a file name cannot hold replaced. */
static tb_source_t *s_dir_new(const char *stream, const char *path, const tb_source_dir_cfg_t *cfg,
                              char *err, size_t errsize)
{
    char name[TB_STREAM_MAX + 1];
    snprintf(name, sizeof name, "%s", stream);
    for (char *p = name; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '_';
        }
    }
    char checkpoint[4096];
    int n = snprintf(checkpoint, sizeof checkpoint, "%s/.tapbus-%s.checkpoint",
                     cfg->checkpoint_dir != NULL ? cfg->checkpoint_dir : path, name);
    if (n < 0 || (size_t)n >= sizeof checkpoint) {
        snprintf(err, errsize, "checkpoint path for %s is too long", path);
        return NULL;
    }
    return tb_source_dir_new(path, checkpoint, cfg, err, errsize);
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
    if (kind_len == 5 && strncmp(spec, "iface", 5) == 0) {
        return tb_source_iface_new(colon + 1, &cfg->live, err, errsize);
    }
    if (kind_len == 3 && strncmp(spec, "dir", 3) == 0) {
        return s_dir_new(stream, colon + 1, &cfg->dir, err, errsize);
    }
    snprintf(err, errsize, "unknown source kind '%.*s' (supported: file, iface, dir)",
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
