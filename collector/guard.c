/* guard — see guard.h. */
#include "guard.h"

#include "tb_curve.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"
#include "tb_zmon.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define LOG_COMPONENT "guard"
#define ZAP_ENDPOINT  "inproc://zeromq.zap.01"
#define RESCAN_NS     TB_NS_PER_SEC
#define ZAP_FRAMES    8 /* frames of a request kept; CURVE sends 7 */

typedef struct {
    char key[TB_CURVE_KEY_LEN + 1];
    char name[TB_CURVE_NAME_MAX + 1]; /* the file it came from */
} kr_entry_t;

/* Kinds of refusal, each logged within its own limit: a stranger knocking
 * again and again does not hide a probe with the wrong key. */
enum { R_CONTROL_KEY, R_BUS_KEY, R_NOT_CURVE, R_SERVER_KEY, R_HANDSHAKE, R_KINDS };

/* One allow-list: a directory of public certificates. */
typedef struct {
    const char *dir;    /* borrowed; NULL: an empty list */
    const char *option; /* its option, for messages */
    kr_entry_t *keys;   /* TB_GUARD_MAX_KEYS */
    size_t n;
    uint64_t scanned_mono;
    uint64_t scanned_ns;   /* wall-clock time of the last scan */
    struct timespec mtime; /* of the directory at the last scan */
    char error[200];       /* why the last scan failed, "" after a success */
} keyring_t;

struct tb_guard {
    void *zctx;    /* borrowed */
    void *zap;     /* REP on ZAP_ENDPOINT */
    void *pipe;    /* PAIR: the collector's end */
    void *child;   /* PAIR: the thread's end */
    tb_zmon_t mon; /* the control socket's events (not open: none watched) */
    int dead_fd;
    pthread_t thread;
    int started;
    keyring_t act, read, probe;
    tb_ratelimit_t rl[R_KINDS]; /* log lines, per kind of refusal */
    pthread_mutex_t lock;
    tb_guard_counters_t counters; /* under lock */
};

/* Read a directory of certificates into kr. warn: log what is left out
 * (files that are not certificates, secret certificates). Returns 0, or
 * TB_EIO with the reason in kr->error (the list is then empty). */
static int s_scan(keyring_t *kr, int warn)
{
    kr->n = 0;
    kr->scanned_mono = tb_time_mono_ns();
    kr->scanned_ns = tb_time_now_ns();
    if (kr->dir == NULL) {
        return 0;
    }
    struct stat st;
    DIR *d = opendir(kr->dir);
    if (d == NULL || fstat(dirfd(d), &st) != 0) {
        snprintf(kr->error, sizeof kr->error, "cannot read %s directory %s: %s", kr->option,
                 kr->dir, strerror(errno));
        if (d != NULL) {
            closedir(d);
        }
        return TB_EIO;
    }
    kr->mtime = st.st_mtim;
    size_t left_out = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        const size_t sl = sizeof TB_CURVE_SECRET_SUFFIX - 1;
        if (name[0] == '.') {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", kr->dir, name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (len > sl && strcmp(name + len - sl, TB_CURVE_SECRET_SUFFIX) == 0) {
            if (warn) {
                tb_log(TB_LOG_WARN, LOG_COMPONENT,
                       "%s: %s is a secret certificate, left out: an allow-list needs the "
                       "public one only (never copy NAME%s off its host)",
                       kr->option, path, TB_CURVE_SECRET_SUFFIX);
            }
            continue;
        }
        tb_curve_cert_t cert;
        char why[300];
        if (tb_curve_cert_load(path, 0, &cert, why, sizeof why) != 0) {
            if (warn) {
                tb_log(TB_LOG_WARN, LOG_COMPONENT, "%s: left out: %s", kr->option, why);
            }
            continue;
        }
        if (kr->n == TB_GUARD_MAX_KEYS) {
            left_out++;
            continue;
        }
        kr_entry_t *e = &kr->keys[kr->n++];
        memcpy(e->key, cert.public_key, sizeof e->key);
        /* The file name goes into logs and status: printable only. */
        snprintf(e->name, sizeof e->name, "%.*s", TB_CURVE_NAME_MAX, name);
        for (char *ch = e->name; *ch != '\0'; ch++) {
            *ch = (unsigned char)*ch < 0x20 || (unsigned char)*ch >= 0x7f ? '?' : *ch;
        }
    }
    closedir(d);
    if (left_out > 0 && warn) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "%s: %zu certificate(s) beyond the first %d left out",
               kr->option, left_out, TB_GUARD_MAX_KEYS);
    }
    kr->error[0] = '\0';
    return 0;
}

