/* test_pathinfo.c: dump-db and path-info JSON parsing (every shape Nix and
 * Lix print), the topological sort, and the local and serve queries
 * against fakes. */
#include "testutil.h"

#include "fakestream.h"

#include "crebuild/hash.h"
#include "crebuild/log.h"
#include "crebuild/pathinfo.h"
#include "crebuild/serve.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdint.h>

#define SP "/nix/store/"
#define A  SP "55dzh5cdrknsbxf2alivm76k7cp8qglv-leaf-a"
#define B  SP "ygy2qkk09gvgw9a0d68frpla7v229086-dir-b"
#define C  SP "5a2yr6wsg1rkh63v1wa3k7105gj4nz2c-top-c"
#define HA "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
#define HB "eb92eccda81b35a971ea43ae082aacc49dc24776a1795c57dcffe109a6878bba"
#define HC "6808fc2760e0a72ebe62951261d01063aaf604b5b161c156c4d842a7e4ecc4fa"

/* `nix-store --dump-db A B C` as Nix 2.8 printed it. */
static const char dump_db[] =
    A "\n" HA "\n120\n" SP "0z2cf8naams4mbi8z0af0hc6zgq41pdr-leaf-a.drv\n0\n" B
      "\n" HB "\n1312\n" SP "ic0px8x2k69l3iqbdcyxs0hsj9dn5nj8-dir-b.drv\n1\n" A
      "\n" C "\n" HC "\n3000520\n\n2\n" B "\n" C "\n";

static char *logbuf;
static size_t loglen;
static FILE *logfp;

static int
setup(void **state)
{
    (void)state;
    logfp = open_memstream(&logbuf, &loglen);
    log_set_stream(logfp);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    fclose(logfp);
    free(logbuf);
    logbuf = NULL;
    return 0;
}

static const char *
logged(void)
{
    fflush(logfp);
    return logbuf;
}

static void
list_abc(struct pathinfo_list *l)
{
    pathinfo_list_init(l);
    pathinfo_list_add(l, C);
    pathinfo_list_add(l, A);
    pathinfo_list_add(l, B);
}

static const char *
hex_of(const struct pathinfo *p)
{
    static char hex[65];
    hash_to_hex(p->nar_hash, 32, hex);
    return hex;
}

/* ---- the list ---- */

static void
test_list_index(void **state)
{
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    char name[64];

    (void)state;
    assert_int_equal(pathinfo_list_find(&l, A), PATHINFO_NONE);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), SP "%032d-p", i);
        assert_int_equal(pathinfo_list_add(&l, name), (size_t)i);
    }
    assert_int_equal(
        pathinfo_list_add(&l, SP "00000000000000000000000000000007-p"), 7);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), SP "%032d-p", i);
        assert_int_equal(pathinfo_list_find(&l, name), (size_t)i);
    }
    assert_int_equal(pathinfo_list_find(&l, A), PATHINFO_NONE);
    assert_int_equal(l.n, 5000);
    pathinfo_list_release(&l);
}

/* ---- dump-db ---- */

static void
test_dump_db(void **state)
{
    struct pathinfo_list l;
    size_t a, b, c;

    (void)state;
    list_abc(&l);
    assert_int_equal(pathinfo_parse_dump_db(&l, dump_db, strlen(dump_db)), 0);
    a = pathinfo_list_find(&l, A);
    b = pathinfo_list_find(&l, B);
    c = pathinfo_list_find(&l, C);
    assert_true(l.v[a].have_meta && l.v[b].have_meta && l.v[c].have_meta);
    assert_string_equal(hex_of(&l.v[a]), HA);
    assert_string_equal(hex_of(&l.v[c]), HC);
    assert_int_equal(l.v[a].nar_size, 120);
    assert_int_equal(l.v[c].nar_size, 3000520);
    assert_string_equal(l.v[a].deriver,
                        SP "0z2cf8naams4mbi8z0af0hc6zgq41pdr-leaf-a.drv");
    assert_null(l.v[c].deriver);
    assert_int_equal(l.v[a].nrefs, 0);
    assert_int_equal(l.v[b].nrefs, 1);
    assert_int_equal(l.v[b].refs[0], a);
    assert_int_equal(l.v[c].nrefs, 2);
    assert_int_equal(l.v[c].refs[0], b);
    assert_int_equal(l.v[c].refs[1], c); /* self reference kept */
    assert_int_equal(pathinfo_list_bytes(&l), 120 + 1312 + 3000520);
    pathinfo_list_release(&l);
}

