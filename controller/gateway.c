/* gateway — see gateway.h. One libmicrohttpd thread answers requests one
 * at a time (each is one short control exchange); the main thread waits for
 * a stop signal. */
#include "gateway.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_opt.h"

#include "tb_time.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define LOG_COMPONENT "gateway"

/* Equal strings, in time that depends only on the lengths of the inputs. */
static int s_same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la > lb ? la : lb;
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        diff |= (unsigned)(x ^ y);
    }
    return diff == 0;
}

/* Send body (released) with status; basic_auth_fail: a 401 asking for
 * credentials; allow: the Allow header of a 405, or NULL. */
static enum MHD_Result s_send(struct MHD_Connection *conn, unsigned status, json_t *body,
                              int basic_auth_fail, const char *allow)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (text == NULL) {
        return MHD_NO;
    }
    size_t len = strlen(text);
    char *full = malloc(len + 2);
    if (full == NULL) {
        free(text);
        return MHD_NO;
    }
    memcpy(full, text, len);
    full[len] = '\n';
    free(text);
    struct MHD_Response *r = MHD_create_response_from_buffer(len + 1, full, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(full);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (allow != NULL) {
        MHD_add_response_header(r, "Allow", allow);
    }
    enum MHD_Result ret = basic_auth_fail ? MHD_queue_basic_auth_fail_response(conn, "tapbus", r)
                                          : MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result s_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    return s_send(conn, status, json_pack("{s:s}", "error", msg), 0, NULL);
}

/* text for a log line or a message: at most size - 1 bytes, every byte that
 * is not printable ASCII as '?' (a request cannot forge log lines). */
static const char *s_printable(char *dst, size_t size, const char *text)
{
    size_t i = 0;
    for (; text != NULL && text[i] != '\0' && i + 1 < size; i++) {
        unsigned char ch = (unsigned char)text[i];
        dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[i] = '\0';
    return dst;
}

/* stream, streamN or streamnameN (N: one or more digits). */
static int s_stream_key(const char *key)
{
    if (strncmp(key, "stream", 6) != 0) {
        return 0;
    }
    const char *n = key + 6;
    if (strncmp(n, "name", 4) == 0) {
        n += 4;
        if (*n == '\0') {
            return 0;
        }
    }
    return strspn(n, "0123456789") == strlen(n);
}

/* The first value of key among args, or NULL. */
static const char *s_arg(const tb_gw_arg_t *args, size_t nargs, const char *key)
{
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].key != NULL && strcmp(args[i].key, key) == 0) {
            return args[i].value;
        }
    }
    return NULL;
}

/* /start, /stop and /forget: each stream=, streamN= or streamnameN= names a
 * stream; any other argument is refused. */
static unsigned s_names(const tb_gw_arg_t *args, size_t nargs, tb_ctl_request_t *req, char *err,
                        size_t errsize)
{
    for (size_t i = 0; i < nargs; i++) {
        const char *key = args[i].key != NULL ? args[i].key : "";
        const char *value = args[i].value;
        char k[40], v[TB_STREAM_MAX + 1];
        int rc;
        if (!s_stream_key(key)) {
            snprintf(err, errsize,
                     "unknown argument '%s' (name streams with stream= or streamname1=, ...)",
                     s_printable(k, sizeof k, key));
            return 400;
        }
        rc = value != NULL ? tb_ctl_request_add_stream(req, value) : TB_EINVAL;
        if (rc == TB_ELIMIT) {
            snprintf(err, errsize, "too many streams (at most %d)", TB_CTL_MAX_STREAMS);
            return 400;
        }
        if (rc != 0) {
            snprintf(err, errsize, "invalid stream name '%s'%s", s_printable(v, sizeof v, value),
                     value != NULL && strchr(value, ' ') != NULL
                         ? " (a '+' in a URL is a space: write %2B)"
                         : "");
            return 400;
        }
    }
    return 0;
}

