/* pcapmap — see pcapmap.h. */
#include "pcapmap.h"

#include "tb_err.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_FILE_HEADER   24
#define S_RECORD_HEADER 16
#define S_MAGIC_USEC    0xa1b2c3d4u
#define S_MAGIC_NSEC    0xa1b23c4du

static uint32_t s_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* native order: the fast path takes only such files */
    return v;
}

/* Link types libpcap hands over as they are in a native-order file (it
 * rewrites some others, e.g. the lengths in Linux USB headers). */
static int s_linktype_plain(int dlt)
{
    switch (dlt) {
    case DLT_NULL:
    case DLT_EN10MB:
    case DLT_RAW:
    case DLT_LOOP:
    case DLT_LINUX_SLL:
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
#endif
#ifdef DLT_IPV4
    case DLT_IPV4:
#endif
#ifdef DLT_IPV6
    case DLT_IPV6:
#endif
        return 1;
    default:
        return 0;
    }
}

static void s_unmap(tb_pcapmap_t *m)
{
    if (m->win != NULL) {
        munmap((void *)m->win, m->win_len);
        m->win = NULL;
        m->win_len = 0;
    }
}

/* Map the window that starts at the page holding file offset `at`. */
static int s_map(tb_pcapmap_t *m, uint64_t at)
{
    s_unmap(m);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = at / page * page;
    if (start >= m->size) {
        return TB_EINVAL;
    }
    uint64_t len = m->size - start;
    if (len > m->window) {
        len = m->window;
    }
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, m->fd, (off_t)start);
    if (p == MAP_FAILED) {
        return TB_EIO;
    }
    (void)madvise(p, (size_t)len, MADV_SEQUENTIAL);
    m->win = p;
    m->win_len = (size_t)len;
    m->win_off = start;
    return 0;
}

int tb_pcapmap_open(tb_pcapmap_t *m, FILE *fp, pcap_t *p)
{
    memset(m, 0, sizeof *m);
    m->fd = -1;
    if (fp == NULL || p == NULL || pcap_is_swapped(p) || pcap_major_version(p) != 2 ||
        pcap_minor_version(p) != 4 || !s_linktype_plain(pcap_datalink(p)) ||
        pcap_get_tstamp_precision(p) != PCAP_TSTAMP_PRECISION_NANO || pcap_snapshot(p) <= 0) {
        return TB_ENOTSUP;
    }
    struct stat sb;
    int fd = fileno(fp);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < S_FILE_HEADER) {
        return TB_ENOTSUP;
    }
    m->fd = fd;
    m->size = (uint64_t)sb.st_size;
    m->window = TB_PCAPMAP_WINDOW;
    if (s_map(m, 0) != 0) {
        return TB_EIO;
    }
    /* The header as libpcap saw it, once more: this byte order's magic (not
     * pcapng, not swapped) and no FCS bits beside the link type. */
    uint32_t magic = s_u32(m->win);
    uint32_t linktype = s_u32(m->win + 20);
    if ((magic != S_MAGIC_USEC && magic != S_MAGIC_NSEC) || (linktype & 0xffff0000u) != 0) {
        tb_pcapmap_close(m);
        return TB_ENOTSUP;
    }
    m->frac_scale = magic == S_MAGIC_USEC ? 1000 : 1;
    m->snaplen = (uint32_t)pcap_snapshot(p);
    m->off = S_FILE_HEADER;
    return 0;
}

int tb_pcapmap_next(tb_pcapmap_t *m, struct pcap_pkthdr *hdr, const uint8_t **data)
{
    if (m->off + S_RECORD_HEADER > m->size) {
        return 0; /* the end, or a header cut short: libpcap's to say */
    }
    if (m->win == NULL || m->off + S_RECORD_HEADER > m->win_off + m->win_len) {
        if (s_map(m, m->off) != 0) {
            return 0;
        }
    }
    const uint8_t *rh = m->win + (m->off - m->win_off);
    uint32_t caplen = s_u32(rh + 8);
    if (caplen > m->snaplen || m->off + S_RECORD_HEADER + caplen > m->size) {
        return 0; /* oversized or cut short: libpcap decides */
    }
    if (m->off + S_RECORD_HEADER + caplen > m->win_off + m->win_len) {
        if (s_map(m, m->off) != 0 || m->off + S_RECORD_HEADER + caplen > m->win_off + m->win_len) {
            return 0; /* larger than a window: libpcap reads it */
        }
        rh = m->win + (m->off - m->win_off);
    }
    /* As libpcap fills it: the stored seconds and fraction are signed
     * 32-bit fields, the fraction scaled to nanoseconds. */
    hdr->ts.tv_sec = (time_t)(int32_t)s_u32(rh);
    hdr->ts.tv_usec = (suseconds_t)((long)(int32_t)s_u32(rh + 4) * (long)m->frac_scale);
    hdr->caplen = caplen;
    hdr->len = s_u32(rh + 12);
    *data = rh + S_RECORD_HEADER;
    m->off += S_RECORD_HEADER + caplen;
    return 1;
}

void tb_pcapmap_close(tb_pcapmap_t *m)
{
    s_unmap(m);
    m->fd = -1;
}
