/* Unit tests for the InfluxDB writer thread (collector/db/writer.h, through
 * collector/db/influx.h) against a small scripted HTTP/1.1 server living in this
 * file: a thread accepting on 127.0.0.1 (ephemeral port), keep-alive,
 * Content-Length bodies (inflated when gzip-encoded), answering each request
 * with the next status of a script (then a default), optionally 400 for a
 * body holding the line "bad", and recording path, headers, body and arrival
 * time of every request.
 *
 * Checked: delivery in order with the 1.x URL (a); retries of 503 with
 * backoff and Retry-After (b); 413 splitting (c), also when a half then fails
 * and the remainder is retried; isolation of a bad line by 400 (d); 401 keeps
 * the data and retries slowly until the database accepts (e); the on-disk
 * spool while the database is down, replayed first after a restart (f);
 * shutdown without a spool with the database down (g); the 2.x URL, token
 * and gzip bodies (h); a full in-memory queue drops its oldest batches,
 * counted; a full spool during a replay.
 *
 * Regression guards: the rejected line is logged without reading past its
 * batch (ASan); a full spool never deletes the batch being delivered; a stop
 * while a refused batch is split line by line keeps its deadline.
 *
 * Waiting is always polling with a deadline, never a bare sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test.h"

#include "influx.h"
#include "tb_err.h"
#include "tb_log.h"
#include "writer.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define WAIT_S    10.0 /* deadline of every wait */
#define MAX_REQS  4096
#define MAX_CONNS 8
#define MAX_STEPS 32

/* ---- time ---- */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the scripted HTTP server ---- */

typedef struct {
    char *target;  /* path and query */
    char *headers; /* the header lines, as received */
    char *body;    /* inflated when it came gzip-encoded; NUL-terminated */
    size_t len;
    int gzipped; /* Content-Encoding: gzip and the gzip magic */
    int status;  /* the answer */
    double t;    /* arrival, s_now() */
} req_t;

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} conn_t;

typedef struct {
    int lfd;
    uint16_t port;
    pthread_t thread;
    int running;
    atomic_int stop;
    pthread_mutex_t mu;
    /* The answers: script[next..n) first, then dflt. */
    int script[MAX_STEPS];
    size_t nscript, next;
    int dflt;
    int retry_after; /* seconds, sent with 429 and 503 answers when > 0 */
    int reject_bad;  /* 400 for a body holding the line "bad" */
    int delay_ms;    /* before each answer */
    req_t reqs[MAX_REQS];
    size_t nreqs;
} server_t;

static int s_has_line(const char *body, size_t len, const char *line)
{
    size_t ll = strlen(line);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (n == ll && memcmp(p, line, ll) == 0) {
            return 1;
        }
        p += n + 1;
    }
    return 0;
}

static char *s_inflate(const char *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) {
        return NULL;
    }
    size_t cap = len * 4 + 64, used = 0;
    char *out = malloc(cap + 1);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    int rc = Z_OK;
    while (out != NULL && rc != Z_STREAM_END) {
        if (used == cap) {
            cap *= 2;
            char *n = realloc(out, cap + 1);
            if (n == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = n;
        }
        z.next_out = (Bytef *)out + used;
        z.avail_out = (uInt)(cap - used);
        rc = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            free(out);
            out = NULL;
        }
    }
    inflateEnd(&z);
    if (out != NULL) {
        out[used] = '\0';
        *out_len = used;
    }
    return out;
}

static void s_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        p += w;
        len -= (size_t)w;
    }
}

static const char *s_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Handle the complete requests at the front of c's buffer. Returns -1 when
 * the connection must be closed. */
static int s_serve(server_t *s, conn_t *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL) {
            return 0;
        }
        size_t hlen = (size_t)(end - c->buf) + 4;
        char *head = strndup(c->buf, hlen);
        if (head == NULL) {
            return -1;
        }
        size_t clen = 0;
        const char *cl = strcasestr(head, "\r\nContent-Length:");
        if (cl != NULL) {
            clen = (size_t)strtoull(cl + 17, NULL, 10);
        }
        if (strcasestr(head, "\r\nTransfer-Encoding:") != NULL) {
            free(head);
            return -1; /* not supported here; the writer never sends it */
        }
        if (c->len < hlen + clen) {
            free(head);
            return 0;
        }
        /* "POST /target HTTP/1.1" */
        char *sp1 = strchr(head, ' ');
        char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
        char *eol = strstr(head, "\r\n");
        req_t r;
        memset(&r, 0, sizeof r);
        r.t = s_now();
        r.target =
            sp1 != NULL && sp2 != NULL ? strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : strdup("?");
        r.headers = strdup(eol + 2);
        const char *raw = c->buf + hlen;
        int gz = strcasestr(head, "\r\nContent-Encoding: gzip") != NULL;
        if (gz && clen >= 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b) {
            r.body = s_inflate(raw, clen, &r.len);
            r.gzipped = r.body != NULL;
        }
        if (r.body == NULL) {
            r.body = malloc(clen + 1);
            if (r.body != NULL) {
                memcpy(r.body, raw, clen);
                r.body[clen] = '\0';
                r.len = clen;
            }
        }
        free(head);

        pthread_mutex_lock(&s->mu);
        int status;
        if (s->reject_bad && r.body != NULL && s_has_line(r.body, r.len, "bad")) {
            status = 400;
        } else if (s->next < s->nscript) {
            status = s->script[s->next++];
        } else {
            status = s->dflt;
        }
        int retry_after = (status == 503 || status == 429) ? s->retry_after : 0;
        r.status = status;
        if (s->nreqs < MAX_REQS) {
            s->reqs[s->nreqs++] = r;
        } else {
            free(r.target);
            free(r.headers);
            free(r.body);
        }
        int delay_ms = s->delay_ms;
        pthread_mutex_unlock(&s->mu);
        if (delay_ms > 0) {
            s_sleep_ms((unsigned)delay_ms);
        }

        char body[128] = "";
        if (status == 400) {
            snprintf(body, sizeof body, "{\"error\":\"partial write: unable to parse 'bad'\"}");
        } else if (status >= 300) {
            snprintf(body, sizeof body, "{\"error\":\"scripted %d\"}", status);
        }
        char extra[64] = "";
        if (retry_after > 0) {
            snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry_after);
        }
        char resp[512];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n%s\r\n%s",
                         status, s_reason(status), strlen(body), extra, body);
        s_send_all(c->fd, resp, (size_t)n);
        memmove(c->buf, c->buf + hlen + clen, c->len - hlen - clen);
        c->len -= hlen + clen;
    }
}