/* Read the list again if its directory changed, or a second after the last
 * reading (a file edited in place does not change the directory). File
 * times move in clock ticks of a few milliseconds: a change in the tick of
 * the last reading would not show, so while the directory's time is that
 * recent every handshake reads it again. */
static void s_refresh(tb_guard_t *g, keyring_t *kr)
{
    if (kr->dir == NULL) {
        return;
    }
    struct stat st;
    memset(&st, 0, sizeof st);
    int changed = stat(kr->dir, &st) != 0 || st.st_mtim.tv_sec != kr->mtime.tv_sec ||
                  st.st_mtim.tv_nsec != kr->mtime.tv_nsec;
    uint64_t mtime_ns = (uint64_t)st.st_mtim.tv_sec * TB_NS_PER_SEC + (uint64_t)st.st_mtim.tv_nsec;
    int recent = mtime_ns + RESCAN_NS >= kr->scanned_ns;
    if (!changed && !recent && tb_time_mono_ns() - kr->scanned_mono < RESCAN_NS) {
        return;
    }
    size_t before = kr->n;
    char olderr[sizeof kr->error];
    memcpy(olderr, kr->error, sizeof olderr);
    if (s_scan(kr, 0) != 0) {
        if (strcmp(olderr, kr->error) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "%s; nobody is let in with its keys", kr->error);
        }
    } else if (kr->n != before || olderr[0] != '\0') {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "%s %s: %zu key(s) allowed (were %zu)", kr->option,
               kr->dir, kr->n, before);
    }
    pthread_mutex_lock(&g->lock);
    g->counters.act_keys = g->act.n;
    g->counters.read_keys = g->read.n;
    g->counters.probe_keys = g->probe.n;
    pthread_mutex_unlock(&g->lock);
}

static const kr_entry_t *s_lookup(const keyring_t *kr, const char *key)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (memcmp(kr->keys[i].key, key, TB_CURVE_KEY_LEN) == 0) {
            return &kr->keys[i];
        }
    }
    return NULL;
}

/* ZMTP metadata: name length (1 byte), name, value length (4 bytes, big
 * endian), value. */
static size_t s_property(uint8_t *buf, size_t at, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    buf[at++] = (uint8_t)nl;
    memcpy(buf + at, name, nl);
    at += nl;
    buf[at++] = (uint8_t)(vl >> 24);
    buf[at++] = (uint8_t)(vl >> 16);
    buf[at++] = (uint8_t)(vl >> 8);
    buf[at++] = (uint8_t)vl;
    memcpy(buf + at, value, vl);
    return at + vl;
}

static void s_refusal(tb_guard_t *g, int kind, uint64_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_refusal(tb_guard_t *g, int kind, uint64_t *counter, const char *fmt, ...)
{
    char msg[TB_GUARD_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g->lock);
    (*counter)++;
    memcpy(g->counters.last_refused, msg, sizeof msg);
    pthread_mutex_unlock(&g->lock);
    /* A refused peer that connects again and again (or a collector
     * reconnecting to a probe it refuses) makes one line now and then. */
    uint64_t suppressed = 0;
    if (tb_ratelimit_allow(&g->rl[kind], tb_time_mono_ns(), &suppressed)) {
        if (suppressed > 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "%s (%llu similar lines suppressed)", msg,
                   (unsigned long long)suppressed);
        } else {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "%s", msg);
        }
    }
}

/* Printable text of a frame, for messages. */
static void s_frame_text(zmq_msg_t *m, char *buf, size_t size)
{
    size_t n = zmq_msg_size(m) < size - 1 ? zmq_msg_size(m) : size - 1;
    const char *d = zmq_msg_data(m);
    for (size_t i = 0; i < n; i++) {
        buf[i] = d[i] >= 0x20 && d[i] < 0x7f ? d[i] : '?';
    }
    buf[n] = '\0';
}

static int s_frame_is(zmq_msg_t *m, const char *text)
{
    return zmq_msg_size(m) == strlen(text) && memcmp(zmq_msg_data(m), text, strlen(text)) == 0;
}

/* One ZAP request in, one reply out. Returns 0, or -1 when the socket
 * failed (the handler is then dead). */
