/* tb_point — see tb_point.h. */
#include "tb_point.h"

#include <string.h>

/* name cut to TB_POINT_NAME_MAX bytes into dst[TB_POINT_NAME_MAX + 1]. */
static void s_cut(char *dst, const char *name)
{
    size_t n = strnlen(name, TB_POINT_NAME_MAX);
    memcpy(dst, name, n);
    dst[n] = '\0';
}

uint16_t tb_point_table_intern(tb_point_table_t *t, const char *mp, const char *ci)
{
    char m[TB_POINT_NAME_MAX + 1], c[TB_POINT_NAME_MAX + 1];
    s_cut(m, mp);
    s_cut(c, ci);
    /* A linear search: DPMI streams carry a handful of interfaces, and the
     * pair met first (searched first) is usually the busiest. */
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->p[i].ci, c) == 0 && strcmp(t->p[i].mp, m) == 0) {
            return (uint16_t)(i + 1);
        }
    }
    if (t->n >= TB_POINTS_MAX) {
        t->overflow++;
        return 0;
    }
    memcpy(t->p[t->n].mp, m, sizeof m);
    memcpy(t->p[t->n].ci, c, sizeof c);
    t->n++;
    return (uint16_t)t->n;
}

void tb_point_table_reset(tb_point_table_t *t)
{
    memset(t, 0, sizeof *t);
}