static void
test_dump_db_bad(void **state)
{
    static const struct {
        const char *text, *err;
    } v[] = {
        {SP "zzzz-unknown\n" HA "\n1\n\n0\n", "unexpected path"},
        {A "\nnothex\n120\n\n0\n", "cannot parse"},
        {A "\n" HA "\n12x\n\n0\n", "cannot parse"},
        {A "\n" HA "\n120\n\n1\n" SP "zzzz-other\n", "not in its closure"},
        {A "\n" HA "\n120\n\n2\n" B "\n", "cannot parse"},
        {A "\n" HA "\n120\n", "cannot parse"},
        {A "\n" HA "\n120\n\n99\n", "cannot parse"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct pathinfo_list l;
        list_abc(&l);
        if (pathinfo_parse_dump_db(&l, v[i].text, strlen(v[i].text)) !=
            CR_ENIX) {
            fail_msg("case %zu accepted", i);
        }
        assert_non_null(strstr(logged(), v[i].err));
        pathinfo_list_release(&l);
    }
}

/* ---- path-info JSON ---- */

struct json_case {
    const char *name;
    const char *json;
    /* expected for A (signed, registered) and C (content-addressed) */
    const char *sigs_a; /* joined with ' ' */
    const char *ca_c;
    uint64_t reg_a;
};

static const struct json_case json_cases[] = {
    {"nix 2.8 array",
     "[{\"path\":\"" A "\",\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGj"
     "wgJZLL9Bx/BM=\",\"narSize\":120,\"references\":[],\"deriver\":\"" SP
     "0z2cf8naams4mbi8z0af0hc6zgq41pdr-leaf-a.drv\",\"registrationTime\":"
     "1795674126,\"ultimate\":true,\"signatures\":[\"k1:c2ln\",\"k2:c2lo\"]},"
     "{\"path\":\"" B "\",\"narHash\":\"sha256-65LszagbNalx6kOuCCqsxJ3CR3ahe"
     "VxX3P/hCaaHi7o=\",\"narSize\":1312,\"references\":[\"" A "\"]},"
     "{\"path\":\"" C "\",\"narHash\":\"sha256-aAj8J2Dgpy6+YpUSYdAQY6r2BLWxYc"
     "FWxNhCp+TsxPo=\",\"narSize\":3000520,\"references\":[\"" B "\"],"
     "\"ca\":\"fixed:r:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0k"
     "zq238\"},"
     "{\"path\":\"" SP "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-gone\",\"valid\":"
     "false}]",
     "k1:c2ln k2:c2lo",
     "fixed:r:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     1795674126},
    {"nix 2.19 object",
     "{\"" A "\":{\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9"
     "Bx/BM=\",\"narSize\":120,\"references\":[],\"registrationTime\":17,"
     "\"signatures\":[\"k1:c2ln\"]},"
     "\"" SP "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-gone\":null,"
     "\"" C "\":{\"narHash\":\"sha256-aAj8J2Dgpy6+YpUSYdAQY6r2BLWxYcFWxNhCp+T"
     "sxPo=\",\"narSize\":3000520,\"references\":[],\"ca\":\"text:sha256:"
     "1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238\"}}",
     "k1:c2ln",
     "text:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     17},
    {"nix 2.23 object with nulls",
     "{\"" A "\":{\"ca\":null,\"deriver\":null,\"narHash\":\"sha256-HDfQGvQL4"
     "ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=\",\"narSize\":120,\"references\":"
     "[],\"registrationTime\":null,\"signatures\":[],\"ultimate\":false},"
     "\"" B "\":{\"ca\":null,\"deriver\":null,\"narHash\":\"x\",\"narSize\":1,"
     "\"references\":[],\"registrationTime\":5,\"signatures\":null,"
     "\"ultimate\":false},"
     "\"" C "\":{\"ca\":null,\"deriver\":null,\"narHash\":\"x\",\"narSize\":1,"
     "\"references\":[],\"registrationTime\":5,\"signatures\":[],"
     "\"ultimate\":false}}",
     "",
     NULL,
     0},
    {"nix 2.33 v1",
     "{\"" A "\":{\"version\":1,\"storeDir\":\"/nix/store\",\"ca\":null,"
     "\"deriver\":null,\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwg"
     "JZLL9Bx/BM=\",\"narSize\":120,\"references\":[],\"registrationTime\":"
     "1700000000,\"signatures\":[\"cache.example.org-1:c2ln\"],\"ultimate\":"
     "false},\"" C "\":{\"version\":1,\"storeDir\":\"/nix/store\",\"ca\":"
     "\"fixed:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238\","
     "\"deriver\":null,\"narHash\":\"sha256-aAj8J2Dgpy6+YpUSYdAQY6r2BLWxYcFWx"
     "NhCp+TsxPo=\",\"narSize\":3000520,\"references\":[],\"registrationTime"
     "\":null,\"signatures\":[],\"ultimate\":false}}",
     "cache.example.org-1:c2ln",
     "fixed:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     1700000000},
    {"nix 2.33 v2 envelope",
     "{\"version\":2,\"storeDir\":\"/nix/store\",\"info\":{"
     "\"55dzh5cdrknsbxf2alivm76k7cp8qglv-leaf-a\":{\"version\":2,\"ca\":null,"
     "\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=\","
     "\"narSize\":120,\"references\":[],\"registrationTime\":9,\"signatures"
     "\":[\"k1:c2ln\"]},\"5a2yr6wsg1rkh63v1wa3k7105gj4nz2c-top-c\":{\"ca\":{"
     "\"method\":\"nar\",\"hash\":\"sha256-aAj8J2Dgpy6+YpUSYdAQY6r2BLWxYcFWxNh"
     "Cp+TsxPo=\"},\"narSize\":1,\"references\":[]}}}",
     "k1:c2ln",
     "fixed:r:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     9},
    {"nix 2.35 v3 structured signatures and hash object",
     "{\"version\":3,\"storeDir\":\"/nix/store\",\"info\":{"
     "\"55dzh5cdrknsbxf2alivm76k7cp8qglv-leaf-a\":{\"signatures\":[{"
     "\"keyName\":\"k1\",\"sig\":\"c2ln\"},{\"keyName\":\"k2\",\"sig\":"
     "\"c2lo\"}]},\"5a2yr6wsg1rkh63v1wa3k7105gj4nz2c-top-c\":{\"ca\":{"
     "\"method\":\"text\",\"hash\":{\"algorithm\":\"sha256\",\"format\":"
     "\"base16\",\"hash\":\"" HC "\"}}}}}",
     "k1:c2ln k2:c2lo",
     "text:sha256:1yn4xkjafhnqqibc2qdinl2gdak3238624lmcaz2x9z0c0kzq238",
     0},
    {"lix array with SRI and no optional fields",
     "[{\"path\":\"" A "\",\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppmvux"
     "fGjwgJZLL9Bx/BM=\",\"narSize\":120,\"references\":[],"
     "\"registrationTime\":3}]",
     "",
     NULL,
     3},
};

static void
test_json_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(json_cases); i++) {
        const struct json_case *jc = &json_cases[i];
        struct pathinfo_list l;
        struct pathinfo *a;
        struct pathinfo *c;
        char *sigs;

        list_abc(&l);
        /* Stale values must be replaced, not appended to. */
        a = &l.v[pathinfo_list_find(&l, A)];
        c = &l.v[pathinfo_list_find(&l, C)];
        strvec_push(&a->sigs, "stale:x");
        if (strstr(jc->json, "top-c") != NULL) {
            c->ca = xstrdup("stale");
        }
        if (pathinfo_parse_json(&l, jc->json, strlen(jc->json)) != 0) {
            fail_msg("%s: rejected", jc->name);
        }
        sigs = strvec_join(&a->sigs, " ");
        if (strcmp(sigs, jc->sigs_a) != 0) {
            fail_msg("%s: sigs '%s', want '%s'", jc->name, sigs, jc->sigs_a);
        }
        free(sigs);
        if (jc->ca_c == NULL) {
            assert_null(c->ca);
        } else {
            if (c->ca == NULL) {
                fail_msg("%s: no ca", jc->name);
            }
            if (strcmp(c->ca, jc->ca_c) != 0) {
                fail_msg("%s: ca '%s'", jc->name, c->ca);
            }
        }
        assert_int_equal(a->reg_time, jc->reg_a);
        pathinfo_list_release(&l);
    }
}

/* nix path-info --json with narHash, narSize, references (and deriver)
 * fills the entry completely, so nix-store --dump-db is not needed. */
static void
test_json_full_meta(void **state)
{
    static const char arr[] =
        "[{\"path\":\"" A "\",\"narHash\":\"sha256-HDfQGvQL4ugGkd48w99EN3ppm"
        "vuxfGjwgJZLL9Bx/BM=\",\"narSize\":120,\"references\":[\"" A "\"],"
        "\"deriver\":\"" SP "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv\"},"
        "{\"path\":\"" B "\",\"narHash\":\"sha256:" HB "\",\"narSize\":1312,"
        "\"references\":[\"" A "\"],\"deriver\":null},"
        "{\"path\":\"" C "\",\"narHash\":\"sha256:" HC "\",\"narSize\":5,"
        "\"references\":[\"" SP
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-elsewhere\"]}]";
    static const char v2[] =
        "{\"version\":2,\"storeDir\":\"/nix/store\",\"info\":{"
        "\"55dzh5cdrknsbxf2alivm76k7cp8qglv-leaf-a\":{\"narHash\":{"
        "\"algorithm\":\"sha256\",\"format\":\"base16\",\"hash\":\"" HA "\"},"
        "\"narSize\":120,\"references\":[],\"deriver\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv\"},"
        "\"ygy2qkk09gvgw9a0d68frpla7v229086-dir-b\":{\"narHash\":\"sha256:" HB
        "\",\"narSize\":7,\"references\":[\"55dzh5cdrknsbxf2alivm76k7cp8qglv-"
        "leaf-a\",\"ygy2qkk09gvgw9a0d68frpla7v229086-dir-b\"]}}}";
    static const char *const partial[] = {
        "[{\"path\":\"" A "\",\"narHash\":\"x\",\"narSize\":1,"
        "\"references\":[]}]",
        "[{\"path\":\"" A "\",\"narHash\":\"sha256:" HA "\",\"narSize\":-1,"
        "\"references\":[]}]",
        "[{\"path\":\"" A "\",\"narHash\":\"sha256:" HA "\",\"narSize\":1}]",
        "[{\"path\":\"" A "\",\"narHash\":\"sha256:" HA "\",\"narSize\":1,"
        "\"references\":[],\"deriver\":7}]",
        "[{\"path\":\"" A "\",\"narHash\":\"sha256:" HA "\",\"narSize\":1,"
        "\"references\":[3]}]",
        "[{\"path\":\"" A "\",\"narHash\":{\"algorithm\":\"md5\",\"hash\":"
        "\"" HA "\"},\"narSize\":1,\"references\":[]}]",
    };
    struct pathinfo_list l;
    const struct pathinfo *a, *b, *c;

    (void)state;
    list_abc(&l);
    assert_int_equal(pathinfo_parse_json(&l, arr, strlen(arr)), 0);
    a = &l.v[pathinfo_list_find(&l, A)];
    b = &l.v[pathinfo_list_find(&l, B)];
    c = &l.v[pathinfo_list_find(&l, C)];
    assert_true(a->have_meta);
    assert_string_equal(hex_of(a), HA);
    assert_int_equal(a->nar_size, 120);
    assert_int_equal(a->nrefs, 1);
    assert_string_equal(l.v[a->refs[0]].path, A);
    assert_string_equal(a->deriver,
                        SP "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv");
    assert_true(b->have_meta);
    assert_string_equal(hex_of(b), HB);
    assert_null(b->deriver);
    assert_int_equal(b->nrefs, 1);
    assert_string_equal(l.v[b->refs[0]].path, A);
    /* A reference outside the list: left to dump-db (which reports it). */
    assert_false(c->have_meta);
    pathinfo_list_release(&l);

    /* Base names (the 2.33+ envelope) are completed with the store. */
    list_abc(&l);
    assert_int_equal(pathinfo_parse_json(&l, v2, strlen(v2)), 0);
    a = &l.v[pathinfo_list_find(&l, A)];
    b = &l.v[pathinfo_list_find(&l, B)];
    assert_true(a->have_meta);
    assert_string_equal(hex_of(a), HA);
    assert_string_equal(a->deriver,
                        SP "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a.drv");
    assert_true(b->have_meta);
    assert_int_equal(b->nrefs, 2);
    assert_string_equal(l.v[b->refs[1]].path, B);
    pathinfo_list_release(&l);

    for (size_t i = 0; i < ARRAY_SIZE(partial); i++) {
        list_abc(&l);
        assert_int_equal(
            pathinfo_parse_json(&l, partial[i], strlen(partial[i])), 0);
        if (l.v[pathinfo_list_find(&l, A)].have_meta) {
            fail_msg("partial %zu taken as complete", i);
        }
        pathinfo_list_release(&l);
    }
}

static void
test_json_bad(void **state)
{
    static const char *const bad[] = {
        "", "not json", "[1,2", "42", "\"string\"", "null"};
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct pathinfo_list l;
        list_abc(&l);
        if (pathinfo_parse_json(&l, bad[i], strlen(bad[i])) != CR_ENIX) {
            fail_msg("accepted '%s'", bad[i]);
        }
        pathinfo_list_release(&l);
    }
    /* Odd but harmless members are skipped. */
    {
        static const char odd[] = "[1, \"x\", {\"nopath\":1}, {\"path\":"
                                  "\"" A "\",\"signatures\":[1,{\"a\":1},"
                                  "\"k:v\"],\"ca\":42}]";
        struct pathinfo_list l;
        list_abc(&l);
        assert_int_equal(pathinfo_parse_json(&l, odd, strlen(odd)), 0);
        assert_int_equal(l.v[pathinfo_list_find(&l, A)].sigs.n, 1);
        pathinfo_list_release(&l);
    }
}

/* The structured content addresses of Nix 2.33+ in the legacy form, as
 * Nix's ContentAddress::render writes it: every algorithm Nix has, each
 * method.  The expected nix32 digests are those `nix hash to-base32`
 * prints for the same hashes (of "abc"). */
struct ca_case {
    const char *json; /* the value of "ca" */
    const char *want; /* NULL: cannot be rendered */
};

#define MD5_ABC        "md5-kAFQmDzST7DWlj99KOF/cg=="
#define SHA1_ABC       "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
#define SHA256_ABC_B64 "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
#define SHA512_ABC                                                       \
    "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCO" \
    "j/uu9RU1EI2Q86A4qmslPpUyknw=="
#define N32_MD5    "3jgzhjhz9zjvbb0kyj7jc500ch"
#define N32_SHA1   "kpcd173cq987hw957sx6m0868wv3x6d9"
#define N32_SHA256 "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
#define N32_SHA512                                                         \
    "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7x" \
    "ac99vxfc4ii84hawjbk876blyk1jfhkbbyx"

static const struct ca_case ca_good[] = {
    {"{\"method\":\"flat\",\"hash\":\"" SHA512_ABC "\"}",
     "fixed:sha512:" N32_SHA512},
    {"{\"method\":\"nar\",\"hash\":\"" SHA1_ABC "\"}",
     "fixed:r:sha1:" N32_SHA1},
    {"{\"method\":\"flat\",\"hash\":\"" MD5_ABC "\"}", "fixed:md5:" N32_MD5},
    {"{\"method\":\"nar\",\"hash\":\"" MD5_ABC "\"}", "fixed:r:md5:" N32_MD5},
    {"{\"hash\":\"sha256-" SHA256_ABC_B64 "\",\"method\":\"text\"}",
     "text:sha256:" N32_SHA256},
    {"{\"method\":\"git\",\"hash\":\"" SHA1_ABC "\"}",
     "fixed:git:sha1:" N32_SHA1},
    {"{\"method\":\"git\",\"hash\":\"sha256-" SHA256_ABC_B64 "\"}",
     "fixed:git:sha256:" N32_SHA256},
    {"{\"method\":\"nar\",\"hash\":\"blake3-" SHA256_ABC_B64 "\"}",
     "fixed:r:blake3:" N32_SHA256},
    /* Nix's own test data: path-info json-2/impure.json against
     * json-1/impure.json. */
    {"{\"method\":\"nar\",\"hash\":\"sha256-EMIJ+giQ/gLIWoxmPKjno3zHZrxbG"
     "ymgzGGyZvZBIdM=\"}",
     "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh"},
    /* "<algo>:<digest>" in any encoding, and the hash objects of Nix's
     * development versions */
    {"{\"method\":\"flat\",\"hash\":\"sha1:" N32_SHA1 "\"}",
     "fixed:sha1:" N32_SHA1},
    {"{\"method\":\"nar\",\"hash\":{\"algorithm\":\"md5\",\"format\":"
     "\"base16\",\"hash\":\"900150983cd24fb0d6963f7d28e17f72\"}}",
     "fixed:r:md5:" N32_MD5},
    {"{\"method\":\"flat\",\"hash\":{\"algorithm\":\"sha512\",\"format\":"
     "\"sri\",\"hash\":\"" SHA512_ABC "\"}}",
     "fixed:sha512:" N32_SHA512},
};

static const struct ca_case ca_bad[] = {
    {"{\"method\":\"nar\",\"hash\":\"sha384-" SHA256_ABC_B64 "\"}", NULL},
    {"{\"method\":\"recursive\",\"hash\":\"" SHA1_ABC "\"}", NULL},
    {"{\"hash\":\"" SHA1_ABC "\"}", NULL},
    {"{\"method\":\"nar\"}", NULL},
    {"{\"method\":\"nar\",\"hash\":7}", NULL},
    {"{\"method\":\"nar\",\"hash\":\"md5\"}", NULL},
    {"{\"method\":\"nar\",\"hash\":\"" N32_SHA256 "\"}", NULL},
    /* a digest of another size, bad characters, trailing bits */
    {"{\"method\":\"flat\",\"hash\":\"sha512-" SHA256_ABC_B64 "\"}", NULL},
    {"{\"method\":\"flat\",\"hash\":\"sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J!=\"}",
     NULL},
    {"{\"method\":\"flat\",\"hash\":\"md5-kAFQmDzST7DWlj99KOF/cx==\"}", NULL},
    {"{\"method\":\"nar\",\"hash\":{\"algorithm\":\"sha256\"}}", NULL},
    {"{\"method\":\"nar\",\"hash\":{\"hash\":\"" N32_SHA256 "\"}}", NULL},
};

/* Parse a v2 envelope with C holding "ca": ca and a signature. */
static struct pathinfo *
parse_ca(struct pathinfo_list *l, const char *ca)
{
    char *json = xasprintf("{\"version\":2,\"storeDir\":\"/nix/store\","
                           "\"info\":{\"5a2yr6wsg1rkh63v1wa3k7105gj4nz2c-"
                           "top-c\":{\"ca\":%s,\"signatures\":[\"k:v\"]}}}",
                           ca);
    struct pathinfo *c;

    list_abc(l);
    c = &l->v[pathinfo_list_find(l, C)];
    c->ca = xstrdup("stale");
    if (pathinfo_parse_json(l, json, strlen(json)) != 0) {
        fail_msg("rejected %s", ca);
    }
    free(json);
    /* The rest of the entry is taken either way. */
    assert_int_equal(c->sigs.n, 1);
    return c;
}

static void
test_json_ca_structured(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(ca_good); i++) {
        struct pathinfo_list l;
        const struct pathinfo *c = parse_ca(&l, ca_good[i].json);

        if (c->ca == NULL || strcmp(c->ca, ca_good[i].want) != 0) {
            fail_msg("%s: got '%s', want '%s'",
                     ca_good[i].json,
                     c->ca ? c->ca : "(none)",
                     ca_good[i].want);
        }
        pathinfo_list_release(&l);
    }
    assert_null(strstr(logged() ? logged() : "", "content address"));
}

/* One that cannot be rendered is not passed on, nor dropped silently: a
 * warning (once per run; the process has not warned before this test)
 * names the path and the reason. */
static void
test_json_ca_unrenderable(void **state)
{
    const char *log;
    size_t start;

    (void)state;
    fflush(logfp);
    start = loglen;
    for (size_t i = 0; i < ARRAY_SIZE(ca_bad); i++) {
        struct pathinfo_list l;
        const struct pathinfo *c = parse_ca(&l, ca_bad[i].json);

        if (c->ca != NULL) {
            fail_msg("%s: rendered as '%s'", ca_bad[i].json, c->ca);
        }
        pathinfo_list_release(&l);
    }
    log = logged() + start;
    assert_non_null(strstr(log,
                           "warning: cannot read the content address of '" C
                           "' in the output of nix path-info (unknown hash "
                           "algorithm 'sha384'): copying it without one"));
    assert_null(strstr(strstr(log, "content address") + 1, "content address"));
}

/* ---- topological sort ---- */

struct graph_case {
    const char *name;
    int n;
    const char *edges; /* "0>1 1>2": 0 references 1 */
    const char *want;  /* resulting order, or NULL for a cycle */
};

static const struct graph_case graphs[] = {
    {"empty", 0, "", ""},
    {"single", 1, "", "0"},
    {"sorted stays", 3, "1>0 2>1", "012"},
    {"reversed chain", 3, "0>1 1>2", "210"},
    {"diamond", 4, "0>1 0>2 1>3 2>3", "3120"},
    {"self references ignored", 2, "0>0 0>1 1>1", "10"},
    {"independent order kept", 4, "2>3", "0132"},
    {"cycle", 3, "0>1 1>2 2>0", NULL},
    {"two-cycle", 2, "0>1 1>0", NULL},
};

static void
test_toposort(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(graphs); i++) {
        const struct graph_case *g = &graphs[i];
        struct pathinfo_list l = PATHINFO_LIST_INIT;
        char name[32];
        const char *e;
        int rc;

        for (int k = 0; k < g->n; k++) {
            snprintf(name, sizeof(name), "%d", k);
            pathinfo_list_add(&l, name);
            l.v[k].refs = xcalloc((size_t)g->n, sizeof(uint32_t));
        }
        for (e = g->edges; *e;) {
            int from = e[0] - '0';
            int to = e[2] - '0';
            l.v[from].refs[l.v[from].nrefs++] = (uint32_t)to;
            e += e[3] ? 4 : 3;
        }
        rc = pathinfo_toposort(&l);
        if (g->want == NULL) {
            if (rc != CR_ENIX) {
                fail_msg("%s: cycle not found", g->name);
            }
            assert_non_null(strstr(logged(), "cycle"));
        } else {
            struct strbuf got = STRBUF_INIT;
            assert_int_equal(rc, 0);
            for (size_t k = 0; k < l.n; k++) {
                strbuf_addstr(&got, l.v[k].path);
                /* References were remapped to the new positions. */
                for (size_t r = 0; r < l.v[k].nrefs; r++) {
                    assert_true(l.v[k].refs[r] <= k);
                }
                assert_int_equal(pathinfo_list_find(&l, l.v[k].path), k);
            }
            if (strcmp(got.buf, g->want) != 0) {
                fail_msg("%s: got %s, want %s", g->name, got.buf, g->want);
            }
            strbuf_release(&got);
        }
        pathinfo_list_release(&l);
    }
}

