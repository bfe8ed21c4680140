/* generations.c: list a profile's generations on any host. */
#include "crebuild/generations.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* $1 = profile path.  Output: id TAB mtime TAB current TAB version TAB
 * kernel TAB revision TAB space-separated specialisations.  Exit 2 when
 * the profile does not exist. */
static const char script[] =
    "p=$1; d=${p%/*}; n=${p##*/}\n"
    "cur=$(readlink \"$p\") || exit 2\n"
    "cur=${cur##*/}\n"
    "for l in \"$d/$n\"-*-link; do\n"
    "  [ -L \"$l\" ] || continue\n"
    "  b=${l##*/}; id=${b#\"$n\"-}; id=${id%-link}\n"
    "  case $id in ''|*[!0-9]*) continue;; esac\n"
    "  ts=$(stat -c %Y \"$l\") || ts=0\n"
    "  c=0; [ \"$b\" = \"$cur\" ] && c=1\n"
    "  v=$(cat \"$l/nixos-version\" 2>/dev/null) || v=Unknown\n"
    "  k=$(ls \"$l/kernel-modules/lib/modules\" 2>/dev/null | head -n 1)\n"
    "  [ -n \"$k\" ] || k=Unknown\n"
    "  r=$(\"$l/sw/bin/nixos-version\" --configuration-revision 2>/dev/null)"
    " || r=Unknown\n"
    "  [ -n \"$r\" ] || r=Unknown\n"
    "  s=$(ls \"$l/specialisation\" 2>/dev/null | tr '\\n\\t' '  ')\n"
    "  printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$id\" \"$ts\" \"$c\" "
    "\"$v\" \"$k\" \"$r\" \"$s\"\n"
    "done\n";

void
generations_script_argv(const char *profile, struct strvec *argv)
{
    strvec_pushl(argv,
                 "/bin/sh",
                 "-c",
                 script,
                 "get-generations",
                 profile,
                 (const char *)NULL);
}

static char *
field(char **cursor)
{
    char *s = *cursor, *tab;

    if (s == NULL) {
        return NULL;
    }
    tab = strchr(s, '\t');
    if (tab != NULL) {
        *tab = '\0';
        *cursor = tab + 1;
    } else {
        *cursor = NULL;
    }
    return s;
}

static int
cmp_desc(const void *a, const void *b)
{
    const struct generation *x = a, *y = b;

    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

static void
split_specs(struct generation *g, const char *s)
{
    char *copy = xstrdup(s), *save = NULL;

    for (char *t = strtok_r(copy, " ", &save); t;
         t = strtok_r(NULL, " ", &save)) {
        g->specialisations = xreallocarray(
            g->specialisations, g->n_specialisations + 1, sizeof(char *));
        g->specialisations[g->n_specialisations++] = xstrdup(t);
    }
    free(copy);
}

int
generations_parse(const char *text, struct generation_list *out)
{
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;

    out->g = NULL;
    out->n = 0;
    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *cur = line;
        char *f[7];
        unsigned long long id, ts, c;
        for (int i = 0; i < 7; i++) {
            f[i] = field(&cur);
        }
        if (f[6] == NULL || parse_uint(f[0], ~0UL, &id) != 0 ||
            parse_uint(f[1], ~0ULL >> 1, &ts) != 0 ||
            parse_uint(f[2], 1, &c) != 0) {
            rc = -1;
            break;
        }
        out->g = xreallocarray(out->g, out->n + 1, sizeof(*out->g));
        struct generation *g = &out->g[out->n++];
        memset(g, 0, sizeof(*g));
        g->id = (unsigned long)id;
        g->date = (time_t)ts;
        g->current = (int)c;
        g->nixos_version = xstrdup(f[3]);
        g->kernel_version = xstrdup(f[4]);
        g->config_revision = xstrdup(f[5]);
        split_specs(g, f[6]);
    }
    free(copy);
    if (rc != 0) {
        generations_release(out);
        return -1;
    }
    if (out->n > 1) {
        qsort(out->g, out->n, sizeof(*out->g), cmp_desc);
    }
    return 0;
}

void
generations_release(struct generation_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct generation *g = &l->g[i];
        free(g->nixos_version);
        free(g->kernel_version);
        free(g->config_revision);
        for (size_t j = 0; j < g->n_specialisations; j++) {
            free(g->specialisations[j]);
        }
        free(g->specialisations);
    }
    free(l->g);
    l->g = NULL;
    l->n = 0;
}

const struct generation *
generations_previous(const struct generation_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->g[i].current) {
            return &l->g[i];
        }
    }
    return NULL;
}

static char *
format_date(time_t t)
{
    char buf[32];
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return xstrdup(buf);
}

