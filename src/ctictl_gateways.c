/* ctictl_gateways: prints sys.gateways' result as a table for `ctictl
 * gateways` (docs/man/ctictl.1): name, address, transport, up and
 * registered (yes, no, or - when not probed / not registering / not known
 * yet), the last status and its time (UTC), active calls / max_calls,
 * failovers, then the last REGISTER and OPTIONS outcomes each on its own
 * (STATUS@TIME, - when not used or none yet). */
#include "ctictl_gateways.h"

#include <time.h>

static const char *tri(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

/* Seconds since the epoch as 2026-01-02T03:04:05Z; "-" when not an
 * integer (null). */
static void utc(char *buf, size_t len, const json_t *at)
{
    snprintf(buf, len, "-");
    if (json_is_integer(at)) {
        time_t t = (time_t)json_integer_value(at);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
}

/* One concern's (register_ or options_) status and time as STATUS@TIME,
 * "-" for either part that is null; just "-" when both are. */
static void concern(char *buf, size_t len, const json_t *g,
                    const char *status_key, const char *time_key)
{
    char at[32];
    const json_t *st = json_object_get(g, status_key);
    const json_t *tm = json_object_get(g, time_key);
    utc(at, sizeof at, tm);
    if (!json_is_integer(st) && !json_is_integer(tm))
        snprintf(buf, len, "-");
    else if (json_is_integer(st))
        snprintf(buf, len, "%lld@%s", (long long)json_integer_value(st), at);
    else
        snprintf(buf, len, "-@%s", at);
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
    fprintf(out, "%-16s %-28s %-9s %-4s %-10s %-6s %-20s %-9s %-9s %-24s %s\n",
            "NAME", "ADDRESS", "TRANSPORT", "UP", "REGISTERED", "STATUS",
            "SINCE", "CALLS", "FAILOVERS", "REGISTER", "OPTIONS");
    json_array_foreach(result, i, g) {
        char status[16] = "-", since[32], calls[32], reg[48], opt[48];
        json_t *st = json_object_get(g, "status");
        if (json_is_integer(st))
            snprintf(status, sizeof status, "%lld",
                     (long long)json_integer_value(st));
        utc(since, sizeof since, json_object_get(g, "status_time"));
        concern(reg, sizeof reg, g, "register_status", "register_time");
        concern(opt, sizeof opt, g, "options_status", "options_time");
        long long max = json_integer_value(json_object_get(g, "max_calls"));
        long long act = json_integer_value(json_object_get(g, "active_calls"));
        if (max > 0)
            snprintf(calls, sizeof calls, "%lld/%lld", act, max);
        else
            snprintf(calls, sizeof calls, "%lld", act);
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *addr = json_string_value(json_object_get(g, "address"));
        const char *tr = json_string_value(json_object_get(g, "transport"));
        fprintf(out,
                "%-16s %-28s %-9s %-4s %-10s %-6s %-20s %-9s %-9lld %-24s "
                "%s\n",
                name ? name : "?", addr ? addr : "?", tr ? tr : "?",
                tri(json_object_get(g, "up")),
                tri(json_object_get(g, "registered")), status, since, calls,
                (long long)json_integer_value(
                    json_object_get(g, "failovers")),
                reg, opt);
    }
    return 0;
}
