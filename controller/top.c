/* top — see top.h. The terminal is put in non-canonical mode (keys arrive
 * without Enter) and restored on every way out, signals included. */
#include "top.h"

#include "print.h"
#include "tb_time.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios s_saved;
static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* Rates between two stats replies of the same measurement. */
static void s_rates(const json_t *prev, const json_t *cur, double dt, double *pps, double *bps)
{
    json_int_t p0 = json_integer_value(json_object_get(prev, "packets"));
    json_int_t p1 = json_integer_value(json_object_get(cur, "packets"));
    json_int_t b0 = json_integer_value(json_object_get(prev, "bytes"));
    json_int_t b1 = json_integer_value(json_object_get(cur, "bytes"));
    if (dt <= 0 || p1 < p0) { /* the statistics started over */
        *pps = *bps = -1;
        return;
    }
    *pps = (double)(p1 - p0) / dt;
    *bps = (double)(b1 - b0) * 8.0 / dt;
}

int tb_top_run(tb_top_fetch_fn fetch, void *arg, size_t n, double interval_s)
{
    int code = 0;
    json_t *prev = fetch(arg, &code);
    if (prev == NULL) {
        return code;
    }
    if (!isatty(STDOUT_FILENO)) {
        tb_print_top(stdout, prev, -1, -1, n);
        json_decref(prev);
        return 0;
    }
    int keys = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s_saved) == 0;
    if (keys) {
        struct termios raw = s_saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    uint64_t prev_t = tb_time_mono_ns();
    double pps = -1, bps = -1;
    json_t *cur = json_incref(prev);
    while (!s_stop) {
        fputs("\033[H\033[2J", stdout); /* home, clear */
        tb_print_top(stdout, cur, pps, bps, n);
        fputs("\n(q quits)\n", stdout);
        fflush(stdout);
        /* Wait for the next refresh, or a key. */
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, keys ? 1 : 0, (int)(interval_s * 1000));
        if (r > 0) {
            char ch;
            if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q')) {
                break;
            }
            continue; /* another key: redraw only */
        }
        json_t *next = fetch(arg, &code);
        if (next == NULL) {
            break;
        }
        uint64_t now = tb_time_mono_ns();
        s_rates(prev, next, (double)(now - prev_t) / 1e9, &pps, &bps);
        json_decref(prev);
        json_decref(cur);
        prev = json_incref(next);
        cur = next;
        prev_t = now;
    }
    if (keys) {
        tcsetattr(STDIN_FILENO, TCSANOW, &s_saved);
    }
    fputs("\n", stdout);
    json_decref(prev);
    json_decref(cur);
    return code;
}
