/* copy.h: copy a store closure to another host over the serve protocol.
 *
 * The destination runs `nix-store --serve --write` (under its elevation,
 * e.g. sudo, when asked).  One QueryValidPaths (with temp GC roots) finds
 * what is missing; every missing path is then uploaded in dependency order
 * with AddToStoreNar (ImportPaths for servers older than minor 5), the
 * requests written back to back without waiting for replies, which are
 * counted as they arrive.  NARs are produced from the local filesystem or
 * relayed from a remote source's DumpStorePath, in fixed-size buffers, and
 * hashed on the way: a NAR that does not match its recorded narHash or
 * narSize is never completed on the wire, so the destination registers
 * nothing of it, and the copy fails with CR_ECORRUPT.  Memory use does not
 * depend on file or closure sizes (beyond per-path metadata). */
#ifndef CREBUILD_COPY_H
#define CREBUILD_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "crebuild/host.h"
#include "crebuild/strvec.h"

struct copy_opts {
    /* Let the destination substitute missing paths from its own caches
     * first (nix-copy-closure -s / --use-substitutes). */
    int substitute;
    /* Run the destination's nix-store under the host's elevation (sudo),
     * so a deploy user outside trusted-users can add unsigned paths. */
    int elevate;
    /* No live progress line (it is also off when stderr is no tty). */
    int quiet;
    /* Names for messages; NULL: the hosts' own names. */
    const char *dst_name;
    const char *src_name;
    /* The nix-store program on both ends; NULL: "nix-store". */
    const char *nix_store;
    /* Tests and chroot stores.  src_store: `--store` for the local
     * source's metadata queries; src_root: prefix under which the local
     * source's store paths are read from disk; dst_store: `--store` for
     * the destination's `nix-store --serve --write`.  NULL: none. */
    const char *src_store;
    const char *src_root;
    const char *dst_store;
    /* Tests: a local source lacking more than feed_min paths has their
     * metadata fetched by a thread in batches of feed_batch paths while
     * the upload runs.  0: the defaults (64; 32 first, then 4096). */
    size_t feed_min;
    size_t feed_batch;
    /* A local source's closure of roots, listed already (in the order of
     * nix-store --query --requisites); NULL: listed by copy_closure. */
    const struct strvec *closure;
};

/* Defaults: all off, all NULL. */
void copy_opts_init(struct copy_opts *o);

struct copy_stats {
    size_t paths_total;   /* the closure */
    size_t paths_present; /* already valid on the destination */
    size_t paths_copied;  /* uploaded and acknowledged */
    uint64_t bytes;       /* NAR bytes uploaded */
    double seconds;       /* wall time of the whole copy */
};

/* An open destination connection that keeps the copied paths' temp GC
 * roots alive (see copy_closure's keep). */
struct copy_session;

/* Copy the closure of roots from src to dst.  src is the local host
 * (metadata from its nix-store, NARs from its filesystem) or a remote
 * one (metadata and NARs from its `nix-store --serve`, relayed).
 * stats may be NULL.  If keep is not NULL, on success the destination
 * connection is left open in *keep (so its garbage collector cannot
 * delete the paths before a profile or GC root points at them) and must
 * be ended with copy_session_close(); otherwise it is closed here.
 * Logs one line on failure and a summary on success ("copied N paths, X
 * MiB in T s; M already present").  Returns 0; CR_ECORRUPT (a source
 * path does not match its narHash/narSize; nothing of it is registered
 * remotely); CR_ENIX (a nix command or the remote failed); CR_EPROTO;
 * CR_EINTR; or a transport error. */
int copy_closure(struct host *src,
                 struct host *dst,
                 const struct strvec *roots,
                 const struct copy_opts *opts,
                 struct copy_stats *stats,
                 struct copy_session **keep);

/* Send EOF on a kept connection, wait for the remote to exit, release.
 * 0 or a CR_E* code (logged).  NULL is a no-op. */
int copy_session_close(struct copy_session *s);
/* Send EOF on a kept connection and release it without waiting for the
 * remote (serve_release): the end of a run, when its status no longer
 * matters.  A connection that cannot be let go of so (something
 * unanswered or failed) is closed by copy_session_close.  NULL is a
 * no-op. */
void copy_session_release(struct copy_session *s);

#endif