unsigned tb_gw_request(const char *path, const tb_gw_arg_t *args, size_t nargs,
                       tb_ctl_request_t *req, char *err, size_t errsize)
{
    memset(req, 0, sizeof *req);
    if (strcmp(path, "/start") == 0 || strcmp(path, "/stop") == 0 ||
        strcmp(path, "/forget") == 0) {
        snprintf(req->cmd, sizeof req->cmd, "%s", path + 1);
        unsigned status = s_names(args, nargs, req, err, errsize);
        if (status != 0) {
            return status;
        }
        if (strcmp(path, "/start") == 0 && req->nstreams == 0) {
            snprintf(err, errsize, "name the streams to start, e.g. /start?streamname1=01::10:01");
            return 400;
        }
        if (strcmp(path, "/forget") == 0 && req->nstreams == 0) {
            snprintf(err, errsize, "name the streams to forget, e.g. /forget?stream=01::10:01");
            return 400;
        }
        return 0;
    }
    static const char *const plain[] = {"/status", "/streams", "/probes"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        if (strcmp(path, plain[i]) == 0) {
            snprintf(req->cmd, sizeof req->cmd, "%s", plain[i] + 1);
            return 0; /* probes: the caller turns status around */
        }
    }
    if (strcmp(path, "/stats") == 0) {
        const char *st = s_arg(args, nargs, "stream");
        if (st == NULL || tb_ctl_request_add_stream(req, st) != 0) {
            snprintf(err, errsize, "/stats needs ?stream=NAME (a valid name)");
            return 400;
        }
        snprintf(req->cmd, sizeof req->cmd, "stats");
        return 0;
    }
    if (strcmp(path, "/db") == 0) {
        const char *m = s_arg(args, nargs, "measurement");
        const char *st = s_arg(args, nargs, "stream");
        const char *n = s_arg(args, nargs, "n");
        snprintf(req->cmd, sizeof req->cmd, "db");
        uint64_t points = 10;
        if (m == NULL) {
            req->nargs = 1;
            snprintf(req->args[0], sizeof req->args[0], "measurements");
            return 0;
        }
        if (m[0] == '\0' || strlen(m) > 64 ||
            (st != NULL && tb_ctl_request_add_stream(req, st) != 0)) {
            snprintf(err, errsize, "bad measurement or stream name");
            return 400;
        }
        if (n != NULL && tb_opt_u64(n, 1, 10000, &points) != 0) {
            snprintf(err, errsize, "n must be 1-10000 points");
            return 400;
        }
        req->nargs = 3;
        snprintf(req->args[0], sizeof req->args[0], "points");
        snprintf(req->args[1], sizeof req->args[1], "%s", m);
        snprintf(req->args[2], sizeof req->args[2], "%llu", (unsigned long long)points);
        return 0;
    }
    snprintf(err, errsize,
             "unknown path (use /start, /stop, /forget, /status, /stats, /probes, /streams, /db)");
    return 404;
}

unsigned tb_gw_status_of(int result, const char *err)
{
    switch (result) {
    case TB_GW_OK:
        return 200;
    case TB_GW_REFUSED:
        return strncmp(err, "unknown stream", 14) == 0 ? 404 : 409;
    case TB_GW_UNREACHABLE:
        return 504;
    default:
        return 502;
    }
}

/* The query arguments of a request, in order (at most TB_GW_ARGS_MAX). */
typedef struct {
    tb_gw_arg_t arg[TB_GW_ARGS_MAX];
    size_t n;
    int overflow;
} args_t;

static enum MHD_Result s_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    args_t *a = cls;
    if (a->n == TB_GW_ARGS_MAX) {
        a->overflow = 1;
        return MHD_NO;
    }
    a->arg[a->n].key = key;
    a->arg[a->n++].value = value;
    return MHD_YES;
}

static enum MHD_Result s_call(const tb_gateway_config_t *cfg, struct MHD_Connection *conn,
                              const tb_ctl_request_t *req)
{
    int result = TB_GW_OK;
    char err[TB_CTL_ERROR_MAX] = "";
    json_t *data = cfg->call(cfg->arg, req, &result, err, sizeof err);
    if (data != NULL) {
        return s_send(conn, MHD_HTTP_OK, data, 0, NULL);
    }
    return s_error(conn, tb_gw_status_of(result, err), err);
}

/* Markers of a request's state between libmicrohttpd's calls. */
static char s_pending, s_with_body;

