/* cmd — see cmd.h. */
#include "cmd.h"

#include "fanout.h"
#include "tb_err.h"
#include "tb_opt.h"

#include <string.h>

static const tb_cmd_t s_commands[] = {
    {"start", "STREAM...",
     "Start measuring the streams: the collector subscribes to them, a file source on a\n"
     "probe starts reading from its beginning (a new run), a live one starts capturing.\n"
     "A stream already running starts over. A stream no probe offers starts all the\n"
     "same, with a warning: it shows as waiting until a probe sends it.\n"
     "All or nothing: if the collector has no\n"
     "room for every new stream, none is started. Room is a free slot or that of an\n"
     "ended stream whose statistics were read (or that got nothing), each printed as\n"
     "forgotten; statistics nobody has read are never pushed out. With several\n"
     "collectors, a stream starts on the one holding it, a new one on the one with\n"
     "the fewest running.\n",
     .streams = TB_CMD_SOME},
    {"stop", "[STREAM...]",
     "Stop the streams named, or every running or finished one. Their statistics are\n"
     "kept and can still be read with stats.\n",
     .streams = TB_CMD_ANY},
    {"forget", "STREAM...",
     "Drop the streams and their statistics from the collector, freeing their slots:\n"
     "streams that are stopped, finished, failed (every probe's source in error), or\n"
     "started but never sent by any probe (a mistyped name). A stream a probe is\n"
     "sending is refused: stop it first. All or nothing: with one name unknown or\n"
     "refused, nothing is forgotten. With several collectors, each stream is\n"
     "forgotten on the one holding it.\n",
     .streams = TB_CMD_SOME},
    {"status", "",
     "The collector (version, uptime, endpoints, bus counters), every stream (state,\n"
     "packets, bytes, loss) and every probe heard on it (source state, last heard,\n"
     "silent after five missed heartbeats, capture drops).\n",
     .streams = TB_CMD_NONE},
    {"stats", "STREAM",
     "The statistics of one stream: totals, smallest/largest/last packet, capture time\n"
     "span, averages, per-protocol counts, top flows and hosts, loss.\n",
     .streams = TB_CMD_ONE},
    {"probes", "",
     "Every probe the collector hears, with the streams it feeds, when it was last\n"
     "heard, whether it is silent, and its packets and capture drops summed over them.\n",
     .streams = TB_CMD_NONE},
    {"streams", "",
     "Every stream the probes offer (they announce them on the bus): its probe, the\n"
     "kind of its source (file, iface, dir), the source's state, and which collector\n"
     "measures it in which state. A stream started that no probe offers is listed with\n"
     "probe '-'. With several collectors, what all of them hear, merged.\n",
     .streams = TB_CMD_NONE},
    {"top", "STREAM [-n N]",
     "A live view of one stream, refreshed every second: current packets and bits per\n"
     "second, totals, loss, protocol mix, the top N flows and hosts (default 10). Quits\n"
     "on q. When standard output is not a terminal, the view is printed once.\n",
     .streams = TB_CMD_ONE, .nmax = 64, .n_what = "flows and hosts"},
    {"serve",
     "--http ADDR:PORT|[V6ADDR]:PORT [--credentials FILE] [--tls-cert FILE --tls-key FILE]",
     "An HTTP gateway in front of the collector(s) for scripts that use curl: /start,\n"
     "/stop, /forget, /status, /stats?stream=NAME, /probes, /streams, /db, answering\n"
     "JSON. HTTP basic authentication is required: USER:PASSWORD from the first line of\n"
     "FILE or from $TAPBUS_HTTP_CREDENTIALS (there is no default); a FILE that its group\n"
     "or others may read is refused (chmod 600 FILE). With --tls-cert and --tls-key\n"
     "(PEM; both or neither) it serves HTTPS only. With --curve-key, the gateway talks\n"
     "to the collector with that key, and every HTTP user has its rights\n"
     "(docs/security.md). Runs until SIGINT or SIGTERM.\n",
     .streams = TB_CMD_OWN},
    {"keygen", "NAME",
     "Write a new CURVE key pair in CZMQ's certificate format: NAME holds the public key\n"
     "(copy it to the hosts that must know it), NAME_secret both keys (mode 0600; it\n"
     "stays on the host whose program uses it, given with --curve-key). Existing files\n"
     "are never overwritten. See docs/security.md for a set-up step by step.\n",
     .streams = TB_CMD_OWN},
    {"db", "[measurements | MEASUREMENT [STREAM] [-n N]]",
     "What the collector's database holds, asked through the collector (which has the\n"
     "credentials): without arguments the measurements; with one, its latest N points\n"
     "(default 10, at most 10000), newest first, of one stream when STREAM is given.\n"
     "Measurements and fields are described in docs/schema.md.\n",
     .streams = TB_CMD_OWN, .nmax = 10000, .n_what = "points"},
};
const tb_cmd_t *tb_cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        if (strcmp(s_commands[i].name, name) == 0) {
            return &s_commands[i];
        }
    }
    return NULL;
}

