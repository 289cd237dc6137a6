/* state — see state.h.
 *
 * File layout (msgpack), every map read by key so that fields can be added:
 *   {format: "tapbus-collector-state", version: 1, seed, saved_ns,
 *    streams: [{name, results_read, realtime, state, started_ns, ended_ns,
 *               run_resets, resumes, unmeasured_ns, gap_from_ns,
 *               gap_until_ns, clock_ns, probes: [TRACK...],
 *               sinks: {sink name: what it holds open}, stats: STATS}]}
 * This file writes and reads the envelope and each stream's own fields; the
 * parts are packed and read by their modules:
 *   TRACK  (tb_track_pack, track.c) = {id, boot_ns, next_seq, run, received,
 *          seq_gaps, restarts, lost_packets, eos_seen}
 *   STATS  (tb_stats_pack, stats.c) = {packets, bytes, first_ts, last_ts,
 *          min, max, last, proto: [[packets, bytes] x classes],
 *          decode_flagged, ts_outliers, flows: TABLE, hosts: TABLE,
 *          points: POINTS}; a summary is an array of its fields
 *   TABLE  (tb_topk_pack, topk.c) = {total, keys: [[key (bin), packets,
 *          bytes, error]...]}, heaviest first
 *   POINTS (tb_pointstats_pack, pointstats.c) = {entries: [[mp, ci, packets,
 *          bytes]...], overflow: [packets, bytes], unnamed: [packets, bytes]}
 *          (the breakdown by DPMI MP/CI)
 *   sinks  (each sink's stream_save, sink.h). */
#include "state.h"

#include "tb_err.h"
#include "tb_mp.h"
#include "tb_time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_COMPONENT "state"
#define FORMAT        "tapbus-collector-state"
#define VERSION       1

static const char *const s_state_names[] = {"stopped", "running", "finished"};

/* --- writing ------------------------------------------------------------- */

static int s_pack_stream(const tb_streams_t *t, msgpack_packer *pk, const tb_stream_t *st)
{
    msgpack_pack_map(pk, 15);
    tb_mp_kv_str(pk, "name", st->name);
    tb_mp_kv_bool(pk, "results_read", st->results_read);
    tb_mp_kv_bool(pk, "realtime", st->tbase.realtime);
    tb_mp_kv_str(pk, "state", s_state_names[st->state]);
    tb_mp_kv_u64(pk, "started_ns", st->started_ns);
    tb_mp_kv_u64(pk, "ended_ns", st->ended_ns);
    tb_mp_kv_u64(pk, "run_resets", st->run_resets);
    tb_mp_kv_u64(pk, "resumes", st->resumes);
    tb_mp_kv_u64(pk, "unmeasured_ns", st->unmeasured_ns);
    tb_mp_kv_u64(pk, "gap_from_ns", st->gap_from_ns);
    tb_mp_kv_u64(pk, "gap_until_ns", st->gap_until_ns);
    tb_mp_kv_u64(pk, "clock_ns", st->tbase.based ? st->tbase.now_ts : 0);
    tb_mp_pack_cstr(pk, "probes");
    msgpack_pack_array(pk, st->nprobes);
    for (size_t i = 0; i < st->nprobes; i++) {
        tb_track_pack(&st->probes[i], pk);
    }
    /* What each sink holds open (the database's current seconds and
     * interval), by sink name. */
    size_t nsinks = 0;
    for (size_t i = 0; i < t->nsinks; i++) {
        nsinks += t->sinks[i]->ops->stream_save != NULL && st->sink_state[i] != NULL;
    }
    tb_mp_pack_cstr(pk, "sinks");
    msgpack_pack_map(pk, nsinks);
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_save != NULL && st->sink_state[i] != NULL) {
            tb_mp_pack_cstr(pk, t->sinks[i]->ops->name);
            t->sinks[i]->ops->stream_save(t->sinks[i], st->sink_state[i], pk);
        }
    }
    tb_mp_pack_cstr(pk, "stats");
    return tb_stats_pack(st->stats, pk);
}