/* pathinfo_order: the same graphs as an index set over the whole list
 * (the same order must come out), and subsets whose references outside
 * the set are taken as present. */
static void
test_order(void **state)
{
    static const struct {
        const char *name;
        int n;
        const char *edges;
        const char *set; /* the indices given, in this order */
        const char *want;
    } subsets[] = {
        {"outside refs ignored", 4, "0>3 1>0 2>1", "210", "012"},
        {"given order kept", 4, "", "3102", "3102"},
        {"only what is given", 5, "4>0 3>4", "34", "43"},
        {"cycle outside", 4, "0>1 1>0 2>3", "32", "32"},
        {"cycle inside", 3, "0>1 1>0", "01", NULL},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(graphs) + ARRAY_SIZE(subsets); i++) {
        int sub = i >= ARRAY_SIZE(graphs);
        size_t si = sub ? i - ARRAY_SIZE(graphs) : 0;
        const char *name = sub ? subsets[si].name : graphs[i].name;
        int n = sub ? subsets[si].n : graphs[i].n;
        const char *edges = sub ? subsets[si].edges : graphs[i].edges;
        const char *want = sub ? subsets[si].want : graphs[i].want;
        struct pathinfo_list l = PATHINFO_LIST_INIT;
        size_t idx[8];
        size_t nidx = 0;
        char nm[32];
        int rc;

        for (int k = 0; k < n; k++) {
            snprintf(nm, sizeof(nm), "%d", k);
            pathinfo_list_add(&l, nm);
            l.v[k].refs = xcalloc((size_t)n, sizeof(uint32_t));
        }
        for (const char *e = edges; *e;) {
            int from = e[0] - '0';
            l.v[from].refs[l.v[from].nrefs++] = (uint32_t)(e[2] - '0');
            e += e[3] ? 4 : 3;
        }
        if (sub) {
            for (const char *c = subsets[si].set; *c; c++) {
                idx[nidx++] = (size_t)(*c - '0');
            }
        } else {
            for (int k = 0; k < n; k++) {
                idx[nidx++] = (size_t)k;
            }
        }
        rc = pathinfo_order(&l, idx, nidx);
        if (want == NULL) {
            if (rc != CR_ENIX) {
                fail_msg("%s: cycle not found", name);
            }
        } else {
            char got[16] = "";

            assert_int_equal(rc, 0);
            for (size_t k = 0; k < nidx; k++) {
                got[k] = (char)('0' + idx[k]);
            }
            if (strcmp(got, want) != 0) {
                fail_msg("%s: got %s, want %s", name, got, want);
            }
            /* The list itself is untouched. */
            for (int k = 0; k < n; k++) {
                snprintf(nm, sizeof(nm), "%d", k);
                assert_string_equal(l.v[k].path, nm);
            }
        }
        pathinfo_list_release(&l);
    }
}

