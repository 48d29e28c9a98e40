/* ctictl_gateways: prints sys.gateways' result as a table for `ctictl
 * gateways` (docs/man/ctictl.1): name, address, transport, up and
 * registered (yes, no, or - when not probed / not registering / not known
 * yet), the last status and its time (UTC), active calls / max_calls and
 * failovers. */
#include "ctictl_gateways.h"

#include <time.h>

static const char *tri(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

int ctictl_gateways_print(const json_t *result, FILE *out)
{
    size_t i;
    json_t *g;
    if (!json_is_array(result))
        return -1;
    json_array_foreach(result, i, g)
        if (!json_is_object(g))
            return -1;
    fprintf(out, "%-16s %-28s %-9s %-4s %-10s %-6s %-20s %-9s %s\n", "NAME",
            "ADDRESS", "TRANSPORT", "UP", "REGISTERED", "STATUS", "SINCE",
            "CALLS", "FAILOVERS");
    json_array_foreach(result, i, g) {
        char status[16] = "-", since[32] = "-", calls[32];
        json_t *st = json_object_get(g, "status");
        json_t *at = json_object_get(g, "status_time");
        if (json_is_integer(st))
            snprintf(status, sizeof status, "%lld",
                     (long long)json_integer_value(st));
        if (json_is_integer(at)) {
            time_t t = (time_t)json_integer_value(at);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        long long max = json_integer_value(json_object_get(g, "max_calls"));
        long long act = json_integer_value(json_object_get(g, "active_calls"));
        if (max > 0)
            snprintf(calls, sizeof calls, "%lld/%lld", act, max);
        else
            snprintf(calls, sizeof calls, "%lld", act);
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *addr = json_string_value(json_object_get(g, "address"));
        const char *tr = json_string_value(json_object_get(g, "transport"));
        fprintf(out, "%-16s %-28s %-9s %-4s %-10s %-6s %-20s %-9s %lld\n",
                name ? name : "?", addr ? addr : "?", tr ? tr : "?",
                tri(json_object_get(g, "up")),
                tri(json_object_get(g, "registered")), status, since, calls,
                (long long)json_integer_value(
                    json_object_get(g, "failovers")));
    }
    return 0;
}