/* Write all of buf to path's temporary twin, sync it, rename it over path
 * and sync the directory. */
static int s_write_atomic(const char *dir, const void *buf, size_t len, char *err, size_t errsize)
{
    char path[4096], tmp[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, TB_STATE_FILE) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, TB_STATE_FILE) >= (int)sizeof tmp) {
        snprintf(err, errsize, "state directory path too long");
        return TB_EINVAL;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsize, "cannot create %s: %s", tmp, strerror(errno));
        return TB_EIO;
    }
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            snprintf(err, errsize, "cannot write %s: %s", tmp, w < 0 ? strerror(errno) : "no room");
            close(fd);
            unlink(tmp);
            return TB_EIO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errsize, "cannot sync %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return TB_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errsize, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return TB_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int tb_state_check_dir(const char *dir, char *err, size_t errsize)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(err, errsize, "--state-dir %s: %s", dir, strerror(errno));
        return errno == ENOENT ? TB_ENOENT : TB_EIO;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errsize, "--state-dir %s: not a directory", dir);
        return TB_EINVAL;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errsize, "--state-dir %s: not writable: %s", dir, strerror(errno));
        return TB_EIO;
    }
    return 0;
}

int tb_state_save(const char *dir, const tb_streams_t *t, char *err, size_t errsize)
{
    size_t n = 0;
    for (size_t i = 0; i < t->max; i++) {
        n += t->slot[i].in_use && t->slot[i].stats != NULL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    tb_mp_kv_str(&pk, "format", FORMAT);
    tb_mp_kv_u64(&pk, "version", VERSION);
    /* The hash seed: distinct-flow estimates carry on only under the same
     * hash function. */
    tb_mp_kv_u64(&pk, "seed", t->seed);
    tb_mp_kv_u64(&pk, "saved_ns", tb_time_now_ns());
    tb_mp_pack_cstr(&pk, "streams");
    msgpack_pack_array(&pk, n);
    int rc = 0;
    for (size_t i = 0; i < t->max; i++) {
        const tb_stream_t *st = &t->slot[i];
        if (st->in_use && st->stats != NULL) {
            int prc = s_pack_stream(t, &pk, st);
            rc = rc != 0 ? rc : prc;
        }
    }
    /* msgpack-c's buffer reports no failure of its own: a NULL data or a
     * short count means it ran out of memory. */
    if (rc != 0 || sb.data == NULL) {
        snprintf(err, errsize, "out of memory writing the snapshot");
        msgpack_sbuffer_destroy(&sb);
        return TB_ENOMEM;
    }
    rc = s_write_atomic(dir, sb.data, sb.size, err, errsize);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* --- reading ------------------------------------------------------------- */

typedef struct {
    char name[TB_STREAM_MAX + 1];
    int state;
    uint64_t started_ns, ended_ns, run_resets, resumes, unmeasured_ns;
    uint64_t gap_from_ns, gap_until_ns, clock_ns;
    int realtime;
    int results_read;
    size_t nprobes;
    tb_track_t probes[TB_STREAM_MAX_PROBES];
    int have_sinks;
    tb_mp_reader_t sinks_at; /* the sinks' part, read once the stream is placed */
} saved_stream_t;

/* A stream's fields up to its statistics (read into `stats`, which is
 * scratch until the stream is placed). */
static void s_read_stream(tb_mp_reader_t *r, saved_stream_t *sv, tb_stats_t *stats)
{
    memset(sv, 0, sizeof *sv);
    sv->state = -1;
    int have_stats = 0;
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "name")) {
            tb_mp_read_str_copy(r, sv->name, sizeof sv->name);
        } else if (tb_mp_next_str_is(r, "state")) {
            char s[16];
            tb_mp_read_str_copy(r, s, sizeof s);
            for (int k = 0; k < 3; k++) {
                if (strcmp(s, s_state_names[k]) == 0) {
                    sv->state = k;
                }
            }
        } else if (tb_mp_next_str_is(r, "started_ns")) {
            sv->started_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "ended_ns")) {
            sv->ended_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "run_resets")) {
            sv->run_resets = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "resumes")) {
            sv->resumes = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "unmeasured_ns")) {
            sv->unmeasured_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "gap_from_ns")) {
            sv->gap_from_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "gap_until_ns")) {
            sv->gap_until_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "results_read")) {
            sv->results_read = tb_mp_read_bool(r);
        } else if (tb_mp_next_str_is(r, "realtime")) {
            sv->realtime = tb_mp_read_bool(r);
        } else if (tb_mp_next_str_is(r, "clock_ns")) {
            sv->clock_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "probes")) {
            uint32_t n = tb_mp_read_array(r);
            if (n > TB_STREAM_MAX_PROBES) {
                r->error = r->error ? r->error : TB_ELIMIT;
                break;
            }
            for (uint32_t k = 0; k < n && !r->error; k++) {
                tb_track_unpack(&sv->probes[k], r);
            }
            sv->nprobes = n;
        } else if (tb_mp_next_str_is(r, "stats")) {
            tb_stats_unpack(stats, r);
            have_stats = 1;
        } else if (tb_mp_next_str_is(r, "sinks")) {
            sv->sinks_at = *r;
            sv->have_sinks = 1;
            tb_mp_skip(r);
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
    if (!r->error && (tb_wire_name_valid(sv->name) != 0 || sv->state < 0 || !have_stats)) {
        r->error = TB_EPROTO;
    }
}

