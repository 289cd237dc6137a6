/* tb-gen-capfile — write a DPMI capfile from a pcap/pcapng file, for tests.
 *
 *   tb-gen-capfile [--version 0.7|0.6|0.5] [--ci NAME[,NAME...]] [--mp NAME]
 *                  [--mpid TEXT] [--comment TEXT] [--big-endian] IN OUT
 *
 * The format is the one probe/capfile.h describes (DPMI libcap_utils, file
 * header struct file_header_t and record header struct cap_header): the
 * 216-byte 0.7 header with its magic, the comment, then one 36-byte record
 * header plus the captured bytes per packet. Integers are little-endian (the
 * byte order of the x86 hosts DPMI's writers run on), or big-endian with
 * --big-endian. Timestamps are the input's, read with nanosecond precision,
 * written as seconds and picoseconds. With several CI names the records take
 * them in turn. --version 0.6 / 0.5 write the older headers (no magic;
 * 208 and 212 bytes, little-endian), followed by the same records.
 *
 * The input must be Ethernet (DPMI records are Ethernet frames). */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CI_MAX 8

typedef struct {
    int be;
    FILE *out;
} wr_t;

static void s_put(wr_t *w, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++) {
        int shift = w->be ? 8 * (bytes - 1 - i) : 8 * i;
        b[i] = (uint8_t)(v >> shift);
    }
    fwrite(b, 1, (size_t)bytes, w->out);
}

static void s_text(wr_t *w, const char *s, size_t n)
{
    uint8_t b[256] = {0};
    size_t len = strlen(s);
    memcpy(b, s, len < n ? len : n);
    fwrite(b, 1, n, w->out);
}

static int s_usage(void)
{
    fprintf(stderr, "usage: tb-gen-capfile [--version 0.7|0.6|0.5] [--ci NAME[,NAME...]] "
                    "[--mp NAME] [--mpid TEXT] [--comment TEXT] [--big-endian] IN OUT\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *version = "0.7";
    char cis[256] = "eth0";
    const char *mp = "mp-1";
    const char *mpid = "tapbus test MP";
    const char *comment = "written by tb-gen-capfile";
    int be = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--big-endian") == 0) {
            be = 1;
            continue;
        }
        if (i + 1 >= argc) {
            return s_usage();
        }
        const char *v = argv[++i];
        if (strcmp(o, "--version") == 0) {
            version = v;
        } else if (strcmp(o, "--ci") == 0) {
            snprintf(cis, sizeof cis, "%s", v);
        } else if (strcmp(o, "--mp") == 0) {
            mp = v;
        } else if (strcmp(o, "--mpid") == 0) {
            mpid = v;
        } else if (strcmp(o, "--comment") == 0) {
            comment = v;
        } else {
            return s_usage();
        }
    }
    if (argc - i != 2) {
        return s_usage();
    }
    if (strcmp(version, "0.7") != 0 && strcmp(version, "0.6") != 0 && strcmp(version, "0.5") != 0) {
        fprintf(stderr, "tb-gen-capfile: unknown version %s (0.7, 0.6 or 0.5)\n", version);
        return 2;
    }
    if (strlen(comment) > 65535) {
        fprintf(stderr, "tb-gen-capfile: comment too long\n");
        return 2;
    }
    char *ci[CI_MAX];
    int nci = 0;
    for (char *save = NULL, *t = strtok_r(cis, ",", &save); t != NULL && nci < CI_MAX;
         t = strtok_r(NULL, ",", &save)) {
        ci[nci++] = t;
    }
    if (nci == 0) {
        return s_usage();
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[i], PCAP_TSTAMP_PRECISION_NANO, perr);
    if (p == NULL) {
        fprintf(stderr, "tb-gen-capfile: %s\n", perr);
        return 1;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        fprintf(stderr, "tb-gen-capfile: %s is not Ethernet (link type %d)\n", argv[i],
                pcap_datalink(p));
        pcap_close(p);
        return 1;
    }
    wr_t w = {.be = be, .out = fopen(argv[i + 1], "wb")};
    if (w.out == NULL) {
        perror(argv[i + 1]);
        pcap_close(p);
        return 1;
    }
    size_t clen = strlen(comment);
    if (strcmp(version, "0.7") == 0) {
        s_put(&w, 0x8f1ae247c53d9b6eull, 8);
        s_put(&w, 0, 2);
        s_put(&w, 7, 2);
        s_put(&w, 216, 2);
        s_put(&w, clen, 2);
        s_text(&w, mpid, 200);
    } else if (strcmp(version, "0.6") == 0) {
        s_put(&w, clen, 4);
        s_put(&w, 0, 1);
        s_put(&w, 6, 1);
        s_text(&w, mpid, 200);
        s_put(&w, 0, 2); /* the struct's tail padding: 208 bytes */
    } else {
        s_put(&w, clen, 4);
        s_put(&w, 0, 4);
        s_put(&w, 5, 4);
        s_text(&w, mpid, 200);
    }
    fwrite(comment, 1, clen, w.out);
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned long n = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
        s_text(&w, ci[n % (unsigned long)nci], 8);
        s_text(&w, mp, 8);
        s_put(&w, (uint32_t)h->ts.tv_sec, 4);
        s_put(&w, (uint64_t)h->ts.tv_usec * 1000u, 8); /* ns -> ps */
        s_put(&w, h->len, 4);
        s_put(&w, h->caplen, 4);
        fwrite(d, 1, h->caplen, w.out);
        n++;
    }
    int bad = rc == PCAP_ERROR;
    if (bad) {
        fprintf(stderr, "tb-gen-capfile: %s: %s\n", argv[i], pcap_geterr(p));
    }
    pcap_close(p);
    if (fclose(w.out) != 0 || ferror(stdout)) {
        perror(argv[i + 1]);
        return 1;
    }
    return bad ? 1 : 0;
}
