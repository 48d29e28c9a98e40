/* ctictl: the command-line client of ctid. Owns the command line (global
 * options, subcommands), turning it into JSON-RPC requests through the
 * client module, the human and --json output, and the exit status that
 * scripts test (docs/man/ctictl.1 is the reference for all three). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "ctictl_call.h"
#include "ctictl_gateways.h"
#include "version.h"

/* The exit status: documented in --help and the man page, tested by
 * tests/integration/test_ctictl.py. */
enum {
    CTICTL_OK = 0,      /* success; call --wait: error null */
    CTICTL_FAILED = 1,  /* call --wait: the event's error is set; exists: false */
    CTICTL_USAGE = 2,   /* bad command line */
    CTICTL_CONN = 3,    /* cannot connect, connection lost, timeout, garbage */
    CTICTL_RPC = 4,     /* the daemon answered with a JSON-RPC error */
};

#define DEFAULT_CONNECT "127.0.0.1:7010"
#define DEFAULT_TIMEOUT_MS 5000

/* Everything the command line says. Owned by main(); ctictl_opts_free. */
struct ctictl_opts {
    const char *connect;
    const char *token;    /* sys.auth first when set */
    bool json;
    int timeout_ms;
    const char *command;
    const char *res_id;   /* exists, drop */
    /* call */
    json_t *to;           /* array of strings */
    json_t *play;         /* array of strings */
    long long repeat, max_ring;
    bool has_repeat, has_max_ring;
    const char *from, *user_data;
    bool wait;
    int wait_timeout_ms;  /* -1: none */
    long long keys;       /* --keys N: keys {"max": N}; 0 none */
    bool progress;
    /* events */
    long long since;
    bool has_since;
};

static void ctictl_opts_free(struct ctictl_opts *o)
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

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
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
            return usage_error("--timeout: '%s' is not a positive number of "
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
            return usage_error("--to: '%s' is not UTF-8", arg);
        return -1;
    case OPT_PLAY:
        if (append_string(&o->play, arg) < 0)
            return usage_error("--play: '%s' is not UTF-8", arg);
        return -1;
    case OPT_REPEAT:
        if (parse_int(arg, 0, INT_MAX, &o->repeat) < 0)
            return usage_error("--repeat: '%s' is not an integer >= 0", arg);
        o->has_repeat = true;
        return -1;
    case OPT_MAX_RING:
        if (parse_int(arg, 1, INT_MAX, &o->max_ring) < 0)
            return usage_error("--max-ring: '%s' is not an integer >= 1", arg);
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
            return usage_error("--wait-timeout: '%s' is not a positive number "
                               "of seconds", arg);
        return -1;
    case OPT_KEYS:
        if (parse_int(arg, 1, 32, &o->keys) < 0)
            return usage_error("--keys: '%s' is not an integer 1..32", arg);
        return -1;
    case OPT_PROGRESS:
        o->progress = true;
        return -1;
    case OPT_SINCE:
        /* 2^53: the largest integer every JSON reader keeps exactly. */
        if (parse_int(arg, 0, 9007199254740992LL, &o->since) < 0)
            return usage_error("--since: '%s' is not an integer >= 0", arg);
        o->has_since = true;
        return -1;
    default: /* '?': getopt_long has said what is wrong */
        fprintf(stderr, "Try 'ctictl --help'.\n");
        return CTICTL_USAGE;
    }
}

/* Global options, the command, then the command's own options (globals
 * are accepted there too). Returns -1 to go on, else the exit status. */
static int parse_command_line(struct ctictl_opts *o, int argc, char **argv)
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
        return usage_error("unknown command '%s'", o->command);
    }

    /* The command's arguments with argv[0] kept as the program name, so
     * getopt's messages say "ctictl:". optind 0 makes glibc start over. */
    int sub_argc = argc - optind;
    char **sub_argv = calloc((size_t)sub_argc + 1, sizeof *sub_argv);
    if (sub_argv == NULL)
        return usage_error("%s", "out of memory");
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
            rc = usage_error("unexpected argument '%s'",
                             sub_argv[optind + positional]);
        else if (extra < positional)
            rc = usage_error("%s needs a RES_ID", o->command);
        else if (positional)
            o->res_id = sub_argv[optind];
    }
    free(sub_argv);
    if (rc >= 0)
        return rc;

    if (strcmp(o->command, "call") == 0) {
        if (o->to == NULL)
            return usage_error("%s", "call needs --to URI");
        if (o->play == NULL)
            return usage_error("%s", "call needs --play FILE");
        if (o->wait_timeout_ms >= 0 && !o->wait)
            return usage_error("%s", "--wait-timeout needs --wait");
    }
    return -1;
}