/* Python's str() of a list of strings: ['a', 'b']. */
static char *
py_list(const struct generation *g)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addch(&sb, '[');
    for (size_t i = 0; i < g->n_specialisations; i++) {
        strbuf_addf(&sb, "%s'%s'", i ? ", " : "", g->specialisations[i]);
    }
    strbuf_addch(&sb, ']');
    return strbuf_detach(&sb);
}

#define NCOLS 7

void
generations_print_table(const struct generation_list *l, FILE *f)
{
    static const char *const head[NCOLS] = {"Generation",
                                            "Build-date",
                                            "NixOS version",
                                            "Kernel",
                                            "Configuration Revision",
                                            "Specialisation",
                                            "Current"};
    size_t rows = l->n + 1;
    char **cell = xcalloc(rows * NCOLS, sizeof(char *));
    size_t width[NCOLS] = {0};

    for (int c = 0; c < NCOLS; c++) {
        cell[c] = xstrdup(head[c]);
    }
    for (size_t r = 0; r < l->n; r++) {
        const struct generation *g = &l->g[r];
        char **row = &cell[(r + 1) * NCOLS];
        row[0] = xasprintf("%lu", g->id);
        row[1] = format_date(g->date);
        row[2] = xstrdup(g->nixos_version);
        row[3] = xstrdup(g->kernel_version);
        row[4] = xstrdup(g->config_revision);
        row[5] = py_list(g);
        row[6] = xstrdup(g->current ? "True" : "False");
    }
    for (size_t i = 0; i < rows * NCOLS; i++) {
        size_t len = strlen(cell[i]);
        if (len > width[i % NCOLS]) {
            width[i % NCOLS] = len;
        }
    }
    for (size_t r = 0; r < rows; r++) {
        struct strbuf sb = STRBUF_INIT;
        for (int c = 0; c < NCOLS; c++) {
            strbuf_addf(&sb,
                        "%s%-*s",
                        c ? "  " : "",
                        (int)width[c],
                        cell[r * NCOLS + c]);
        }
        strbuf_rtrim(&sb);
        fprintf(f, "%s\n", sb.buf);
        strbuf_release(&sb);
    }
    for (size_t i = 0; i < rows * NCOLS; i++) {
        free(cell[i]);
    }
    free(cell);
}

void
generations_print_json(const struct generation_list *l, FILE *f)
{
    cJSON *arr = cJSON_CreateArray();
    char *text;

    for (size_t i = 0; i < l->n; i++) {
        const struct generation *g = &l->g[i];
        cJSON *o = cJSON_CreateObject();
        char *date = format_date(g->date);
        cJSON *specs = cJSON_CreateArray();
        cJSON_AddNumberToObject(o, "generation", (double)g->id);
        cJSON_AddStringToObject(o, "date", date);
        cJSON_AddStringToObject(o, "nixosVersion", g->nixos_version);
        cJSON_AddStringToObject(o, "kernelVersion", g->kernel_version);
        cJSON_AddStringToObject(o, "configurationRevision", g->config_revision);
        for (size_t j = 0; j < g->n_specialisations; j++) {
            cJSON_AddItemToArray(specs,
                                 cJSON_CreateString(g->specialisations[j]));
        }
        cJSON_AddItemToObject(o, "specialisations", specs);
        cJSON_AddBoolToObject(o, "current", g->current);
        cJSON_AddItemToArray(arr, o);
        free(date);
    }
    text = cJSON_Print(arr);
    if (text == NULL) {
        cr_die("out of memory");
    }
    fprintf(f, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(arr);
}

int
generations_read(struct host *h,
                 const char *profile,
                 struct generation_list *out)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf outb = STRBUF_INIT, errb = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1, rc;

    out->g = NULL;
    out->n = 0;
    outb.max = 16 << 20;
    errb.max = 64 << 10;
    generations_script_argv(profile, &argv);
    cmd.argv = &argv;
    cmd.out = &outb;
    cmd.err = &errb;
    rc = host_run(h, &cmd, &status);
    if (rc == 0 && status == 2) {
        log_error("no profile '%s' found", profile);
        rc = CR_ENIX;
    } else if (rc == 0 && status != 0) {
        strbuf_rtrim(&errb);
        log_error("cannot list generations of '%s' on %s: %s",
                  profile,
                  h->name,
                  errb.buf);
        rc = CR_ENIX;
    } else if (rc == 0 && generations_parse(outb.buf, out) != 0) {
        log_error("malformed generation listing from %s", h->name);
        rc = CR_ENIX;
    }
    strvec_clear(&argv);
    strbuf_release(&outb);
    strbuf_release(&errb);
    return rc;
}
