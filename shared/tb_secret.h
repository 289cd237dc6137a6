/* tb_secret — files holding a secret (a password, a token, the gateway's
 * credentials): their first line read by one function, and whether such a
 * file is its owner's alone, as ssh asks of its keys.
 *
 * A file passes when neither its group nor others may read, write or
 * execute it. With a POSIX access ACL the mode's group bits show the ACL's
 * mask, not the group's permissions, so the ACL is read: it passes when no
 * group entry and no named user other than the calling process's user
 * grant anything (systemd's LoadCredential= hands a service its file mode
 * 0400, root's, with the entry user:SERVICE-USER:r--). */
#ifndef TB_SECRET_H
#define TB_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* fd: the opened file, st: its fstat. Returns 0 when the file is private,
 * 1 when others may read it, 2 when they may only write or execute it;
 * *acl is set when an ACL said so. */
int tb_secret_exposed(int fd, const struct stat *st, int *acl);

#define TB_SECRET_PRIVATE 1u /* refuse a regular file its group or others may access */

/* The first line of the file at path (without its line end) into buf
 * (size bytes). what names the secret in messages ("credentials"), or NULL.
 * A line that does not fit is refused, never cut short. Returns 0, or a
 * negative tb_err_t with one line in err: "cannot read [WHAT from ]PATH: ...",
 * "PATH is empty", "WHAT in PATH longer than N characters", or (flags
 * TB_SECRET_PRIVATE) "WHAT file PATH is readable by others (mode 0644):
 * chmod 600 PATH". buf is wiped on failure. */
int tb_secret_read(const char *path, const char *what, unsigned flags, char *buf, size_t size,
                   char *err, size_t errsize);

#endif