static int s_zap_one(tb_guard_t *g)
{
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0, more = 1, rc = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, g->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            if (n == 0 && errno == EAGAIN) {
                return 0;
            }
            rc = -1;
            goto done;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES) {
            zmq_msg_init(&f[n]);
            zmq_msg_move(&f[n++], &m);
        }
        zmq_msg_close(&m);
    }
    const char *status = "400", *text = "not allowed", *role = NULL;
    char key[TB_CURVE_KEY_LEN + 1] = "", addr[64] = "?", name[TB_CURVE_NAME_MAX + 1] = "";
    if (n >= 6) {
        s_frame_text(&f[3], addr, sizeof addr);
    }
    int curve = n >= 7 && s_frame_is(&f[0], "1.0") && s_frame_is(&f[5], "CURVE") &&
                zmq_msg_size(&f[6]) == 32;
    int control = n >= 6 && s_frame_is(&f[2], TB_GUARD_DOMAIN_CONTROL);
    int bus = n >= 6 && s_frame_is(&f[2], TB_GUARD_DOMAIN_BUS);
    if (curve) {
        zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
    }
    const kr_entry_t *e = NULL;
    if (curve && control) {
        s_refresh(g, &g->act);
        s_refresh(g, &g->read);
        if ((e = s_lookup(&g->act, key)) != NULL) {
            role = "act";
        } else if ((e = s_lookup(&g->read, key)) != NULL) {
            role = "read";
        } else {
            s_refusal(g, R_CONTROL_KEY, &g->counters.refused_control,
                      "control: refused a client at %s: its key %s is in neither --curve-allow "
                      "nor --curve-allow-read",
                      addr, key);
        }
    } else if (curve && bus) {
        s_refresh(g, &g->probe);
        if ((e = s_lookup(&g->probe, key)) != NULL) {
            role = "probe";
        } else {
            s_refusal(g, R_BUS_KEY, &g->counters.refused_bus,
                      "bus: refused a probe at %s: its key %s is not in --curve-allow-probes", addr,
                      key);
        }
    } else {
        s_refusal(g, R_CONTROL_KEY, &g->counters.refused_control,
                  "refused a client at %s: not a CURVE client of a tapbus socket", addr);
    }
    if (role != NULL) {
        status = "200";
        text = "OK";
        snprintf(name, sizeof name, "%s", e->name);
        pthread_mutex_lock(&g->lock);
        g->counters.allowed++;
        pthread_mutex_unlock(&g->lock);
        tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "let in %s (%s, key %s) from %s as %s", name,
               control ? "control" : "bus", key, addr, role);
    }
    /* Two properties: the role (at most "probe") and the file name. */
    uint8_t meta[(1 + sizeof TB_GUARD_PROP_ROLE + 4 + sizeof "probe") +
                 (1 + sizeof TB_GUARD_PROP_NAME + 4 + TB_CURVE_NAME_MAX)];
    size_t mlen = 0;
    if (role != NULL) {
        mlen = s_property(meta, mlen, TB_GUARD_PROP_ROLE, role);
        mlen = s_property(meta, mlen, TB_GUARD_PROP_NAME, name);
    }
    /* version, request id, status code, status text, user id, metadata */
    if (zmq_send(g->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(g->zap, n >= 2 ? zmq_msg_data(&f[1]) : "", n >= 2 ? zmq_msg_size(&f[1]) : 0,
                 ZMQ_SNDMORE) < 0 ||
        zmq_send(g->zap, status, 3, ZMQ_SNDMORE) < 0 ||
        zmq_send(g->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
        zmq_send(g->zap, role != NULL ? key : "", role != NULL ? strlen(key) : 0, ZMQ_SNDMORE) <
            0 ||
        zmq_send(g->zap, meta, mlen, 0) < 0) {
        rc = -1;
    }
done:
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&f[i]);
    }
    return rc;
}

/* One event of the control socket's monitor: a failed handshake is
 * counted and explained (ZAP refusals are counted where they happen). */
