/* tb_text — see tb_text.h. */
#include "tb_text.h"

#include <string.h>

size_t tb_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) {
        return n;
    }
    n = max;
    /* Step back over continuation bytes (10xxxxxx) to the character's lead
     * byte, and cut before it. */
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
        n--;
    }
    return n;
}

void tb_text_copy(char *dst, size_t size, const char *src)
{
    if (size == 0) {
        return;
    }
    size_t n = tb_utf8_prefix(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
