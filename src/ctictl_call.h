/* ctictl_call: issue 14's part of `ctictl call` (--keys, --progress: the
 * construct params they add, the on_progress lines, the keys in the
 * released line), kept out of ctictl.c. Pure: writes to its arguments
 * only; every json_t stays the caller's. */
#ifndef CTID_CTICTL_CALL_H
#define CTID_CTICTL_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* keys {"max": keys} when keys > 0, progress true when progress; -1 out
 * of memory. */
int ctictl_call_params(json_t *params, long long keys, bool progress);
/* "progress RES: ringing" or "progress RES: key 1" (no newline). */
void ctictl_call_progress_line(const json_t *p, char *line, size_t len);
/* Appends ", keys \"1\"" (or ", no key") when p has keys; nothing
 * otherwise. Returns the new length of line. */
int ctictl_call_keys_suffix(const json_t *p, char *line, size_t len, int n);

#endif
