/* tb-pcap-rate — the raw read-rate baseline for benchmarks.
 *
 * Reads a capture file to its end with libpcap, exactly as the probe's file
 * source opens it (nanosecond precision, pcap_next_ex()), and prints one line
 *
 *   packets=N seconds=S pps=R
 *
 * timed with the monotonic clock from just after the open to the end. With
 * --decode every packet also goes through tb_decode(), so the decoder's cost
 * shows separately from libpcap's; the line then ends with
 * decode_errors=E unsupported=U. Single-threaded, no state beyond main(). */
#include "tb_err.h"
#include "tb_summary.h"
#include "tb_time.h"

#include <getopt.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fprintf(out, "usage: tb-pcap-rate [--decode] FILE\n"
                 "\n"
                 "Read a pcap or pcapng file with libpcap (nanosecond precision) and print\n"
                 "packets=N seconds=S pps=R.\n"
                 "\n"
                 "options:\n"
                 "  --decode   also run tb_decode() on every packet\n"
                 "  --help     this text\n");
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tb-pcap-rate: %s (see --help)\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    int decode = 0;
    enum { O_DECODE = 256, O_HELP };
    static const struct option opts[] = {
        {"decode", no_argument, NULL, O_DECODE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char msg[512];
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DECODE:
            decode = 1;
            break;
        case O_HELP:
            s_usage(stdout);
            return 0;
        default:
            snprintf(msg, sizeof msg, "unknown option '%s'", argv[optind - 1]);
            return s_fail(msg);
        }
    }
    if (optind != argc - 1) {
        return s_fail(optind >= argc ? "no capture file given" : "more than one file given");
    }
    const char *path = argv[optind];

    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *pcap = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (pcap == NULL) {
        fprintf(stderr, "tb-pcap-rate: cannot read %s: %s\n", path, perr);
        return 1;
    }
    int linktype = pcap_datalink(pcap);
    uint64_t packets = 0, decode_errors = 0, unsupported = 0;
    /* Folding a summary field into a checksum keeps the compiler from
     * dropping the decode as dead code. */
    uint64_t fold = 0;
    int rc = 0;
    uint64_t t0 = tb_time_mono_ns();
    for (;;) {
        struct pcap_pkthdr *hdr;
        const u_char *data;
        int r = pcap_next_ex(pcap, &hdr, &data);
        if (r == PCAP_ERROR_BREAK) {
            break; /* end of file */
        }
        if (r != 1) {
            fprintf(stderr, "tb-pcap-rate: %s: %s (after %llu packets)\n", path, pcap_geterr(pcap),
                    (unsigned long long)packets);
            rc = 1;
            break;
        }
        packets++;
        if (decode) {
            /* With nanosecond precision tv_usec holds nanoseconds. */
            uint64_t ts = (uint64_t)hdr->ts.tv_sec * TB_NS_PER_SEC + (uint64_t)hdr->ts.tv_usec;
            tb_summary_t s;
            int drc = tb_decode(linktype, data, hdr->caplen, hdr->len, ts, &s);
            if (drc == TB_ETRUNC || drc == TB_EPROTO) {
                decode_errors++;
            } else if (drc == TB_ENOTSUP) {
                unsupported++;
            }
            fold += s.sport ^ s.proto;
        }
    }
    uint64_t t1 = tb_time_mono_ns();
    pcap_close(pcap);
    double secs = (double)(t1 - t0) / 1e9;
    printf("packets=%llu seconds=%.3f pps=%.0f", (unsigned long long)packets, secs,
           secs > 0 ? (double)packets / secs : 0.0);
    if (decode) {
        printf(" decode_errors=%llu unsupported=%llu", (unsigned long long)decode_errors,
               (unsigned long long)unsupported);
        if (fold == UINT64_MAX) {
            printf(" .");
        }
    }
    printf("\n");
    return rc;
}