static void
test_toposort_deep_chain(void **state)
{
    /* 100000 paths in one chain, listed top first: no recursion. */
    const size_t n = 100000;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    char name[32];

    (void)state;
    for (size_t k = 0; k < n; k++) {
        snprintf(name, sizeof(name), "p%zu", k);
        pathinfo_list_add(&l, name);
        if (k + 1 < n) {
            l.v[k].refs = xcalloc(1, sizeof(uint32_t));
            l.v[k].refs[0] = (uint32_t)(k + 1);
            l.v[k].nrefs = 1;
        }
    }
    assert_int_equal(pathinfo_toposort(&l), 0);
    snprintf(name, sizeof(name), "p%zu", n - 1);
    assert_string_equal(l.v[0].path, name);
    assert_string_equal(l.v[n - 1].path, "p0");
    pathinfo_list_release(&l);
}

/* ---- local query against a fake host ---- */

struct fake_host {
    struct host h;
    struct strbuf log; /* one line per command run */
    int fail_json;
    int nruns;
    size_t max_args_bytes;
    const char *closure;  /* -qR output */
    int dump_db_extra;    /* generate records for synthetic paths */
    int json_full;        /* path-info gives A and B completely */
    size_t dump_db_paths; /* paths asked of --dump-db, all runs */
    atomic_int *cancel;   /* set when path-info runs (then it fails) */
};