/* Each sink's open state for a stream being resumed. A part that cannot be
 * read leaves that sink starting afresh for the stream. */
static void s_load_sinks(tb_streams_t *t, tb_stream_t *st, const saved_stream_t *sv)
{
    tb_mp_reader_t r = sv->sinks_at;
    uint32_t pairs = tb_mp_read_map(&r);
    for (uint32_t i = 0; i < pairs && !r.error; i++) {
        size_t k = 0;
        while (k < t->nsinks && !tb_mp_next_str_is(&r, t->sinks[k]->ops->name)) {
            k++;
        }
        if (k == t->nsinks) {
            tb_mp_skip(&r); /* a sink this collector does not have */
            tb_mp_skip(&r);
            continue;
        }
        if (t->sinks[k]->ops->stream_load == NULL || st->sink_state[k] == NULL) {
            tb_mp_skip(&r);
            continue;
        }
        t->sinks[k]->ops->stream_load(t->sinks[k], st->sink_state[k], &r);
        if (r.error) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "stream %s: the %s sink's part of the snapshot is damaged (%s): it starts "
                   "afresh",
                   st->name, t->sinks[k]->ops->name, tb_strerror(r.error));
            if (t->sinks[k]->ops->stream_reset != NULL) {
                t->sinks[k]->ops->stream_reset(t->sinks[k], st->sink_state[k]);
            }
        }
    }
}

