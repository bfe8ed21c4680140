/* nixjson.h: the output of `nix build --json`.  Pure. */
#ifndef CREBUILD_NIXJSON_H
#define CREBUILD_NIXJSON_H

/* `nix build --json` prints [{"drvPath": ..., "outputs": {"out": PATH}}].
 * Returns a copy of the first entry's outputs.out when it is a string
 * starting with '/', NULL otherwise (not JSON, wrong shape).  Caller
 * frees. */
char *nixjson_out_path(const char *text);

#endif
