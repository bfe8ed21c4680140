/* nixjson.c: the output of `nix build --json` (see nixjson.h). */
#include "crebuild/nixjson.h"
#include "crebuild/util.h"

#include <cjson/cJSON.h>
#include <stddef.h>

char *
nixjson_out_path(const char *text)
{
    cJSON *root = cJSON_Parse(text);
    cJSON *first, *outputs, *out;
    char *path = NULL;

    if (root == NULL) {
        return NULL;
    }
    first = cJSON_GetArrayItem(root, 0);
    outputs = first ? cJSON_GetObjectItemCaseSensitive(first, "outputs") : NULL;
    out = outputs ? cJSON_GetObjectItemCaseSensitive(outputs, "out") : NULL;
    if (cJSON_IsString(out) && out->valuestring != NULL &&
        out->valuestring[0] == '/') {
        path = xstrdup(out->valuestring);
    }
    cJSON_Delete(root);
    return path;
}