/* Put a saved stream in its slot. */
static void s_restore(tb_streams_t *t, const saved_stream_t *sv, tb_stats_t **stats,
                      uint64_t *restored, uint64_t saved_ns, uint64_t now_ns)
{
    int carry_on = sv->nprobes > 0;
    for (size_t i = 0; i < sv->nprobes; i++) {
        carry_on = carry_on && sv->probes[i].run == 0;
    }
    if (sv->state == TB_STREAM_RUNNING && !carry_on) {
        /* A file (or nothing heard yet): it starts again, a new run. */
        int rc = tb_streams_start(t, sv->name);
        tb_log(rc == 0 ? TB_LOG_INFO : TB_LOG_ERROR, LOG_COMPONENT, "stream %s %s", sv->name,
               rc == 0 ? "started again (a new run)" : "could not be started again");
        *restored += rc == 0;
        return;
    }
    tb_stream_t *st = tb_streams_slot(t, sv->name);
    if (st == NULL) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s not restored: no free slot (--max-streams)",
               sv->name);
        return;
    }
    /* The saved statistics take the slot's place. */
    tb_stats_t *old = st->stats;
    st->stats = *stats;
    *stats = old;
    st->nprobes = sv->nprobes;
    memcpy(st->probes, sv->probes, sv->nprobes * sizeof sv->probes[0]);
    st->started_ns = sv->started_ns;
    st->ended_ns = sv->ended_ns;
    st->run_resets = sv->run_resets;
    st->resumes = sv->resumes;
    st->unmeasured_ns = sv->unmeasured_ns;
    st->gap_from_ns = sv->gap_from_ns;
    st->gap_until_ns = sv->gap_until_ns;
    st->state = (tb_stream_state_t)sv->state;
    st->results_read = sv->results_read; /* start may reuse the slot of a read one */
    if (sv->state != TB_STREAM_RUNNING) {
        uint64_t mono = tb_time_mono_ns();
        for (size_t i = 0; i < st->nprobes; i++) {
            st->probes[i].last_heard = mono; /* not silent: ended */
        }
        (*restored)++;
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s restored (%s, %llu packets)", sv->name,
               s_state_names[sv->state], (unsigned long long)st->stats->packets);
        return;
    }
    /* A live or directory stream carries on. Its capture clock stands where
     * it was: the seconds still open then take what arrives for them; a
     * live stream's clock then skips the gap, and no time in the gap is
     * marked lived (not measured is not idle). */
    uint64_t down = now_ns > saved_ns ? now_ns - saved_ns : 0;
    tb_timebase_init(&st->tbase);
    if (sv->clock_ns != 0) {
        st->tbase.based = 1;
        st->tbase.clocked = 1;
        st->tbase.now_ts = sv->clock_ns;
    }
    st->tbase.realtime = sv->realtime;
    st->resumes++;
    st->unmeasured_ns += down;
    st->heard = 1; /* it has data: running, not waiting */
    /* Its probes were last heard before the snapshot at the latest; the
     * clock stood still from then (a pause: a live stream's clock skips it,
     * writing nothing for the time nobody measured). */
    uint64_t mono = tb_time_mono_ns();
    uint64_t last = mono > down + 1 ? mono - down : 1;
    for (size_t i = 0; i < st->nprobes; i++) {
        st->probes[i].last_heard = last;
    }
    st->tbase.last_mono = last;
    st->tbase.paused = 1;
    st->gap_from_ns = saved_ns;
    st->gap_until_ns = now_ns;
    if (tb_streams_resume(t, st) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s could not subscribe again", sv->name);
        return;
    }
    if (sv->have_sinks) {
        s_load_sinks(t, st, sv);
    }
    (*restored)++;
    tb_log(TB_LOG_INFO, LOG_COMPONENT,
           "stream %s resumed with %llu packets counted; %.1f s not measured while the "
           "collector was down",
           sv->name, (unsigned long long)st->stats->packets, (double)down / 1e9);
}

/* The whole file at path into a new buffer (*buf, the caller frees it).
 * 0, or TB_ENOENT when there is no file (err untouched), or another
 * negative tb_err_t with a one-line reason in err. */
static int s_read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errsize)
{
    *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return TB_ENOENT;
        }
        snprintf(err, errsize, "cannot open %s: %s", path, strerror(errno));
        return TB_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > TB_STATE_MAX_BYTES) {
        snprintf(err, errsize, "%s: not a regular file of at most %llu MiB", path,
                 (unsigned long long)(TB_STATE_MAX_BYTES >> 20));
        close(fd);
        return TB_ELIMIT;
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (data == NULL) {
        snprintf(err, errsize, "%s: out of memory", path);
        close(fd);
        return TB_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            snprintf(err, errsize, "cannot read %s: %s", path,
                     n < 0 ? strerror(errno) : "cut short");
            free(data);
            close(fd);
            return TB_EIO;
        }
        got += (size_t)n;
    }
    close(fd);
    *buf = data;
    *len = size;
    return 0;
}

