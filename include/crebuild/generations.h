/* generations.h: a profile's generations, read on any host with one small
 * POSIX sh script, parsed and printed like nixos-rebuild-ng. */
#ifndef CREBUILD_GENERATIONS_H
#define CREBUILD_GENERATIONS_H

#include <stdio.h>
#include <time.h>

#include "crebuild/host.h"

struct generation {
    unsigned long id;
    time_t date;
    int current;
    char *nixos_version;
    char *kernel_version;
    char *config_revision;
    char **specialisations;
    size_t n_specialisations;
};

struct generation_list {
    struct generation *g; /* sorted by id, descending */
    size_t n;
};

/* The script: argv to run on a host; prints one line per generation. */
void generations_script_argv(const char *profile, struct strvec *argv);
/* Parse the script's output.  0, or -1 on a malformed line. */
int generations_parse(const char *text, struct generation_list *out);
void generations_release(struct generation_list *l);
/* The previous generation: the highest id that is not current (ng). */
const struct generation *generations_previous(const struct generation_list *l);
/* Print as ng's table, or as its JSON array. */
void generations_print_table(const struct generation_list *l, FILE *f);
void generations_print_json(const struct generation_list *l, FILE *f);

/* Run the script on h and parse.  CR_ENIX with a logged message if the
 * profile does not exist. */
int generations_read(struct host *h,
                     const char *profile,
                     struct generation_list *out);

#endif
