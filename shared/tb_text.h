/* tb_text — bounded text handling that never splits a UTF-8 character. */
#ifndef TB_TEXT_H
#define TB_TEXT_H

#include <stddef.h>

/* Length of the longest prefix of s (NUL-terminated) that is at most max
 * bytes long and does not end inside a UTF-8 multi-byte character. */
size_t tb_utf8_prefix(const char *s, size_t max);

/* Copy src into dst[size] (NUL-terminated), cut at a character boundary. */
void tb_text_copy(char *dst, size_t size, const char *src);

#endif