static void *s_server_main(void *arg)
{
    server_t *s = arg;
    conn_t conns[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++) {
        conns[i] = (conn_t){.fd = -1};
    }
    while (!atomic_load(&s->stop)) {
        struct pollfd p[MAX_CONNS + 1];
        int idx[MAX_CONNS + 1];
        nfds_t n = 0;
        p[n] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        idx[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd >= 0) {
                p[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                idx[n++] = i;
            }
        }
        if (poll(p, n, 20) <= 0) {
            continue;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (p[k].revents == 0) {
                continue;
            }
            if (idx[k] < 0) {
                int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                    continue;
                }
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0; i++) {
                    slot = conns[i].fd < 0 ? i : -1;
                }
                if (slot < 0) {
                    close(fd);
                } else {
                    conns[slot].fd = fd;
                    conns[slot].len = 0;
                }
                continue;
            }
            conn_t *c = &conns[idx[k]];
            if (c->cap - c->len < 65536) {
                size_t cap = c->cap * 2 + 65536;
                char *nb = realloc(c->buf, cap);
                if (nb == NULL) {
                    continue;
                }
                c->buf = nb;
                c->cap = cap;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            int bad = r <= 0;
            if (!bad) {
                c->len += (size_t)r;
                bad = s_serve(s, c) != 0;
            }
            if (bad) {
                close(c->fd);
                c->fd = -1;
                c->len = 0;
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
        }
        free(conns[i].buf);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1, ephemeral port. */
static int s_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port where nothing listens (bound, then closed). */
static uint16_t s_closed_port(void)
{
    uint16_t port;
    int fd = s_listen(&port);
    close(fd);
    return port;
}

static void s_server_start(server_t *s, int dflt)
{
    s->lfd = s_listen(&s->port);
    s->dflt = dflt;
    atomic_store(&s->stop, 0);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, s_server_main, s), 0);
    s->running = 1;
}

static void s_server_stop(server_t *s)
{
    if (!s->running) {
        return;
    }
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (size_t i = 0; i < s->nreqs; i++) {
        free(s->reqs[i].target);
        free(s->reqs[i].headers);
        free(s->reqs[i].body);
    }
    s->nreqs = 0;
    pthread_mutex_destroy(&s->mu);
    s->running = 0;
}

/* Replace the script (the statuses of the next requests) and the default. */
static void s_script(server_t *s, const int *statuses, size_t n, int dflt)
{
    assert_true(n <= MAX_STEPS);
    pthread_mutex_lock(&s->mu);
    memcpy(s->script, statuses, n * sizeof *statuses);
    s->nscript = n;
    s->next = 0;
    s->dflt = dflt;
    pthread_mutex_unlock(&s->mu);
}

static void s_set_default(server_t *s, int dflt)
{
    pthread_mutex_lock(&s->mu);
    s->dflt = dflt;
    pthread_mutex_unlock(&s->mu);
}

static size_t s_nreqs(server_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The requests recorded so far are only appended to: entries below
 * s_nreqs() may be read without the lock. */
static const req_t *s_req(server_t *s, size_t i)
{
    assert_true(i < s_nreqs(s));
    return &s->reqs[i];
}

/* Occurrences of `line` in the bodies of the requests answered with 2xx. */
static unsigned s_accepted(server_t *s, const char *line)
{
    unsigned n = 0;
    size_t total = s_nreqs(s);
    for (size_t i = 0; i < total; i++) {
        const req_t *r = s_req(s, i);
        if (r->status >= 200 && r->status < 300) {
            const char *p = r->body, *end = r->body + r->len;
            size_t ll = strlen(line);
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
                n += len == ll && memcmp(p, line, ll) == 0;
                p += len + 1;
            }
        }
    }
    return n;
}

