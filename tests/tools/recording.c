/* recording — see recording.h. */
#include "recording.h"

#include <stdio.h>
#include <stdlib.h>

uint8_t *tb_rec_load(const char *path, size_t *len)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        return NULL;
    }
    size_t cap = 1 << 20, got;
    uint8_t *buf = malloc(cap);
    *len = 0;
    while (buf != NULL && (got = fread(buf + *len, 1, cap - *len, in)) > 0) {
        *len += got;
        if (*len == cap) {
            uint8_t *more = realloc(buf, cap * 2);
            if (more == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            cap *= 2;
        }
    }
    if (buf != NULL && ferror(in)) {
        free(buf);
        buf = NULL;
    }
    fclose(in);
    return buf;
}

int tb_rec_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **body, uint32_t *n)
{
    if (len - *off < 4) {
        return 0; /* fewer bytes than a length: nothing more */
    }
    const uint8_t *p = buf + *off;
    uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    if (k > len - *off - 4) {
        return -1;
    }
    *body = p + 4;
    *n = k;
    *off += 4 + (size_t)k;
    return 1;
}
