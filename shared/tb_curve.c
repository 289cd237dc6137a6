/* tb_curve — see tb_curve.h.
 *
 * The file format is ZPL (ZeroMQ property language, rfc.zeromq.org spec 4),
 * the subset CZMQ's certificates use: lines of "name" (a section) or
 * "name = value", nested by four spaces of indentation per level, '#'
 * comments, values quoted with " or '. Z85 keys may contain '#' and '=',
 * which is why CZMQ always quotes them; an unquoted value ends at white space
 * or '#'. Sections and names other than metadata/name and curve/public-key,
 * curve/secret-key are skipped, so certificates with more metadata load. */
#include "tb_curve.h"

#include "tb_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

int tb_curve_available(void)
{
    return zmq_has("curve");
}

/* A Z85 key of 32 bytes. */
static int s_key_valid(const char *z85)
{
    uint8_t raw[32];
    return strlen(z85) == TB_CURVE_KEY_LEN && zmq_z85_decode(raw, z85) != NULL;
}

/* The name as kept: printable, no quotes, at most TB_CURVE_NAME_MAX. */
static void s_clean_name(char *dst, const char *src, size_t len)
{
    static const char ok[] = "._-:@+";
    size_t n = len < TB_CURVE_NAME_MAX ? len : TB_CURVE_NAME_MAX;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        int good = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch != '\0' && strchr(ok, ch) != NULL);
        dst[i] = good ? ch : '_';
    }
    dst[n] = '\0';
}

/* One line's value after '=' (p at the first character after it): quoted
 * or bare, into value (at most size - 1 bytes kept). Returns 0 or TB_EPROTO
 * (an unterminated quote, text after a quoted value). */
static int s_value(const char *p, const char *end, char *value, size_t size, size_t *vlen)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    const char *v = p, *vend;
    if (p < end && (*p == '"' || *p == '\'')) {
        char q = *p++;
        v = p;
        while (p < end && *p != q) {
            p++;
        }
        if (p == end) {
            return TB_EPROTO;
        }
        vend = p++;
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (p < end && *p != '#') {
            return TB_EPROTO;
        }
    } else {
        while (p < end && *p != ' ' && *p != '\t' && *p != '#') {
            p++;
        }
        vend = p;
    }
    size_t n = (size_t)(vend - v);
    *vlen = n;
    n = n < size - 1 ? n : size - 1;
    memcpy(value, v, n);
    value[n] = '\0';
    return 0;
}

int tb_curve_cert_parse(const char *text, size_t len, tb_curve_cert_t *out, char *err,
                        size_t errsize)
{
    memset(out, 0, sizeof *out);
    char section[16] = "";
    int have_secret = 0, lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *lend = eol != NULL ? eol : end;
        lineno++;
        if (lend > p && lend[-1] == '\r') {
            lend--;
        }
        const char *q = p;
        while (q < lend && *q == ' ') {
            q++;
        }
        size_t indent = (size_t)(q - p);
        p = eol != NULL ? eol + 1 : end;
        if (q == lend || *q == '#') {
            continue;
        }
        if (indent % 4 != 0 || *q == '\t') {
            snprintf(err, errsize, "line %d: indentation is not a multiple of four spaces",
                     lineno);
            return TB_EPROTO;
        }
        const char *name = q;
        while (q < lend && *q != ' ' && *q != '\t' && *q != '=' && *q != '#') {
            q++;
        }
        size_t nlen = (size_t)(q - name);
        while (q < lend && (*q == ' ' || *q == '\t')) {
            q++;
        }
        int has_value = q < lend && *q == '=';
        if (indent == 0) {
            snprintf(section, sizeof section, "%.*s", nlen < 15 ? (int)nlen : 15, name);
            continue;
        }
        if (indent != 4 || !has_value) {
            continue; /* deeper levels, or a subsection: not ours */
        }
        char value[256];
        size_t vlen = 0;
        if (s_value(q + 1, lend, value, sizeof value, &vlen) != 0) {
            snprintf(err, errsize, "line %d: unterminated quote or text after a quoted value",
                     lineno);
            return TB_EPROTO;
        }
        if (strcmp(section, "metadata") == 0 && nlen == 4 && memcmp(name, "name", 4) == 0) {
            s_clean_name(out->name, value, strlen(value));
        } else if (strcmp(section, "curve") == 0 &&
                   ((nlen == 10 && memcmp(name, "public-key", 10) == 0) ||
                    (nlen == 10 && memcmp(name, "secret-key", 10) == 0))) {
            int secret = name[0] == 's';
            if (vlen != TB_CURVE_KEY_LEN || !s_key_valid(value)) {
                snprintf(err, errsize, "line %d: the %s key is not a Z85 key of 40 characters",
                         lineno, secret ? "secret" : "public");
                return TB_EPROTO;
            }
            memcpy(secret ? out->secret_key : out->public_key, value, TB_CURVE_KEY_LEN + 1);
            have_secret |= secret;
        }
    }
    if (out->public_key[0] == '\0') {
        snprintf(err, errsize, "no public key (not a CURVE certificate: 'curve' section with "
                               "'public-key = \"...\"')");
        return TB_EPROTO;
    }
    if (have_secret) {
        char derived[TB_CURVE_KEY_LEN + 1];
        if (zmq_curve_public(derived, out->secret_key) != 0 ||
            strcmp(derived, out->public_key) != 0) {
            memset(out->secret_key, 0, sizeof out->secret_key);
            snprintf(err, errsize, "the secret key does not belong to the public key");
            return TB_EPROTO;
        }
    }
    return 0;
}