int tb_state_seed(const char *dir, uint64_t *seed)
{
    char path[4096], err[256];
    if (snprintf(path, sizeof path, "%s/%s", dir, TB_STATE_FILE) >= (int)sizeof path) {
        return TB_EINVAL;
    }
    size_t len = 0;
    uint8_t *buf;
    int rc = s_read_file(path, &buf, &len, err, sizeof err);
    if (rc != 0) {
        return rc;
    }
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, buf, len);
    int found = 0;
    uint32_t pairs = tb_mp_read_map(&r);
    for (uint32_t i = 0; i < pairs && !r.error && !found; i++) {
        if (tb_mp_next_str_is(&r, "seed")) {
            *seed = tb_mp_read_uint(&r);
            found = !r.error;
        } else {
            tb_mp_skip(&r);
            tb_mp_skip(&r);
        }
    }
    free(buf);
    return found ? 0 : TB_ENOENT;
}

int tb_state_load(const char *dir, tb_streams_t *t, uint64_t *restored, char *err, size_t errsize)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, TB_STATE_FILE) >= (int)sizeof path) {
        snprintf(err, errsize, "state directory path too long");
        return TB_EINVAL;
    }
    size_t len = 0;
    uint8_t *buf;
    int rc = s_read_file(path, &buf, &len, err, errsize);
    if (rc == TB_ENOENT) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "no snapshot in %s: starting with no streams", dir);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    tb_stats_t *scratch = tb_stats_new(t->flow_capacity, t->host_capacity, t->seed);
    saved_stream_t *sv = malloc(sizeof *sv);
    if (scratch == NULL || sv == NULL) {
        snprintf(err, errsize, "out of memory reading %s", path);
        tb_stats_destroy(&scratch);
        free(sv);
        free(buf);
        return TB_ENOMEM;
    }
    uint64_t now_ns = tb_time_now_ns();
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, buf, len);
    int ours = 0;
    uint64_t version = 0, saved_ns = 0;
    size_t nstreams = 0;
    uint32_t pairs = tb_mp_read_map(&r);
    for (uint32_t i = 0; i < pairs && !r.error; i++) {
        if (tb_mp_next_str_is(&r, "format")) {
            ours = tb_mp_next_str_is(&r, FORMAT);
            if (!ours) {
                break;
            }
        } else if (tb_mp_next_str_is(&r, "version")) {
            version = tb_mp_read_uint(&r);
            if (version != VERSION) {
                break;
            }
        } else if (tb_mp_next_str_is(&r, "saved_ns")) {
            saved_ns = tb_mp_read_uint(&r);
        } else if (ours && version == VERSION && tb_mp_next_str_is(&r, "streams")) {
            uint32_t n = tb_mp_read_array(&r);
            for (uint32_t k = 0; k < n && !r.error; k++) {
                s_read_stream(&r, sv, scratch);
                if (r.error) {
                    break;
                }
                if (tb_streams_find(t, sv->name) != NULL) {
                    continue; /* named twice: the first counts */
                }
                s_restore(t, sv, &scratch, restored, saved_ns, now_ns);
                nstreams++;
            }
        } else {
            tb_mp_skip(&r);
            tb_mp_skip(&r);
        }
    }
    if (!ours) {
        snprintf(err, errsize, "%s is not a tapbus collector snapshot", path);
        rc = TB_EPROTO;
    } else if (version != VERSION) {
        snprintf(err, errsize, "%s: snapshot version %llu, this collector reads version %d", path,
                 (unsigned long long)version, VERSION);
        rc = TB_EVERSION;
    } else if (r.error) {
        snprintf(err, errsize, "%s is damaged (%s) after %zu stream(s)", path, tb_strerror(r.error),
                 nstreams);
        rc = r.error;
    } else {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "snapshot of %.1f s ago: %llu stream(s) back",
               saved_ns && now_ns > saved_ns ? (double)(now_ns - saved_ns) / 1e9 : 0.0,
               (unsigned long long)*restored);
    }
    tb_stats_destroy(&scratch);
    free(sv);
    free(buf);
    return rc;
}