static void
gen_dump_db(const struct strvec *argv, size_t first, struct strbuf *out)
{
    for (size_t i = first; i < argv->n; i++) {
        const char *p = argv->v[i];
        if (strcmp(p, A) == 0) {
            strbuf_addf(out, "%s\n%s\n120\n\n0\n", A, HA);
        } else if (strcmp(p, B) == 0) {
            strbuf_addf(out, "%s\n%s\n1312\n\n1\n%s\n", B, HB, A);
        } else if (strcmp(p, C) == 0) {
            strbuf_addf(out, "%s\n%s\n3000520\n\n2\n%s\n%s\n", C, HC, C, B);
        } else {
            /* synthetic: /nix/store/<n>-syn references its predecessor */
            unsigned long k = strtoul(p + strlen(SP), NULL, 10);
            strbuf_addf(out, "%s\n%s\n8\n\n", p, HA);
            if (k > 0) {
                strbuf_addf(out, "1\n" SP "%032lu-syn\n", k - 1);
            } else {
                strbuf_addstr(out, "0\n");
            }
        }
    }
}

static int
fh_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    struct fake_host *f = (struct fake_host *)h;
    const struct strvec *argv = cmd->argv;
    size_t bytes = 0;
    size_t first = 1;
    char *joined;

    f->nruns++;
    *status = 0;
    assert_non_null(cmd->out);
    for (size_t i = 1; i < argv->n; i++) {
        bytes += strlen(argv->v[i]) + 1;
        if (argv->v[i][0] == '-' || strcmp(argv->v[i], "nix-command") == 0 ||
            strcmp(argv->v[i], "path-info") == 0 ||
            strcmp(argv->v[i], "/tmp/st") == 0) {
            first = i + 1;
        }
    }
    if (bytes > f->max_args_bytes) {
        f->max_args_bytes = bytes;
    }
    joined = strvec_join(argv, " ");
    strbuf_addf(&f->log, "%.60s\n", joined);
    free(joined);
    if (strcmp(argv->v[0], "nix-store") == 0) {
        for (size_t i = 1; i < argv->n; i++) {
            if (strcmp(argv->v[i], "--requisites") == 0) {
                strbuf_addstr(cmd->out, f->closure);
                return 0;
            }
            if (strcmp(argv->v[i], "--dump-db") == 0) {
                f->dump_db_paths += argv->n - first;
                gen_dump_db(argv, first, cmd->out);
                return 0;
            }
        }
    }
    if (strcmp(argv->v[0], "nix") == 0) {
        if (f->cancel != NULL) {
            /* as feed_free: the flag, then the running nix killed */
            atomic_store(f->cancel, 1);
            *status = 128 + 9;
            return 0;
        }
        if (f->fail_json) {
            strbuf_addstr(cmd->err,
                          "error: experimental Nix feature "
                          "'nix-command' is disabled\n");
            *status = 1;
            return 0;
        }
        if (f->json_full) {
            strbuf_addstr(cmd->out,
                          "[{\"path\":\"" A "\",\"narHash\":\"sha256:" HA
                          "\",\"narSize\":120,\"references\":[],"
                          "\"signatures\":[\"k:c2ln\"]},{\"path\":\"" B
                          "\",\"narHash\":\"sha256:" HB "\",\"narSize\":9,"
                          "\"references\":[\"" A "\"]}]");
            return 0;
        }
        strbuf_addstr(cmd->out,
                      "[{\"path\":\"" A "\",\"signatures\":"
                      "[\"k:c2ln\"]}]");
        return 0;
    }
    *status = 1;
    return 0;
}

