/* print_stats — see print_stats.h. */
#include "print_stats.h"

#include "jfield.h"
#include "print.h"

#include <string.h>

/* The measurement frames a DPMI stream lost, on a line of their own indented
 * by indent spaces (only dpmi sources have frames). */
static void s_frames_lost(FILE *out, const json_t *loss, int indent)
{
    json_int_t lost = tb_jint(loss, "frames_lost"), bad = tb_jint(loss, "frames_bad");
    if (lost == 0 && bad == 0) {
        return;
    }
    fprintf(out,
            "%*s%" JSON_INTEGER_FORMAT " measurement frames lost, %" JSON_INTEGER_FORMAT
            " bad frames dropped\n",
            indent, "", lost, bad);
}

/* "addr:port", "[v6addr]:port", just the address when the protocol has no
 * ports, or "-" for non-IP. */
static const char *s_endpoint(char *buf, size_t size, const json_t *o, const char *addr_key,
                              const char *port_key)
{
    const char *addr = tb_jstr(o, addr_key);
    const char *cls = tb_jstr(o, "class");
    int ports = strcmp(cls, "tcp") == 0 || strcmp(cls, "udp") == 0 || tb_jint(o, port_key) != 0;
    if (addr[0] == '\0') {
        snprintf(buf, size, "-");
    } else if (!ports || strcmp(cls, "icmp") == 0 || strcmp(cls, "icmpv6") == 0) {
        snprintf(buf, size, "%s", addr);
    } else if (strchr(addr, ':') != NULL) {
        snprintf(buf, size, "[%s]:%" JSON_INTEGER_FORMAT, addr, tb_jint(o, port_key));
    } else {
        snprintf(buf, size, "%s:%" JSON_INTEGER_FORMAT, addr, tb_jint(o, port_key));
    }
    return buf;
}

/* A column's width grown to fit text, up to that of "[IPv6]:port". */
static int s_widest(int width, const char *text)
{
    size_t n = strlen(text);
    return n > (size_t)width ? (n < 47 ? (int)n : 47) : width;
}

static void s_packet(FILE *out, const char *label, const json_t *p)
{
    if (!json_is_object(p)) {
        fprintf(out, "%-14s -\n", label);
        return;
    }
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT " bytes at %s  %s", label, tb_jint(p, "len"),
            tb_jstr(p, "time"), tb_jstr(p, "class"));
    if (tb_jstr(p, "src")[0]) {
        char src[80], dst[80];
        s_endpoint(src, sizeof src, p, "src", "sport");
        s_endpoint(dst, sizeof dst, p, "dst", "dport");
        fprintf(out, " %s -> %s", src, dst);
    }
    fputc('\n', out);
}

/* The breakdown by DPMI measurement point and capture interface, when the
 * stream has one. */
static void s_print_points(FILE *out, const json_t *d)
{
    const json_t *points = json_object_get(d, "points");
    if (!json_is_array(points)) {
        return;
    }
    fprintf(out, "\n%-8s %-8s %12s %14s\n", "MP", "CI", "PACKETS", "BYTES");
    size_t i;
    const json_t *p;
    json_array_foreach(points, i, p)
    {
        fprintf(out, "%-8s %-8s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n",
                tb_jstr(p, "mp"), tb_jstr(p, "ci"), tb_jint(p, "packets"), tb_jint(p, "bytes"));
    }
    const json_t *over = json_object_get(d, "points_overflow");
    if (tb_jint(over, "packets") > 0) {
        fprintf(out, "%-17s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n",
                "(more points)", tb_jint(over, "packets"), tb_jint(over, "bytes"));
    }
    const json_t *unnamed = json_object_get(d, "points_unnamed");
    if (tb_jint(unnamed, "packets") > 0) {
        fprintf(out, "%-17s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n", "(no point)",
                tb_jint(unnamed, "packets"), tb_jint(unnamed, "bytes"));
    }
}

