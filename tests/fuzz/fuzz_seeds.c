/* fuzz_seeds DIR: write seed inputs that cannot live in the repository as
 * they are:
 *   DIR/decode/: the first frames of every capture of the corpus
 *     (tests/data/corpus) whose link type tb_decode reads, each prefixed
 *     with fuzz_decode's link byte;
 *   DIR/ctl/: encoded control requests, one per command.
 * The directories must exist. Exits 0, or 1 with a message. */
#include "fuzz_links.h"
#include "tb_ctl.h"

#include <dirent.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FRAMES_PER_CAPTURE = 4, SNAP = 2048 };

static int s_write(const char *dir, const char *sub, const char *name, int n, const void *a,
                   size_t alen, const void *b, size_t blen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s-%d", dir, sub, name, n);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(a, 1, alen, f) != alen || fwrite(b, 1, blen, f) != blen ||
        fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static int s_capture(const char *dir, const char *path, const char *name)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, err);
    if (p == NULL) {
        return 0; /* not every file of the corpus opens; those are skipped */
    }
    int dlt = pcap_datalink(p);
    unsigned char link = 0xff;
    for (size_t i = 0; i < FUZZ_NLINKS; i++) {
        if (fuzz_links[i] == dlt) {
            link = (unsigned char)i;
        }
    }
    int rc = 0;
    struct pcap_pkthdr *h;
    const unsigned char *frame;
    for (int n = 0; link != 0xff && rc == 0 && n < FRAMES_PER_CAPTURE; n++) {
        if (pcap_next_ex(p, &h, &frame) != 1) {
            break;
        }
        rc = s_write(dir, "decode", name, n, &link, 1, frame, h->caplen < SNAP ? h->caplen : SNAP);
    }
    pcap_close(p);
    return rc;
}

static int s_ctl(const char *dir)
{
    static const char *cmds[] = {"status", "stats", "probes", "streams", "db",
                                 "start",  "stop",  "forget"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        static tb_ctl_request_t req;
        memset(&req, 0, sizeof req);
        snprintf(req.cmd, sizeof req.cmd, "%s", cmds[i]);
        if (i >= 5) {
            tb_ctl_request_add_stream(&req, "lan");
            tb_ctl_request_add_stream(&req, "dmz-2");
        }
        req.timeout_ms = 5000;
        uint8_t out[4096];
        size_t len = 0;
        if (tb_ctl_request_encode(&req, out, sizeof out, &len) != 0) {
            fprintf(stderr, "fuzz_seeds: cannot encode a '%s' request\n", cmds[i]);
            return -1;
        }
        if (s_write(dir, "ctl", cmds[i], 0, out, len, "", 0) != 0) {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 1;
    }
    DIR *d = opendir(TB_TEST_CORPUS);
    if (d == NULL) {
        fprintf(stderr, "fuzz_seeds: cannot read %s\n", TB_TEST_CORPUS);
        return 1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", TB_TEST_CORPUS, e->d_name);
        rc = s_capture(argv[1], path, e->d_name);
    }
    closedir(d);
    if (rc == 0) {
        rc = s_ctl(argv[1]);
    }
    return rc == 0 ? 0 : 1;
}