/* The header deadline. libmicrohttpd's CONNECTION_TIMEOUT is an idle timer:
 * a client sending one header byte every 20 s would hold its connection
 * (and with 32 of them, every connection) for ever. Each connection is
 * watched from the moment it opens, or its previous request was answered,
 * until its request's headers are complete; the main thread shuts down the
 * socket of one that took longer than TB_GW_HEADER_S, which ends it. */
typedef struct gw_watch gw_watch_t;
typedef struct {
    gw_watch_t *w;
    int in_use;
    int fd;
    int waiting;         /* headers of a request not complete yet */
    uint64_t since_mono; /* ... since then */
} gw_conn_t;

struct gw_watch {
    pthread_mutex_t lock;
    gw_conn_t conn[TB_GW_CONNECTIONS + 8]; /* libmicrohttpd keeps to the limit */
    uint64_t cut;                          /* connections ended by the deadline */
};

static void s_conn_waiting(gw_conn_t *e, int waiting)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&e->w->lock);
    e->waiting = waiting;
    e->since_mono = tb_time_mono_ns();
    pthread_mutex_unlock(&e->w->lock);
}

static void s_notify_conn(void *cls, struct MHD_Connection *conn, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    gw_watch_t *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        gw_conn_t *e = *ctx;
        if (e != NULL) {
            pthread_mutex_lock(&w->lock);
            e->in_use = 0;
            pthread_mutex_unlock(&w->lock);
        }
        *ctx = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; ci != NULL && i < sizeof w->conn / sizeof w->conn[0]; i++) {
        gw_conn_t *e = &w->conn[i];
        if (!e->in_use) {
            *e = (gw_conn_t){.w = w,
                             .in_use = 1,
                             .fd = ci->connect_fd,
                             .waiting = 1,
                             .since_mono = tb_time_mono_ns()};
            *ctx = e;
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
}

static gw_conn_t *s_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* A request answered: on a kept-alive connection the next one's headers
 * have TB_GW_HEADER_S from now. */
static void s_completed(void *cls, struct MHD_Connection *conn, void **state,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)state;
    (void)toe;
    s_conn_waiting(s_conn_of(conn), 1);
}

static void s_cut_slow(gw_watch_t *w)
{
    uint64_t now = tb_time_mono_ns();
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < sizeof w->conn / sizeof w->conn[0]; i++) {
        gw_conn_t *e = &w->conn[i];
        if (e->in_use && e->waiting &&
            now - e->since_mono > (uint64_t)TB_GW_HEADER_S * TB_NS_PER_SEC) {
            /* The connection's thread sees the end and closes it. */
            shutdown(e->fd, SHUT_RDWR);
            e->waiting = 0;
            w->cut++;
            tb_log(TB_LOG_INFO, LOG_COMPONENT,
                   "a client took over %d s to send its request's headers: connection closed "
                   "(%llu so far)",
                   TB_GW_HEADER_S, (unsigned long long)w->cut);
        }
    }
    pthread_mutex_unlock(&w->lock);
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    const tb_gateway_config_t *cfg = cls;
    char lurl[160], lmethod[16];
    s_printable(lurl, sizeof lurl, url);
    s_printable(lmethod, sizeof lmethod, method);
    if (*state == NULL) {
        s_conn_waiting(s_conn_of(conn), 0); /* the headers are all here */
        /* Headers only so far: credentials and method are checked now, so
         * that no body is read for a request that will be refused. */
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(conn, &pass);
        int ok = user != NULL && pass != NULL;
        /* Both compared whatever the first gives, so timing tells nothing. */
        int u = ok && s_same(user, cfg->user);
        int p = ok && s_same(pass, cfg->password);
        MHD_free(user);
        MHD_free(pass);
        if (!(u && p)) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "%s %s: 401", lmethod, lurl);
            return s_send(conn, MHD_HTTP_UNAUTHORIZED,
                          json_pack("{s:s}", "error", "authentication required"), 1, NULL);
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "%s %s: 405", lmethod, lurl);
            return s_send(conn, MHD_HTTP_METHOD_NOT_ALLOWED, json_pack("{s:s}", "error", "use GET"),
                          0, "GET, POST");
        }
        const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if ((length != NULL && strspn(length, "0") != strlen(length)) ||
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "%s %s: 400 (a body)", lmethod, lurl);
            return s_error(conn, MHD_HTTP_BAD_REQUEST,
                           "a request body is not read: put the arguments in the URL "
                           "(e.g. /stop?stream=NAME)");
        }
        *state = &s_pending;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body after all: dropped, the request refused */
        *upload_size = 0;
        *state = &s_with_body;
        return MHD_YES;
    }
    if (*state == &s_with_body) {
        return s_error(conn, MHD_HTTP_BAD_REQUEST,
                       "a request body is not read: put the arguments in the URL");
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "%s %s", lmethod, lurl);
    args_t args = {.n = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_collect, &args);
    tb_ctl_request_t req;
    char err[TB_CTL_ERROR_MAX] = "";
    /* Past TB_GW_ARGS_MAX the first ones already say what is wrong (too
     * many streams, an unknown argument); if not, the count does. */
    unsigned status = tb_gw_request(url, args.arg, args.n, &req, err, sizeof err);
    if (status != 0) {
        return s_error(conn, status, err);
    }
    if (args.overflow) {
        return s_error(conn, MHD_HTTP_BAD_REQUEST, "too many arguments");
    }
    return s_call(cfg, conn, &req);
}