static void
fh_free(struct host *h)
{
    (void)h;
}

static const struct host_ops fh_ops = {fh_run, NULL, fh_free};

static void
fh_init(struct fake_host *f, const char *closure)
{
    memset(f, 0, sizeof(*f));
    f->h.ops = &fh_ops;
    f->h.name = (char *)(uintptr_t) "localhost";
    f->h.is_local = 1;
    strbuf_init(&f->log, 0);
    f->closure = closure;
}

static void
test_query_local(void **state)
{
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    /* An order that is not dependency-first: the sort must fix it. */
    fh_init(&f, C "\n" A "\n" B "\n");
    strvec_push(&roots, C);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, "/tmp/st", &l), 0);
    assert_int_equal(f.nruns, 3);
    assert_string_equal(
        f.log.buf,
        "nix-store --store /tmp/st --query --requisites " SP "5a\n"
        "nix --extra-experimental-features nix-command path-info --js\n"
        "nix-store --store /tmp/st --dump-db " SP "5a2yr6wsg1rkh\n");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].path, A);
    assert_string_equal(l.v[1].path, B);
    assert_string_equal(l.v[2].path, C);
    assert_int_equal(l.v[0].sigs.n, 1);
    assert_int_equal(l.v[2].nrefs, 2);
    assert_int_equal(l.v[2].refs[0], 2);
    assert_int_equal(l.v[2].refs[1], 1);
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    strbuf_release(&f.log);
}

