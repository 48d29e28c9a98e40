/* ctictl_call: `ctictl call --keys N --progress` (issue 14): the construct
 * params, the on_progress lines and the keys of the released line. Owns
 * nothing; see ctictl_call.h. */
#include "ctictl_call.h"

#include <stdio.h>

int ctictl_call_params(json_t *params, long long keys, bool progress)
{
    int bad = 0;
    if (keys > 0)
        bad |= json_object_set_new(params, "keys",
                                   json_pack("{s:I}", "max",
                                             (json_int_t)keys));
    if (progress)
        bad |= json_object_set_new(params, "progress", json_true());
    return bad ? -1 : 0;
}

void ctictl_call_progress_line(const json_t *p, char *line, size_t len)
{
    const char *res_id = json_string_value(json_object_get(p, "res_id"));
    const char *state = json_string_value(json_object_get(p, "state"));
    const char *key = json_string_value(json_object_get(p, "key"));
    snprintf(line, len, "progress %s: %s%s%s", res_id ? res_id : "?",
             state ? state : "?", key ? " " : "", key ? key : "");
}

int ctictl_call_keys_suffix(const json_t *p, char *line, size_t len, int n)
{
    const char *keys = json_string_value(json_object_get(p, "keys"));
    if (keys == NULL || n < 0 || (size_t)n >= len)
        return n;
    if (keys[0] == '\0')
        return n + snprintf(line + n, len - (size_t)n, ", no key");
    return n + snprintf(line + n, len - (size_t)n, ", keys \"%s\"", keys);
}
