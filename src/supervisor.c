/* supervisor.c: magic rollback (see supervisor.h).  The target side is one
 * POSIX sh script with several modes; its text travels as $0 so that the
 * "start" mode can launch the detached "run" mode from it. */
#include "crebuild/supervisor.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define STATE_DIR "/nix/var/crebuild"

/* $1 mode, $2 state dir; run: $3 stc $4 action $5 profile $6 prev-gen
 * $7 timeout $8 install-bootloader; start: the same plus $9 use-systemd.
 * Under systemd-run the script runs from a file in the state directory:
 * the service manager expands "${...}" and "$$" in a command line, so the
 * text cannot travel there as an argument (the other arguments are store
 * paths, profile paths, numbers and a state path, without '$').
 * A rollback puts back what was there before the deploy: for switch, the
 * profile's previous generation as the boot default, and the system that
 * was running (/run/current-system when the supervisor started) running
 * again; they differ after a `boot` that was not followed by a reboot.
 * Files one mode writes and another reads appear whole (put: a temporary
 * file, then mv): follow, started at the same time as run, must never
 * read a pid file that is created but not yet written.
 * follow (and so start, which ends in it) exits with the activation's
 * status once it has ended, and confirm removes the state once the deploy
 * is confirmed: each saves crebuild a round trip on the usual path. */
static const char script[] =
    "mode=$1; state=$2\n"
    "put() { printf '%s\\n' \"$2\" > \"$state/$1.tmp\" && "
    "mv \"$state/$1.tmp\" \"$state/$1\"; }\n"
    "case $mode in\n"
    "start)\n"
    "  umask 077\n"
    "  mkdir -p " STATE_DIR " && mkdir \"$state\" || exit 90\n"
    "  if [ \"$9\" = 1 ]; then\n"
    "    printf '%s' \"$0\" > \"$state/supervisor\" || exit 91\n"
    "    systemd-run --unit=\"crebuild-${state##*/}\" --collect --quiet "
    "--service-type=exec --setenv=PATH=\"$PATH\" "
    "--setenv=LOCALE_ARCHIVE=\"${LOCALE_ARCHIVE-}\" "
    "--setenv=NIXOS_NO_CHECK=\"${NIXOS_NO_CHECK-}\" "
    "/bin/sh \"$state/supervisor\" run \"$state\" \"$3\" \"$4\" \"$5\" "
    "\"$6\" \"$7\" \"$8\" || exit 91\n"
    "  else\n"
    "    setsid -f /bin/sh -c \"$0\" \"$0\" run \"$state\" \"$3\" \"$4\" "
    "\"$5\" \"$6\" \"$7\" \"$8\" </dev/null >/dev/null 2>&1 || exit 91\n"
    "  fi\n"
    "  exec /bin/sh -c \"$0\" \"$0\" follow \"$state\" ;;\n"
    "run)\n"
    "  exec >>\"$state/log\" 2>&1 </dev/null\n"
    "  trap '' HUP INT PIPE\n"
    "  put pid $$\n"
    "  prev=$(readlink -e /run/current-system 2>/dev/null) || prev=\n"
    "  NIXOS_INSTALL_BOOTLOADER=$8 \"$3\" \"$4\"; rc=$?\n"
    "  put activated \"$rc\"\n"
    "  if [ \"$rc\" != 0 ]; then put status failed; exit 0; fi\n"
    "  n=0; limit=$(( $7 * 50 ))\n"
    "  while [ \"$n\" -lt \"$limit\" ] && [ ! -e \"$state/abort\" ]; do\n"
    "    if [ -e \"$state/confirm\" ]; then put status confirmed; exit 0; fi\n"
    "    if [ \"$n\" -lt 250 ]; then sleep 0.02; n=$((n + 1));\n"
    "    else sleep 0.1; n=$((n + 5)); fi\n"
    "  done\n"
    "  if [ -e \"$state/confirm\" ] && [ ! -e \"$state/abort\" ]; then\n"
    "    put status confirmed; exit 0; fi\n"
    "  put status rolling-back\n"
    "  if [ -e \"$state/abort\" ]; then why=$(cat \"$state/abort\");\n"
    "  else why='no confirmation'; fi\n"
    "  echo \"crebuild: $why, rolling back\"\n"
    "  if [ \"$4\" = switch ] && [ -n \"$6\" ]; then\n"
    "    nix-env -p \"$5\" --switch-generation \"$6\" &&\n"
    "    gen=$(readlink -e \"$5\") &&\n"
    "    if [ -z \"$prev\" ] || [ \"$prev\" = \"$gen\" ]; then\n"
    "      NIXOS_INSTALL_BOOTLOADER=0 \"$5/bin/switch-to-configuration\" "
    "switch\n"
    "    else\n"
    "      NIXOS_INSTALL_BOOTLOADER=0 \"$5/bin/switch-to-configuration\" "
    "boot &&\n"
    "      NIXOS_INSTALL_BOOTLOADER=0 \"$prev/bin/switch-to-configuration\" "
    "test\n"
    "    fi\n"
    "  else\n"
    "    [ -n \"$prev\" ] || prev=$(readlink -e \"$5\" 2>/dev/null) || prev=\n"
    "    [ -n \"$prev\" ] &&\n"
    "    NIXOS_INSTALL_BOOTLOADER=0 \"$prev/bin/switch-to-configuration\" "
    "test\n"
    "  fi\n"
    "  put status \"rolled-back $?\" ;;\n"
    "follow)\n"
    "  off=0; n=0\n"
    "  while :; do\n"
    "    fin=0; [ -e \"$state/activated\" ] && fin=1\n"
    "    if [ -e \"$state/log\" ]; then\n"
    "      size=$(wc -c < \"$state/log\")\n"
    "      if [ \"$size\" -gt \"$off\" ]; then\n"
    "        tail -c \"+$((off + 1))\" \"$state/log\" | head -c "
    "\"$((size - off))\"; off=$size; fi\n"
    "    fi\n"
    "    if [ \"$fin\" = 1 ]; then a=$(cat \"$state/activated\")\n"
    "      case $a in ''|*[!0-9]*) exit 94 ;; esac; exit \"$a\"; fi\n"
    "    pid=$(cat \"$state/pid\" 2>/dev/null)\n"
    "    if [ -n \"$pid\" ] && ! kill -0 \"$pid\" 2>/dev/null && "
    "[ ! -e \"$state/activated\" ]; then\n"
    "      echo 'crebuild: the supervisor died' >&2; exit 93; fi\n"
    "    if [ \"$n\" -lt 100 ]; then sleep 0.02; n=$((n + 1));\n"
    "    else sleep 0.1; fi\n"
    "  done ;;\n"
    "status)\n"
    "  printf 'activated=%s status=%s\\n' \"$(cat \"$state/activated\" "
    "2>/dev/null || echo -)\" \"$(cat \"$state/status\" 2>/dev/null || echo "
    "-)\" ;;\n"
    "confirm|abort)\n"
    "  [ -d \"$state\" ] || exit 94\n"
    "  if [ \"$mode\" = confirm ]; then : > \"$state/confirm\";\n"
    "  else put abort \"$3\"; fi\n"
    "  n=0\n"
    "  while [ \"$n\" -lt 30000 ]; do\n"
    "    s=$(cat \"$state/status\" 2>/dev/null)\n"
    "    case $s in failed|rolled-back*) break ;;\n"
    "    confirmed) [ \"$mode\" = abort ] || rm -rf \"$state\"; break ;; esac\n"
    "    sleep 0.02; n=$((n + 1))\n"
    "  done\n"
    "  printf 'status=%s\\n' \"$s\" ;;\n"
    "cleanup)\n"
    "  rm -rf \"$state\" ;;\n"
    "*) exit 2 ;;\n"
    "esac\n";

