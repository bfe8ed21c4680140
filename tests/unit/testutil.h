/* testutil.h: includes every cmocka test needs, in the order it needs them,
 * and small helpers several tests share. */
#ifndef CREBUILD_TESTUTIL_H
#define CREBUILD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

/* Create (or replace) path holding text, with mode (0755: a stub
 * program). */
static inline void
write_test_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

#endif
