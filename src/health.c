/* health.c: URL and command health checks (see health.h).  The only file
 * that includes <curl/curl.h>. */
#include "crebuild/health.h"
#include "crebuild/events.h"
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef CR_VERSION
#define CR_VERSION "unknown"
#endif

#define BODY_SHOWN      200        /* bytes of a body in the answer */
#define BODY_MAX        (64 << 10) /* read at most this much of a body */
#define OUTPUT_MAX      (4 << 10)  /* per stream of a command check */
#define URL_ATTEMPT_MAX 10         /* seconds per HTTP request */
#define CMD_ATTEMPT_MIN 10         /* seconds a command may always take */

static int curl_ready;

void
health_result_release(struct health_result *r)
{
    free(r->failed_check);
    free(r->last_answer);
    r->failed_check = NULL;
    r->last_answer = NULL;
    r->ok = 0;
}

void
health_global_cleanup(void)
{
    if (curl_ready) {
        curl_global_cleanup();
        curl_ready = 0;
    }
}

/* Append ": " and s[0..n) as printable ASCII (tabs and line ends become
 * spaces, other bytes '?', surrounding blanks dropped), "..." when more
 * was cut; nothing when that leaves nothing. */
static void
add_excerpt(struct strbuf *sb, const char *s, size_t n, int more)
{
    struct strbuf t = STRBUF_INIT;
    size_t i = 0;

    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '\n' || c == '\r' || c == '\t') {
            c = ' ';
        } else if (c < 0x20 || c > 0x7e) {
            c = '?';
        }
        strbuf_addch(&t, c);
    }
    strbuf_rtrim(&t);
    while (i < t.len && t.buf[i] == ' ') {
        i++;
    }
    if (i < t.len) {
        strbuf_addf(sb, ": %s%s", t.buf + i, more ? "..." : "");
    }
    strbuf_release(&t);
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URL checks -------------------------------------------------------- */

struct body {
    char head[BODY_SHOWN];
    size_t shown;
    size_t total;
    int capped; /* we stopped reading at BODY_MAX */
};

static size_t
on_data(char *p, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb, take = BODY_SHOWN - b->shown;

    if (take > n) {
        take = n;
    }
    memcpy(b->head + b->shown, p, take);
    b->shown += take;
    b->total += n;
    if (b->total > BODY_MAX) {
        b->capped = 1;
        return 0; /* enough: abort the transfer */
    }
    return n;
}

static int
on_progress(void *p,
            curl_off_t dltotal,
            curl_off_t dlnow,
            curl_off_t ultotal,
            curl_off_t ulnow)
{
    (void)p;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return cr_interrupted ? 1 : 0;
}

static int
is_http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 ||
           strncasecmp(url, "https://", 8) == 0;
}

static int
setup(CURL *c, const char *url, long timeout_ms, struct body *b, char *errbuf)
{
    int bad = 0;

    bad |= curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") !=
           CURLE_OK;
#else
    bad |=
        curl_easy_setopt(c,
                         CURLOPT_PROTOCOLS,
                         (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
    bad |=
        curl_easy_setopt(c,
                         CURLOPT_REDIR_PROTOCOLS,
                         (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
#endif
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "crebuild/" CR_VERSION) !=
           CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, b) != CURLE_OK;
    bad |=
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    return bad ? -1 : 0;
}

int
health_check_url(const char *url, long timeout_ms, char **answer)
{
    char errbuf[CURL_ERROR_SIZE];
    struct body b;
    struct strbuf sb = STRBUF_INIT;
    CURL *c = NULL;
    CURLcode res;
    long status = 0;
    int rc;

    *answer = NULL;
    memset(&b, 0, sizeof(b));
    errbuf[0] = '\0';
    if (timeout_ms < 1) {
        timeout_ms = 1; /* 0 would mean no limit to libcurl */
    }
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            *answer = xstrdup("curl: cannot initialise libcurl");
            return 0;
        }
        curl_ready = 1;
    }
    c = curl_easy_init();
    if (c == NULL || setup(c, url, timeout_ms, &b, errbuf) != 0) {
        *answer = xstrdup("curl: cannot set up the request");
        rc = 0;
        goto out;
    }
    res = curl_easy_perform(c);
    if (res == CURLE_ABORTED_BY_CALLBACK && cr_interrupted) {
        rc = CR_EINTR;
        goto out;
    }
    if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && b.capped)) {
        /* The error buffer has the details; curl's generic text when it
         * is empty. */
        const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(res);
        strbuf_addstr(&sb, "curl");
        add_excerpt(&sb, msg, strlen(msg), 0);
        rc = 0;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    strbuf_addf(&sb, "HTTP %ld", status);
    add_excerpt(&sb, b.head, b.shown, b.total > b.shown);
    rc = status >= 200 && status <= 299;
out:
    if (rc != CR_EINTR) {
        *answer = *answer ? *answer : strbuf_detach(&sb);
    }
    strbuf_release(&sb);
    if (c != NULL) {
        curl_easy_cleanup(c);
    }
    return rc;
}