static uint64_t s_lines(const char *text)
{
    uint64_t n = 0;
    for (; *text; text++) {
        n += *text == '\n';
    }
    return n;
}

/* The value of header `name` (case-insensitive), copied to out; 0 if absent. */
static int s_header(const req_t *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(out, size, "%.*s", (int)(len - (size_t)(v - p)), v);
            return 1;
        }
        if (eol == NULL) {
            break;
        }
        p = eol + 2;
    }
    return 0;
}

/* Whether the query of target holds exactly the parameter "name=value". */
static int s_has_param(const char *target, const char *param)
{
    const char *q = strchr(target, '?');
    if (q == NULL) {
        return 0;
    }
    size_t pl = strlen(param);
    for (const char *p = q + 1; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len == pl && memcmp(p, param, pl) == 0) {
            return 1;
        }
        if (amp == NULL) {
            break;
        }
        p = amp + 1;
    }
    return 0;
}

/* ---- fixture ---- */

typedef struct {
    server_t srv;
    tb_writer_t *w;
    char url[64];
    char spool[64]; /* temporary directory, "" when none */
    char *mem[16];  /* the test's batches, freed by the teardown */
    size_t nmem;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    tb_writer_destroy(&f->w);
    s_server_stop(&f->srv);
    for (size_t i = 0; i < f->nmem; i++) {
        free(f->mem[i]);
    }
    if (f->spool[0] != '\0') {
        tb_test_rmtree(f->spool);
    }
    free(f);
    return 0;
}

static void s_make_spool(fixture_t *f)
{
    assert_int_equal(tb_test_tmpdir(f->spool, sizeof f->spool, "writer"), 0);
}

static void s_config(tb_writer_config_t *cfg, fixture_t *f, uint16_t port)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", (unsigned)port);
    tb_writer_config_defaults(cfg);
    cfg->db.url = f->url;
    cfg->db.version = 1;
    cfg->db.db = "t";
    cfg->db.gzip = 0;
    cfg->db.timeout_ms = 2000;
    cfg->db.connect_timeout_ms = 1000;
    cfg->backoff_min_ms = 20;
    cfg->backoff_max_ms = 200;
    cfg->shutdown_ms = 2000;
}

static tb_writer_t *s_writer(const tb_writer_config_t *cfg)
{
    char err[256] = "";
    tb_writer_t *w = tb_writer_new(cfg, err, sizeof err);
    if (w == NULL) {
        fail_msg("tb_writer_new: %s", err);
    }
    if (tb_writer_start(w, err, sizeof err) != 0) {
        fail_msg("tb_writer_start: %s", err);
    }
    return w;
}

/* Poll the health report until `cond` (an expression over `h`) holds. */
#define WAIT_HEALTH(w, h, cond)                                                                    \
    do {                                                                                           \
        double dl_ = s_now() + WAIT_S;                                                             \
        for (;;) {                                                                                 \
            tb_writer_health((w), &(h));                                                           \
            if (cond) {                                                                            \
                break;                                                                             \
            }                                                                                      \
            if (s_now() > dl_) {                                                                   \
                fail_msg("timed out waiting for %s (written %" PRIu64 ", queued %" PRIu64          \
                         ", spool %" PRIu64 ", requests %" PRIu64 ", dropped %" PRIu64             \
                         ", last error \"%s\")",                                                   \
                         #cond, (h).written, (h).queued_points, (h).spool_points, (h).requests,    \
                         (h).dropped, (h).last_error);                                             \
            }                                                                                      \
            s_sleep_ms(5);                                                                         \
        }                                                                                          \
    } while (0)

static void s_wait_requests(server_t *s, size_t n)
{
    double dl = s_now() + WAIT_S;
    while (s_nreqs(s) < n) {
        if (s_now() > dl) {
            fail_msg("timed out waiting for %zu requests (got %zu)", n, s_nreqs(s));
        }
        s_sleep_ms(5);
    }
}

/* A batch of `points` lines, distinct per tag (freed by the teardown). */
static char *s_batch(fixture_t *f, unsigned tag, unsigned points)
{
    size_t cap = 64 + 64 * (size_t)points;
    char *buf = malloc(cap);
    assert_non_null(buf);
    assert_true(f->nmem < sizeof f->mem / sizeof f->mem[0]);
    f->mem[f->nmem++] = buf;
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < points; i++) {
        used += (size_t)snprintf(buf + used, cap - used,
                                 "net,batch=%u,line=%u bytes=%ui 17000000000%05u\n", tag, i,
                                 tag * 1000 + i, tag);
    }
    return buf;
}

static void s_submit(tb_writer_t *w, const char *lines, uint64_t points)
{
    assert_int_equal(tb_writer_submit(w, lines, strlen(lines), points), 0);
}

/* ---- tests ---- */

/* (a) 204: the batches arrive in order, one request each, at /write with the
 * database and the precision; the health report adds up. */
