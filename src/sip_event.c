/* sip_event: the constructors of struct sip_event, one per kind, and the
 * release of what an event owns (a DIALOG's heap record). Pure: no SIP,
 * no thread; the SIP thread builds every event here, and tests build the
 * same events for their stand-ins. */
#include "sip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sip_event sip_event_progress(uint64_t call_id, int status, bool local)
{
    return (struct sip_event){.type = SIP_EV_PROGRESS, .call_id = call_id,
                              .progress = {.status = status, .local = local}};
}

struct sip_event sip_event_answered(uint64_t call_id, int status,
                                    int payload_type,
                                    const struct sockaddr_storage *dest,
                                    socklen_t dest_len, uint16_t rtcp_port)
{
    struct sip_event ev = {.type = SIP_EV_ANSWERED, .call_id = call_id};
    ev.answered.status = status;
    ev.answered.payload_type = payload_type;
    ev.answered.te_payload_type = -1;
    if (payload_type >= 0 && dest != NULL) {
        ev.answered.dest = *dest;
        ev.answered.dest_len = dest_len;
        ev.answered.rtcp_port = rtcp_port;
    }
    return ev;
}

struct sip_event sip_event_key(uint64_t call_id, char key)
{
    return (struct sip_event){.type = SIP_EV_KEY, .call_id = call_id,
                              .key = {.key = key}};
}

struct sip_event sip_event_failed(uint64_t call_id, int status, bool local)
{
    return (struct sip_event){.type = SIP_EV_FAILED, .call_id = call_id,
                              .failed = {.status = status, .local = local}};
}

struct sip_event sip_event_ended(uint64_t call_id, int status, bool local,
                                 bool by_peer)
{
    return (struct sip_event){
        .type = SIP_EV_ENDED, .call_id = call_id,
        .ended = {.status = status, .local = local, .by_peer = by_peer}};
}

struct sip_event sip_event_media(uint64_t call_id, bool paused,
                                 const struct sockaddr_storage *dest,
                                 socklen_t dest_len, uint16_t rtcp_port)
{
    struct sip_event ev = {.type = SIP_EV_MEDIA, .call_id = call_id};
    ev.media.paused = paused;
    if (dest != NULL && dest_len > 0) {
        ev.media.dest = *dest;
        ev.media.dest_len = dest_len;
        ev.media.rtcp_port = rtcp_port;
    }
    return ev;
}

struct sip_event sip_event_session_lost(uint64_t call_id, int status,
                                        bool local)
{
    return (struct sip_event){
        .type = SIP_EV_SESSION_LOST, .call_id = call_id,
        .session_lost = {.status = status, .local = local}};
}

int sip_event_dialog(struct sip_event *ev, uint64_t call_id,
                     const struct sip_dialog *d)
{
    struct sip_dialog *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return -1;
    *copy = *d;
    *ev = (struct sip_event){.type = SIP_EV_DIALOG, .call_id = call_id,
                             .dialog = {.record = copy}};
    return 0;
}

struct sip_event sip_event_gateway(unsigned index, const char *name,
                                   enum sip_gw_change what, int status,
                                   bool local)
{
    struct sip_event ev = {.type = SIP_EV_GATEWAY, .call_id = 0};
    ev.gateway.index = index;
    snprintf(ev.gateway.name, sizeof ev.gateway.name, "%s", name);
    ev.gateway.what = what;
    ev.gateway.status = status;
    ev.gateway.local = local;
    return ev;
}

const char *sip_gw_change_name(enum sip_gw_change what)
{
    switch (what) {
    case SIP_GW_REGISTERED: return "registered";
    case SIP_GW_REFUSED: return "refused";
    case SIP_GW_REG_FAILED: return "failed";
    case SIP_GW_UP: return "up";
    case SIP_GW_DOWN: return "down";
    }
    return "?";
}

void sip_event_release(struct sip_event *ev)
{
    if (ev->type == SIP_EV_DIALOG) {
        free(ev->dialog.record);
        ev->dialog.record = NULL;
    }
}

const char *sip_event_name(enum sip_event_type type)
{
    switch (type) {
    case SIP_EV_PROGRESS: return "PROGRESS";
    case SIP_EV_ANSWERED: return "ANSWERED";
    case SIP_EV_FAILED: return "FAILED";
    case SIP_EV_ENDED: return "ENDED";
    case SIP_EV_MEDIA: return "MEDIA";
    case SIP_EV_SESSION_LOST: return "SESSION_LOST";
    case SIP_EV_DIALOG: return "DIALOG";
    case SIP_EV_GATEWAY: return "GATEWAY";
    case SIP_EV_KEY: return "KEY";
    }
    return "?";
}
