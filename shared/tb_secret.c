/* tb_secret — see tb_secret.h. */
#include "tb_secret.h"

#include "tb_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The kernel's form of an access ACL (linux/posix_acl_xattr.h): a 4-byte
 * version (2), then 8-byte entries {tag, permissions, id}, little-endian. */
#define ACL_XATTR   "system.posix_acl_access"
#define ACL_VERSION 2u
enum {
    TAG_USER_OBJ = 0x01,
    TAG_USER = 0x02,
    TAG_GROUP_OBJ = 0x04,
    TAG_GROUP = 0x08,
    TAG_MASK = 0x10,
    TAG_OTHER = 0x20
};
#define ACL_MAX_ENTRIES 64

static unsigned s_le16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t s_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What the others' entries of an ACL grant (rwx bits, or'ed), or -1 when
 * the ACL cannot be read as such (then the mode decides). */
static int s_acl_others(int fd)
{
    unsigned char buf[4 + 8 * ACL_MAX_ENTRIES];
    ssize_t n = fgetxattr(fd, ACL_XATTR, buf, sizeof buf);
    if (n < 4 || (n - 4) % 8 != 0 || s_le32(buf) != ACL_VERSION) {
        return -1; /* none (ENODATA, ENOTSUP), or one we do not know */
    }
    unsigned mask = 7, grants = 0;
    for (ssize_t i = 4; i < n; i += 8) {
        if (s_le16(buf + i) == TAG_MASK) {
            mask = s_le16(buf + i + 2) & 7;
        }
    }
    uid_t me = geteuid();
    for (ssize_t i = 4; i < n; i += 8) {
        unsigned tag = s_le16(buf + i), perm = s_le16(buf + i + 2) & 7;
        uint32_t id = s_le32(buf + i + 4);
        if (tag == TAG_GROUP_OBJ || tag == TAG_GROUP || (tag == TAG_USER && id != (uint32_t)me)) {
            grants |= perm & mask; /* the mask limits these */
        } else if (tag == TAG_OTHER) {
            grants |= perm;
        }
    }
    return (int)grants;
}

int tb_secret_exposed(int fd, const struct stat *st, int *acl)
{
    int grants = s_acl_others(fd);
    *acl = grants >= 0;
    if (grants < 0) {
        unsigned m = (unsigned)st->st_mode;
        grants = (int)(((m >> 3) | m) & 7); /* group's and others' bits */
    }
    return grants == 0 ? 0 : (grants & 4) != 0 ? 1 : 2;
}

int tb_secret_read(const char *path, const char *what, unsigned flags, char *buf, size_t size,
                   char *err, size_t errsize)
{
    const char *w = what != NULL ? what : "secret";
    FILE *f = fopen(path, "r");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(err, errsize, "cannot read %s%s%s: %s", what ? what : "", what ? " from " : "",
                 path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return TB_EINVAL;
    }
    /* Only files: a pipe (<(...)) or a terminal is nobody else's to read. */
    int acl = 0;
    int exposed = (flags & TB_SECRET_PRIVATE) && S_ISREG(st.st_mode)
                      ? tb_secret_exposed(fileno(f), &st, &acl)
                      : 0;
    if (exposed != 0) {
        fclose(f);
        snprintf(err, errsize, "%s file %s is %s by others (mode %04o%s): %s%s%schmod 600 %s", w,
                 path, exposed == 1 ? "readable" : "accessible", (unsigned)(st.st_mode & 07777),
                 acl ? " and an ACL" : "", acl ? "setfacl -b " : "", acl ? path : "",
                 acl ? " && " : "", path);
        return TB_EINVAL;
    }
    if (size < 2 || fgets(buf, (int)size, f) == NULL) {
        int ioerr = ferror(f);
        fclose(f);
        if (ioerr) {
            snprintf(err, errsize, "cannot read %s%s%s", what ? what : "", what ? " from " : "",
                     path);
        } else {
            snprintf(err, errsize, "%s is empty", path);
        }
        return TB_EINVAL;
    }
    fclose(f);
    size_t len = strcspn(buf, "\r\n");
    if (buf[len] == '\0' && len == size - 1) {
        explicit_bzero(buf, size);
        snprintf(err, errsize, "%s in %s longer than %zu characters", w, path, size - 2);
        return TB_EINVAL;
    }
    buf[len] = '\0';
    return 0;
}
