/* dtmf_info: the key carried by a SIP INFO request's body (issue 14),
 * application/dtmf-relay or application/dtmf.
 *
 * Ownership: pure, no allocation, nothing kept; the caller owns both
 * strings. Any thread; the SIP thread's sip_on_info uses it for an INFO
 * inside a call. */
#ifndef CTID_DTMF_INFO_H
#define CTID_DTMF_INFO_H

#include <stddef.h>

/* Longest body and Content-Type read; anything longer is refused. */
#define DTMF_INFO_MAX_BODY 1024
#define DTMF_INFO_MAX_TYPE 128

enum dtmf_info_result {
    DTMF_INFO_KEY = 0,     /* *key is set */
    DTMF_INFO_NOT_DTMF,    /* another content type (or none): not ours */
    DTMF_INFO_BAD,         /* a DTMF content type with a body that names
                              no key; *why says what is wrong */
};

/* content_type: the Content-Type header's value (parameters and case
 * ignored), NULL when absent; body: len bytes, not NUL-terminated, as
 * received. On DTMF_INFO_KEY, *key is one of 0-9 * # A-D. On the others
 * *why is a static string ("" for NOT_DTMF with no type).
 *
 * application/dtmf-relay (Cisco's): lines "Name=value" (CRLF or LF, names
 * without case, white space around both ignored); Signal is the key, the
 * other lines (Duration) are not read. application/dtmf: the body is the
 * key. In both the key is one character 0-9 * # A-D (a-d too) or the
 * RFC 4733 event code 0-15 in decimal, so "10" is '*' and "11" is '#'.
 * That is what the senders do: Cisco gateways (and baresip) write
 * dtmf-relay's Signal as the character ("Signal=#" or "Signal= #");
 * Asterisk's chan_sip writes dtmf-relay with the character but its
 * application/dtmf ("shortinfo") with the event code ("11\r\n" for #),
 * and reads either form in either type, as this does; SEMS-based
 * switches (yeti) write the event code in both ("Signal=11", LF line
 * ends). Flash ("!" or 16) is not a key. */
enum dtmf_info_result dtmf_info_parse(const char *content_type,
                                      const char *body, size_t len,
                                      char *key, const char **why);

#endif