/* "ADDR:PORT", "[V6ADDR]:PORT", "NAME:PORT" or ":PORT" (every IPv4
 * address) -> a socket address. Returns 0, or with the reason printed
 * TB_EINVAL (not ADDR:PORT) or TB_ENOENT (the address does not resolve). */
static int s_listen_addr(const char *listen, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    uint64_t port = 0;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host ||
        tb_opt_u64(colon + 1, 1, 65535, &port) != 0) {
        fprintf(stderr, "tapbusctl: --http needs ADDR:PORT, e.g. 0.0.0.0:8083 or [::]:8083\n");
        return TB_EINVAL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    size_t hl = strlen(host);
    const char *name = host[0] ? host : "0.0.0.0";
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        name = host + 1;
    }
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(name, service, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof *ss) {
        fprintf(stderr, "tapbusctl: --http address '%s': %s\n", name,
                rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return TB_ENOENT;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int tb_gateway_run(const tb_gateway_config_t *cfg)
{
    struct sockaddr_storage ss;
    if (s_listen_addr(cfg->listen, &ss) != 0) {
        return 2; /* a usage error */
    }
    uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    /* Signals are taken by sigwait below, not by the server's thread. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* A thread per connection: a request waiting for a slow collector or
     * database holds up only its own connection. Each connection's memory
     * pool holds the request line and one record (about 56 bytes) per
     * query argument; with libmicrohttpd's default of 32 KiB a /start with
     * about 500 arguments ran it out, and libmicrohttpd then closed the
     * connection without an answer. 256 KiB takes a URL of some 3,000
     * arguments, answered by a JSON 400 (at most 64 streams). */
    /* Every client has a budget: TB_GW_PER_IP connections per address, and
     * TB_GW_HEADER_S to send a request's headers; so clients waiting to be
     * accepted get their turn within that time whatever the others do. */
    gw_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL || pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        fprintf(stderr, "tapbusctl: out of memory\n");
        return 1;
    }
    int tls = cfg->tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(stderr, "tapbusctl: this libmicrohttpd was built without TLS: --tls-cert "
                        "cannot be served\n");
        pthread_mutex_destroy(&w->lock);
        free(w);
        return 1;
    }
    /* With TLS, libmicrohttpd makes the handshake on the connection's
     * thread before it reads the request: a client that stalls it (or
     * speaks plain HTTP) is within the same per-address limit and header
     * deadline as any other. */
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)(uintptr_t)cfg->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)cfg->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, port, NULL, NULL, s_handle, (void *)cfg, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)TB_GW_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)TB_GW_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)TB_GW_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TB_GW_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify_conn, (void *)w, MHD_OPTION_NOTIFY_COMPLETED,
        s_completed, (void *)w, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "tapbusctl: cannot listen on %s (in use, or not an address here)\n",
                cfg->listen);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return 1;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "serving %s://%s/ (basic authentication)",
           tls ? "https" : "http", cfg->listen);
    const struct timespec tick = {.tv_sec = 1};
    while (sigtimedwait(&set, NULL, &tick) < 0) {
        s_cut_slow(w);
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "stopping");
    MHD_stop_daemon(d);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return 0;
}
