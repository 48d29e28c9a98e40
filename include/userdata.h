/* userdata: a construct's user_data, any JSON value (issue 12), in the one
 * form the call, the ledger and the CDR keep: its compact JSON text
 * (malloc'ed; NULL for null). Pure: jansson only, so the ledger's reader
 * (and its fuzzer) need not link the API parser. */
#ifndef CTID_USERDATA_H
#define CTID_USERDATA_H

#include <jansson.h>

/* Carried everywhere (struct call,
 * the ledger's records' readers, the CDR) as its compact JSON text, NULL
 * for null. user_data_value: the value again, for the result and the
 * event (a new reference; json_null() for NULL). user_data_cdr: the
 * CDR column, malloc'ed: a string's own bytes (as before issue 12), any
 * other value's JSON text; NULL for NULL or out of memory. */
json_t *user_data_value(const char *text);
char *user_data_cdr(const char *text);
/* The compact JSON text of v (malloc'ed), NULL for null or out of memory. */
char *user_data_text(json_t *v);

#endif
