/* tb_test — see tb_test.h. */
#include "tb_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tb_test_tmpdir(char *buf, size_t size, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }
    int n = snprintf(buf, size, "%s/tb-test-%s-XXXXXX", tmp, name);
    if (n < 0 || (size_t)n >= size) {
        return -1;
    }
    return mkdtemp(buf) == NULL ? -1 : 0;
}

void tb_test_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    chmod(path, 0700);
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
                continue;
            }
            char sub[4096];
            int n = snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            if (n > 0 && (size_t)n < sizeof sub) {
                tb_test_rmtree(sub);
            }
        }
        closedir(d);
    }
    rmdir(path);
}
