/* tb_test — what several unit tests need: a temporary directory of their own
 * and its removal. Linked into every unit test (tests/CMakeLists.txt). */
#ifndef TB_TEST_H
#define TB_TEST_H

#include <stddef.h>

/* Make a new directory "$TMPDIR/tb-test-NAME-XXXXXX" (TMPDIR or /tmp) and
 * write its path to buf. Returns 0, or -1 (too long, or mkdtemp failed). */
int tb_test_tmpdir(char *buf, size_t size, const char *name);

/* Remove path and everything under it (making directories writable first,
 * so a test that took permissions away still cleans up). Symlinks are
 * removed, never followed. */
void tb_test_rmtree(const char *path);

#endif
