/* hash.c: SHA-256 (and SHA-1 for ssh's %C) through OpenSSL EVP, and Nix's
 * hash text encodings. */
#include "crebuild/hash.h"
#include "crebuild/util.h"

#include <string.h>

#include <openssl/evp.h>

struct hash_ctx {
    EVP_MD_CTX *md;
};

static const char nix32_chars[] = "0123456789abcdfghijklmnpqrsvwxyz";
static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct hash_ctx *
hash_ctx_new(void)
{
    struct hash_ctx *c = xcalloc(1, sizeof(*c));

    c->md = EVP_MD_CTX_new();
    if (c->md == NULL) {
        cr_die("out of memory");
    }
    hash_ctx_reset(c);
    return c;
}

void
hash_ctx_reset(struct hash_ctx *c)
{
    /* Only fails on allocation failure: SHA-256 is always available. */
    if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        cr_die("out of memory");
    }
}

void
hash_ctx_update(struct hash_ctx *c, const void *buf, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(c->md, buf, n) != 1) {
        cr_die("out of memory");
    }
}

void
hash_ctx_final(struct hash_ctx *c, unsigned char out[HASH_SHA256_LEN])
{
    unsigned int len = 0;

    if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != HASH_SHA256_LEN) {
        cr_die("out of memory");
    }
}

void
hash_ctx_free(struct hash_ctx *c)
{
    if (c == NULL) {
        return;
    }
    EVP_MD_CTX_free(c->md);
    free(c);
}

void
hash_sha256(const void *buf, size_t n, unsigned char out[HASH_SHA256_LEN])
{
    struct hash_ctx *c = hash_ctx_new();

    hash_ctx_update(c, buf, n);
    hash_ctx_final(c, out);
    hash_ctx_free(c);
}

void
hash_sha1(const void *buf, size_t n, unsigned char out[HASH_SHA1_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(buf, n, out, &len, EVP_sha1(), NULL) != 1 ||
        len != HASH_SHA1_LEN) {
        cr_die("out of memory");
    }
}

void
hash_to_hex(const unsigned char *h, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 0xf];
    }
    out[2 * n] = '\0';
}

size_t
hash_nix32_len(size_t n)
{
    return n == 0 ? 0 : (n * 8 - 1) / 5 + 1;
}

/* The hash is a little-endian bit string cut into 5-bit groups from bit 0;
 * the groups are printed most significant first. */
void
hash_to_nix32(const unsigned char *h, size_t n, char *out)
{
    size_t len = hash_nix32_len(n);
    size_t k = 0;
    size_t pos;

    for (pos = len; pos-- > 0;) {
        size_t b = pos * 5;
        size_t i = b / 8;
        unsigned j = b % 8;
        unsigned c = h[i] >> j;

        if (i + 1 < n) {
            c |= (unsigned)h[i + 1] << (8 - j);
        }
        out[k++] = nix32_chars[c & 0x1f];
    }
    out[k] = '\0';
}

void
hash_to_base64(const unsigned char *h, size_t n, char *out)
{
    size_t i;
    size_t k = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = (unsigned long)h[i] << 16 | h[i + 1] << 8 | h[i + 2];
        out[k++] = b64_chars[(v >> 18) & 63];
        out[k++] = b64_chars[(v >> 12) & 63];
        out[k++] = b64_chars[(v >> 6) & 63];
        out[k++] = b64_chars[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)h[i] << 16;
        if (i + 1 < n) {
            v |= (unsigned long)h[i + 1] << 8;
        }
        out[k++] = b64_chars[(v >> 18) & 63];
        out[k++] = b64_chars[(v >> 12) & 63];
        out[k++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
hash_from_hex(const char *s, size_t len, unsigned char *out, size_t n)
{
    size_t i;

    if (len != 2 * n) {
        return CR_EUSAGE;
    }
    for (i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]);
        int lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return CR_EUSAGE;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int
hash_from_nix32(const char *s, size_t len, unsigned char *out, size_t n)
{
    size_t k;

    if (n == 0 || len != hash_nix32_len(n)) {
        return CR_EUSAGE;
    }
    memset(out, 0, n);
    for (k = 0; k < len; k++) {
        const char *p = strchr(nix32_chars, s[len - k - 1]);
        unsigned digit;
        size_t b = k * 5;
        size_t i = b / 8;
        unsigned j = b % 8;

        if (p == NULL || *p == '\0') {
            return CR_EUSAGE;
        }
        digit = (unsigned)(p - nix32_chars);
        out[i] |= (unsigned char)(digit << j);
        if (i + 1 < n) {
            out[i + 1] |= (unsigned char)(digit >> (8 - j));
        } else if (digit >> (8 - j)) {
            return CR_EUSAGE;
        }
    }
    return 0;
}

static int
b64val(char c)
{
    const char *p = strchr(b64_chars, c);

    return p == NULL || c == '\0' ? -1 : (int)(p - b64_chars);
}

int
hash_from_base64(const char *s, size_t len, unsigned char *out, size_t n)
{
    size_t k = 0;
    size_t i;
    unsigned long acc = 0;
    unsigned bits = 0;

    if (len != 4 * ((n + 2) / 3)) {
        return CR_EUSAGE;
    }
    for (i = 0; i < len; i++) {
        int v;

        if (s[i] == '=') {
            break;
        }
        v = b64val(s[i]);
        if (v < 0) {
            return CR_EUSAGE;
        }
        acc = (acc << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k >= n) {
                return CR_EUSAGE;
            }
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    /* Padding: only '=' to the end, and no stray bits left over. */
    for (; i < len; i++) {
        if (s[i] != '=') {
            return CR_EUSAGE;
        }
    }
    if (k != n || (acc & ((1UL << bits) - 1)) != 0) {
        return CR_EUSAGE;
    }
    return 0;
}

int
hash_parse_sha256(const char *s, unsigned char out[HASH_SHA256_LEN])
{
    size_t len;

    if (s == NULL) {
        return CR_EUSAGE;
    }
    if (strncmp(s, "sha256-", 7) == 0) {
        s += 7;
        return hash_from_base64(s, strlen(s), out, HASH_SHA256_LEN);
    }
    if (strncmp(s, "sha256:", 7) == 0) {
        s += 7;
    }
    len = strlen(s);
    switch (len) {
    case HASH_SHA256_HEX_LEN:
        return hash_from_hex(s, len, out, HASH_SHA256_LEN);
    case HASH_SHA256_NIX32_LEN:
        return hash_from_nix32(s, len, out, HASH_SHA256_LEN);
    case HASH_SHA256_B64_LEN:
        return hash_from_base64(s, len, out, HASH_SHA256_LEN);
    default:
        return CR_EUSAGE;
    }
}