void
supervisor_argv(const char *mode,
                const char *state,
                const struct supervise_req *r,
                struct strvec *argv)
{
    strvec_pushl(
        argv, "/bin/sh", "-c", script, script, mode, state, (const char *)NULL);
    if (strcmp(mode, "start") == 0 || strcmp(mode, "run") == 0) {
        strvec_pushl(argv,
                     r->stc,
                     r->action,
                     r->profile,
                     r->prev_gen ? r->prev_gen : "",
                     (const char *)NULL);
        strvec_pushf(argv, "%u", r->timeout);
        strvec_pushf(argv, "%d", r->install_bootloader ? 1 : 0);
        if (strcmp(mode, "start") == 0) {
            strvec_pushf(argv, "%d", r->use_systemd ? 1 : 0);
        }
    }
}

/* Run one mode on h, elevated.  out captures stdout (NULL = forward).
 * Returns the transport code; *status the script's exit status. */
static int
run_mode(struct host *h,
         const char *mode,
         const char *state,
         const struct supervise_req *r,
         const char *extra,
         struct strbuf *out,
         int *status)
{
    struct strvec argv = STRVEC_INIT;
    struct strvec env = STRVEC_INIT;
    struct host_cmd cmd = {0};
    int rc;

    supervisor_argv(mode, state, r, &argv);
    if (extra != NULL) {
        strvec_push(&argv, extra);
    }
    strvec_pushl(&env, "LOCALE_ARCHIVE", "NIXOS_NO_CHECK", (const char *)NULL);
    cmd.argv = &argv;
    cmd.env = &env;
    cmd.elevate = 1;
    cmd.out = out;
    rc = host_run(h, &cmd, status);
    strvec_clear(&argv);
    strvec_clear(&env);
    return rc;
}

