/* top — see top.h. The terminal is put in non-canonical mode (keys arrive
 * without Enter) and restored on every way out, signals included, and while
 * suspended (Ctrl-Z). The view is cut to the window's size, redrawn when the
 * window changes. */
#include "top.h"

#include "print_stats.h"
#include "tb_time.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios s_saved, s_raw;
static int s_keys; /* stdin is the terminal, in s_raw mode */
static volatile sig_atomic_t s_stop, s_redraw;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_on_winch(int sig)
{
    (void)sig;
    s_redraw = 1;
}

static void s_on_tstp(int sig);

static void s_handle(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigaction(sig, &sa, NULL);
}

/* Ctrl-Z: the terminal as it was while stopped, ours again on SIGCONT. */
static void s_on_tstp(int sig)
{
    int saved = errno;
    if (s_keys) {
        tcsetattr(STDIN_FILENO, TCSANOW, &s_saved);
    }
    s_handle(sig, SIG_DFL);
    raise(sig);
    errno = saved;
}

static void s_on_cont(int sig)
{
    (void)sig;
    int saved = errno;
    if (s_keys) {
        tcsetattr(STDIN_FILENO, TCSANOW, &s_raw);
    }
    s_handle(SIGTSTP, s_on_tstp);
    s_redraw = 1;
    errno = saved;
}

/* Clear the screen and show text, at most rows - 1 lines of at most cols
 * characters (the last row for the footer). */
static void s_show(const char *text, size_t len)
{
    struct winsize ws;
    size_t rows = 24, cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 1 && ws.ws_col > 0) {
        rows = ws.ws_row;
        cols = ws.ws_col;
    }
    fputs("\033[H\033[2J", stdout); /* home, clear */
    size_t line = 0;
    for (size_t at = 0; at < len && line + 1 < rows; line++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t n = end - at < cols ? end - at : cols;
        fwrite(text + at, 1, n, stdout);
        fputc('\n', stdout);
        at = end + 1;
    }
    fputs("(q quits)", stdout);
    fflush(stdout);
}

static void s_draw(const json_t *cur, double pps, double bps, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL) {
        return;
    }
    tb_print_top(m, cur, pps, bps, n);
    if (fclose(m) == 0) {
        s_show(text, len);
    }
    free(text);
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
    *pps = ((double)p1 - (double)p0) / dt; /* no integer overflow on any counters */
    *bps = ((double)b1 - (double)b0) * 8.0 / dt;
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
    s_keys = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s_saved) == 0;
    if (s_keys) {
        s_raw = s_saved;
        s_raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        s_raw.c_cc[VMIN] = 0;
        s_raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &s_raw);
    }
    s_handle(SIGINT, s_on_signal);
    s_handle(SIGTERM, s_on_signal);
    s_handle(SIGHUP, s_on_signal);
    s_handle(SIGQUIT, s_on_signal);
    s_handle(SIGWINCH, s_on_winch);
    s_handle(SIGTSTP, s_on_tstp);
    s_handle(SIGCONT, s_on_cont);
    uint64_t prev_t = tb_time_mono_ns();
    uint64_t period = (uint64_t)(interval_s * 1e9);
    double pps = -1, bps = -1;
    json_t *cur = json_incref(prev);
    s_redraw = 1;
    while (!s_stop) {
        if (s_redraw) {
            s_redraw = 0;
            s_draw(cur, pps, bps, n);
        }
        /* Wait for the next refresh; keys and signals do not delay it. */
        uint64_t t = tb_time_mono_ns();
        if (t < prev_t + period) {
            struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
            int r = poll(&pfd, s_keys ? 1 : 0, (int)((prev_t + period - t) / 1000000 + 1));
            char ch;
            if (r > 0 && ((pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ||
                          (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q')))) {
                break; /* q, or the terminal is gone */
            }
            if (r != 0) {
                continue; /* a key, a signal (s_stop, s_redraw) */
            }
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
        s_redraw = 1;
    }
    if (s_keys) {
        tcsetattr(STDIN_FILENO, TCSANOW, &s_saved);
    }
    s_handle(SIGTSTP, SIG_DFL);
    s_handle(SIGCONT, SIG_DFL);
    fputs("\n", stdout);
    json_decref(prev);
    json_decref(cur);
    return code;
}
