/* diff.h: what changes between two system closures (--diff), in the spirit
 * of nvd and `nix store diff-closures`: packages added, removed, upgraded
 * or downgraded, and the closure size delta.
 *
 * A closure is a list of (store path, narSize).  diff_closure_read gets
 * one from a host with a single command; everything else here is pure.
 *
 * Store path names are split like Nix does: the hash part and a known
 * output suffix ("-bin", "-dev", "-lib", "-man", ...) are dropped, then
 * builtins.parseDrvName splits the rest ("hello-2.12.1" is pname "hello",
 * version "2.12.1": the version starts at the first '-' that is not
 * followed by a letter).  Paths are grouped by pname; a package changed
 * when its set of versions changed.  ".drv" paths are not packages (they
 * still count in the closure size). */
#ifndef CREBUILD_DIFF_H
#define CREBUILD_DIFF_H

#include <stddef.h>
#include <stdio.h>

#include "crebuild/strvec.h"

struct host;

struct diff_path {
    char *path;                  /* /nix/store/<hash>-<name> */
    unsigned long long nar_size; /* bytes */
};

struct diff_closure {
    struct diff_path *paths;
    size_t n;
    size_t alloc;
    int missing; /* diff_closure_read: the path did not exist (n == 0) */
};

/* clang-format off */
#define DIFF_CLOSURE_INIT {NULL, 0, 0, 0}
/* clang-format on */

/* Append a copy of path.  Duplicates are the caller's business. */
void diff_closure_add(struct diff_closure *c,
                      const char *path,
                      unsigned long long nar_size);
void diff_closure_release(struct diff_closure *c);

/* The command diff_closure_read runs: `/bin/sh -c SCRIPT diff-closure
 * PATH`.  It prints the closure (`nix-store --query --requisites PATH`,
 * one path per line), a line "--", then the narSize of each path in the
 * same order (`nix-store --query --size`, fed by xargs so that no command
 * line gets too long).  Both queries exist, with this output, in Nix 2.8
 * and later and in Lix; no experimental feature is needed.  The script
 * exits 3 without output when PATH does not exist.  For --print-plan. */
void diff_closure_argv(const char *path, struct strvec *argv);

/* Parse that output into out (initialised with DIFF_CLOSURE_INIT; what it
 * held is released first).  0, or CR_ENIX when it is malformed (out is
 * then empty). */
int diff_closure_parse(const char *text, struct diff_closure *out);

/* Run diff_closure_argv(path) on h (not elevated: querying the store needs
 * no privileges) and parse its output into out (initialised; released
 * first).  When path does not exist on h, returns 0 with an empty closure
 * and out->missing set (a first deploy: everything is new).  Returns 0,
 * CR_ENIX (the query failed or answered nonsense; logged with nix's
 * message), CR_EINTR, or the host's error code when the command could not
 * run (logged). */
int
diff_closure_read(struct host *h, const char *path, struct diff_closure *out);

enum diff_kind {
    DIFF_ADDED,      /* "[A+]" no version before */
    DIFF_REMOVED,    /* "[R-]" no version after */
    DIFF_UPGRADED,   /* "[U.]" every new version > every dropped one */
    DIFF_DOWNGRADED, /* "[D.]" every new version < every dropped one */
    DIFF_CHANGED,    /* "[C.]" anything else (several versions moved) */
};

struct diff_change {
    char *pname;
    enum diff_kind kind;
    char **before; /* versions in the old closure, sorted (Nix order) */
    size_t n_before;
    char **after; /* versions in the new closure, sorted */
    size_t n_after;
    long long size_delta; /* narSize of this pname's paths, new - old */
};

struct diff_result {
    struct diff_change *changes; /* sorted by pname (bytewise) */
    size_t n;
    size_t before_paths, after_paths;
    unsigned long long before_bytes, after_bytes;
};

/* clang-format off */
#define DIFF_RESULT_INIT {NULL, 0, 0, 0, 0, 0}
/* clang-format on */

/* Compare two closures.  out is overwritten; release it afterwards. */
void diff_compute(const struct diff_closure *before,
                  const struct diff_closure *after,
                  struct diff_result *out);
void diff_result_release(struct diff_result *r);

/* Print the diff, one line per changed package, then the size line:
 *   [U.] hello   2.12 → 2.12.1
 *   [A+] cowsay  3.04
 *   [R-] tree    2.1.0
 *   Closure size: 9 paths (41.5 KiB) → 7 paths (33.2 KiB), -2 paths, ...
 * Several versions are joined with ", "; an empty version prints as
 * "<none>".  "No package changes." replaces the package lines when there
 * are none. */
void diff_print(const struct diff_result *r, FILE *f);

/* Split a store path (or a bare name) into pname, version (possibly "")
 * and output name ("" for the default output).  Returns 0, or -1 for a
 * ".drv" (nothing is allocated then).  Caller frees the three strings;
 * any of the pointers may be NULL when not wanted. */
int
diff_name_parse(const char *path, char **pname, char **version, char **output);

/* Nix's builtins.compareVersions: <0, 0 or >0. */
int diff_version_cmp(const char *a, const char *b);

/* "512 B", "1.5 KiB", "45.6 MiB", "1.2 GiB" into buf; with sign when
 * signed_ ("+1.4 MiB", "-512 B", "+0 B").  Returns buf. */
char *diff_format_size(double bytes, int signed_, char *buf, size_t n);

#endif
