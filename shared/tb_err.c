/* tb_err — see tb_err.h. */
#include "tb_err.h"

const char *tb_strerror(int err)
{
    switch (err) {
    case TB_OK:
        return "success";
    case TB_EINVAL:
        return "invalid argument";
    case TB_ENOMEM:
        return "out of memory";
    case TB_ETRUNC:
        return "truncated input";
    case TB_EPROTO:
        return "malformed input";
    case TB_ENOTSUP:
        return "not supported";
    case TB_ELIMIT:
        return "limit exceeded";
    case TB_EVERSION:
        return "unsupported version";
    case TB_EIO:
        return "I/O error";
    case TB_ETIMEDOUT:
        return "timed out";
    case TB_EAGAIN:
        return "resource temporarily unavailable";
    case TB_ENOENT:
        return "not found";
    default:
        return "unknown error";
    }
}
