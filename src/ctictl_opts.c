/* ctictl_opts: ctictl's command line (ctictl_opts.h): getopt tables,
 * option values checked and stored in struct ctictl_opts, --help. */
#include "ctictl_opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctictl_call.h"
#include "version.h"

void ctictl_opts_free(struct ctictl_opts *o)
{
    json_decref(o->to);
    json_decref(o->play);
    o->to = o->play = NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ctictl [global options] COMMAND [options]\n"
        "\n"
        "Talks JSON-RPC to ctid, the outbound notification call daemon.\n"
        "\n"
        "commands:\n"
        "  call --to URI [--to URI...] --play FILE [--play FILE...]\n"
        "       [--repeat N] [--max-ring S] [--from URI|anonymous]\n"
        "       [--user-data TEXT] [--keys N] [--progress]\n"
        "       [--wait [--wait-timeout S]]\n"
        "                       place a call; print its res_id (and with\n"
        "                       --wait, its on_released event)\n"
        "  events [--since N]   subscribe and print every event until the\n"
        "                       connection closes or ctictl is interrupted\n"
        "  ping                 check the daemon answers\n"
        "  gateways             each gateway's health, calls and limits\n"
        "  exists RES_ID        print true or false\n"
        "  drop RES_ID          end a call (CANCEL or BYE)\n"
        "\n"
        "global options (also accepted after COMMAND):\n"
        "  --connect HOST:PORT  daemon address (default $CTID_CONNECT, else "
        DEFAULT_CONNECT ")\n"
        "  --token TOKEN        authenticate with sys.auth first (default\n"
        "                       $CTID_AUTH_TOKEN; the variable keeps it out\n"
        "                       of ps)\n"
        "  --json               print the raw JSON lines of replies and events\n"
        "  --timeout S          connect and reply timeout in seconds "
        "(default 5)\n"
        "  --help               this text\n"
        "  --version            print the version\n"
        "\n"
        "exit status:\n"
        "  0  success (call --wait: the event's error is null)\n"
        "  1  call --wait: the call ended with an error; exists: false\n"
        "  2  usage error\n"
        "  3  cannot connect, connection lost, timeout, or an unreadable reply\n"
        "  4  the daemon returned a JSON-RPC error (code and message on "
        "stderr)\n"
        "\n"
        "See ctictl(1).\n");
}

int ctictl_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ctictl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ctictl --help'.\n");
    return CTICTL_USAGE;
}

/* ---- command line ------------------------------------------------------- */

enum {
    OPT_CONNECT = 256, OPT_JSON, OPT_TIMEOUT, OPT_HELP, OPT_VERSION,
    OPT_TO, OPT_PLAY, OPT_REPEAT, OPT_MAX_RING, OPT_FROM, OPT_USER_DATA,
    OPT_WAIT, OPT_WAIT_TIMEOUT, OPT_SINCE, OPT_TOKEN, OPT_KEYS, OPT_PROGRESS,
};

#define GLOBAL_OPTIONS                                       \
    {"connect", required_argument, NULL, OPT_CONNECT},       \
    {"token", required_argument, NULL, OPT_TOKEN},           \
    {"json", no_argument, NULL, OPT_JSON},                   \
    {"timeout", required_argument, NULL, OPT_TIMEOUT},       \
    {"help", no_argument, NULL, OPT_HELP},                   \
    {"version", no_argument, NULL, OPT_VERSION}

static const struct option global_options[] = {
    GLOBAL_OPTIONS, {NULL, 0, NULL, 0},
};
static const struct option call_options[] = {
    GLOBAL_OPTIONS,
    {"to", required_argument, NULL, OPT_TO},
    {"play", required_argument, NULL, OPT_PLAY},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"max-ring", required_argument, NULL, OPT_MAX_RING},
    {"from", required_argument, NULL, OPT_FROM},
    {"user-data", required_argument, NULL, OPT_USER_DATA},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {NULL, 0, NULL, 0},
};
static const struct option events_options[] = {
    GLOBAL_OPTIONS,
    {"since", required_argument, NULL, OPT_SINCE},
    {NULL, 0, NULL, 0},
};

/* A whole decimal integer in [min, max]. */
static int parse_int(const char *s, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Seconds, fractions allowed ("0.5"), to milliseconds; > 0, at most a
 * day's worth of weeks so the milliseconds fit an int. */
static int parse_seconds(const char *s, int *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0
        || v > 2000000)
        return -1;
    *ms = (int)ceil(v * 1000);
    return 0;
}

/* Returns 0, or -1 when s is not UTF-8 (JSON strings must be) or out of
 * memory. */
static int append_string(json_t **arr, const char *s)
{
    json_t *v = json_string(s);
    if (v == NULL)
        return -1;
    if (*arr == NULL)
        *arr = json_array();
    if (*arr == NULL) {
        json_decref(v);
        return -1;
    }
    return json_array_append_new(*arr, v);
}

/* Handles one option of any table; returns -1 to continue, else the exit
 * status to stop with. */
