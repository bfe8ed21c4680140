/* progress.h: one live status line on a terminal ("copying: 12/100 paths,
 * 4.5/120.0 MiB, 12.3 MiB/s, ETA 9s"), redrawn in place at most about
 * ten times a second and erased before any log message is printed.
 * When disabled (not a terminal, or --quiet) it prints nothing at all. */
#ifndef CREBUILD_PROGRESS_H
#define CREBUILD_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct progress;

/* Whether a live line should be shown: stderr is a terminal and the
 * user did not ask for quiet. */
int progress_wanted(int quiet);

/* A progress line on f (stderr in production) labelled verb ("copying").
 * When enabled it hooks into log.h so messages erase the line first;
 * only one progress line can be live at a time. */
struct progress *progress_new(FILE *f, const char *verb, int enabled);
void progress_set_total(struct progress *p, uint64_t paths, uint64_t bytes);
/* Report what is done; redraws if enough time has passed. */
void progress_update(struct progress *p, uint64_t paths, uint64_t bytes);
/* Erase the line (it comes back on the next update). */
void progress_clear(struct progress *p);
/* Erase, unhook and release.  NULL is a no-op. */
void progress_free(struct progress *p);

/* Seconds on the monotonic clock. */
double progress_now(void);

/* Format a status line into buf (at most width - 1 visible characters
 * when width > 0).  rate in bytes per second, < 0 when unknown. */
void progress_format(char *buf,
                     size_t size,
                     const char *verb,
                     uint64_t paths_done,
                     uint64_t paths_total,
                     uint64_t bytes_done,
                     uint64_t bytes_total,
                     double rate,
                     int width);

#endif