static void test_delivers_in_order(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    tb_writer_health_t h;
    tb_writer_health(f->w, &h);
    assert_non_null(strstr(h.target, "127.0.0.1"));
    assert_int_equal(h.written, 0);

    char *b[3];
    uint64_t total = 0;
    for (unsigned i = 0; i < 3; i++) {
        b[i] = s_batch(f, i, i + 2);
        s_submit(f->w, b[i], i + 2);
        total += i + 2;
    }
    WAIT_HEALTH(f->w, h, h.written == total && h.queued_points == 0 && h.connected);
    assert_int_equal(h.queued_bytes, 0);
    assert_int_equal(h.requests, 3);
    assert_int_equal(h.failures, 0);
    assert_int_equal(h.retried, 0);
    assert_int_equal(h.rejected, 0);
    assert_int_equal(h.dropped, 0);
    assert_int_equal(h.spool_points, 0);
    assert_int_equal(h.oldest_unsent_ns, 0);
    assert_int_equal(h.last_error_ns, 0);
    assert_string_equal(h.last_error, "");

    assert_int_equal(s_nreqs(&f->srv), 3);
    for (unsigned i = 0; i < 3; i++) {
        const req_t *r = s_req(&f->srv, i);
        assert_int_equal(strncmp(r->target, "/write?", 7), 0);
        assert_true(s_has_param(r->target, "db=t"));
        assert_true(s_has_param(r->target, "precision=ns"));
        assert_false(r->gzipped);
        char v[128];
        assert_false(s_header(r, "Content-Encoding", v, sizeof v));
        assert_true(s_header(r, "Content-Type", v, sizeof v));
        assert_non_null(strstr(v, "text/plain"));
        assert_false(s_header(r, "Authorization", v, sizeof v)); /* no user configured */
        assert_int_equal(r->len, strlen(b[i]));
        assert_memory_equal(r->body, b[i], r->len);
        assert_int_equal(r->status, 204);
    }
    /* The empty batch is accepted and sends nothing. */
    assert_int_equal(tb_writer_submit(f->w, "", 0, 0), 0);
    tb_writer_destroy(&f->w);
    assert_null(f->w);
    assert_int_equal(s_nreqs(&f->srv), 3);
}

/* (b) 503 twice, then 204: retried with backoff, delivered once accepted,
 * nothing lost. */
static void test_retries_503(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 204);
    static const int script[] = {503, 503};
    s_script(&f->srv, script, 2, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    char *b = s_batch(f, 7, 3);
    s_submit(f->w, b, 3);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.written == 3 && h.queued_points == 0 && h.connected);
    assert_int_equal(s_nreqs(&f->srv), 3);
    for (size_t i = 0; i < 3; i++) {
        const req_t *r = s_req(&f->srv, i);
        assert_string_equal(r->body, b); /* the whole batch each time */
        assert_int_equal(r->status, i < 2 ? 503 : 204);
    }
    assert_int_equal(h.requests, 3);
    assert_int_equal(h.failures, 2);
    assert_true(h.retried > 0);
    assert_int_equal(h.retried, 2 * 3); /* points of the requests that failed */
    assert_int_equal(h.dropped, 0);
    assert_int_equal(h.rejected, 0);
    assert_non_null(strstr(h.last_error, "503"));
    assert_true(h.last_error_ns > 0);
    /* Backoff: the retries are not immediate (at least half of 20 ms, then
     * half of 40 ms, with jitter). */
    assert_true(s_req(&f->srv, 1)->t - s_req(&f->srv, 0)->t >= 0.009);
    assert_true(s_req(&f->srv, 2)->t - s_req(&f->srv, 1)->t >= 0.019);
}

/* (b) A 503 with Retry-After: 1 delays the retry by about a second, far more
 * than the backoff would. */
static void test_retry_after(void **state)
{
    fixture_t *f = *state;
    f->srv.retry_after = 1; /* set before the server thread starts */
    s_server_start(&f->srv, 204);
    static const int script[] = {503};
    s_script(&f->srv, script, 1, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    char *b = s_batch(f, 8, 2);
    s_submit(f->w, b, 2);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.written == 2 && h.queued_points == 0);
    assert_int_equal(s_nreqs(&f->srv), 2);
    double gap = s_req(&f->srv, 1)->t - s_req(&f->srv, 0)->t;
    if (gap < 0.9) {
        fail_msg("retried after %.3f s despite Retry-After: 1", gap);
    }
    assert_int_equal(h.retried, 2);
}

/* (c) 413 on a 4-line batch, then 204: split in halves, every line accepted
 * exactly once. */
static void test_413_splits(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 204);
    static const int script[] = {413};
    s_script(&f->srv, script, 1, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    char *b = s_batch(f, 9, 4);
    s_submit(f->w, b, 4);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.written == 4 && h.queued_points == 0);
    assert_int_equal(s_nreqs(&f->srv), 3);
    assert_int_equal(s_req(&f->srv, 0)->status, 413);
    assert_string_equal(s_req(&f->srv, 0)->body, b);
    for (unsigned i = 0; i < 4; i++) {
        char line[96];
        snprintf(line, sizeof line, "net,batch=9,line=%u bytes=%ui 1700000000000009", i, 9000 + i);
        assert_int_equal(s_accepted(&f->srv, line), 1);
    }
    /* Split at a line boundary. */
    assert_int_equal(s_req(&f->srv, 1)->len + s_req(&f->srv, 2)->len, strlen(b));
    assert_true(s_req(&f->srv, 1)->len > 0 &&
                s_req(&f->srv, 1)->body[s_req(&f->srv, 1)->len - 1] == '\n');
    assert_int_equal(h.rejected, 0);
    assert_int_equal(h.dropped, 0);
    assert_int_equal(h.retried, 0);
}