static void
pause_s(unsigned s)
{
    for (unsigned i = 0; i < s * 10 && !cr_interrupted; i++) {
        usleep(100000);
    }
}

/* Log in again, a few times, for up to about `seconds`. */
static struct host *
reconnect_retry(const struct supervise_hooks *hk, unsigned seconds)
{
    time_t end = time(NULL) + (time_t)seconds;

    do {
        struct host *h = hk->reconnect(hk->arg);
        if (h != NULL) {
            return h;
        }
        pause_s(2);
    } while (time(NULL) < end && !cr_interrupted);
    return NULL;
}

/* "activated=RC status=S" -> rc (-1 unknown) and status word. */
static void
read_status(struct host *h,
            const char *state,
            const struct supervise_req *r,
            int *activated,
            char *status,
            size_t n)
{
    struct strbuf out = STRBUF_INIT;
    int st = -1;
    const char *a, *s;

    *activated = -1;
    snprintf(status, n, "-");
    if (run_mode(h, "status", state, r, NULL, &out, &st) != 0 || st != 0) {
        strbuf_release(&out);
        return;
    }
    a = strstr(out.buf, "activated=");
    s = strstr(out.buf, "status=");
    if (a != NULL) {
        char digits[8];
        unsigned long long v;
        snprintf(digits,
                 sizeof(digits),
                 "%.*s",
                 (int)strspn(a + 10, "0123456789"),
                 a + 10);
        if (parse_uint(digits, 255, &v) == 0) {
            *activated = (int)v;
        }
    }
    if (s != NULL) {
        snprintf(status, n, "%.*s", (int)strcspn(s + 7, "\n"), s + 7);
    }
    strbuf_release(&out);
}

/* The activation's status after follow (start ends in it) exited with
 * st: follow exits 0 only once activation has succeeded, which saves a
 * round trip in the usual case; any other status may be the activation's
 * or follow's own end, so the status file decides.  -1 when activation has
 * not ended (or the file cannot be read). */
static int
activation_status(struct host *h,
                  const char *state,
                  const struct supervise_req *r,
                  int st)
{
    char status[128];
    int activated = -1;

    if (st == 0) {
        return 0;
    }
    read_status(h, state, r, &activated, status, sizeof(status));
    return activated;
}

static int
final_status(struct host *h,
             const char *mode,
             const char *state,
             const struct supervise_req *r,
             const char *why,
             char *status,
             size_t n)
{
    struct strbuf out = STRBUF_INIT;
    int st = -1, rc;
    const char *s;

    rc = run_mode(h, mode, state, r, why, &out, &st);
    s = strstr(out.buf, "status=");
    snprintf(
        status, n, "%.*s", s ? (int)strcspn(s + 7, "\n") : 1, s ? s + 7 : "-");
    strbuf_release(&out);
    return rc != 0 || st != 0 ? -1 : 0;
}

static void
phase(const struct supervise_hooks *hk, const char *name, int start, int ok)
{
    if (hk->phase != NULL) {
        hk->phase(hk->arg, name, start, ok);
    }
}

/* The end of a deploy that was not confirmed, from the supervisor's final
 * status: exit 4 only when the rollback is known to have worked. */
static int
not_confirmed(const char *host,
              const char *state,
              const char *why,
              const char *status)
{
    if (strcmp(status, "rolled-back 0") == 0) {
        log_error("deploy to %s rolled back to the previous configuration: %s",
                  host,
                  why);
        return CR_EXIT_ROLLED_BACK;
    }
    if (strncmp(status, "rolled-back ", 12) == 0) {
        log_error("deploy to %s not confirmed (%s) and its rollback failed "
                  "(status %s): see %s/log there",
                  host,
                  why,
                  status + 12,
                  state);
        return 1;
    }
    log_error("deploy to %s not confirmed (%s); it rolls back by itself, "
              "but crebuild could not see that it did (supervisor status: "
              "%s)",
              host,
              why,
              status);
    return 1;
}

