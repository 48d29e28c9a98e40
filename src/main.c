/* main: command line, configuration, and the daemon's life. ctid runs in
 * the foreground (systemd or a terminal supervises it) and logs to stderr
 * unless log_file is set. Flags override the config file. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/ctid/ctid.conf"

/* The defaults shown are the key table's (conf_default), so they cannot
 * drift from what ctid does. */
static void usage(FILE *out)
{
    fprintf(out,
            "usage: ctid [options]\n"
            "\n"
            "ctid places outbound notification calls: JSON-RPC requests in,\n"
            "SIP calls and RTP prompts out, on_released events back.\n"
            "\n"
            "  --config FILE        config file (default " DEFAULT_CONFIG
            " if it exists)\n"
            "  --listen HOST:PORT   JSON-RPC listener (default %s)\n"
            "  --sip HOST:PORT      local SIP UDP address (default %s)\n"
            "  --rtp-ports LO-HI    RTP port range (default %s)\n"
            "  --prompt-dir DIR     prompt files (default %s)\n"
            "  --state-dir DIR      state (default %s)\n"
            "  --node-id A.B.C      node id in res_id (default %s)\n"
            "  --log-level LEVEL    error, warn, info or debug (default %s)\n"
            "  --check-config       print the effective configuration and "
            "exit\n"
            "  --version            print the version and exit\n"
            "  --help               this text\n"
            "\n"
            "Flags override the config file; conf/ctid.conf documents every "
            "key.\n",
            conf_default("listen"), conf_default("sip"),
            conf_default("rtp_ports"), conf_default("prompt_dir"),
            conf_default("state_dir"), conf_default("node_id"),
            conf_default("log_level"));
}

/* Reads the flags: the config file, --check-config and the overrides,
 * kept in src in their order. Returns -1 to go on, or the exit status
 * (--help, --version, a bad flag). */
static int read_flags(int argc, char **argv, struct conf_source *src,
                      const char **config, bool *check_only)
{
    enum { OPT_CHECK = 256, OPT_VERSION, OPT_HELP, OPT_KEY };
    /* From OPT_KEY on, a flag sets the config key of its name, '-' read
     * as '_'. Each has its own value: getopt reports an abbreviation
     * such as --s as ambiguous only between options that differ. */
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_KEY},
        {"sip", required_argument, NULL, OPT_KEY + 1},
        {"rtp-ports", required_argument, NULL, OPT_KEY + 2},
        {"prompt-dir", required_argument, NULL, OPT_KEY + 3},
        {"state-dir", required_argument, NULL, OPT_KEY + 4},
        {"node-id", required_argument, NULL, OPT_KEY + 5},
        {"log-level", required_argument, NULL, OPT_KEY + 6},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int opt, which = 0;
    while ((opt = getopt_long(argc, argv, "", opts, &which)) != -1) {
        switch (opt) {
        case 'c':
            *config = optarg;
            break;
        case OPT_CHECK:
            *check_only = true;
            break;
        case OPT_VERSION:
            printf("ctid %s\n", CTID_VERSION);
            return 0;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default: {
            if (opt < OPT_KEY || src->n_set == CONF_MAX_OVERRIDES) {
                usage(stderr);
                return 2;
            }
            char *key = src->set[src->n_set].key;
            snprintf(key, sizeof src->set[0].key, "%s", opts[which].name);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            if (strlen(optarg) >= sizeof src->set[0].value) {
                fprintf(stderr, "ctid: --%s: value too long\n", key);
                return 2;
            }
            snprintf(src->set[src->n_set++].value, sizeof src->set[0].value,
                     "%s", optarg);
        }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ctid: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool check_only = false;
    static struct conf_source src; /* kept by the server for SIGHUP */
    int status = read_flags(argc, argv, &src, &config, &check_only);
    if (status >= 0)
        return status;

    static struct conf conf; /* large; read-only once the server copies it */
    char err[1024];
    if (config == NULL && access(DEFAULT_CONFIG, R_OK) == 0)
        config = DEFAULT_CONFIG;
    if (config != NULL &&
        (size_t)snprintf(src.path, sizeof src.path, "%s", config) >=
            sizeof src.path) {
        fprintf(stderr, "ctid: --config: path too long\n");
        return 2;
    }
    if (conf_build(&conf, &src, err, sizeof err) < 0) {
        fprintf(stderr, "ctid: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("# %s: configuration OK\n", config ? config : "(defaults)");
        conf_print(&conf, stdout);
        return 0;
    }

    if (log_open((enum log_level)log_level_parse(conf.log_level),
                 conf.log_file) < 0) {
        fprintf(stderr, "ctid: log_file %s: cannot open\n", conf.log_file);
        return 1;
    }
    log_info("ctid %s starting%s%s", CTID_VERSION, config ? " with " : "",
             config ? config : "");

    /* Nothing ctid does needs root (every port is above 1024): say so
     * when someone runs it that way by hand. */
    if (geteuid() == 0)
        log_warn("running as root; ctid needs no privilege (ctid.service "
                 "runs it as user ctid)");

    /* Every call holds an RTP and an RTCP socket: thousands of calls need
     * thousands of descriptors, and the soft limit (often 1024) is only a
     * default. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) == 0)
            log_info("open files limit raised to %llu",
                     (unsigned long long)nofile.rlim_cur);
    }

    static struct server srv; /* the one struct server */
    status = 1;
    if (server_init(&srv, &conf, &src, err, sizeof err) < 0)
        log_error("cannot start: %s", err);
    else
        status = server_run(&srv);
    server_free(&srv);
    log_close();
    return status;
}
