/* secret — see secret.h. */
#include "secret.h"

#include <errno.h>
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