void tb_cmd_usage(const tb_cmd_t *c, FILE *out)
{
    fprintf(out, "usage: tapbusctl [--collector ENDPOINT] [--json] [--timeout MS] %s%s%s\n\n%s",
            c->name, c->args[0] ? " " : "", c->args, c->help);
}

int tb_cmd_usage_error(const char *msg)
{
    fprintf(stderr, "tapbusctl: %s (see --help)\n", msg);
    return TB_CALL_USAGE;
}

int tb_cmd_words_add(tb_cmd_words_t *w, const char *word, char *msg, size_t size)
{
    if (w->n == TB_CTL_MAX_STREAMS) {
        snprintf(msg, size, "too many streams in one command (at most %d)", TB_CTL_MAX_STREAMS);
        return TB_ELIMIT;
    }
    w->word[w->n++] = word;
    return 0;
}

/* -n N where the command has it (nmax > 0: N in 1..nmax, "what" names N). */
static int s_count(const char *text, uint64_t nmax, const char *what, uint64_t *n, char *msg,
                   size_t size)
{
    if (text == NULL) {
        return 0;
    }
    if (nmax == 0) {
        snprintf(msg, size, "-n is an option of top and db");
        return TB_EINVAL;
    }
    if (tb_opt_u64(text, 1, nmax, n) != 0) {
        snprintf(msg, size, "-n needs a number of %s, 1-%llu", what, (unsigned long long)nmax);
        return TB_EINVAL;
    }
    return 0;
}

/* db [measurements | MEASUREMENT [STREAM] [-n N]] -> the request's args. */
static int s_db_request(const tb_cmd_words_t *w, uint64_t n, tb_ctl_request_t *req, char *msg,
                        size_t size)
{
    const char *const *words = w->word;
    size_t nwords = w->n;
    if (nwords > 2) {
        snprintf(msg, size, "db takes a measurement and at most one stream");
        return TB_EINVAL;
    }
    if (nwords == 0 || strcmp(words[0], "measurements") == 0) {
        if (nwords > 1) {
            snprintf(msg, size, "db measurements takes no stream");
            return TB_EINVAL;
        }
        req->nargs = 1;
        snprintf(req->args[0], sizeof req->args[0], "measurements");
        return 0;
    }
    if (strlen(words[0]) > 64) {
        snprintf(msg, size, "measurement name too long");
        return TB_EINVAL;
    }
    req->nargs = 3;
    snprintf(req->args[0], sizeof req->args[0], "points");
    snprintf(req->args[1], sizeof req->args[1], "%s", words[0]);
    snprintf(req->args[2], sizeof req->args[2], "%llu", (unsigned long long)n);
    if (nwords == 2 && tb_ctl_request_add_stream(req, words[1]) != 0) {
        snprintf(msg, size, "invalid stream name '%s'", words[1]);
        return TB_EINVAL;
    }
    return 0;
}

int tb_cmd_request(const tb_cmd_t *c, const tb_cmd_words_t *w, const char *n_text,
                   tb_ctl_request_t *req, uint64_t *n, char *msg, size_t size)
{
    if (s_count(n_text, c->nmax, c->n_what, n, msg, size) != 0) {
        return TB_EINVAL;
    }
    if (strcmp(c->name, "db") == 0) {
        snprintf(req->cmd, sizeof req->cmd, "db");
        return s_db_request(w, *n, req, msg, size);
    }
    /* probes is status seen from the probes' side: the same request. */
    snprintf(req->cmd, sizeof req->cmd, "%s", strcmp(c->name, "probes") == 0 ? "status" : c->name);
    for (size_t i = 0; i < w->n; i++) {
        if (tb_ctl_request_add_stream(req, w->word[i]) != 0) {
            snprintf(msg, size,
                     "invalid stream name '%s' (1-%d characters of A-Z a-z 0-9 . _ : / @ + -)",
                     w->word[i], TB_STREAM_MAX);
            return TB_EINVAL;
        }
    }
    const char *wrong =
        c->streams == TB_CMD_SOME && req->nstreams == 0   ? "needs at least one stream"
        : c->streams == TB_CMD_ONE && req->nstreams != 1  ? "needs exactly one stream"
        : c->streams == TB_CMD_NONE && req->nstreams != 0 ? "takes no stream"
                                                          : NULL;
    if (wrong != NULL) {
        snprintf(msg, size, "%s %s", c->name, wrong);
        return TB_EINVAL;
    }
    return 0;
}
