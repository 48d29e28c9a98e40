/* ctictl: the command-line client of ctid. Runs the command the command
 * line (ctictl_opts.c) names: JSON-RPC requests through the client
 * module, the human and --json output, and the exit status that scripts
 * test (docs/man/ctictl.1 is the reference for all three). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "ctictl_call.h"
#include "ctictl_gateways.h"
#include "ctictl_opts.h"

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
    uint64_t t0 = clock_mono_ms();
    rc = -1;
    while (rc < 0) {
        int left = -1;
        if (o->wait_timeout_ms >= 0) {
            long long spent = (long long)(clock_mono_ms() - t0);
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
        return ctictl_usage_error("RES_ID '%s' is not UTF-8", o->res_id);
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

    int rc = ctictl_parse_command_line(&o, argc, argv);
    if (rc >= 0) {
        ctictl_opts_free(&o);
        return rc;
    }

    char host[256], port[64], err[512];
    if (client_parse_hostport(o.connect, host, sizeof host, port,
                              sizeof port) < 0) {
        ctictl_opts_free(&o);
        return ctictl_usage_error("--connect: '%s' is not HOST:PORT", o.connect);
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
