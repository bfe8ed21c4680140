/* test_hash.c: SHA-256 and Nix's hash encodings, against vectors printed
 * by Nix 2.8 (nix-hash, nix hash to-sri, nix path-info). */
#include "testutil.h"

#include "crebuild/hash.h"
#include "crebuild/util.h"

struct vec {
    const char *hex;
    const char *nix32;
    const char *sri;
};

static const struct vec vecs[] = {
    /* The NAR of a file "hello\n" (reference section 10). */
    {"1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
     "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
     "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM="},
    /* A store path's narHash (reference section 10). */
    {"2972368e4d95de32010aa8f9ffb4512001cd6a52cb34f62385856732610a338e",
     "13ik19hk4rw5hlizcd6ba9mcs090a6sgzyd8180k5plm9n73cwi9",
     "sha256-KXI2jk2V3jIBCqj5/7RRIAHNalLLNPYjhYVnMmEKM44="},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "0000000000000000000000000000000000000000000000000000",
     "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
    {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
     "sha256-//////////////////////////////////////////8="},
    {"6808fc2760e0a72ebe62951261d01063aaf604b5b161c156c4d842a7e4ecc4fa",
     "1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     "sha256-aAj8J2Dgpy6+YpUSYdAQY6r2BLWxYcFWxNhCp+TsxPo="},
    {"eb92eccda81b35a971ea43ae082aacc49dc24776a1795c57dcffe109a6878bba",
     "1flbhyk0kqgzvibmqyd1fr3w57f4mhm0ibj3x9qsjd8vm36yr4pb",
     "sha256-65LszagbNalx6kOuCCqsxJ3CR3aheVxX3P/hCaaHi7o="},
};

static void
test_encodings(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(vecs); i++) {
        unsigned char h[32];
        unsigned char h2[32];
        char out[80];

        assert_int_equal(hash_from_hex(vecs[i].hex, 64, h, 32), 0);
        hash_to_hex(h, 32, out);
        assert_string_equal(out, vecs[i].hex);
        hash_to_nix32(h, 32, out);
        assert_string_equal(out, vecs[i].nix32);
        hash_to_base64(h, 32, out);
        assert_string_equal(out, vecs[i].sri + 7);

        assert_int_equal(hash_from_nix32(vecs[i].nix32, 52, h2, 32), 0);
        assert_memory_equal(h, h2, 32);
        assert_int_equal(hash_from_base64(vecs[i].sri + 7, 44, h2, 32), 0);
        assert_memory_equal(h, h2, 32);
    }
}

static void
test_parse_any(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(vecs); i++) {
        unsigned char want[32];
        unsigned char h[32];
        char buf[100];

        assert_int_equal(hash_from_hex(vecs[i].hex, 64, want, 32), 0);
        const char *forms[6];
        char f1[80], f2[80], f3[80];
        snprintf(f1, sizeof(f1), "sha256:%s", vecs[i].hex);
        snprintf(f2, sizeof(f2), "sha256:%s", vecs[i].nix32);
        snprintf(f3, sizeof(f3), "sha256:%s", vecs[i].sri + 7);
        forms[0] = vecs[i].hex;
        forms[1] = vecs[i].nix32;
        forms[2] = vecs[i].sri;
        forms[3] = f1;
        forms[4] = f2;
        forms[5] = f3;
        for (size_t k = 0; k < ARRAY_SIZE(forms); k++) {
            memset(h, 0xaa, sizeof(h));
            snprintf(buf, sizeof(buf), "%s", forms[k]);
            assert_int_equal(hash_parse_sha256(buf, h), 0);
            assert_memory_equal(h, want, 32);
        }
    }
}

static void
test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "sha256:",
        "sha256-",
        /* wrong lengths */
        "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc1",
        "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dq",
        /* bad characters: 'e', 'o', 'u', 't' are not in nix32 */
        "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqe",
        "0uzwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
        "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fcxg",
        /* bits above 256 set in the top nix32 digit */
        "2zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        /* base64: bad padding, stray bits, bad chars */
        "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM",
        "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BN=",
        "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/B==",
        "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/B*=",
        "md5:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
        "sha512-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
    };
    unsigned char h[32];

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (hash_parse_sha256(bad[i], h) == 0) {
            fail_msg("accepted '%s'", bad[i]);
        }
    }
    assert_int_equal(hash_parse_sha256(NULL, h), CR_EUSAGE);
}

static void
test_nix32_sha1(void **state)
{
    /* Store-path-sized digests (20 bytes, 32 characters). */
    static const struct {
        const char *hex, *nix32;
    } v[] = {
        {"0123456789abcdef0123456789abcdef01234567",
         "cx2j60ggrnmqjrs54c0yzkdbi5kla8q1"},
        {"ffffffffffffffffffffffffffffffffffffffff",
         "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"},
    };
    (void)state;
    assert_int_equal(hash_nix32_len(20), 32);
    assert_int_equal(hash_nix32_len(32), 52);
    assert_int_equal(hash_nix32_len(0), 0);
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        unsigned char h[20], h2[20];
        char out[40];
        assert_int_equal(hash_from_hex(v[i].hex, 40, h, 20), 0);
        hash_to_nix32(h, 20, out);
        assert_string_equal(out, v[i].nix32);
        assert_int_equal(hash_from_nix32(out, 32, h2, 20), 0);
        assert_memory_equal(h, h2, 20);
    }
}

static void
test_base64_lengths(void **state)
{
    /* Short inputs exercise the padding branches. */
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        char out[16];
        unsigned char back[8];
        size_t n = strlen(v[i].in);
        hash_to_base64((const unsigned char *)v[i].in, n, out);
        assert_string_equal(out, v[i].out);
        assert_int_equal(hash_from_base64(out, strlen(out), back, n), 0);
        assert_memory_equal(back, v[i].in, n);
    }
}

static void
test_sha256_stream(void **state)
{
    static const char abc_hex[] =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    unsigned char h[32];
    char hex[65];
    struct hash_ctx *c = hash_ctx_new();

    (void)state;
    hash_sha256("abc", 3, h);
    hash_to_hex(h, 32, hex);
    assert_string_equal(hex, abc_hex);

    hash_ctx_update(c, "a", 1);
    hash_ctx_update(c, "", 0);
    hash_ctx_update(c, "bc", 2);
    hash_ctx_final(c, h);
    hash_to_hex(h, 32, hex);
    assert_string_equal(hex, abc_hex);

    /* Reset gives a fresh digest. */
    hash_ctx_reset(c);
    hash_ctx_update(c, "abc", 3);
    hash_ctx_final(c, h);
    hash_to_hex(h, 32, hex);
    assert_string_equal(hex, abc_hex);
    hash_ctx_free(c);
    hash_ctx_free(NULL);
}

/* FIPS 180 test vectors. */
static void
test_sha1(void **state)
{
    unsigned char md[HASH_SHA1_LEN];
    char hex[2 * HASH_SHA1_LEN + 1];

    (void)state;
    hash_sha1("abc", 3, md);
    hash_to_hex(md, sizeof(md), hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    hash_sha1("", 0, md);
    hash_to_hex(md, sizeof(md), hex);
    assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_parse_any),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_nix32_sha1),
        cmocka_unit_test(test_base64_lengths),
        cmocka_unit_test(test_sha256_stream),
        cmocka_unit_test(test_sha1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
