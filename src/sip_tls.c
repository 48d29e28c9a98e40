/* sip_tls: the CA bundle sofia-sip's TLS transport verifies carrier
 * certificates with. Runs once on the SIP thread at start-up, before nua
 * binds, and owns nothing afterwards but the files it wrote.
 *
 * sofia-sip 1.12.11 (tport_type_tls.c) reads its trust from a directory
 * (TPTAG_CERTIFICATE): DIR/cafile.pem, DIR/agent.pem (our own certificate:
 * none, ctid is only a TLS client) and DIR as an OpenSSL CApath. And it
 * has one TLS context per transport, not per destination: every tls
 * gateway is verified against the same CA list. So ctid writes
 * state_dir/tls/cafile.pem as the concatenation of every tls gateway's
 * tls_ca_file (the system store, CONF_SYSTEM_CA_FILE, for a gateway
 * without one), each file once. A gateway thus also trusts the CAs
 * another gateway names: docs/operations.md says so. The files were
 * checked readable by conf; a SIGHUP does not rebuild the bundle. */
#include "sip_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/* Appends the file at path to out; -1 with err. */
static int sip_tls_append(FILE *out, const char *path, char *err,
                          size_t errlen)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        snprintf(err, errlen, "tls_ca_file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    bool bad = ferror(in);
    fclose(in);
    fputc('\n', out); /* a file without a final newline ends one PEM */
    if (bad) {
        snprintf(err, errlen, "tls_ca_file %s: read error", path);
        return -1;
    }
    return 0;
}

/* Has an earlier tls gateway than i named the same CA file? */
static bool sip_tls_seen(const struct conf *c, size_t i, const char *path)
{
    for (size_t j = 0; j < i; j++) {
        const struct conf_gateway *g = &c->gateways[j];
        const char *p = g->tls_ca_file[0] ? g->tls_ca_file
                                          : CONF_SYSTEM_CA_FILE;
        if (conf_gateway_tp(g) == CONF_TP_TLS && strcmp(p, path) == 0)
            return true;
    }
    return false;
}

int sip_tls_prepare(const struct conf *c, char *dir, size_t dirlen,
                    char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    snprintf(dir, dirlen, "%s/tls", c->state_dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/cafile.pem", dir);
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < c->n_gateways && rc == 0; i++) {
        const struct conf_gateway *g = &c->gateways[i];
        const char *ca = g->tls_ca_file[0] ? g->tls_ca_file
                                           : CONF_SYSTEM_CA_FILE;
        if (conf_gateway_tp(g) != CONF_TP_TLS || sip_tls_seen(c, i, ca))
            continue;
        rc = sip_tls_append(out, ca, err, errlen);
        if (rc == 0)
            log_info("sip: tls: trusting the CAs of %s ([gateway %s])", ca,
                     g->name);
    }
    if (fclose(out) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* The verification policy of the one TLS context: conf_validate makes
 * every tls gateway agree on tls_verify. */
bool sip_tls_verify(const struct conf *c)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (conf_gateway_tp(&c->gateways[i]) == CONF_TP_TLS)
            return c->gateways[i].tls_verify;
    return true;
}