static void s_monitor_one(tb_guard_t *g)
{
    tb_zmon_event_t ev;
    if (tb_zmon_next(&g->mon, &ev) != 1) {
        return;
    }
    uint16_t event = ev.event;
    uint32_t value = ev.value;
    const char *why = NULL;
    int kind = R_HANDSHAKE;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        why = "it does not use CURVE (give it --curve-key and --curve-server-key)";
        kind = R_NOT_CURVE;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
               value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
        why = "its --curve-server-key is not this collector's public key";
        kind = R_SERVER_KEY;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        why = "it does not speak ZMTP correctly";
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        why = "the handshake broke off or timed out";
    }
    if (why != NULL) {
        s_refusal(g, kind, &g->counters.control_handshake_failures,
                  "control %s: a client failed the handshake: %s", ev.addr, why);
    }
}

static void *s_thread(void *arg)
{
    tb_guard_t *g = arg;
    int halted = 0;
    for (;;) {
        zmq_pollitem_t items[3] = {
            {.socket = g->child, .events = ZMQ_POLLIN},
            {.socket = g->zap, .events = ZMQ_POLLIN},
            {.socket = tb_zmon_socket(&g->mon), .events = ZMQ_POLLIN},
        };
        if (zmq_poll(items, items[2].socket != NULL ? 3 : 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "poll failed: %s", zmq_strerror(errno));
            halted = 1;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char cmd[16] = "";
            int len = zmq_recv(g->child, cmd, sizeof cmd - 1, 0);
            if (len == 8 && memcmp(cmd, "$UNWATCH", 8) == 0) {
                tb_zmon_close(&g->mon); /* this thread reads it */
                zmq_send(g->child, "", 0, 0);
                continue;
            }
            halted = len < 0 || strncmp(cmd, "$TERM", 5) != 0;
            break;
        }
        if ((items[1].revents & ZMQ_POLLIN) && s_zap_one(g) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "the ZAP socket failed: %s", zmq_strerror(errno));
            halted = 1;
            break;
        }
        if (items[2].socket != NULL && (items[2].revents & ZMQ_POLLIN)) {
            for (int i = 0; i < 64 && zmq_poll(&items[2], 1, 0) == 1; i++) {
                s_monitor_one(g);
            }
        }
    }
    if (halted) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "the CURVE authentication handler stopped");
    }
    uint64_t one = 1;
    if (write(g->dead_fd, &one, sizeof one) != sizeof one) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot signal the handler's end");
    }
    return NULL;
}

