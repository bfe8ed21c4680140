/* pathinfo.h: the metadata of a closure (narHash, narSize, references,
 * deriver, signatures, content address), from the local store through a
 * few `nix-store`/`nix` runs on a struct host, or from a remote store over
 * the serve protocol; plus the parsers and the dependency-first sort. */
#ifndef CREBUILD_PATHINFO_H
#define CREBUILD_PATHINFO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "crebuild/hash.h"
#include "crebuild/host.h"
#include "crebuild/serve.h"
#include "crebuild/strvec.h"

/* One store path.  References are indices into the owning list (every
 * reference of a closure member is in the closure), self included. */
struct pathinfo {
    char *path;
    char *deriver; /* NULL: none */
    unsigned char nar_hash[HASH_SHA256_LEN];
    uint64_t nar_size;
    uint32_t *refs;
    size_t nrefs;
    struct strvec sigs; /* "keyname:base64" */
    char *ca;           /* NULL: not content-addressed */
    uint64_t reg_time;  /* 0: unknown */
    int have_meta;      /* narHash, narSize and references are known */
};

/* A set of paths in a chosen order, with a hash index by path. */
struct pathinfo_list {
    struct pathinfo *v;
    size_t n;
    size_t alloc;
    size_t *tab; /* open addressing: index + 1, 0 = empty */
    size_t tabsize;
};

#define PATHINFO_LIST_INIT  \
    {                       \
        NULL, 0, 0, NULL, 0 \
    }
#define PATHINFO_NONE ((size_t)-1)

void pathinfo_list_init(struct pathinfo_list *l);
void pathinfo_list_release(struct pathinfo_list *l);
/* Index of path, adding an empty entry (a copy of path) when absent. */
size_t pathinfo_list_add(struct pathinfo_list *l, const char *path);
/* Index of path, or PATHINFO_NONE. */
size_t pathinfo_list_find(const struct pathinfo_list *l, const char *path);
/* Sum of nar_size over all entries. */
uint64_t pathinfo_list_bytes(const struct pathinfo_list *l);

/* Parse `nix-store --dump-db PATHS` output into the entries of l (each
 * record's path and references must be in l).  0 or CR_ENIX (logged). */
int
pathinfo_parse_dump_db(struct pathinfo_list *l, const char *text, size_t len);

/* Merge signatures, content address and registration time from
 * `nix path-info --json` output into the entries of l; paths not in l are
 * ignored.  Understands the array shape (Nix <= 2.18, Lix), the object
 * keyed by path (2.19+, nulls allowed, 2.33's v1 with version/storeDir
 * fields) and the 2.33+ v2/v3 envelope keyed by base name.  A 2.33+
 * structured content address (method text, flat, nar or git; hash md5,
 * sha1, sha256, sha512 or blake3) is kept in the legacy string form Nix's
 * ContentAddress::render writes ("fixed:r:sha256:<nix32>"); one that
 * cannot be read leaves the entry without one, with a warning (the first
 * in the run; the others at debug level).  0 or CR_ENIX (logged). */
int pathinfo_parse_json(struct pathinfo_list *l, const char *text, size_t len);

/* Reorder l so every path comes after its references (self references
 * ignored), keeping the current order where it is free.  0, or CR_ENIX
 * (logged) on a cycle. */
int pathinfo_toposort(struct pathinfo_list *l);

/* The closure of roots in the store of the local host h, sorted
 * dependencies first, with full metadata.  Runs `nix-store -qR`, then
 * per batch of paths `nix-store --dump-db` and `nix path-info --json`
 * (signatures and content addresses; if that fails only a warning).
 * store, if not NULL, is passed as `--store STORE` (tests, chroot
 * stores).  0 or a CR_E* code (logged).  *out must be initialised; it is
 * filled on success. */
int pathinfo_query_local(struct host *h,
                         const struct strvec *roots,
                         const char *store,
                         struct pathinfo_list *out);

/* The first half of pathinfo_query_local, so that a copy asks for the
 * metadata of the paths the destination lacks only (pathinfo_fill_some):
 * the closure, as Nix lists it, without metadata.  quiet: a failure is
 * logged at debug level only (for a listing done ahead, which the copy
 * repeats and reports if it fails). */
int pathinfo_closure_local(struct host *h,
                           const struct strvec *roots,
                           const char *store,
                           int quiet,
                           struct pathinfo_list *out);

/* Metadata for the entries idx[0..n) of l only, in as many runs as the
 * argument size needs, without sorting.  *want_json starts at 1; when
 * `nix path-info` fails it is cleared (one warning) and signatures and
 * content addresses are left out from then on.  0 or a CR_E* code
 * (logged).  Safe to call from another thread than the one reading l's
 * other entries: it writes the entries in idx only. */
int pathinfo_fill_some(struct host *h,
                       const char *store,
                       struct pathinfo_list *l,
                       const size_t *idx,
                       size_t n,
                       int *want_json);
/* From now on, the calling thread's pathinfo_fill_some stops once *flag
 * is set (NULL: never) and returns CR_EINTR without logging anything;
 * whoever sets it also stops the running command (proc_kill_watched).
 * The same holds in every thread once crebuild is interrupted. */
void pathinfo_cancel_on(const atomic_int *flag);

/* Reorder idx[0..n) (indices of entries with metadata) so that every
 * entry comes after those of its references that are in idx too,
 * keeping the given order where it is free.  0, or CR_ENIX (logged) on a
 * cycle. */
int pathinfo_order(const struct pathinfo_list *l, size_t *idx, size_t n);
/* The same from a serve connection: QueryClosure then QueryPathInfos.
 * 0 or a CR_E* code (logged). */
int pathinfo_query_serve(struct serve_conn *c,
                         const struct strvec *roots,
                         struct pathinfo_list *out);

#endif