static int apply_option(struct ctictl_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_CONNECT:
        o->connect = arg;
        return -1;
    case OPT_TOKEN:
        o->token = arg;
        return -1;
    case OPT_JSON:
        o->json = true;
        return -1;
    case OPT_TIMEOUT:
        if (parse_seconds(arg, &o->timeout_ms) < 0)
            return ctictl_usage_error("--timeout: '%s' is not a positive number of "
                               "seconds", arg);
        return -1;
    case OPT_HELP:
        usage(stdout);
        return CTICTL_OK;
    case OPT_VERSION:
        printf("ctictl %s\n", CTID_VERSION);
        return CTICTL_OK;
    case OPT_TO:
        if (append_string(&o->to, arg) < 0)
            return ctictl_usage_error("--to: '%s' is not UTF-8", arg);
        return -1;
    case OPT_PLAY:
        if (append_string(&o->play, arg) < 0)
            return ctictl_usage_error("--play: '%s' is not UTF-8", arg);
        return -1;
    case OPT_REPEAT:
        if (parse_int(arg, 0, INT_MAX, &o->repeat) < 0)
            return ctictl_usage_error("--repeat: '%s' is not an integer >= 0", arg);
        o->has_repeat = true;
        return -1;
    case OPT_MAX_RING:
        if (parse_int(arg, 1, INT_MAX, &o->max_ring) < 0)
            return ctictl_usage_error("--max-ring: '%s' is not an integer >= 1", arg);
        o->has_max_ring = true;
        return -1;
    case OPT_FROM:
        o->from = arg;
        return -1;
    case OPT_USER_DATA:
        o->user_data = arg;
        return -1;
    case OPT_WAIT:
        o->wait = true;
        return -1;
    case OPT_WAIT_TIMEOUT:
        if (parse_seconds(arg, &o->wait_timeout_ms) < 0)
            return ctictl_usage_error("--wait-timeout: '%s' is not a positive number "
                               "of seconds", arg);
        return -1;
    case OPT_KEYS:
        if (parse_int(arg, 1, 32, &o->keys) < 0)
            return ctictl_usage_error("--keys: '%s' is not an integer 1..32", arg);
        return -1;
    case OPT_PROGRESS:
        o->progress = true;
        return -1;
    case OPT_SINCE:
        /* 2^53: the largest integer every JSON reader keeps exactly. */
        if (parse_int(arg, 0, 9007199254740992LL, &o->since) < 0)
            return ctictl_usage_error("--since: '%s' is not an integer >= 0", arg);
        o->has_since = true;
        return -1;
    default: /* '?': getopt_long has said what is wrong */
        fprintf(stderr, "Try 'ctictl --help'.\n");
        return CTICTL_USAGE;
    }
}

int ctictl_parse_command_line(struct ctictl_opts *o, int argc, char **argv)
{
    int opt, rc;

    /* '+': stop at the command name, whose options come next */
    while ((opt = getopt_long(argc, argv, "+", global_options, NULL)) != -1)
        if ((rc = apply_option(o, opt, optarg)) >= 0)
            return rc;
    if (optind >= argc) {
        usage(stderr);
        return CTICTL_USAGE;
    }
    o->command = argv[optind];
    const struct option *table;
    int positional;
    if (strcmp(o->command, "call") == 0) {
        table = call_options;
        positional = 0;
    } else if (strcmp(o->command, "events") == 0) {
        table = events_options;
        positional = 0;
    } else if (strcmp(o->command, "ping") == 0 ||
               strcmp(o->command, "gateways") == 0) {
        table = global_options;
        positional = 0;
    } else if (strcmp(o->command, "exists") == 0
               || strcmp(o->command, "drop") == 0) {
        table = global_options;
        positional = 1;
    } else {
        return ctictl_usage_error("unknown command '%s'", o->command);
    }

    /* The command's arguments with argv[0] kept as the program name, so
     * getopt's messages say "ctictl:". optind 0 makes glibc start over. */
    int sub_argc = argc - optind;
    char **sub_argv = calloc((size_t)sub_argc + 1, sizeof *sub_argv);
    if (sub_argv == NULL)
        return ctictl_usage_error("%s", "out of memory");
    sub_argv[0] = argv[0];
    for (int i = 1; i < sub_argc; i++)
        sub_argv[i] = argv[optind + i];
    optind = 0;
    rc = -1;
    while (rc < 0
           && (opt = getopt_long(sub_argc, sub_argv, "", table, NULL)) != -1)
        rc = apply_option(o, opt, optarg);
    if (rc < 0) {
        int extra = sub_argc - optind;
        if (extra > positional)
            rc = ctictl_usage_error("unexpected argument '%s'",
                             sub_argv[optind + positional]);
        else if (extra < positional)
            rc = ctictl_usage_error("%s needs a RES_ID", o->command);
        else if (positional)
            o->res_id = sub_argv[optind];
    }
    free(sub_argv);
    if (rc >= 0)
        return rc;

    if (strcmp(o->command, "call") == 0) {
        if (o->to == NULL)
            return ctictl_usage_error("%s", "call needs --to URI");
        if (o->play == NULL)
            return ctictl_usage_error("%s", "call needs --play FILE");
        if (o->wait_timeout_ms >= 0 && !o->wait)
            return ctictl_usage_error("%s", "--wait-timeout needs --wait");
    }
    return -1;
}
