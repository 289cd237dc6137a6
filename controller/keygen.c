/* keygen — see keygen.h. */
#include "keygen.h"

#include "fanout.h"
#include "tb_curve.h"

#include <stdio.h>
#include <string.h>

/* keygen NAME: a key pair into NAME and NAME_secret. */
int tb_keygen_run(const tb_cmd_words_t *words)
{
    if (words->n != 1) {
        return tb_cmd_usage_error(
            "keygen needs exactly one NAME (NAME and NAME_secret are written)");
    }
    const char *path = words->word[0];
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    tb_curve_cert_t cert;
    char err[512];
    if (base[0] == '\0') {
        return tb_cmd_usage_error("keygen: NAME is a file name, not a directory");
    }
    if (tb_curve_cert_generate(&cert, base) != 0) {
        fprintf(stderr, "tapbusctl: keygen: this libzmq has no CURVE support\n");
        return TB_CALL_REFUSED;
    }
    int rc = tb_curve_cert_save(&cert, path, err, sizeof err);
    explicit_bzero(&cert.secret_key, sizeof cert.secret_key);
    if (rc != 0) {
        fprintf(stderr, "tapbusctl: keygen: %s\n", err);
        return TB_CALL_REFUSED;
    }
    printf("public key %s\n"
           "wrote %s (public certificate: copy it to the hosts that must know this key)\n"
           "wrote %s%s (secret certificate, mode 0600: keep it here, give it with --curve-key)\n",
           cert.public_key, path, path, TB_CURVE_SECRET_SUFFIX);
    return 0;
}
