/* events.h: machine-readable progress for CI (--events FILE).  One JSON
 * object per line (newline-delimited JSON), flushed as soon as it is
 * written.  Every object starts with "type" and "time" (RFC 3339, UTC,
 * milliseconds: "2026-11-26T06:30:00.123Z"); the other keys depend on the
 * type and are listed below and in crebuild(8), section EVENTS.  String
 * values are always valid JSON: control characters are escaped and bytes
 * that are not UTF-8 become U+FFFD.  A NULL string becomes JSON null.
 *
 * Writing events never fails a deploy: the first write error is logged
 * once as a warning and every later event is dropped.  Every function
 * accepts a NULL struct events (no events wanted) and then does nothing.
 * The only module that knows the event format is events.c. */
#ifndef CREBUILD_EVENTS_H
#define CREBUILD_EVENTS_H

#include <stddef.h>

struct events;
struct diff_result;

/* Open the event stream.  path "-" is our standard output (which should
 * then carry nothing else); any other path is created with mode 0600 or
 * truncated (an existing file, FIFO or /dev/fd/N keeps its mode).  path
 * NULL returns a disabled object whose emitters do nothing.  Returns NULL
 * only on failure, with *err set to a message the caller must free. */
struct events *events_open(const char *path, char **err);

/* Flush and close (standard output is flushed, not closed).  NULL is a
 * no-op. */
void events_close(struct events *ev);

/* 1 when events go to our standard output (primary output such as a store
 * path must then go elsewhere), else 0. */
int events_to_stdout(const struct events *ev);

/* {"type":"phase-start","time":T,"phase":P,"host":H}
 * phase is one of eval, build, copy, profile, activate, confirm, health,
 * rollback; host is the host's name as the user gave it (or NULL). */
void events_phase_start(struct events *ev, const char *phase, const char *host);

/* {"type":"phase-end",...,"phase":P,"host":H,"ok":B,"seconds":S}
 * seconds is rounded to milliseconds. */
void events_phase_end(struct events *ev,
                      const char *phase,
                      const char *host,
                      int ok,
                      double seconds);

/* {"type":"copy-stats",...,"host":H,"paths_total":N,"paths_present":N,
 *  "paths_copied":N,"bytes":N,"seconds":S}
 * host is the receiving host; bytes are NAR bytes sent. */
void events_copy_stats(struct events *ev,
                       const char *host,
                       unsigned long paths_total,
                       unsigned long paths_present,
                       unsigned long paths_copied,
                       unsigned long long bytes,
                       double seconds);

/* {"type":"check",...,"kind":"url"|"cmd","target":URL_OR_CMD,"ok":B,
 *  "detail":D}
 * One per health check when it passes, and one for each check still
 * failing when the health timeout expires (detail: its last answer). */
void events_check(struct events *ev,
                  const char *kind,
                  const char *target,
                  int ok,
                  const char *detail);

/* {"type":"rollback",...,"host":H,"reason":R} */
void events_rollback(struct events *ev, const char *host, const char *reason);

/* {"type":"result",...,"result":"success"|"rolled-back"|"failed",
 *  "exit_status":N,"message":M}
 * The last event of a run. */
void events_result(struct events *ev,
                   const char *result,
                   int exit_status,
                   const char *message);

/* {"type":"log",...,"level":"error"|"warning"|"info"|"debug"|"trace",
 *  "message":M}   level is a log.h LOG_* value. */
void events_log(struct events *ev, int level, const char *msg);

/* {"type":"diff",...,"host":H,
 *  "before":{"paths":N,"bytes":N},"after":{"paths":N,"bytes":N},
 *  "changes":[{"pname":P,"change":"upgrade"|"downgrade"|"change"|"add"|
 *              "remove","before":[V...],"after":[V...],"size_delta":N}]}
 * The package diff of --diff (see diff.h); host is the target. */
void
events_diff(struct events *ev, const char *host, const struct diff_result *d);

/* s with every byte sequence that is not valid UTF-8 (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF) replaced by
 * U+FFFD, one per offending byte.  Caller frees.  Exposed for tests. */
char *events_utf8_sanitize(const char *s);

/* Format an RFC 3339 UTC time with milliseconds into buf (at least 25
 * bytes).  Exposed for tests. */
void events_format_time(long long sec, long nsec, char *buf, size_t size);

#endif
