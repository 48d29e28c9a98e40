/* ctictl_gateways: the human output of `ctictl gateways` (sys.gateways'
 * result as a table), kept out of ctictl.c. Pure: writes to out only;
 * the result stays the caller's. */
#ifndef CTID_CTICTL_GATEWAYS_H
#define CTID_CTICTL_GATEWAYS_H

#include <jansson.h>
#include <stdio.h>

/* One header line and one line per gateway; -1 when result is not an
 * array of objects (nothing written). */
int ctictl_gateways_print(const json_t *result, FILE *out);

#endif
