/* capfile — DPMI capture files (libcap_utils' "capfile" format), decoded.
 *
 * The layout, as DPMI's libcap_utils writes it (caputils/file.h struct
 * file_header_t, caputils/capture.h struct cap_header, caputils/picotime.h
 * timepico; written by stream_file_create() and stream_write() in
 * src/stream_file.c / src/stream.c, read back by stream_file_open()):
 *
 *   file header, 216 bytes (version 0.7):
 *     0   magic          u64  0x8f1ae247c53d9b6e
 *     8   version.major  u16
 *     10  version.minor  u16
 *     12  header_offset  u16  size of the header (> 216: extension headers
 *                              follow; the comment starts at this offset)
 *     14  comment_size   u16
 *     16  mpid[200]           MP id(s), NUL padded
 *   then comment_size bytes of comment, then records:
 *   record header (cap_head, packed), 36 bytes:
 *     0   nic[8]    capture interface (CI), NUL padded
 *     8   mampid[8] measurement point (MP) id, NUL padded
 *     16  tv_sec    u32
 *     20  tv_psec   u64  picoseconds within the second
 *     28  len       u32  length on the wire
 *     32  caplen    u32  bytes of the frame that follow
 *   then caplen bytes: an Ethernet frame.
 *
 * Byte order: the reference writes both structures with fwrite() straight
 * from memory and compares the magic without conversion, so every integer is
 * in the writing host's byte order — little-endian for the x86 MPs and
 * capdump hosts DPMI runs on. (Only the live measurement frame's `sendhead`
 * is in network order; the records inside a frame are host order too.) This
 * reader takes the byte order from the magic: little-endian files, and
 * big-endian ones whose magic reads byte-swapped.
 *
 * Versions: files with the magic (0.7) are read, and the older headers,
 * which carry no magic (caputils/file.h struct file_header_05 and
 * file_header_06, recognised by stream_file_open() through its
 * load_legacy_05/06()):
 *   0.5, 212 bytes: u32 comment_size, u32 major (0), u32 minor (5), mpid[200];
 *   0.6, 208 bytes: u32 comment_size, u8 major (0), u8 minor (6), mpid[200],
 *                   2 bytes of the struct's tail padding.
 * The comment starts at the header's end (the reference takes the struct's
 * size as header_offset), and the records are the 36-byte records above:
 * the reference reads them the same for every version (in the 0.5 era the
 * timestamp's seconds were a time_t, 4 bytes on the 32-bit hosts of then).
 * Legacy headers are read little-endian (nothing in them tells the byte
 * order); a magic-bearing file of another version is refused with its
 * version.
 *
 * Plain functions over byte arrays, plus a reader over a FILE; single-threaded. */
#ifndef TB_PROBE_CAPFILE_H
#define TB_PROBE_CAPFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TB_CAPFILE_MAGIC        0x8f1ae247c53d9b6eull
#define TB_CAPFILE_HEADER_LEN   216
#define TB_CAPFILE_HEADER05_LEN 212
#define TB_CAPFILE_HEADER06_LEN 208
#define TB_CAPFILE_REC_LEN      36
#define TB_CAPFILE_CAPLEN_MAX   262144u /* larger captured lengths are corrupt records */

typedef struct {
    int big_endian; /* integers stored big-endian (the magic read swapped) */
    uint16_t major;
    uint16_t minor;
    uint16_t header_offset; /* where the comment starts */
    uint32_t comment_size;  /* u16 in 0.7, u32 in 0.5 and 0.6 */
    char mpid[201];         /* NUL terminated */
} tb_capfile_header_t;

typedef struct {
    char ci[9]; /* capture interface, NUL terminated */
    char mp[9]; /* measurement point, NUL terminated */
    uint32_t sec;
    uint64_t psec;
    uint32_t len;    /* on the wire */
    uint32_t caplen; /* stored */
} tb_capfile_rec_t;

/* 1 if buf (len bytes) starts with the capfile magic in either byte order. */
int tb_capfile_is_magic(const uint8_t *buf, size_t len);

/* Decode a file header (0.7, or 0.5 / 0.6). Returns 0; TB_ETRUNC when len
 * is shorter than the header; TB_EPROTO for something that is not a capfile
 * (or a corrupt header); TB_EVERSION for a capfile of a version not read
 * here (after 0.7). err says which. */
int tb_capfile_header_parse(const uint8_t *buf, size_t len, tb_capfile_header_t *h, char *err,
                            size_t errsize);

/* Decode a record header (TB_CAPFILE_REC_LEN bytes at b). */
void tb_capfile_rec_parse(const uint8_t *b, int big_endian, tb_capfile_rec_t *r);

/* Capture time in ns (picoseconds truncated); saturates at UINT64_MAX. */
uint64_t tb_capfile_rec_ns(const tb_capfile_rec_t *r);

typedef struct tb_capfile tb_capfile_t;

/* Read the header and comment of the capfile open in fp, leaving fp at the
 * first record. Returns 0 with *out (which then owns fp), or an error as
 * tb_capfile_header_parse (TB_ETRUNC: the file ends inside the header or
 * comment; TB_EIO: a read error) and fp stays the caller's. */
int tb_capfile_open(FILE *fp, tb_capfile_t **out, char *err, size_t errsize);

/* The next record: returns 1 with *rec and *data (valid until the next call),
 * 0 at a clean end of file, TB_ETRUNC when the file ends inside a record,
 * TB_EPROTO for a corrupt record (err says why), TB_EIO on a read error. The
 * file position is past the last whole record unless 1 is returned. */
int tb_capfile_next(tb_capfile_t *cf, tb_capfile_rec_t *rec, const uint8_t **data, char *err,
                    size_t errsize);

/* The file read (owned by cf), and the header. */
FILE *tb_capfile_file(const tb_capfile_t *cf);
const tb_capfile_header_t *tb_capfile_header(const tb_capfile_t *cf);

/* Close the file and free; accepts NULL, sets *p = NULL. */
void tb_capfile_destroy(tb_capfile_t **p);

#endif