/* (c) 413, the first part accepted, the second refused with 503, then
 * accepted: only the unsent part is retried, and every line is accepted
 * exactly once. With a spool, the remainder waits on disk meanwhile. */
static void s_413_then_retry(fixture_t *f, int with_spool)
{
    s_server_start(&f->srv, 204);
    static const int script[] = {413, 204, 503};
    s_script(&f->srv, script, 3, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    if (with_spool) {
        s_make_spool(f);
        cfg.spool_dir = f->spool;
    }
    f->w = s_writer(&cfg);
    unsigned tag = 20 + (unsigned)with_spool;
    char *b = s_batch(f, tag, 4);
    s_submit(f->w, b, 4);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h,
                h.written == 4 && h.queued_points == 0 && h.spool_points == 0 && h.connected);
    assert_int_equal(s_nreqs(&f->srv), 4);
    for (unsigned i = 0; i < 4; i++) {
        char line[96];
        snprintf(line, sizeof line, "net,batch=%u,line=%u bytes=%ui 17000000000%05u", tag, i,
                 tag * 1000 + i, tag);
        assert_int_equal(s_accepted(&f->srv, line), 1);
    }
    /* The first part and the refused rest make up the batch; the retry
     * carried the rest only, and the retried count is its points. */
    const req_t *first = s_req(&f->srv, 1), *rest = s_req(&f->srv, 2);
    assert_int_equal(first->len + rest->len, strlen(b));
    assert_memory_equal(first->body, b, first->len);
    assert_string_equal(s_req(&f->srv, 3)->body, rest->body);
    assert_int_equal(h.retried, s_lines(rest->body));
    assert_int_equal(h.failures, 1);
    assert_int_equal(h.dropped, 0);
    if (with_spool) {
        assert_int_equal(h.spool_batches, 0);
    }
}

static void test_413_then_retry_remainder(void **state)
{
    s_413_then_retry(*state, 0);
}

static void test_413_then_retry_remainder_spooled(void **state)
{
    s_413_then_retry(*state, 1);
}

/* (d) 400 for any body holding the line "bad": the bad line is isolated and
 * rejected, the good ones are written. The rejected line is logged; the
 * batch holds no terminating NUL, so under ASan this also checks that the
 * log reads nothing past it. */
static void test_400_isolates_bad_line(void **state)
{
    fixture_t *f = *state;
    f->srv.reject_bad = 1; /* set before the server thread starts */
    s_server_start(&f->srv, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    static const char *const good[] = {"m,k=1 v=1i 1", "m,k=2 v=2i 2", "m,k=4 v=4i 4",
                                       "m,k=5 v=5i 5"};
    const char *batch = "m,k=1 v=1i 1\nm,k=2 v=2i 2\nbad\nm,k=4 v=4i 4\nm,k=5 v=5i 5\n";
    s_submit(f->w, batch, 5);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.written + h.rejected == 5 && h.queued_points == 0);
    assert_int_equal(h.written, 4);
    assert_int_equal(h.rejected, 1);
    assert_int_equal(h.dropped, 0);
    assert_int_equal(h.retried, 0);
    for (size_t i = 0; i < 4; i++) {
        assert_true(s_accepted(&f->srv, good[i]) >= 1);
    }
    assert_int_equal(s_accepted(&f->srv, "bad"), 0);
    assert_non_null(strstr(h.last_error, "bad"));
    assert_string_equal(s_req(&f->srv, 0)->body, batch);
    /* Later batches are not affected. */
    s_submit(f->w, "m,k=6 v=6i 6\n", 1);
    WAIT_HEALTH(f->w, h, h.written == 5 && h.queued_points == 0);
    assert_int_equal(s_accepted(&f->srv, "m,k=6 v=6i 6"), 1);
}

/* (e) 401: nothing is written, the data is kept, the problem reported, the
 * requests repeat slowly; once the database accepts, the data arrives. */
