/* tb_err — error codes shared by every tapbus module.
 *
 * Functions return 0 on success or a negative tb_err_t. tb_strerror() gives a
 * short static description; it never allocates and is thread-safe. */
#ifndef TB_ERR_H
#define TB_ERR_H

typedef enum {
    TB_OK = 0,
    TB_EINVAL = -1,   /* invalid argument or configuration */
    TB_ENOMEM = -2,   /* allocation failed or a configured limit was hit */
    TB_ETRUNC = -3,   /* input ended before a structure was complete */
    TB_EPROTO = -4,   /* input is malformed: a field has an impossible value */
    TB_ENOTSUP = -5,  /* valid input of a kind this build does not handle */
    TB_ELIMIT = -6,   /* input exceeds a size, count or depth limit */
    TB_EVERSION = -7, /* unknown wire or protocol version */
    TB_EIO = -8,      /* system call, file or socket error (see errno/log) */
    TB_ETIMEDOUT = -9,
    TB_EAGAIN = -10, /* try again later (full queue, bus at its high-water mark) */
    TB_ENOENT = -11, /* no such stream, file or object */
} tb_err_t;

/* Static description of an error code; unknown codes give "unknown error". */
const char *tb_strerror(int err);

#endif
