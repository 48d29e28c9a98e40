/* dtmf_info: owns the reading of the key in a SIP INFO body
 * (application/dtmf-relay and application/dtmf, dtmf_info.h). The body
 * is a peer's bytes: bounded, NUL refused, never read past len. */
#include "dtmf_info.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool dtmf_info_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* [*s, *s + *n) without the white space around it. */
static void dtmf_info_trim(const char **s, size_t *n)
{
    while (*n > 0 && dtmf_info_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && dtmf_info_space((*s)[*n - 1]))
        (*n)--;
}

static bool dtmf_info_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* One key: a character 0-9 * # A-D (a-d) or the event code 0-15. */
static enum dtmf_info_result dtmf_info_key(const char *s, size_t n,
                                           char *key, const char **why)
{
    static const char keys[] = "0123456789*#ABCD";
    dtmf_info_trim(&s, &n);
    if (n == 1 && s[0] != '\0' && strchr("*#ABCDabcd", s[0]) != NULL) {
        *key = (s[0] >= 'a' && s[0] <= 'd') ? (char)(s[0] - 'a' + 'A')
                                            : s[0];
        return DTMF_INFO_KEY;
    }
    if (n == 1 && s[0] == '!') {
        *why = "flash is not a key";
        return DTMF_INFO_BAD;
    }
    unsigned code = 0;
    if (n == 0 || n > 2) {
        *why = n == 0 ? "no key" : "not a key";
        return DTMF_INFO_BAD;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *why = "not a key";
            return DTMF_INFO_BAD;
        }
        code = code * 10 + (unsigned)(s[i] - '0');
    }
    if (code > 15) {
        *why = code == 16 ? "flash is not a key" : "event code above 15";
        return DTMF_INFO_BAD;
    }
    *key = keys[code];
    return DTMF_INFO_KEY;
}

/* "Signal=1\r\nDuration=160\r\n": the one Signal line's value. */
static enum dtmf_info_result dtmf_info_relay(const char *body, size_t len,
                                             char *key, const char **why)
{
    const char *value = NULL;
    size_t value_len = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = body + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);

        const char *eq = memchr(line, '=', n);
        if (eq == NULL)
            continue;
        const char *name = line;
        size_t name_len = (size_t)(eq - line);
        dtmf_info_trim(&name, &name_len);
        if (!dtmf_info_is(name, name_len, "signal"))
            continue;
        if (value != NULL) {
            *why = "more than one Signal";
            return DTMF_INFO_BAD;
        }
        value = eq + 1;
        value_len = (size_t)(line + n - value);
    }
    if (value == NULL) {
        *why = "no Signal";
        return DTMF_INFO_BAD;
    }
    return dtmf_info_key(value, value_len, key, why);
}

enum dtmf_info_result dtmf_info_parse(const char *content_type,
                                      const char *body, size_t len,
                                      char *key, const char **why)
{
    *why = "";
    if (content_type == NULL)
        return DTMF_INFO_NOT_DTMF;
    size_t tn = strnlen(content_type, DTMF_INFO_MAX_TYPE + 1);
    if (tn > DTMF_INFO_MAX_TYPE) {
        *why = "content type too long";
        return DTMF_INFO_NOT_DTMF;
    }
    const char *semi = memchr(content_type, ';', tn);
    if (semi != NULL)
        tn = (size_t)(semi - content_type);
    const char *type = content_type;
    dtmf_info_trim(&type, &tn);
    bool relay = dtmf_info_is(type, tn, "application/dtmf-relay");
    if (!relay && !dtmf_info_is(type, tn, "application/dtmf")) {
        *why = "not a DTMF content type";
        return DTMF_INFO_NOT_DTMF;
    }

    if (body == NULL && len > 0) {
        *why = "no body";
        return DTMF_INFO_BAD;
    }
    if (len > DTMF_INFO_MAX_BODY) {
        *why = "body too long";
        return DTMF_INFO_BAD;
    }
    if (len > 0 && memchr(body, '\0', len) != NULL) {
        *why = "NUL in body";
        return DTMF_INFO_BAD;
    }
    if (relay)
        return dtmf_info_relay(body, len, key, why);
    return dtmf_info_key(body, len, key, why);
}
