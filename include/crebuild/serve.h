/* serve.h: client of Nix's serve protocol (`nix-store --serve [--write]`)
 * over a struct stream.  Writes are buffered and may be pipelined;
 * replies are parsed with strict bounds.  Errors are never on the wire:
 * when the remote fails it prints "error: ..." on stderr and exits, so on
 * end of stream the connection is closed, its stderr collected, and the
 * remote's message kept for serve_error(). */
#ifndef CREBUILD_SERVE_H
#define CREBUILD_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "crebuild/hash.h"
#include "crebuild/host.h"
#include "crebuild/nar.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"

#define SERVE_MAGIC_1      0x390c9debULL
#define SERVE_MAGIC_2      0x5452eecbULL
#define SERVE_VERSION      0x207 /* what Nix 2.4-2.34 and Lix announce */
#define SERVE_EXPORT_MAGIC 0x4558494eULL

/* Reply bounds: longer strings are a protocol error. */
#define SERVE_MAX_PATH 4096       /* a store path */
#define SERVE_MAX_STR  (64 << 10) /* other strings (ca, signatures) */

/* What a reply may hold in all, so that a broken or hostile remote cannot
 * make us keep gigabytes of it: going over is a protocol error ("<reply>
 * too big: more than N <things>"), found before the excess is read.
 * - QueryValidPaths: a subset of the question, so no more paths, nor
 *   bytes of them, than were asked.
 * - QueryClosure, and the references of one path in QueryPathInfos:
 *   SERVE_MAX_PATHS paths of SERVE_MAX_PATHS_BYTES in all.  Real store
 *   paths are 50 to 100 bytes, system closures a few thousand paths;
 *   this allows a million of 128 bytes on average (about 150 MiB kept).
 * - The signatures of one path: SERVE_MAX_SIGS of SERVE_MAX_SIGS_BYTES in
 *   all (a real path has one to three, of about 100 bytes each).
 * - A QueryPathInfos reply for N paths, over all its records (which a
 *   caller keeps): SERVE_MAX_PATHS + SERVE_INFO_REFS_PER_PATH * N
 *   references, and SERVE_MAX_SIGS_BYTES + SERVE_INFO_BYTES_PER_PATH * N
 *   bytes of derivers, content addresses and signatures (really some 10
 *   to 30 references and 300 to 600 such bytes per path). */
#define SERVE_MAX_PATHS           (1 << 20)
#define SERVE_MAX_PATHS_BYTES     (128 << 20)
#define SERVE_MAX_SIGS            256
#define SERVE_MAX_SIGS_BYTES      (2 << 20)
#define SERVE_INFO_REFS_PER_PATH  64
#define SERVE_INFO_BYTES_PER_PATH 2048

enum serve_cmd {
    SERVE_CMD_QUERY_VALID_PATHS = 1,
    SERVE_CMD_QUERY_PATH_INFOS = 2,
    SERVE_CMD_DUMP_STORE_PATH = 3,
    SERVE_CMD_IMPORT_PATHS = 4,
    SERVE_CMD_QUERY_CLOSURE = 7,
    SERVE_CMD_ADD_TO_STORE_NAR = 9,
};

struct serve_conn;

/* Take ownership of s (a stream to `nix-store --serve`) and perform the
 * handshake: send magic and SERVE_VERSION, check the reply (text instead
 * of the magic, e.g. from a chatty login shell, is reported as "protocol
 * mismatch from HOST, got '...'"), negotiate minor = min(ours, theirs).
 * host names the remote in messages.  On success *out is the connection.
 * On failure the stream is closed, *out is NULL, the error is logged once
 * and CR_EPROTO, CR_ENIX (the remote said "error: ...") or the stream's
 * code is returned. */
int serve_open(struct stream *s, const char *host, struct serve_conn **out);
/* Like serve_open, but only queue the greeting: it goes out with the
 * first request, and the server's answer is read before that request's
 * reply (one round trip less).  Never fails; a failed handshake is the
 * first request's failure, with serve_ready() still 0. */
struct serve_conn *serve_start(struct stream *s, const char *host);
/* The server's greeting has been read and accepted. */
int serve_ready(const struct serve_conn *c);
/* The failure was the transport's: the connection is gone, which the SSH
 * layer has already reported (so callers add no line of their own). */
int serve_lost(const struct serve_conn *c);

/* The negotiated protocol minor version (0..7). */
unsigned serve_minor(const struct serve_conn *c);
/* Lower the negotiated minor (tests: ImportPaths against a new server).
 * A higher value is ignored. */
void serve_lower_minor(struct serve_conn *c, unsigned minor);
const char *serve_host(const struct serve_conn *c);

/* After a failure: the reason in one line (the remote's "error: ..."
 * message without its prefix, or what went wrong locally); "" if none. */
const char *serve_error(const struct serve_conn *c);

