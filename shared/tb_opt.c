/* tb_opt — see tb_opt.h. */
#include "tb_opt.h"

#include "tb_err.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/signalfd.h>

int tb_opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0])) {
        return TB_EINVAL;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return TB_EINVAL;
    }
    *out = (uint64_t)v;
    return 0;
}

int tb_opt_stop_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -1;
    }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