/* Where path-info gives everything, only the rest goes to --dump-db. */
static void
test_query_local_json_full(void **state)
{
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    fh_init(&f, C "\n" A "\n" B "\n");
    f.json_full = 1;
    strvec_push(&roots, C);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), 0);
    assert_int_equal(f.dump_db_paths, 1); /* C alone */
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].path, A);
    assert_string_equal(hex_of(&l.v[0]), HA);
    assert_int_equal(l.v[0].sigs.n, 1);
    assert_int_equal(l.v[1].nar_size, 9);
    for (size_t i = 0; i < l.n; i++) {
        assert_true(l.v[i].have_meta);
    }
    /* Both complete: no --dump-db at all. */
    pathinfo_list_release(&l);
    strbuf_release(&f.log);
    fh_init(&f, A "\n" B "\n");
    f.json_full = 1;
    strvec_clear(&roots);
    strvec_push(&roots, B);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), 0);
    assert_int_equal(f.dump_db_paths, 0);
    assert_int_equal(f.nruns, 2);
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    strbuf_release(&f.log);
}

static void
test_query_local_json_fails(void **state)
{
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    fh_init(&f, A "\n" B "\n");
    f.fail_json = 1;
    strvec_push(&roots, B);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), 0);
    assert_non_null(strstr(logged(), "warning: cannot query signatures"));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.v[0].sigs.n, 0);
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    strbuf_release(&f.log);
}

/* A fill cancelled while its nix runs (killed: it fails), or already
 * cancelled, or interrupted: CR_EINTR, nothing logged, no --dump-db
 * fallback, and the next run of the thread is normal again. */
static void
test_fill_cancelled(void **state)
{
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    atomic_int flag;
    size_t idx[2];
    int want_json = 1;
    size_t before;
    int rc;

    (void)state;
    atomic_init(&flag, 0);
    idx[0] = pathinfo_list_add(&l, A);
    idx[1] = pathinfo_list_add(&l, B);
    fh_init(&f, "");
    f.cancel = &flag;
    pathinfo_cancel_on(&flag);
    before = strlen(logged());
    assert_int_equal(pathinfo_fill_some(&f.h, NULL, &l, idx, 2, &want_json),
                     CR_EINTR);
    assert_int_equal(f.nruns, 1); /* path-info only */
    assert_int_equal(want_json, 1);
    assert_int_equal(strlen(logged()), before);
    /* Set before: nothing runs. */
    assert_int_equal(pathinfo_fill_some(&f.h, NULL, &l, idx, 2, &want_json),
                     CR_EINTR);
    assert_int_equal(f.nruns, 1);
    /* Not this thread's flag any more: a failing path-info is warned
     * about and --dump-db gives the metadata. */
    pathinfo_cancel_on(NULL);
    f.cancel = NULL;
    f.fail_json = 1;
    assert_int_equal(pathinfo_fill_some(&f.h, NULL, &l, idx, 2, &want_json), 0);
    assert_non_null(
        strstr(logged() + before, "warning: cannot query signatures"));
    assert_true(l.v[idx[1]].have_meta);
    /* Interrupted (SIGINT): the same quiet CR_EINTR. */
    before = strlen(logged());
    want_json = 1;
    cr_interrupted = 2;
    rc = pathinfo_fill_some(&f.h, NULL, &l, idx, 2, &want_json);
    cr_interrupted = 0; /* before any assert: the next tests run anyway */
    assert_int_equal(rc, CR_EINTR);
    assert_int_equal(strlen(logged()), before);
    pathinfo_list_release(&l);
    strbuf_release(&f.log);
}

