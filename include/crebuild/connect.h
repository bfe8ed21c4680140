/* connect.h: from the command line and environment (NIX_SSHOPTS,
 * NIX_SUDOOPTS) to a connected remote struct host. */
#ifndef CREBUILD_CONNECT_H
#define CREBUILD_CONNECT_H

#include "crebuild/cli.h"
#include "crebuild/host.h"

/* Connect and log in to hoststr with the elevation o asks for.  With a
 * password, check it before returning.  NULL (after a one-line error) on
 * failure. */
struct host *remote_connect(const struct cr_opts *o,
                            const char *hoststr,
                            const char *password);

/* Check hoststr, NIX_SSHOPTS and NIX_SUDOOPTS as remote_connect reads
 * them, before anything runs: 0, or -1 after a one-line error. */
int remote_check_args(const char *hoststr);

#endif
