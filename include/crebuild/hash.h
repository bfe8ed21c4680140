/* hash.h: SHA-256 (OpenSSL EVP) and the text forms Nix uses for it:
 * base16, nix32 ("base32"), base64/SRI, with or without "sha256:". */
#ifndef CREBUILD_HASH_H
#define CREBUILD_HASH_H

#include <stddef.h>

#define HASH_SHA256_LEN       32
#define HASH_SHA256_HEX_LEN   64 /* without the NUL */
#define HASH_SHA256_NIX32_LEN 52
#define HASH_SHA256_B64_LEN   44

/* Streaming SHA-256.  hash_ctx_new() dies only on allocation failure. */
struct hash_ctx;
struct hash_ctx *hash_ctx_new(void);
/* Start over (a fresh digest). */
void hash_ctx_reset(struct hash_ctx *c);
void hash_ctx_update(struct hash_ctx *c, const void *buf, size_t n);
/* Write the digest; the context must be reset before it is used again. */
void hash_ctx_final(struct hash_ctx *c, unsigned char out[HASH_SHA256_LEN]);
void hash_ctx_free(struct hash_ctx *c);

/* One-shot SHA-1 (ssh_config's %C token; not for Nix hashes). */
#define HASH_SHA1_LEN 20
void hash_sha1(const void *buf, size_t n, unsigned char out[HASH_SHA1_LEN]);

/* One-shot SHA-256. */
void hash_sha256(const void *buf, size_t n, unsigned char out[HASH_SHA256_LEN]);

/* Encoders: out must hold the encoded length plus a NUL. */
void hash_to_hex(const unsigned char *h, size_t n, char *out);
/* Length of the nix32 encoding of n bytes ((8n - 1) / 5 + 1; 0 for 0). */
size_t hash_nix32_len(size_t n);
void hash_to_nix32(const unsigned char *h, size_t n, char *out);
/* Standard base64 with '=' padding; length 4 * ((n + 2) / 3). */
void hash_to_base64(const unsigned char *h, size_t n, char *out);

/* Decoders of exactly n output bytes from the whole of s[0..len).
 * 0, or CR_EUSAGE for a wrong length, a bad character, or (nix32) bits
 * set above the hash size. */
int hash_from_hex(const char *s, size_t len, unsigned char *out, size_t n);
int hash_from_nix32(const char *s, size_t len, unsigned char *out, size_t n);
int hash_from_base64(const char *s, size_t len, unsigned char *out, size_t n);

/* Parse a SHA-256 in any form Nix prints: bare base16 (64), nix32 (52) or
 * base64 (44), each optionally prefixed "sha256:", or SRI "sha256-<b64>".
 * 0 or CR_EUSAGE. */
int hash_parse_sha256(const char *s, unsigned char out[HASH_SHA256_LEN]);

#endif