/* ---- output ------------------------------------------------------------- */

static int fail_client(struct client *c, const char *method)
{
    fprintf(stderr, "ctictl: %s: %s\n", method, client_error(c));
    return CTICTL_CONN;
}

static int fail_reply(const struct ctictl_opts *o, const char *method,
                      const struct client_msg *reply)
{
    if (o->json) {
        puts(reply->line);
        fflush(stdout);
    }
    json_t *err = json_object_get(reply->json, "error");
    json_t *code = json_object_get(err, "code");
    const char *msg = json_string_value(json_object_get(err, "message"));
    fprintf(stderr, "ctictl: %s: error %lld: %s\n", method,
            json_is_integer(code) ? (long long)json_integer_value(code) : 0LL,
            msg ? msg : "(no message)");
    return CTICTL_RPC;
}

static void print_line(const char *s)
{
    puts(s);
    fflush(stdout); /* events are followed live, often through a pipe */
}

/* "released RES: ok (dropped by sys, cause 200, answered 12:00:03, 15 s)" */
static void print_released(json_t *p)
{
    const char *res_id = json_string_value(json_object_get(p, "res_id"));
    const char *error = json_string_value(json_object_get(p, "error"));
    const char *by = json_string_value(json_object_get(p, "dropped_by"));
    json_t *cause = json_object_get(p, "cause");
    json_t *answer = json_object_get(p, "answer_time");
    json_t *end = json_object_get(p, "end_time");
    char line[1024];
    int n = snprintf(line, sizeof line, "released %s: %s (dropped by %s",
                     res_id ? res_id : "?", error ? error : "ok",
                     by ? by : "?");
    if (json_is_integer(cause) && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", cause %lld",
                      (long long)json_integer_value(cause));
    if (json_is_integer(answer) && n < (int)sizeof line) {
        time_t at = (time_t)json_integer_value(answer);
        struct tm tm;
        char hms[16] = "?";
        if (localtime_r(&at, &tm) != NULL)
            strftime(hms, sizeof hms, "%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ", answered %s", hms);
        if (json_is_integer(end) && n < (int)sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ", %lld s",
                          (long long)(json_integer_value(end)
                                      - json_integer_value(answer)));
    }
    n = ctictl_call_keys_suffix(p, line, sizeof line, n);
    if (n < (int)sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, ")");
    print_line(line);
}

static void print_event(const struct ctictl_opts *o, const struct client_msg *ev)
{
    if (o->json) {
        print_line(ev->line);
        return;
    }
    const char *method = json_string_value(json_object_get(ev->json, "method"));
    json_t *params = json_object_get(ev->json, "params");
    if (strcmp(method, "ext.notify_call.on_released") == 0
        && json_is_object(params)) {
        print_released(params);
        return;
    }
    if (strcmp(method, "ext.notify_call.on_progress") == 0
        && json_is_object(params)) {
        char line[512];
        ctictl_call_progress_line(params, line, sizeof line);
        print_line(line);
        return;
    }
    /* An event this version does not know: shown as it came. */
    char *text = params ? json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY)
                        : NULL;
    printf("%s %s\n", method, text ? text : "");
    fflush(stdout);
    free(text);
}

/* ---- commands ----------------------------------------------------------- */

/* Sends method and waits for its reply. Returns -1 with *reply set on a
 * result, else the exit status (the failure already reported). */
static int request(const struct ctictl_opts *o, struct client *c,
                   const char *method, json_t *params,
                   struct client_msg **reply)
{
    int rc = client_call(c, method, params, o->timeout_ms, reply);
    if (rc == CLIENT_TIMEOUT) {
        fprintf(stderr, "ctictl: %s: no reply within %.3g s\n", method,
                o->timeout_ms / 1000.0);
        return CTICTL_CONN;
    }
    if (rc < 0)
        return fail_client(c, method);
    if (json_object_get((*reply)->json, "error") != NULL) {
        rc = fail_reply(o, method, *reply);
        client_msg_free(*reply);
        *reply = NULL;
        return rc;
    }
    return -1;
}

static int bad_result(const char *method, struct client_msg *reply)
{
    fprintf(stderr, "ctictl: %s: unexpected reply: %s\n", method, reply->line);
    client_msg_free(reply);
    return CTICTL_CONN;
}

