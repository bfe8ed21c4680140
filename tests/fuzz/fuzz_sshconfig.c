/* fuzz_sshconfig.c: the ssh_config reader.  The input is
 * "<host>\0<config text>" (no NUL: config text for host "h").  Include
 * reads the input's own text again (depth-limited), never a real file.
 * Properties: 0 or CR_EUSAGE with a one-line error; whatever was read,
 * the port is a port and the host a host. */
#include "crebuild/sshconfig.h"
#include "crebuild/sshopts.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    const char *text;
    size_t len;
    int includes; /* Includes followed so far (each re-reads the input) */
};

static int
self_include(struct sshconfig *cfg, const char *path, int depth, char **err)
{
    struct input *in = cfg->userdata;

    /* Several Include lines nested 16 deep would be exponential. */
    if (++in->includes > 32) {
        return 0;
    }
    return sshconfig_parse(cfg, in->text, in->len, path, depth, err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ssh_target t;
    struct strvec warnings = STRVEC_INIT, notes = STRVEC_INIT;
    /* Match localnetwork's network lists are parsed too. */
    static struct strvec addrs = STRVEC_INIT;
    struct sshconfig cfg;
    struct input in;
    char *buf, *err = NULL;
    const char *host = "h";
    size_t hl;
    int rc;

    if (size > 16384) {
        return 0;
    }
    if (addrs.n == 0) {
        strvec_pushl(&addrs, "10.0.0.1", "fe80::1", (const char *)NULL);
    }
    buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    hl = strlen(buf);
    in.text = buf;
    in.len = size;
    in.includes = 0;
    if (hl < size && hl > 0) {
        host = buf;
        in.text = buf + hl + 1;
        in.len = size - hl - 1;
    }
    ssh_target_init(&t);
    t.host = xstrdup(host);
    memset(&cfg, 0, sizeof(cfg));
    cfg.t = &t;
    cfg.host = host;
    cfg.home = "/home/u";
    cfg.dir = "/home/u/.ssh";
    cfg.include = self_include;
    cfg.warnings = &warnings;
    cfg.notes = &notes;
    cfg.userdata = &in;
    cfg.local_addrs = &addrs;
    rc = sshconfig_parse(&cfg, in.text, in.len, "config", 0, &err);
    if (rc != 0 && (rc != CR_EUSAGE || err == NULL || strchr(err, '\n'))) {
        abort();
    }
    if (rc == 0 && err != NULL) {
        abort();
    }
    if (t.port < -1 || t.port > 65535 || t.host == NULL) {
        abort();
    }
    free(err);
    ssh_target_release(&t);
    strvec_clear(&warnings);
    strvec_clear(&notes);
    free(buf);
    return 0;
}