static void s_print_stats(FILE *out, const json_t *d)
{
    fprintf(out, "%-14s %s (%s)\n", "stream", tb_jstr(d, "stream"), tb_jstr(d, "state"));
    if (tb_jstr(d, "reason")[0] != '\0') {
        fprintf(out, "%-14s %s\n", "reason", tb_jstr(d, "reason"));
    }
    if (tb_jstr(d, "collector")[0] != '\0') {
        fprintf(out, "%-14s %s\n", "collector", tb_jstr(d, "collector"));
    }
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT "\n", "packets", tb_jint(d, "packets"));
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT "\n", "bytes", tb_jint(d, "bytes"));
    fprintf(out, "%-14s %s .. %s\n", "capture time", tb_jstr(d, "first_time"),
            tb_jstr(d, "last_time"));
    fprintf(out, "%-14s %.1f packets/s, %.0f bits/s\n", "average", tb_jnum(d, "avg_pps"),
            tb_jnum(d, "avg_bps"));
    if (tb_jint(d, "ts_outliers") > 0) {
        fprintf(out,
                "%-14s %" JSON_INTEGER_FORMAT
                " packets with an absurd time (counted at the stream's)\n",
                "ts outliers", tb_jint(d, "ts_outliers"));
    }
    s_packet(out, "smallest", json_object_get(d, "min_packet"));
    s_packet(out, "largest", json_object_get(d, "max_packet"));
    s_packet(out, "last", json_object_get(d, "last_packet"));

    const json_t *loss = json_object_get(d, "loss");
    fprintf(out,
            "%-14s %" JSON_INTEGER_FORMAT " gaps, %" JSON_INTEGER_FORMAT
            " lost packets, %" JSON_INTEGER_FORMAT " capture drops, %" JSON_INTEGER_FORMAT
            " bus drops, %" JSON_INTEGER_FORMAT " bad messages, %" JSON_INTEGER_FORMAT
            " files skipped\n",
            "loss", tb_jint(loss, "seq_gaps"), tb_jint(loss, "lost_packets"),
            tb_jint(loss, "capture_drops"), tb_jint(loss, "bus_drops"),
            tb_jint(loss, "bad_messages"), tb_jint(loss, "files_skipped"));
    s_frames_lost(out, loss, 15);

    fprintf(out, "\n%-8s %12s %14s\n", "PROTOCOL", "PACKETS", "BYTES");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(d, "protocols"), key, v)
    {
        fprintf(out, "%-8s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n", key,
                tb_jint(v, "packets"), tb_jint(v, "bytes"));
    }

    s_print_points(out, d);

    fprintf(out, "\n%-4s %-41s %-41s %-6s %10s %12s\n", "RANK", "SOURCE", "DESTINATION", "PROTO",
            "PACKETS", "BYTES");
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(d, "top_flows"), i, f)
    {
        char src[80], dst[80];
        s_endpoint(src, sizeof src, f, "src", "sport");
        s_endpoint(dst, sizeof dst, f, "dst", "dport");
        fprintf(out,
                "%-4zu %-41s %-41s %-6s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
                i + 1, src, dst, tb_jstr(f, "class"), tb_jint(f, "packets"), tb_jint(f, "bytes"));
    }
    fprintf(out, "\n%-4s %-41s %10s %12s\n", "RANK", "HOST", "PACKETS", "BYTES");
    json_array_foreach(json_object_get(d, "top_hosts"), i, f)
    {
        fprintf(out, "%-4zu %-41s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n", i + 1,
                tb_jstr(f, "addr"), tb_jint(f, "packets"), tb_jint(f, "bytes"));
    }
    json_int_t fb = tb_jint(d, "top_flows_error_bound");
    json_int_t hb = tb_jint(d, "top_hosts_error_bound");
    if (fb > 0 || hb > 0) {
        fprintf(out,
                "(top counts are estimates: flows high by at most %" JSON_INTEGER_FORMAT
                ", hosts by at most %" JSON_INTEGER_FORMAT " packets)\n",
                fb, hb);
    }
}

