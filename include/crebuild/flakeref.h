/* flakeref.h: split "<flake>#<name>" and build the installable strings
 * nixos-rebuild passes to nix.  Pure. */
#ifndef CREBUILD_FLAKEREF_H
#define CREBUILD_FLAKEREF_H

struct flakeref {
    char *flake; /* everything before the last '#' ("" for "#name") */
    char *name;  /* after the last '#'; NULL when absent or empty */
};

/* Split ref at the last '#'.  A name containing '"' (which would break out
 * of the quoted attribute) is rejected: returns -1 and sets *err. */
int flakeref_parse(const char *ref, struct flakeref *out, char **err);
void flakeref_release(struct flakeref *f);

/* '<flake>#nixosConfigurations."<name>"' + suffix (e.g.
 * ".config.system.build.toplevel").  Caller frees. */
char *
flakeref_installable(const char *flake, const char *name, const char *suffix);

#endif