int tb_curve_cert_load(const char *path, int need_secret, tb_curve_cert_t *out, char *err,
                       size_t errsize)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errsize, "cannot read certificate %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return TB_EIO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TB_CURVE_FILE_MAX) {
        snprintf(err, errsize, "certificate %s: %s", path,
                 S_ISREG(st.st_mode) ? "longer than 64 KiB" : "not a regular file");
        close(fd);
        return TB_EIO;
    }
    char *buf = malloc(TB_CURVE_FILE_MAX);
    if (buf == NULL) {
        close(fd);
        snprintf(err, errsize, "out of memory");
        return TB_EIO;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, TB_CURVE_FILE_MAX - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, errsize, "cannot read certificate %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return TB_EIO;
        }
        if (n == 0 || (len += (size_t)n) == TB_CURVE_FILE_MAX) {
            break;
        }
    }
    close(fd);
    char why[200];
    int rc = tb_curve_cert_parse(buf, len, out, why, sizeof why);
    explicit_bzero(buf, len); /* it may hold a secret */
    free(buf);
    if (rc != 0) {
        snprintf(err, errsize, "certificate %s: %s", path, why);
        return rc;
    }
    if (need_secret && out->secret_key[0] == '\0') {
        snprintf(err, errsize,
                 "certificate %s holds no secret key: a program's own key is its NAME%s file",
                 path, TB_CURVE_SECRET_SUFFIX);
        return TB_EPROTO;
    }
    /* A secret that others may read is no secret: refused, as ssh refuses
     * such keys. Another owner's file (a service's group) may let the group
     * read it. */
    if (need_secret &&
        ((st.st_mode & 0007) != 0 || (st.st_uid == geteuid() && (st.st_mode & 0077) != 0))) {
        explicit_bzero(out, sizeof *out);
        snprintf(err, errsize,
                 "secret certificate %s is accessible by others (mode %04o): chmod 600 %s", path,
                 (unsigned)(st.st_mode & 07777), path);
        return TB_EIO;
    }
    if (!need_secret) {
        memset(out->secret_key, 0, sizeof out->secret_key);
    }
    return 0;
}

int tb_curve_cert_generate(tb_curve_cert_t *out, const char *name)
{
    memset(out, 0, sizeof *out);
    if (zmq_curve_keypair(out->public_key, out->secret_key) != 0) {
        return TB_ENOTSUP;
    }
    s_clean_name(out->name, name, strlen(name));
    return 0;
}

