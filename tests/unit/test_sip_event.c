/* Unit tests: sip_event (the typed SIP thread -> main messages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "sip.h"

static struct sockaddr_storage addr4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    inet_pton(AF_INET, ip, &in->sin_addr);
    return ss;
}

/* Every kind is small: the dialog record rides by pointer, and no event
 * is near the ~2 KB one struct for all kinds used to be. */
static void test_sizes(void **state)
{
    (void)state;
    assert_true(sizeof(struct sip_event) < 512);
    assert_true(sizeof(struct sip_ev_dialog) == sizeof(void *));
    assert_true(sizeof(struct sip_ev_failed) <= 8);
}

static void test_status_kinds(void **state)
{
    (void)state;
    struct sip_event ev = sip_event_progress(7, 180, false);
    assert_int_equal(ev.type, SIP_EV_PROGRESS);
    assert_int_equal(ev.call_id, 7);
    assert_int_equal(ev.progress.status, 180);
    assert_false(ev.progress.local);

    ev = sip_event_failed(8, 408, true);
    assert_int_equal(ev.type, SIP_EV_FAILED);
    assert_int_equal(ev.call_id, 8);
    assert_int_equal(ev.failed.status, 408);
    assert_true(ev.failed.local);

    ev = sip_event_ended(9, 200, false, true);
    assert_int_equal(ev.type, SIP_EV_ENDED);
    assert_int_equal(ev.ended.status, 200);
    assert_false(ev.ended.local);
    assert_true(ev.ended.by_peer);

    ev = sip_event_session_lost(10, 481, false);
    assert_int_equal(ev.type, SIP_EV_SESSION_LOST);
    assert_int_equal(ev.session_lost.status, 481);
    assert_false(ev.session_lost.local);
    sip_event_release(&ev); /* nothing owned: a no-op */
}

static void test_answered(void **state)
{
    (void)state;
    struct sockaddr_storage a = addr4("192.0.2.1", 4000);
    struct sip_event ev = sip_event_answered(1, 200, 8, &a,
                                             sizeof(struct sockaddr_in), 4003);
    assert_int_equal(ev.type, SIP_EV_ANSWERED);
    assert_int_equal(ev.answered.status, 200);
    assert_int_equal(ev.answered.payload_type, 8);
    assert_int_equal(ev.answered.dest_len, sizeof(struct sockaddr_in));
    assert_memory_equal(&ev.answered.dest, &a, sizeof(struct sockaddr_in));
    assert_int_equal(ev.answered.rtcp_port, 4003);
    assert_false(ev.answered.media_refused);

    /* no codec: no address, whatever was passed */
    ev = sip_event_answered(1, 200, -1, &a, sizeof(struct sockaddr_in), 4003);
    assert_int_equal(ev.answered.payload_type, -1);
    assert_int_equal(ev.answered.dest_len, 0);
    assert_int_equal(ev.answered.rtcp_port, 0);
}

static void test_media(void **state)
{
    (void)state;
    struct sip_event ev = sip_event_media(3, true, NULL, 0, 0);
    assert_int_equal(ev.type, SIP_EV_MEDIA);
    assert_true(ev.media.paused);
    assert_int_equal(ev.media.dest_len, 0);

    struct sockaddr_storage a = addr4("192.0.2.2", 5000);
    ev = sip_event_media(3, false, &a, sizeof(struct sockaddr_in), 0);
    assert_false(ev.media.paused);
    assert_int_equal(ev.media.dest_len, sizeof(struct sockaddr_in));
    assert_memory_equal(&ev.media.dest, &a, sizeof(struct sockaddr_in));
}

/* The record is a copy the event owns until sip_event_release (ASan
 * checks the free). */
static void test_dialog(void **state)
{
    (void)state;
    struct sip_dialog d = {.cseq = 2, .established = true};
    snprintf(d.call_id, sizeof d.call_id, "abc@host");
    snprintf(d.request_uri, sizeof d.request_uri, "sip:callee@192.0.2.3");
    struct sip_event ev;
    assert_int_equal(sip_event_dialog(&ev, 11, &d), 0);
    assert_int_equal(ev.type, SIP_EV_DIALOG);
    assert_int_equal(ev.call_id, 11);
    assert_non_null(ev.dialog.record);
    assert_ptr_not_equal(ev.dialog.record, &d);
    assert_memory_equal(ev.dialog.record, &d, sizeof d);
    sip_event_release(&ev);
    assert_null(ev.dialog.record);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(sip_event_name(SIP_EV_PROGRESS), "PROGRESS");
    assert_string_equal(sip_event_name(SIP_EV_SESSION_LOST), "SESSION_LOST");
    assert_string_equal(sip_event_name(SIP_EV_DIALOG), "DIALOG");
}

/* Issue 14's additions: a key, the answer's telephone-event type (none
 * unless set), early media on a 1xx. */
static void test_keys(void **state)
{
    (void)state;
    struct sip_event ev = sip_event_key(5, '#');
    assert_int_equal(ev.type, SIP_EV_KEY);
    assert_int_equal(ev.call_id, 5);
    assert_int_equal(ev.key.key, '#');
    assert_string_equal(sip_event_name(SIP_EV_KEY), "KEY");
    struct sockaddr_storage a = addr4("10.0.0.2", 4000);
    ev = sip_event_answered(1, 200, 8, &a, sizeof(struct sockaddr_in), 0);
    assert_int_equal(ev.answered.te_payload_type, -1);
    ev = sip_event_progress(1, 183, false);
    assert_false(ev.progress.sdp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_status_kinds),
        cmocka_unit_test(test_answered),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_dialog),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