int
supervise_activate(struct host **target,
                   struct host **spare,
                   const struct supervise_req *r,
                   const struct supervise_hooks *hk)
{
    unsigned char rnd[8];
    char state[64], status[128];
    struct host *fresh = NULL;
    char *why = NULL;
    int st = -1, rc, activated = -1, ret = 1;
    char *name = xstrdup((*target)->name);

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        log_error("cannot get random bytes for the deploy id");
        free(name);
        return 1;
    }
    snprintf(state,
             sizeof(state),
             STATE_DIR "/deploy-%02x%02x%02x%02x%02x%02x"
                       "%02x%02x",
             rnd[0],
             rnd[1],
             rnd[2],
             rnd[3],
             rnd[4],
             rnd[5],
             rnd[6],
             rnd[7]);
    log_info("activating the configuration (magic rollback: confirm within "
             "%u s)...",
             r->timeout);
    rc = run_mode(*target, "start", state, r, NULL, NULL, &st);
    if ((rc != 0 || st != 0) && (rc == CR_EINTR || cr_interrupted)) {
        log_error("interrupted; the activation on %s continues and is "
                  "rolled back unless confirmed",
                  name);
        ret = 130;
        goto out;
    }
    if (rc == 0) {
        activated = activation_status(*target, state, r, st);
    }
    if (activated < 0 && rc == 0 && st >= 90 && st <= 93) {
        log_error("cannot start the activation supervisor on %s (status %d)",
                  name,
                  st);
        goto out;
    }
    if (activated < 0) {
        /* The connection dropped during activation: it goes on there. */
        log_warn("connection to %s lost during activation; reconnecting", name);
        struct host *again = reconnect_retry(hk, 60);
        if (again == NULL) {
            log_error("cannot reconnect to %s; it rolls back to the previous "
                      "configuration unless the activation is confirmed",
                      name);
            goto out;
        }
        *spare = *target;
        *target = again;
        rc = run_mode(*target, "follow", state, r, NULL, NULL, &st);
        if (rc != 0 ||
            (activated = activation_status(*target, state, r, st)) < 0) {
            log_error("lost the activation on %s again", name);
            goto out;
        }
    }
    if (activated != 0) {
        log_warn("error(s) occurred while switching to the new "
                 "configuration");
        log_error("switch-to-configuration %s on %s returned non-zero exit "
                  "status %d",
                  r->action,
                  name,
                  activated);
        ret = activated > 0 && activated < 256 ? activated : 1;
        goto cleanup;
    }

    /* A fresh login proves sshd, network, keys and sudo still work. */
    phase(hk, "confirm", 1, 0);
    fresh = hk->reconnect(hk->arg);
    if (fresh == NULL) {
        phase(hk, "confirm", 0, 0);
        log_error("cannot log in to %s after activation; waiting for it to "
                  "roll back (%u s)",
                  name,
                  r->timeout);
        pause_s(r->timeout + 3);
        fresh = reconnect_retry(hk, 60);
        snprintf(status, sizeof(status), "-");
        if (fresh != NULL) {
            /* abort: waits for the rollback to end, and says how. */
            final_status(fresh,
                         "abort",
                         state,
                         r,
                         "could not log in after activation",
                         status,
                         sizeof(status));
            log_info("%s is reachable again (%s)", name, status);
        }
        ret = not_confirmed(
            name, state, "could not log in after activation", status);
        if (fresh != NULL && ret == CR_EXIT_ROLLED_BACK) {
            run_mode(fresh, "cleanup", state, r, NULL, NULL, &st);
        }
        goto out;
    }
    if (hk->health != NULL) {
        phase(hk, "health", 1, 0);
        if (hk->health(hk->arg, fresh, &why) != 0) {
            phase(hk, "health", 0, 0);
            phase(hk, "rollback", 1, 0);
            final_status(fresh,
                         "abort",
                         state,
                         r,
                         "health check failed",
                         status,
                         sizeof(status));
            phase(hk, "rollback", 0, strcmp(status, "rolled-back 0") == 0);
            ret = not_confirmed(
                name, state, why ? why : "health check failed", status);
            if (ret == CR_EXIT_ROLLED_BACK) {
                run_mode(fresh, "cleanup", state, r, NULL, NULL, &st);
            }
            goto out;
        }
        phase(hk, "health", 0, 1);
    }
    if (final_status(
            fresh, "confirm", state, r, NULL, status, sizeof(status)) != 0) {
        log_error("cannot confirm the activation on %s", name);
        goto out;
    }
    if (strcmp(status, "confirmed") != 0) {
        phase(hk, "confirm", 0, 0);
        ret = not_confirmed(
            name, state, "the confirmation came too late", status);
        if (ret == CR_EXIT_ROLLED_BACK) {
            run_mode(fresh, "cleanup", state, r, NULL, NULL, &st);
        }
        goto out;
    }
    phase(hk, "confirm", 0, 1);
    ret = 0;
    goto out; /* confirm removed the state */
cleanup:
    run_mode(fresh ? fresh : *target, "cleanup", state, r, NULL, NULL, &st);
out:
    host_free(fresh);
    free(why);
    free(name);
    return ret;
}