static json_t *construct_params(const struct ctictl_opts *o)
{
    json_t *p = json_object();
    if (p == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set(p, "to_uri", json_array_size(o->to) == 1
                           ? json_array_get(o->to, 0) : o->to);
    if (json_array_size(o->play) == 1) {
        bad |= json_object_set(p, "play_content", json_array_get(o->play, 0));
    } else {
        /* Several files: a play list of type 0 items, played in order. */
        json_t *items = json_array();
        size_t i;
        json_t *name;
        json_array_foreach(o->play, i, name)
            bad |= json_array_append_new(items, json_pack("[O,i]", name, 0));
        bad |= json_object_set_new(p, "play_content", items);
    }
    if (o->has_repeat)
        bad |= json_object_set_new(p, "play_repeat", json_integer(o->repeat));
    if (o->has_max_ring)
        bad |= json_object_set_new(p, "max_ring_seconds",
                                   json_integer(o->max_ring));
    if (o->from)
        bad |= json_object_set_new(p, "from_uri", json_string(o->from));
    if (o->user_data)
        bad |= json_object_set_new(p, "user_data", json_string(o->user_data));
    bad |= ctictl_call_params(p, o->keys, o->progress);
    if (bad) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static int cmd_call(const struct ctictl_opts *o, struct client *c)
{
    static const char method[] = "ext.notify_call.construct";
    json_t *params = construct_params(o);
    if (params == NULL) {
        fprintf(stderr, "ctictl: call: cannot build the request (is "
                        "--user-data or --from valid UTF-8?)\n");
        return CTICTL_USAGE;
    }
    struct client_msg *reply;
    int rc = request(o, c, method, params, &reply);
    if (rc >= 0)
        return rc;
    json_t *result = json_object_get(reply->json, "result");
    const char *res_id = json_string_value(json_object_get(result, "res_id"));
    if (res_id == NULL)
        return bad_result(method, reply);
    if (o->json) {
        print_line(reply->line);
    } else {
        const char *to = json_string_value(json_object_get(result, "to_uri"));
        printf("res_id %s to %s\n", res_id, to ? to : "?");
        fflush(stdout);
    }
    if (!o->wait) {
        client_msg_free(reply);
        return CTICTL_OK;
    }

    /* This connection constructed the call, so its event comes here; others
     * cannot (we did not subscribe), but check the res_id all the same. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = -1;
    while (rc < 0) {
        int left = -1;
        if (o->wait_timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long spent = (now.tv_sec - t0.tv_sec) * 1000LL
                              + (now.tv_nsec - t0.tv_nsec) / 1000000;
            left = spent >= o->wait_timeout_ms ? 0
                                                : (int)(o->wait_timeout_ms - spent);
        }
        struct client_msg *ev;
        int crc = client_next_event(c, left, &ev);
        if (crc == CLIENT_TIMEOUT) {
            fprintf(stderr, "ctictl: call: no on_released for %s within %.3g s\n",
                    res_id, o->wait_timeout_ms / 1000.0);
            rc = CTICTL_CONN;
        } else if (crc < 0) {
            fprintf(stderr, "ctictl: call: waiting for %s: %s\n", res_id,
                    client_error(c));
            rc = CTICTL_CONN;
        } else {
            json_t *p = json_object_get(ev->json, "params");
            const char *id = json_string_value(json_object_get(p, "res_id"));
            const char *m =
                json_string_value(json_object_get(ev->json, "method"));
            if (id != NULL && strcmp(id, res_id) == 0) {
                print_event(o, ev);
                if (m != NULL &&
                    strcmp(m, "ext.notify_call.on_progress") == 0)
                    rc = -1; /* --progress: its lines, then on_released */
                else
                    rc = json_is_null(json_object_get(p, "error")) ? CTICTL_OK
                                                               : CTICTL_FAILED;
            }
            client_msg_free(ev);
        }
    }
    client_msg_free(reply);
    return rc;
}