static void test_401_holds_then_delivers(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 401);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    f->w = s_writer(&cfg);
    char *b = s_batch(f, 30, 2);
    s_submit(f->w, b, 2);
    s_wait_requests(&f->srv, 3);
    tb_writer_health_t h;
    /* The server records a request before the writer has read its answer. */
    WAIT_HEALTH(f->w, h, h.failures >= 3);
    assert_int_equal(h.written, 0);
    assert_int_equal(h.queued_points, 2);
    assert_true(h.oldest_unsent_ns > 0);
    assert_false(h.connected);
    assert_non_null(strstr(h.last_error, "401"));
    assert_true(h.failures >= 3);
    assert_int_equal(h.dropped, 0);
    /* Over a second (a measurement window, not a synchronisation): backoff
     * between 20 and 200 ms gives about 5 to 15 requests; a loop without
     * backoff would make thousands. */
    size_t n0 = s_nreqs(&f->srv);
    double t0 = s_now();
    while (s_now() - t0 < 1.0) {
        s_sleep_ms(10);
    }
    size_t n1 = s_nreqs(&f->srv);
    if (n1 - n0 >= 20 || n1 - n0 < 3) {
        fail_msg("%zu requests in 1 s while refused with 401", n1 - n0);
    }
    s_set_default(&f->srv, 204);
    WAIT_HEALTH(f->w, h, h.written == 2 && h.queued_points == 0 && h.connected);
    const req_t *last = s_req(&f->srv, s_nreqs(&f->srv) - 1);
    assert_int_equal(last->status, 204);
    assert_string_equal(last->body, b);
    assert_int_equal(s_accepted(&f->srv, "net,batch=30,line=0 bytes=30000i 1700000000000030"), 1);
    assert_int_equal(h.dropped, 0);
}

static size_t s_spool_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += strncmp(de->d_name, "tb-", 3) == 0;
    }
    closedir(d);
    return n;
}

/* (f) The database down: batches go to the spool. After a restart with the
 * database back, the spooled batches are delivered first, in order, then the
 * new ones. */
static void test_spool_replay_after_restart(void **state)
{
    fixture_t *f = *state;
    s_make_spool(f);
    tb_writer_config_t cfg;
    s_config(&cfg, f, s_closed_port());
    cfg.spool_dir = f->spool;
    f->w = s_writer(&cfg);
    char *b[5];
    uint64_t spooled = 0;
    for (unsigned i = 0; i < 5; i++) {
        b[i] = s_batch(f, 40 + i, i + 1);
    }
    for (unsigned i = 0; i < 3; i++) {
        s_submit(f->w, b[i], i + 1);
        spooled += i + 1;
    }
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.spool_points == spooled && h.queued_points == 0);
    assert_true(h.spool_points > 0);
    assert_int_equal(h.spool_batches, 3);
    assert_int_equal(h.spool_bytes, strlen(b[0]) + strlen(b[1]) + strlen(b[2]));
    assert_int_equal(h.written, 0);
    assert_false(h.connected);
    assert_true(h.failures >= 1);
    assert_true(h.oldest_unsent_ns > 0);
    assert_true(h.last_error[0] != '\0');
    tb_writer_destroy(&f->w);
    assert_int_equal(s_spool_files(f->spool), 3);

    /* Restart with a working database. */
    s_server_start(&f->srv, 204);
    s_config(&cfg, f, f->srv.port);
    cfg.spool_dir = f->spool;
    f->w = s_writer(&cfg);
    s_submit(f->w, b[3], 4);
    s_submit(f->w, b[4], 5);
    WAIT_HEALTH(f->w, h,
                h.written == spooled + 9 && h.queued_points == 0 && h.spool_points == 0 &&
                    h.connected);
    assert_int_equal(s_nreqs(&f->srv), 5);
    for (unsigned i = 0; i < 5; i++) {
        assert_string_equal(s_req(&f->srv, i)->body, b[i]);
    }
    assert_int_equal(h.spool_batches, 0);
    assert_int_equal(h.dropped, 0);
    assert_int_equal(s_spool_files(f->spool), 0);
}

/* Run tb_writer_destroy with stderr captured; returns the log text (free it)
 * and the time taken. */
static char *s_destroy_logged(tb_writer_t **w, double *secs)
{
    char path[] = "/tmp/tb-test-writer-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(fd, STDERR_FILENO);
    int level = tb_log_get_level();
    tb_log_set_level(TB_LOG_INFO);
    double t0 = s_now();
    tb_writer_destroy(w);
    *secs = s_now() - t0;
    tb_log_set_level(level);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(fd);
    unlink(path);
    return text;
}

/* (g) No spool, the database down: tb_writer_destroy returns promptly and
 * counts what it could not deliver. */
static void test_shutdown_without_spool(void **state)
{
    fixture_t *f = *state;
    tb_writer_config_t cfg;
    s_config(&cfg, f, s_closed_port());
    cfg.shutdown_ms = 100;
    f->w = s_writer(&cfg);
    char *b = s_batch(f, 50, 3);
    for (int i = 0; i < 3; i++) {
        s_submit(f->w, b, 3);
    }
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.failures >= 1 && h.queued_points == 9);
    assert_int_equal(h.written, 0);
    assert_int_equal(h.spool_points, 0);
    assert_int_equal(h.dropped, 0);
    assert_false(h.connected);
    double secs = 0;
    char *log = s_destroy_logged(&f->w, &secs);
    assert_null(f->w);
    if (secs > 2.0) {
        fail_msg("tb_writer_destroy took %.2f s", secs);
    }
    /* The final report counts the 9 points as dropped. */
    const char *stopped = strstr(log, "stopped:");
    int reported = stopped != NULL && strstr(stopped, " 9 dropped") != NULL;
    if (!reported) {
        fprintf(stderr, "writer log:\n%s", log);
    }
    free(log);
    if (!reported) {
        fail_msg("no final report with 9 points dropped in the log");
    }
}

