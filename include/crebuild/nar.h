/* nar.h: the Nix ARchive format.  A streaming writer that serialises a
 * file, symlink or directory tree from the local filesystem exactly as
 * `nix-store --dump` does, and a streaming reader that checks a NAR's
 * grammar (used to relay DumpStorePath output and in tests and fuzzing).
 * Both work in fixed-size buffers, whatever the file sizes. */
#ifndef CREBUILD_NAR_H
#define CREBUILD_NAR_H

#include <stddef.h>
#include <stdint.h>

#include "crebuild/hash.h"

/* Longest name or symlink target the reader accepts. */
#define NAR_MAX_NAME   4096
#define NAR_MAX_TARGET 4096
/* Deepest directory nesting the reader accepts. */
#define NAR_MAX_DEPTH 1024

/* Receives the NAR bytes in order.  Returns 0, or a CR_E* code that stops
 * the writer or reader, which then returns that code unchanged. */
typedef int (*nar_sink_fn)(void *ctx, const void *buf, size_t n);

/* Reads exactly n bytes into buf.  Returns 0, or a CR_E* code; end of
 * input before n bytes is CR_EPROTO. */
typedef int (*nar_source_fn)(void *ctx, void *buf, size_t n);

/* What was written or read: the NAR's size and SHA-256 (its narSize and
 * narHash), and for the reader a static description of the first
 * grammar error. */
struct nar_result {
    uint64_t size;
    unsigned char sha256[HASH_SHA256_LEN];
    const char *error;
};

/* Serialise path (lstat; symlinks are not followed, not even at the top)
 * into sink, hashing as it goes.  Directory entries are sorted bytewise;
 * a regular file is "executable" iff its owner execute bit is set; other
 * file types are refused.  res may be NULL.
 * Returns 0; CR_ESYS when the filesystem fails (logged, with the file
 * name); CR_ECORRUPT when a file is unsupported (fifo, socket, device) or
 * shrinks while being read (logged); or the sink's code (not logged). */
int
nar_dump(const char *path, nar_sink_fn sink, void *ctx, struct nar_result *res);

/* Callbacks of the reader, each optional (NULL).  path is relative to the
 * NAR's root ("" for the root, then "dir/name").  contents delivers a
 * regular file's bytes in chunks after regular().  A non-zero return
 * stops the reader, which returns it. */
struct nar_visitor {
    int (*directory)(void *ctx, const char *path);
    int (*regular)(void *ctx, const char *path, int executable, uint64_t size);
    int (*contents)(void *ctx, const void *buf, size_t n);
    int (*symlink)(void *ctx, const char *path, const char *target);
};

/* Read exactly one NAR from src, consuming no byte beyond its end.  Every
 * byte read is passed to tee (may be NULL) and hashed.  The grammar is
 * checked strictly: canonical field order, names non-empty and not "."
 * or ".." and free of '/' and NUL, entries strictly increasing, padding
 * zero, lengths and depth within the limits above.  v and res may be
 * NULL.  Returns 0; CR_EPROTO for a malformed NAR (res->error says why);
 * or the code of src, tee or a visitor. */
int nar_parse(nar_source_fn src,
              void *sctx,
              nar_sink_fn tee,
              void *tctx,
              const struct nar_visitor *v,
              void *vctx,
              struct nar_result *res);

/* Convenience for buffers: parse the NAR in buf[0..n) and require that it
 * ends exactly at n.  Same returns as nar_parse. */
int nar_parse_buf(const void *buf,
                  size_t n,
                  const struct nar_visitor *v,
                  void *vctx,
                  struct nar_result *res);

#endif