static int cmd_events(const struct ctictl_opts *o, struct client *c)
{
    static const char method[] = "sys.subscribe";
    /* since: replay what was emitted after event N, for a daemon that keeps
     * its events; one that does not ignores the unknown param or rejects
     * it, and either is reported as it is. */
    json_t *params = o->has_since ? json_pack("{s:I}", "since",
                                              (json_int_t)o->since)
                                  : NULL;
    struct client_msg *reply;
    int rc = request(o, c, method, params, &reply);
    if (rc >= 0)
        return rc;
    client_msg_free(reply);
    for (;;) {
        struct client_msg *ev;
        if (client_next_event(c, -1, &ev) < 0) {
            fprintf(stderr, "ctictl: events: %s\n", client_error(c));
            return CTICTL_CONN;
        }
        print_event(o, ev);
        client_msg_free(ev);
    }
}

/* ping: "pong"; gateways: sys.gateways as a table (ctictl_gateways.c). */
static int cmd_ping(const struct ctictl_opts *o, struct client *c,
                    const char *method)
{
    struct client_msg *reply;
    int rc = request(o, c, method, NULL, &reply);
    if (rc >= 0)
        return rc;
    json_t *result = json_object_get(reply->json, "result");
    const char *pong = json_string_value(result);
    if (o->json && (pong != NULL || json_is_array(result)))
        print_line(reply->line);
    else if (pong != NULL && strcmp(method, "sys.ping") == 0)
        print_line(pong);
    else if (strcmp(method, "sys.gateways") != 0 ||
             ctictl_gateways_print(result, stdout) < 0)
        return bad_result(method, reply);
    fflush(stdout);
    client_msg_free(reply);
    return CTICTL_OK;
}

/* exists and drop: one res_id in, a boolean out. */
static int cmd_res_id(const struct ctictl_opts *o, struct client *c,
                      const char *method)
{
    json_t *params = json_pack("{s:s}", "res_id", o->res_id);
    if (params == NULL)
        return usage_error("RES_ID '%s' is not UTF-8", o->res_id);
    struct client_msg *reply;
    int rc = request(o, c, method, params, &reply);
    if (rc >= 0)
        return rc;
    json_t *result = json_object_get(reply->json, "result");
    if (!json_is_boolean(result))
        return bad_result(method, reply);
    bool yes = json_is_true(result);
    if (o->json)
        print_line(reply->line);
    else if (strcmp(method, "ext.notify_call.drop") == 0 && yes)
        printf("dropped %s\n", o->res_id);
    else
        print_line(yes ? "true" : "false");
    fflush(stdout);
    client_msg_free(reply);
    return yes ? CTICTL_OK : CTICTL_FAILED;
}

int main(int argc, char **argv)
{
    struct ctictl_opts o = {
        .connect = getenv("CTID_CONNECT"),
        .token = getenv("CTID_AUTH_TOKEN"),
        .timeout_ms = DEFAULT_TIMEOUT_MS,
        .wait_timeout_ms = -1,
    };
    if (o.connect == NULL || o.connect[0] == '\0')
        o.connect = DEFAULT_CONNECT;

    int rc = parse_command_line(&o, argc, argv);
    if (rc >= 0) {
        ctictl_opts_free(&o);
        return rc;
    }

    char host[256], port[64], err[512];
    if (client_parse_hostport(o.connect, host, sizeof host, port,
                              sizeof port) < 0) {
        ctictl_opts_free(&o);
        return usage_error("--connect: '%s' is not HOST:PORT", o.connect);
    }
    struct client *c;
    if (client_connect(o.connect, o.timeout_ms, &c, err, sizeof err) < 0) {
        fprintf(stderr, "ctictl: %s\n", err);
        ctictl_opts_free(&o);
        return CTICTL_CONN;
    }

    if (o.token != NULL && o.token[0] != '\0') {
        struct client_msg *reply;
        rc = request(&o, c, "sys.auth", json_pack("{s:s}", "token", o.token),
                     &reply);
        if (rc >= 0) {
            client_free(c);
            ctictl_opts_free(&o);
            return rc;
        }
        client_msg_free(reply);
    }

    if (strcmp(o.command, "call") == 0)
        rc = cmd_call(&o, c);
    else if (strcmp(o.command, "events") == 0)
        rc = cmd_events(&o, c);
    else if (strcmp(o.command, "ping") == 0)
        rc = cmd_ping(&o, c, "sys.ping");
    else if (strcmp(o.command, "gateways") == 0)
        rc = cmd_ping(&o, c, "sys.gateways");
    else if (strcmp(o.command, "exists") == 0)
        rc = cmd_res_id(&o, c, "ext.notify_call.exists");
    else
        rc = cmd_res_id(&o, c, "ext.notify_call.drop");

    client_free(c);
    ctictl_opts_free(&o);
    return rc;
}
