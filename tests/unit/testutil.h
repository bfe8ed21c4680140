/* testutil.h: includes every cmocka test needs, in the order it needs them. */
#ifndef CREBUILD_TESTUTIL_H
#define CREBUILD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#endif
