/* source — source specifications and lifecycle; see source.h. */
#include "source.h"

#include <stdio.h>
#include <string.h>

tb_source_t *tb_source_new(const char *spec, char *err, size_t errsize)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errsize, "source '%s' is not KIND:ARGUMENT (e.g. file:trace.pcap)", spec);
        return NULL;
    }
    size_t kind_len = (size_t)(colon - spec);
    if (kind_len == 4 && strncmp(spec, "file", 4) == 0) {
        return tb_source_file_new(colon + 1, err, errsize);
    }
    snprintf(err, errsize, "unknown source kind '%.*s' (supported: file)", (int)kind_len, spec);
    return NULL;
}

void tb_source_destroy(tb_source_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_source_t *src = *p;
    *p = NULL;
    src->ops->close(src);
    src->ops->destroy(src);
}