/* Write one file, created exclusively with mode. 0, TB_EINVAL (it exists)
 * or TB_EIO, with the reason in err (the file removed again if it was
 * created). */
static int s_write_new(const char *path, mode_t mode, const char *text, char *err, size_t errsize)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST) {
            snprintf(err, errsize, "%s exists: not overwritten", path);
            return TB_EINVAL;
        }
        snprintf(err, errsize, "cannot create %s: %s", path, strerror(e));
        return TB_EIO;
    }
    size_t len = strlen(text), done = 0;
    int bad = fchmod(fd, mode) != 0; /* the umask may only take bits away: say it exactly */
    while (!bad && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        bad = n < 0;
        done += n > 0 ? (size_t)n : 0;
    }
    bad = bad || fsync(fd) != 0;
    if (close(fd) != 0 || bad) {
        snprintf(err, errsize, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return TB_EIO;
    }
    return 0;
}

int tb_curve_cert_save(const tb_curve_cert_t *cert, const char *path, char *err, size_t errsize)
{
    size_t plen = strlen(path);
    if (plen == 0 || plen > 4000 || cert->secret_key[0] == '\0') {
        snprintf(err, errsize, "%s", plen == 0 ? "empty certificate path" : "nothing to save");
        return TB_EINVAL;
    }
    char secret_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s%s", path, TB_CURVE_SECRET_SUFFIX);
    struct stat st;
    if (stat(path, &st) == 0 || stat(secret_path, &st) == 0) {
        snprintf(err, errsize, "%s exists: not overwritten",
                 stat(path, &st) == 0 ? path : secret_path);
        return TB_EINVAL;
    }
    char when[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    char text[1024];
    char meta[TB_CURVE_NAME_MAX + 32] = "";
    if (cert->name[0] != '\0') {
        snprintf(meta, sizeof meta, "    name = \"%s\"\n", cert->name);
    }
    snprintf(text, sizeof text,
             "#   ZeroMQ CURVE **Secret** Certificate, written by tapbusctl keygen on %s\n"
             "#   Keep it on this host, readable by the program's user only (mode 0600);\n"
             "#   never copy it to another host.\n"
             "\n"
             "metadata\n%s"
             "curve\n"
             "    public-key = \"%s\"\n"
             "    secret-key = \"%s\"\n",
             when, meta, cert->public_key, cert->secret_key);
    int rc = s_write_new(secret_path, 0600, text, err, errsize);
    explicit_bzero(text, sizeof text);
    if (rc != 0) {
        return rc;
    }
    snprintf(text, sizeof text,
             "#   ZeroMQ CURVE Public Certificate, written by tapbusctl keygen on %s\n"
             "#   Copy it to the hosts that must know this key: the servers that allow it,\n"
             "#   or the clients that connect to it.\n"
             "\n"
             "metadata\n%s"
             "curve\n"
             "    public-key = \"%s\"\n",
             when, meta, cert->public_key);
    rc = s_write_new(path, 0644, text, err, errsize);
    if (rc != 0) {
        unlink(secret_path);
        return rc;
    }
    return 0;
}

int tb_curve_server(void *sock, const tb_curve_cert_t *own, const char *zap_domain)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_key, TB_CURVE_KEY_LEN) != 0) {
        return TB_EIO;
    }
    return 0;
}

int tb_curve_client(void *sock, const tb_curve_cert_t *own, const char *server_key)
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, TB_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, own->public_key, TB_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_key, TB_CURVE_KEY_LEN) != 0) {
        return TB_EIO;
    }
    return 0;
}

int tb_curve_endpoint_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0) {
        return 1;
    }
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return 0;
    }
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (colon == NULL || colon == host) {
        return 0;
    }
    char h[256];
    size_t len = (size_t)(colon - host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len >= sizeof h) {
        return 0;
    }
    memcpy(h, host, len);
    h[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (memcmp(a6.s6_addr, mapped, sizeof mapped) == 0 && a6.s6_addr[12] == 127);
    }
    return strcmp(h, "localhost") == 0 || strcmp(h, "lo") == 0;
}