/* Regression: a stop while a batch the database refuses as a whole (400 for
 * everything) is being split line by line. Isolating 400 lines takes about
 * 800 requests (4 s at 5 ms each); the stop has 200 ms. The writer stops
 * splitting at its deadline and keeps the unsettled rest in the spool: most
 * lines are neither sent nor counted rejected, all are accounted for. Before,
 * the writer went on to the last line (SIGTERM waited 80 s and more). */
static void test_shutdown_deadline_while_splitting(void **state)
{
    fixture_t *f = *state;
    f->srv.delay_ms = 5; /* set before the server thread starts */
    s_server_start(&f->srv, 400);
    s_make_spool(f);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    cfg.spool_dir = f->spool;
    cfg.shutdown_ms = 200;
    f->w = s_writer(&cfg);
    const unsigned points = 400;
    char *b = s_batch(f, 90, points);
    s_submit(f->w, b, points);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.requests >= 2); /* splitting has begun */
    double secs = 0;
    char *log = s_destroy_logged(&f->w, &secs);
    size_t reqs = s_nreqs(&f->srv);
    printf("stop while splitting: %.3f s, %zu requests made of about %u\n", secs, reqs,
           2 * points - 1);
    unsigned long long written = 0, rejected = 0, dropped = 0, spooled = 0;
    const char *stopped = strstr(log, "stopped:");
    int parsed = stopped != NULL &&
                 sscanf(stopped,
                        "stopped: %llu points written, %llu rejected, %llu dropped, %llu in the "
                        "spool",
                        &written, &rejected, &dropped, &spooled) == 4;
    if (!parsed) {
        fprintf(stderr, "writer log:\n%s", log);
    }
    free(log);
    assert_true(parsed);
    assert_int_equal(written, 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(rejected + spooled, points);
    if (rejected * 2 >= points) {
        fail_msg("%llu of %u lines were isolated and rejected after the stop (%.2f s)", rejected,
                 points, secs);
    }
    assert_true(spooled > 0);
    assert_true(s_spool_files(f->spool) >= 1);
}

/* (h) 2.x: /api/v2/write with org, bucket and precision, a token, and gzip
 * bodies that inflate to the submitted lines. */
static void test_v2_gzip(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    cfg.db.version = 2;
    cfg.db.db = NULL;
    cfg.db.org = "o";
    cfg.db.bucket = "b";
    cfg.db.token = "secret";
    cfg.db.gzip = 1;
    f->w = s_writer(&cfg);
    char *b[2] = {s_batch(f, 60, 3), s_batch(f, 61, 200)};
    s_submit(f->w, b[0], 3);
    s_submit(f->w, b[1], 200);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.written == 203 && h.queued_points == 0);
    assert_null(strstr(h.target, "secret"));
    assert_int_equal(s_nreqs(&f->srv), 2);
    for (size_t i = 0; i < 2; i++) {
        const req_t *r = s_req(&f->srv, i);
        assert_int_equal(strncmp(r->target, "/api/v2/write?", 14), 0);
        assert_true(s_has_param(r->target, "org=o"));
        assert_true(s_has_param(r->target, "bucket=b"));
        assert_true(s_has_param(r->target, "precision=ns"));
        assert_null(strstr(r->target, "db="));
        char v[128];
        assert_true(s_header(r, "Authorization", v, sizeof v));
        assert_string_equal(v, "Token secret");
        assert_true(s_header(r, "Content-Encoding", v, sizeof v));
        assert_string_equal(v, "gzip");
        assert_true(r->gzipped);
        assert_int_equal(r->len, strlen(b[i]));
        assert_memory_equal(r->body, b[i], r->len);
    }
}

/* Without a spool, a full in-memory queue drops its oldest batches, counted,
 * and keeps the newest. */
static void test_queue_full_drops_oldest(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 503);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    char *b[8];
    for (unsigned i = 0; i < 8; i++) {
        b[i] = s_batch(f, 70 + i, 2);
    }
    cfg.queue_bytes = 3 * strlen(b[0]); /* three batches */
    f->w = s_writer(&cfg);
    for (unsigned i = 0; i < 8; i++) {
        s_submit(f->w, b[i], 2);
    }
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.failures >= 1);
    assert_true(h.dropped >= 2 * 4); /* at most 3 queued + 1 in flight remain */
    s_set_default(&f->srv, 204);
    WAIT_HEALTH(f->w, h, h.queued_points == 0 && h.written > 0 && h.connected);
    assert_int_equal(h.written + h.dropped, 16);
    /* The newest three always survive, and arrive in order at the end. */
    size_t n = s_nreqs(&f->srv);
    assert_true(n >= 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_string_equal(s_req(&f->srv, n - 3 + i)->body, b[5 + i]);
    }
}

/* The spool fills up while its head is being replayed: the head being
 * delivered is kept, the oldest of the others are dropped (counted) to take
 * the new ones, and what the spool keeps is delivered: b[0] (in flight),
 * b[4] and b[5]; b[1..3] are dropped. Every point is written or counted
 * dropped, none both. */
