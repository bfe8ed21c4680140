/* health.h: health checks after activation (--health-check URL,
 * --health-check-cmd CMD).  health.c is the only file that includes
 * <curl/curl.h>.
 *
 * URL checks run on the deploying machine: an HTTP(S) GET, healthy when
 * the final status is 2xx.  Up to 5 redirects are followed (http and
 * https only); a redirect loop or a 3xx without a usable Location is
 * unhealthy.  Each request may take at most 10 s (less when the overall
 * deadline is closer).  Proxies and TLS verification are libcurl's
 * defaults (http_proxy/https_proxy/no_proxy are honoured, certificates are
 * verified).
 *
 * Command checks run on the target through host_run as `/bin/sh -c CMD`
 * (under coreutils' `timeout` when the target has it, so a hung command
 * ends at the deadline), not elevated, healthy when it exits 0.  The
 * first 4 KiB of its stdout and of its stderr are kept for the answer.
 * SIGINT, SIGTERM and SIGHUP reaching the wrapping shell are passed on to
 * the command (a Ctrl-C on a local target); on a remote target the
 * connection's interrupt handling applies. */
#ifndef CREBUILD_HEALTH_H
#define CREBUILD_HEALTH_H

struct host;
struct events;

struct health_result {
    int ok;             /* every check passed */
    char *failed_check; /* the first check that did not pass (the URL or
                           command as given), or NULL */
    char *last_answer;  /* its last answer, or NULL: "HTTP 503: <first
                           200 bytes of the body, printable>", a curl
                           error ("curl: Failed to connect to ..."), or
                           "exit status 3: <last line of output>" */
};

/* Run every check, each until it has passed once, polling about once a
 * second, until all have passed or timeout_s seconds have gone by
 * (timeout_s 0: one attempt each).  An HTTP attempt takes at most 10 s,
 * and no more than what is left of timeout_s (1 s at least).  A command
 * attempt may use what is left, but always gets 10 s, so the whole run
 * ends within timeout_s + 10 s (+ 5 s when a command ignores SIGTERM).
 *
 * Logs each check that passes (info) and each one that failed (error,
 * with its last answer).  Emits an event "check" for each check when it
 * passes and for each one still failing at the deadline; no phase events
 * (the caller emits phase "health").  target may be NULL when n_cmds is 0.
 *
 * out is cleared first and always filled in.  Returns 0 when every check
 * passed (out->ok = 1), 1 when one did not (out->ok = 0), CR_EINTR when
 * cr_interrupted was set (checked at least once a second), CR_EUSAGE when
 * a URL is not http:// or https:// (nothing is run; failed_check names
 * it).  Release out with health_result_release. */
int health_run_all(struct host *target,
                   char *const *urls,
                   int n_urls,
                   char *const *cmds,
                   int n_cmds,
                   unsigned timeout_s,
                   struct events *ev,
                   struct health_result *out);

void health_result_release(struct health_result *r);

/* One attempt at one URL check, at most timeout_ms.  1 healthy, 0 not,
 * CR_EINTR; *answer (caller frees) as in struct health_result. */
int health_check_url(const char *url, long timeout_ms, char **answer);

/* One attempt at one command check on h, at most timeout_s seconds (where
 * `timeout` exists).  Same returns as health_check_url. */
int health_check_cmd(struct host *h,
                     const char *cmd,
                     unsigned timeout_s,
                     char **answer);

/* curl_global_cleanup if health checks ran; call once before exit (keeps
 * valgrind quiet).  Safe to call when nothing ran. */
void health_global_cleanup(void);

#endif