static void
test_query_local_batches(void **state)
{
    /* 5000 paths of 60 bytes from a remote host (one command-line
     * argument there): several runs, each within 128 KiB; path-info is
     * not retried after it fails once. */
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;
    struct strbuf closure = STRBUF_INIT;
    const int n = 5000;

    (void)state;
    for (int k = n - 1; k >= 0; k--) {
        strbuf_addf(&closure, SP "%032d-syn\n", k);
    }
    fh_init(&f, closure.buf);
    f.h.is_local = 0;
    f.fail_json = 1;
    strvec_push(&roots, SP "00000000000000000000000000004999-syn");
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), 0);
    assert_int_equal(l.n, (size_t)n);
    assert_true(f.max_args_bytes <= 100 * 1024);
    assert_true(f.nruns >= 1 + 3 + 1);
    assert_true(f.nruns <= 1 + 4 + 1);
    pathinfo_list_release(&l);
    strbuf_release(&f.log);

    /* The same locally: one --dump-db and one path-info for all. */
    pathinfo_list_init(&l);
    fh_init(&f, closure.buf);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), 0);
    assert_int_equal(l.n, (size_t)n);
    assert_int_equal(f.nruns, 1 + 1 + 1);
    /* Dependency-first: the chain's bottom comes first. */
    assert_string_equal(l.v[0].path, SP "00000000000000000000000000000000-syn");
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    strbuf_release(&closure);
    strbuf_release(&f.log);
}

static void
test_query_local_errors(void **state)
{
    struct fake_host f;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    /* A reference outside the closure -qR printed. */
    fh_init(&f, A "\n" SP "00000000000000000000000000000005-syn\n");
    strvec_push(&roots, A);
    assert_int_equal(pathinfo_query_local(&f.h, &roots, NULL, &l), CR_ENIX);
    assert_non_null(strstr(logged(), "is not in its closure"));
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    strbuf_release(&f.log);
}

/* ---- serve query against a fake stream ---- */

static void
put_info(struct strbuf *in,
         const char *path,
         const char *hex,
         uint64_t size,
         const char *ref1,
         const char *ref2)
{
    unsigned char h[32];
    char n32[53];

    hash_from_hex(hex, 64, h, 32);
    hash_to_nix32(h, 32, n32);
    put_str(in, path);
    put_str(in, "");
    put_u64(in, (ref1 != NULL) + (ref2 != NULL));
    if (ref1) {
        put_str(in, ref1);
    }
    if (ref2) {
        put_str(in, ref2);
    }
    put_u64(in, size);
    put_u64(in, size);
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "sha256:%s", n32);
        put_str(in, buf);
    }
    put_str(in, "");
    put_u64(in, 0);
}

static void
test_query_serve(void **state)
{
    struct fake f;
    struct serve_conn *c = NULL;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    fake_init(&f);
    put_u64(&f.in, SERVE_MAGIC_2);
    put_u64(&f.in, 0x207);
    put_u64(&f.in, 3); /* QueryClosure: sorted by name, not dependency */
    put_str(&f.in, C);
    put_str(&f.in, A);
    put_str(&f.in, B);
    put_info(&f.in, C, HC, 3000520, B, C);
    put_info(&f.in, A, HA, 120, NULL, NULL);
    put_info(&f.in, B, HB, 1312, A, NULL);
    put_str(&f.in, "");
    assert_int_equal(serve_open(&f.s, "builder", &c), 0);
    strvec_push(&roots, C);
    assert_int_equal(pathinfo_query_serve(c, &roots, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].path, A);
    assert_string_equal(l.v[1].path, B);
    assert_string_equal(l.v[2].path, C);
    assert_string_equal(hex_of(&l.v[2]), HC);
    assert_int_equal(l.v[2].nar_size, 3000520);
    serve_free(c);
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    fake_release(&f);
}

static void
test_query_serve_missing_info(void **state)
{
    struct fake f;
    struct serve_conn *c = NULL;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    fake_init(&f);
    put_u64(&f.in, SERVE_MAGIC_2);
    put_u64(&f.in, 0x207);
    put_u64(&f.in, 2);
    put_str(&f.in, A);
    put_str(&f.in, B);
    put_info(&f.in, B, HB, 1312, A, NULL);
    put_str(&f.in, "");
    assert_int_equal(serve_open(&f.s, "builder", &c), 0);
    strvec_push(&roots, B);
    assert_int_equal(pathinfo_query_serve(c, &roots, &l), CR_ENIX);
    assert_non_null(strstr(logged(), "no metadata for '" A "'"));
    serve_free(c);
    pathinfo_list_release(&l);
    strvec_clear(&roots);
    fake_release(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_index),
        cmocka_unit_test(test_dump_db),
        cmocka_unit_test(test_dump_db_bad),
        cmocka_unit_test(test_json_shapes),
        cmocka_unit_test(test_json_full_meta),
        cmocka_unit_test(test_json_bad),
        cmocka_unit_test(test_json_ca_structured),
        cmocka_unit_test(test_json_ca_unrenderable),
        cmocka_unit_test(test_toposort),
        cmocka_unit_test(test_toposort_deep_chain),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_query_local),
        cmocka_unit_test(test_query_local_json_full),
        cmocka_unit_test(test_query_local_json_fails),
        cmocka_unit_test(test_fill_cancelled),
        cmocka_unit_test(test_query_local_batches),
        cmocka_unit_test(test_query_local_errors),
        cmocka_unit_test(test_query_serve),
        cmocka_unit_test(test_query_serve_missing_info),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