static void test_spool_full_during_replay(void **state)
{
    fixture_t *f = *state;
    s_make_spool(f);
    s_server_start(&f->srv, 503);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    char *b[6];
    for (unsigned i = 0; i < 6; i++) {
        b[i] = s_batch(f, 80 + i, 2);
    }
    cfg.spool_dir = f->spool;
    /* Three batches: the limit is on disk space, each small file takes an
     * allocation unit, the directory its blocks and one unit to grow. */
    struct statvfs vfs;
    struct stat dsb;
    assert_int_equal(statvfs(f->spool, &vfs), 0);
    assert_int_equal(stat(f->spool, &dsb), 0);
    uint64_t unit = vfs.f_frsize >= 512 ? (uint64_t)vfs.f_frsize : 4096;
    uint64_t dir = (uint64_t)dsb.st_blocks * 512 > (uint64_t)dsb.st_size
                       ? (uint64_t)dsb.st_blocks * 512
                       : (uint64_t)dsb.st_size;
    cfg.spool_bytes = dir + unit + 3 * unit;
    f->w = s_writer(&cfg);
    s_submit(f->w, b[0], 2);
    /* Two failed attempts: b[0] is in the spool, and is the spool's head in
     * flight. */
    s_wait_requests(&f->srv, 2);
    tb_writer_health_t h;
    WAIT_HEALTH(f->w, h, h.spool_batches == 1);
    for (unsigned i = 1; i < 6; i++) {
        s_submit(f->w, b[i], 2);
    }
    WAIT_HEALTH(f->w, h, h.queued_points == 0 && h.spool_batches == 3);
    assert_int_equal(h.dropped, 3 * 2); /* b[1], b[2], b[3] made room */
    s_set_default(&f->srv, 204);
    WAIT_HEALTH(f->w, h, h.spool_points == 0 && h.queued_points == 0 && h.connected);
    static const unsigned kept[] = {0, 4, 5}, gone[] = {1, 2, 3};
    for (unsigned k = 0; k < 3; k++) {
        unsigned i = gone[k];
        char line[96];
        snprintf(line, sizeof line, "net,batch=%u,line=0 bytes=%ui 17000000000%05u", 80 + i,
                 (80 + i) * 1000, 80 + i);
        assert_int_equal(s_accepted(&f->srv, line), 0);
    }
    for (unsigned k = 0; k < 3; k++) {
        unsigned i = kept[k];
        char line[96];
        snprintf(line, sizeof line, "net,batch=%u,line=0 bytes=%ui 17000000000%05u", 80 + i,
                 (80 + i) * 1000, 80 + i);
        if (s_accepted(&f->srv, line) != 1) {
            fail_msg("batch %u, kept by the spool, was delivered %u times (written %" PRIu64
                     ", dropped %" PRIu64 ")",
                     i, s_accepted(&f->srv, line), h.written, h.dropped);
        }
    }
    assert_int_equal(h.written + h.dropped, 12);
}

/* tb_writer_new starts nothing: a batch waits in the queue, no request is
 * made, until tb_writer_start; a second start is refused; a writer never
 * started says at its destroy what it leaves undelivered. */
static void test_start_is_a_separate_step(void **state)
{
    fixture_t *f = *state;
    s_server_start(&f->srv, 204);
    tb_writer_config_t cfg;
    s_config(&cfg, f, f->srv.port);
    char err[256] = "";
    f->w = tb_writer_new(&cfg, err, sizeof err);
    assert_non_null(f->w);
    char *b = s_batch(f, 0, 3);
    s_submit(f->w, b, 3);
    tb_writer_health_t h;
    tb_writer_health(f->w, &h);
    assert_int_equal(h.queued_points, 3);
    assert_int_equal(h.requests, 0);
    assert_int_equal(s_nreqs(&f->srv), 0);

    assert_int_equal(tb_writer_start(f->w, err, sizeof err), 0);
    WAIT_HEALTH(f->w, h, h.written == 3 && h.queued_points == 0);
    assert_int_equal(tb_writer_start(f->w, err, sizeof err), TB_EINVAL);
    assert_non_null(strstr(err, "already"));
    assert_int_equal(s_nreqs(&f->srv), 1);

    tb_writer_t *idle = tb_writer_new(&cfg, err, sizeof err);
    assert_non_null(idle);
    s_submit(idle, b, 3);
    double secs = 0;
    char *log = s_destroy_logged(&idle, &secs);
    assert_null(idle);
    assert_non_null(strstr(log, "3 points not delivered: the writer was never started"));
    free(log);
    assert_int_equal(s_nreqs(&f->srv), 1);
}

int main(void)
{
    if (tb_influx_global_init() != 0) {
        fprintf(stderr, "tb_influx_global_init failed\n");
        return 1;
    }
    /* The writer logs every outage; keep the output readable unless asked. */
    if (getenv("TB_TEST_VERBOSE") == NULL) {
        tb_log_set_level(TB_LOG_ERROR);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retries_503, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_413_splits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_413_then_retry_remainder, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_401_holds_then_delivers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_without_spool, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_v2_gzip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_drops_oldest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_400_isolates_bad_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_spool_replay_after_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_413_then_retry_remainder_spooled, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_spool_full_during_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_deadline_while_splitting, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_start_is_a_separate_step, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
