/* jnum: the lenient reading of numbers the original platform's clients
 * send (issue 12): integers given as JSON strings or integral reals, and
 * the decimal text of a number given where text is expected. Pure: no
 * allocation; text goes into the caller's buffer. Any thread. */
#ifndef CTID_JNUM_H
#define CTID_JNUM_H

#include <jansson.h>
#include <stddef.h>

enum jnum_result {
    JNUM_OK = 0,
    JNUM_NOT_INT = -1, /* not an integer in any accepted form */
    JNUM_RANGE = -2,   /* an integer, but outside json_int_t */
};

/* Reads v as an integer the way the original's int() would, where that is
 * safe: a JSON integer; a JSON real with no fractional part (1.0, 1e3);
 * a JSON string holding optional ASCII white space, an optional '+' or
 * '-', one or more ASCII digits and optional white space (" 45 ", "+1",
 * "-0", "007"). Anything else (true, "", "1.5", "1e3", "1_000", "0x10",
 * "1.0") is JNUM_NOT_INT; a value beyond json_int_t is JNUM_RANGE. */
enum jnum_result jnum_int(json_t *v, json_int_t *out);

/* Writes the decimal text of the JSON number v into buf: an integer as
 * its digits ("-12"), a real as the shortest digits that read back as the
 * same double, in positional notation without exponent (1086.3 ->
 * "1086.3", 10.0 -> "10", 1e-5 -> "0.00001"). Returns 0, or -1 when v is
 * not a number or the text does not fit len. */
int jnum_text(json_t *v, char *buf, size_t len);

#endif
