/* userdata: user_data's JSON text (include/userdata.h). */
#include "userdata.h"

#include <stdlib.h>
#include <string.h>

char *user_data_text(json_t *v)
{
    if (v == NULL || json_is_null(v))
        return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

json_t *user_data_value(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return v ? v : json_string(text); /* never: the text is ours */
}

char *user_data_cdr(const char *text)
{
    if (text == NULL)
        return NULL;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    /* A string's bytes up to a NUL, as the CDR wrote them before. */
    char *out = strdup(json_is_string(v) ? json_string_value(v) : text);
    json_decref(v);
    return out;
}
