/* secret — whether a file holding a secret (the gateway's credentials) is
 * its owner's alone, as ssh asks of its keys.
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
#include <sys/stat.h>

/* fd: the opened file, st: its fstat. Returns 0 when the file is private,
 * 1 when others may read it, 2 when they may only write or execute it;
 * *acl is set when an ACL said so. */
int tb_secret_exposed(int fd, const struct stat *st, int *acl);

#endif