/* ---- command checks ---------------------------------------------------- */

/* $1 = seconds, $2 = the command.  Under coreutils' timeout when there is
 * one: exit 124 on timeout, and everything the command started is killed
 * (timeout gives it its own process group; SIGKILL 5 s after SIGTERM).
 * Being in its own group, it would not see a Ctrl-C meant for us, so this
 * shell (still in ours) passes SIGINT, SIGTERM and SIGHUP on. */
static const char wrapper[] =
    "if command -v timeout >/dev/null 2>&1; then\n"
    "  p=\n"
    "  trap '[ -n \"$p\" ] && kill -s TERM \"$p\" 2>/dev/null; wait; exit 130'"
    " INT TERM HUP\n"
    "  timeout -k 5 \"$1\" /bin/sh -c \"$2\" &\n"
    "  p=$!\n"
    "  wait \"$p\"\n"
    "  exit\n"
    "fi\n"
    "exec /bin/sh -c \"$2\"\n";

/* Last non-blank line of s, or NULL. */
static const char *
last_line(const struct strbuf *s, size_t *len)
{
    const char *end = s->buf + s->len, *start;

    while (end > s->buf && (end[-1] == '\n' || end[-1] == '\r' ||
                            end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (end == s->buf) {
        return NULL;
    }
    start = end;
    while (start > s->buf && start[-1] != '\n') {
        start--;
    }
    *len = (size_t)(end - start);
    return start;
}

int
health_check_cmd(struct host *h,
                 const char *cmd,
                 unsigned timeout_s,
                 char **answer)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, sb = STRBUF_INIT;
    struct host_cmd hc = {0};
    const char *line = NULL;
    size_t len = 0;
    int status = -1, rc;

    *answer = NULL;
    strbuf_init(&out, OUTPUT_MAX);
    strbuf_init(&err, OUTPUT_MAX);
    strvec_pushl(&argv,
                 "/bin/sh",
                 "-c",
                 wrapper,
                 "crebuild-health-check",
                 (const char *)NULL);
    strvec_pushf(&argv, "%u", timeout_s ? timeout_s : 1);
    strvec_push(&argv, cmd);
    hc.argv = &argv;
    hc.out = &out;
    hc.err = &err;
    rc = host_run(h, &hc, &status);
    if (rc == CR_EINTR || cr_interrupted) {
        rc = CR_EINTR;
        goto out;
    }
    if (rc != 0) {
        strbuf_addf(&sb, "cannot run on %s: %s", h->name, cr_strerror(rc));
        rc = 0;
        goto out;
    }
    strbuf_addf(&sb, "exit status %d", status);
    if (status == 124) {
        strbuf_addf(&sb, " (timed out after %us)", timeout_s);
    }
    /* A failing command usually says why on stderr. */
    if (status != 0) {
        line = last_line(&err, &len);
    }
    if (line == NULL) {
        line = last_line(&out, &len);
    }
    if (line == NULL) {
        line = last_line(&err, &len);
    }
    if (line != NULL) {
        add_excerpt(
            &sb, line, len > BODY_SHOWN ? BODY_SHOWN : len, len > BODY_SHOWN);
    }
    rc = status == 0;
out:
    if (rc != CR_EINTR) {
        *answer = strbuf_detach(&sb);
    }
    strvec_clear(&argv);
    strbuf_release(&out);
    strbuf_release(&err);
    strbuf_release(&sb);
    return rc;
}

/* ---- all checks -------------------------------------------------------- */

struct check {
    const char *target;
    int is_url;
    int passed;
    char *answer;
};

/* Sleep until deadline (monotonic ms), waking for cr_interrupted. */
static void
nap_until(long long until)
{
    long long left;

    while (!cr_interrupted && (left = until - now_ms()) > 0) {
        struct timespec ts = {0, (left > 100 ? 100 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int
attempt(struct host *target,
        struct check *c,
        unsigned timeout_s,
        long long deadline)
{
    long long left = deadline - now_ms();
    char *answer = NULL;
    int r;

    if (c->is_url) {
        long ms = URL_ATTEMPT_MAX * 1000L;
        if (timeout_s > 0 && left < ms) {
            ms = left < 1000 ? 1000 : (long)left;
        }
        r = health_check_url(c->target, ms, &answer);
    } else {
        long long s = (left + 999) / 1000;
        r = health_check_cmd(target,
                             c->target,
                             s < CMD_ATTEMPT_MIN ? CMD_ATTEMPT_MIN
                                                 : (unsigned)s,
                             &answer);
    }
    if (r == CR_EINTR) {
        return r;
    }
    free(c->answer);
    c->answer = answer;
    if (r == 1) {
        c->passed = 1;
        log_info("health check passed: %s (%s)", c->target, c->answer);
    } else {
        log_debug("health check not passed yet: %s: %s", c->target, c->answer);
    }
    return r;
}

static void
report_failures(struct check *checks,
                int n,
                struct events *ev,
                struct health_result *out)
{
    for (int i = 0; i < n; i++) {
        struct check *c = &checks[i];
        if (c->passed) {
            continue;
        }
        log_error("health check failed: %s: %s",
                  c->target,
                  c->answer ? c->answer : "not run");
        events_check(ev, c->is_url ? "url" : "cmd", c->target, 0, c->answer);
        if (out->failed_check == NULL) {
            out->failed_check = xstrdup(c->target);
            out->last_answer = c->answer ? xstrdup(c->answer) : NULL;
        }
    }
}

int
health_run_all(struct host *target,
               char *const *urls,
               int n_urls,
               char *const *cmds,
               int n_cmds,
               unsigned timeout_s,
               struct events *ev,
               struct health_result *out)
{
    struct check *checks = NULL;
    int n = (n_urls > 0 ? n_urls : 0) + (n_cmds > 0 ? n_cmds : 0);
    int left = n, rc;
    long long deadline;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < n_urls; i++) {
        if (!is_http_url(urls[i])) {
            log_error("health check '%s' is not an http:// or https:// URL",
                      urls[i]);
            out->failed_check = xstrdup(urls[i]);
            return CR_EUSAGE;
        }
    }
    if (n_cmds > 0 && target == NULL) {
        out->failed_check = xstrdup(cmds[0]);
        return CR_EUSAGE;
    }
    if (n == 0) {
        out->ok = 1;
        return 0;
    }
    checks = xcalloc((size_t)n, sizeof(*checks));
    for (int i = 0; i < n; i++) {
        checks[i].is_url = i < n_urls;
        checks[i].target = i < n_urls ? urls[i] : cmds[i - n_urls];
    }
    log_info("running %d health check%s (timeout %us)...",
             n,
             n == 1 ? "" : "s",
             timeout_s);
    deadline = now_ms() + (long long)timeout_s * 1000;
    for (;;) {
        long long round = now_ms();
        for (int i = 0; i < n; i++) {
            if (checks[i].passed) {
                continue;
            }
            if (cr_interrupted) {
                rc = CR_EINTR;
                goto out;
            }
            rc = attempt(target, &checks[i], timeout_s, deadline);
            if (rc == CR_EINTR) {
                goto out;
            }
            if (rc == 1) {
                events_check(ev,
                             checks[i].is_url ? "url" : "cmd",
                             checks[i].target,
                             1,
                             checks[i].answer);
                left--;
            }
        }
        if (left == 0) {
            out->ok = 1;
            rc = 0;
            goto out;
        }
        if (now_ms() >= deadline) {
            break;
        }
        nap_until(round + 1000 < deadline ? round + 1000 : deadline);
        if (cr_interrupted) {
            rc = CR_EINTR;
            goto out;
        }
    }
    report_failures(checks, n, ev, out);
    rc = 1;
out:
    for (int i = 0; i < n; i++) {
        free(checks[i].answer);
    }
    free(checks);
    return rc;
}