static void s_print_top(FILE *out, const json_t *d, double pps, double bps, size_t n)
{
    char rate[64];
    if (pps < 0) {
        snprintf(rate, sizeof rate, "measuring...");
    } else {
        snprintf(rate, sizeof rate, "%.0f packets/s, %.3f Mbit/s", pps, bps / 1e6);
    }
    fprintf(out, "%s (%s)  now %s\n", tb_jstr(d, "stream"), tb_jstr(d, "state"), rate);
    fprintf(out,
            "total %" JSON_INTEGER_FORMAT " packets, %" JSON_INTEGER_FORMAT
            " bytes; capture average %.1f packets/s\n",
            tb_jint(d, "packets"), tb_jint(d, "bytes"), tb_jnum(d, "avg_pps"));
    const json_t *loss = json_object_get(d, "loss");
    fprintf(out,
            "loss  %" JSON_INTEGER_FORMAT " gaps, %" JSON_INTEGER_FORMAT
            " lost packets, %" JSON_INTEGER_FORMAT " capture drops, %" JSON_INTEGER_FORMAT
            " bus drops",
            tb_jint(loss, "seq_gaps"), tb_jint(loss, "lost_packets"),
            tb_jint(loss, "capture_drops"), tb_jint(loss, "bus_drops"));
    if (tb_jint(loss, "files_skipped") > 0) { /* only file and directory sources skip files */
        fprintf(out, ", %" JSON_INTEGER_FORMAT " files skipped", tb_jint(loss, "files_skipped"));
    }
    fputs("\n", out);
    s_frames_lost(out, loss, 6);
    fputs("\n", out);
    double total = (double)tb_jint(d, "packets");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(d, "protocols"), key, v)
    {
        double share = total > 0 ? (double)tb_jint(v, "packets") / total : 0.0;
        share = share > 1.0 ? 1.0 : share > 0.0 ? share : 0.0; /* counts from the network */
        char bar[41];
        int w = (int)(share * 40.0 + 0.5);
        memset(bar, '#', (size_t)w);
        bar[w] = '\0';
        fprintf(out, "%-7s %5.1f%% %-40s %12" JSON_INTEGER_FORMAT "\n", key, share * 100.0, bar,
                tb_jint(v, "packets"));
    }
    /* Address columns as wide as what they show (IPv4 flows fit in 80
     * columns), at most 47 characters; a longer value pushes its row. */
    const json_t *flows = json_object_get(d, "top_flows");
    const json_t *hosts = json_object_get(d, "top_hosts");
    int ws = 6, wd = 11, wh = 4;
    size_t i;
    const json_t *f;
    char src[80], dst[80];
    json_array_foreach(flows, i, f)
    {
        if (i >= n) {
            break;
        }
        ws = s_widest(ws, s_endpoint(src, sizeof src, f, "src", "sport"));
        wd = s_widest(wd, s_endpoint(dst, sizeof dst, f, "dst", "dport"));
    }
    json_array_foreach(hosts, i, f)
    {
        if (i >= n) {
            break;
        }
        wh = s_widest(wh, tb_jstr(f, "addr"));
    }
    fprintf(out, "\n%-4s %-*s %-*s %-6s %10s\n", "TOP", ws, "SOURCE", wd, "DESTINATION", "PROTO",
            "PACKETS");
    json_array_foreach(flows, i, f)
    {
        if (i >= n) {
            break;
        }
        s_endpoint(src, sizeof src, f, "src", "sport");
        s_endpoint(dst, sizeof dst, f, "dst", "dport");
        fprintf(out, "%-4zu %-*s %-*s %-6s %10" JSON_INTEGER_FORMAT "\n", i + 1, ws, src, wd, dst,
                tb_jstr(f, "class"), tb_jint(f, "packets"));
    }
    fprintf(out, "\n%-4s %-*s %10s %12s\n", "TOP", wh, "HOST", "PACKETS", "BYTES");
    json_array_foreach(hosts, i, f)
    {
        if (i >= n) {
            break;
        }
        fprintf(out, "%-4zu %-*s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n", i + 1,
                wh, tb_jstr(f, "addr"), tb_jint(f, "packets"), tb_jint(f, "bytes"));
    }
}

void tb_print_stats(FILE *out, const json_t *data)
{
    json_t *d = tb_print_safe(data);
    s_print_stats(out, d);
    json_decref(d);
}

void tb_print_top(FILE *out, const json_t *stats, double pps, double bps, size_t n)
{
    json_t *d = tb_print_safe(stats);
    s_print_top(out, d, pps, bps, n);
    json_decref(d);
}