/* ---- requests ---- */

/* 1 QueryValidPaths for paths; the valid ones are appended to *valid.
 * lock adds temp GC roots on a --write server; substitute asks it to
 * substitute the missing ones first.  0 or a CR_E* code (not logged). */
int serve_query_valid_paths(struct serve_conn *c,
                            const struct strvec *paths,
                            int lock,
                            int substitute,
                            struct strvec *valid);

/* 7 QueryClosure: the closure of paths is appended to *out. */
int serve_query_closure(struct serve_conn *c,
                        const struct strvec *paths,
                        int include_outputs,
                        struct strvec *out);

/* One record of a QueryPathInfos reply.  has_hash is 0 when the server
 * is older than minor 4 and sent no narHash, ca or sigs. */
struct serve_info {
    struct strbuf path;
    struct strbuf deriver; /* "" for none */
    struct strvec refs;
    uint64_t download_size;
    uint64_t nar_size;
    int has_hash;
    unsigned char nar_hash[HASH_SHA256_LEN];
    struct strbuf ca; /* "" for none */
    struct strvec sigs;
};

/* 2 QueryPathInfos: fn is called once per valid path with a record that
 * is only valid during the call.  A non-zero return of fn stops reading
 * (the connection is then unusable) and is returned. */
typedef int (*serve_info_fn)(void *ctx, const struct serve_info *info);
int serve_query_path_infos(struct serve_conn *c,
                           const struct strvec *paths,
                           serve_info_fn fn,
                           void *ctx);

/* 3 DumpStorePath, split so requests can be pipelined: dump_request
 * queues the request; dump_read reads the next NAR in request order,
 * passes its bytes to tee and fills res (size, sha256).  A malformed NAR
 * is CR_EPROTO with res->error set. */
int serve_dump_request(struct serve_conn *c, const char *path);
int serve_dump_read(struct serve_conn *c,
                    nar_sink_fn tee,
                    void *tctx,
                    struct nar_result *res);

/* Upload of one path: with AddToStoreNar (minor >= 5) or ImportPaths. */
struct serve_add {
    const char *path;
    const char *deriver; /* NULL or "" for none */
    unsigned char nar_hash[HASH_SHA256_LEN];
    uint64_t nar_size;
    const char *const *refs; /* full paths, self included if any */
    size_t nrefs;
    const char *const *sigs; /* "name:base64" */
    size_t nsigs;
    const char *ca;    /* NULL or "" for none */
    uint64_t reg_time; /* 0: the remote uses "now" */
};

/* Queue the part of the request before the NAR.  The caller then writes
 * exactly nar_size NAR bytes with serve_write_raw() and completes the
 * request with serve_add_end(), which counts one pending reply.  Requests
 * are not waited for: replies are consumed as they arrive (each flush
 * polls for them) and counted by serve_acked(). */
int serve_add_begin(struct serve_conn *c, const struct serve_add *a);
int serve_add_end(struct serve_conn *c, const struct serve_add *a);

/* Replies received so far for completed upload requests, and how many
 * are still outstanding. */
size_t serve_acked(const struct serve_conn *c);
size_t serve_pending(const struct serve_conn *c);

/* Consume the replies that have arrived, without blocking. */
int serve_poll(struct serve_conn *c);
/* Flush and block until every pending reply has arrived. */
int serve_wait(struct serve_conn *c);

/* ---- raw buffered output (errors are sticky: after one, every call
 * returns it) ---- */
int serve_write_u64(struct serve_conn *c, uint64_t v);
int serve_write_str(struct serve_conn *c, const void *s, size_t n);
int serve_write_raw(struct serve_conn *c, const void *buf, size_t n);
int serve_flush(struct serve_conn *c);

/* Abort: close our side without completing what was queued (the remote
 * sees end of input mid-request and registers nothing of it), wait for
 * the remote to exit.  Replies already sent are still counted.  The
 * connection stays allocated for serve_error()/serve_acked(). */
void serve_abort(struct serve_conn *c);

/* Flush, wait for replies, send EOF and wait for the remote to exit.
 * 0, or a CR_E* code with serve_error() set. */
int serve_finish(struct serve_conn *c);

/* Release; a connection still open is aborted first.  NULL is a no-op. */
void serve_free(struct serve_conn *c);

/* Done with a connection whose requests were all answered: send EOF and
 * free it without waiting for the remote to exit (a round trip less at
 * the end of a deploy); 0.  -1, and nothing done, when something is
 * unanswered or failed, or the stream cannot do that (the caller
 * finishes it as usual). */
int serve_release(struct serve_conn *c);

/* Reduce a remote's stderr to one line: the first "error:" line (prefix
 * removed) joined with its indented continuation lines, terminal escapes
 * stripped; failing that the last non-empty line.  Appends to out. */
void serve_stderr_line(const char *err, size_t len, struct strbuf *out);

#endif