tb_guard_t *tb_guard_new(void *zctx, const tb_guard_config_t *cfg, char *err, size_t errsize)
{
    tb_guard_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    g->dead_fd = -1;
    g->zctx = zctx;
    pthread_mutex_init(&g->lock, NULL);
    for (int i = 0; i < R_KINDS; i++) {
        tb_ratelimit_init(&g->rl[i], 10 * TB_NS_PER_SEC, 3);
    }
    keyring_t *rings[3] = {&g->act, &g->read, &g->probe};
    const char *dirs[3] = {cfg->act_dir, cfg->read_dir, cfg->probe_dir};
    const char *options[3] = {"--curve-allow", "--curve-allow-read", "--curve-allow-probes"};
    for (int i = 0; i < 3; i++) {
        rings[i]->dir = dirs[i];
        rings[i]->option = options[i];
        rings[i]->keys = calloc(TB_GUARD_MAX_KEYS, sizeof(kr_entry_t));
        if (rings[i]->keys == NULL) {
            snprintf(err, errsize, "out of memory");
            goto fail;
        }
        if (s_scan(rings[i], 1) != 0) {
            snprintf(err, errsize, "%s", rings[i]->error);
            goto fail;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (dirs[i] != NULL) {
            tb_log(rings[i]->n > 0 ? TB_LOG_INFO : TB_LOG_WARN, LOG_COMPONENT,
                   "%s %s: %zu key(s) allowed%s", options[i], dirs[i], rings[i]->n,
                   rings[i]->n > 0 ? ""
                                   : ": nobody gets in with it until certificates are "
                                     "added");
        }
    }
    g->counters.act_keys = g->act.n;
    g->counters.read_keys = g->read.n;
    g->counters.probe_keys = g->probe.n;
    g->dead_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    char pipe_ep[64];
    snprintf(pipe_ep, sizeof pipe_ep, "inproc://tapbus-guard-pipe-%p", (void *)g);
    int linger = 0;
    g->zap = zmq_socket(zctx, ZMQ_REP);
    g->pipe = zmq_socket(zctx, ZMQ_PAIR);
    g->child = zmq_socket(zctx, ZMQ_PAIR);
    if (g->dead_fd < 0 || g->zap == NULL || g->pipe == NULL || g->child == NULL ||
        zmq_setsockopt(g->zap, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(g->pipe, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(g->child, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(g->child, pipe_ep) != 0 || zmq_connect(g->pipe, pipe_ep) != 0) {
        snprintf(err, errsize, "cannot set up the CURVE authentication handler: %s",
                 strerror(errno));
        goto fail;
    }
    if (zmq_bind(g->zap, ZAP_ENDPOINT) != 0) {
        snprintf(err, errsize, "cannot bind the CURVE authentication handler (%s): %s",
                 ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    return g;
fail:
    tb_guard_destroy(&g);
    return NULL;
}

int tb_guard_watch(tb_guard_t *g, void *sock, char *err, size_t errsize)
{
    if (g->started || tb_zmon_socket(&g->mon) != NULL) {
        snprintf(err, errsize, "the guard watches one socket, before it starts");
        return TB_EIO;
    }
    return tb_zmon_open(&g->mon, g->zctx, sock, "the control socket",
                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL,
                        TB_ZMON_QUEUE, err, errsize);
}

int tb_guard_start(tb_guard_t *g, char *err, size_t errsize)
{
    if (g->started) {
        return 0;
    }
    /* The sockets pass to the thread here (pthread_create is a full
     * barrier) and come back at pthread_join. */
    int rc = pthread_create(&g->thread, NULL, s_thread, g);
    if (rc != 0) {
        snprintf(err, errsize, "cannot start the CURVE authentication handler: %s", strerror(rc));
        return TB_EIO;
    }
    g->started = 1;
    return 0;
}

int tb_guard_dead_fd(const tb_guard_t *g)
{
    return g->dead_fd;
}

/* Tell the thread to end ("$TERM": for good; anything else: as a failure)
 * and wait for it. */
static void s_end(tb_guard_t *g, const char *cmd)
{
    if (!g->started) {
        return;
    }
    if (zmq_send(g->pipe, cmd, strlen(cmd), 0) < 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot stop the handler: %s", zmq_strerror(errno));
    }
    pthread_join(g->thread, NULL);
    g->started = 0;
}

void tb_guard_unwatch(tb_guard_t *g)
{
    if (g == NULL || tb_zmon_socket(&g->mon) == NULL) {
        return;
    }
    if (g->started) {
        /* The thread reads the monitor, so the thread closes it. Until it
         * says so, or has ended (dead_fd), the control socket must stay
         * open: no time limit here. */
        if (zmq_send(g->pipe, "$UNWATCH", 8, 0) != 8) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot ask the handler to stop watching: %s",
                   zmq_strerror(errno));
            return;
        }
        for (;;) {
            zmq_pollitem_t items[2] = {{.socket = g->pipe, .events = ZMQ_POLLIN},
                                       {.fd = g->dead_fd, .events = ZMQ_POLLIN}};
            if (zmq_poll(items, 2, -1) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                tb_log(TB_LOG_ERROR, LOG_COMPONENT, "poll failed: %s", zmq_strerror(errno));
                return;
            }
            if (items[0].revents & ZMQ_POLLIN) {
                char ack[1];
                zmq_recv(g->pipe, ack, sizeof ack, 0);
                return; /* closed by the thread */
            }
            if (items[1].revents & ZMQ_POLLIN) {
                pthread_join(g->thread, NULL); /* it ended before it heard */
                g->started = 0;
                break;
            }
        }
    }
    tb_zmon_close(&g->mon);
}

void tb_guard_halt(tb_guard_t *g)
{
    s_end(g, "HALT");
}

void tb_guard_counters(tb_guard_t *g, tb_guard_counters_t *out)
{
    pthread_mutex_lock(&g->lock);
    *out = g->counters;
    pthread_mutex_unlock(&g->lock);
}

void tb_guard_destroy(tb_guard_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_guard_t *g = *p;
    *p = NULL;
    s_end(g, "$TERM");
    tb_zmon_close(&g->mon); /* the thread that read it has ended */
    void *socks[3] = {g->zap, g->pipe, g->child};
    for (int i = 0; i < 3; i++) {
        if (socks[i] != NULL) {
            zmq_close(socks[i]);
        }
    }
    if (g->dead_fd >= 0) {
        close(g->dead_fd);
    }
    free(g->act.keys);
    free(g->read.keys);
    free(g->probe.keys);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
