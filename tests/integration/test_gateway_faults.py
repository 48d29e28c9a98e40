#!/usr/bin/env python3
"""ctid integration test: a gateway that refuses (docs/reliability.md,
"Fault tests").

A  the gateway answers 503 Service Unavailable: "dial failed", sys, cause
   503, the 503 ACKed, no RTP.
B  the gateway refuses the offer with 488 Not Acceptable Here: "dial
   failed", sys, cause 488.
C  no common codec: the gateway answers 200 with an SDP that offers only
   G.729; ctid sends no RTP, hangs up with BYE and reports "dial failed",
   sys, cause 488.
D  the daemon still serves: a normal call afterwards plays in full.
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, expected_payload, make_prompt,
                      gateway, free_port)

t = Test("gateway_faults")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.5)
    ports = {k: free_port("udp") for k in ("s503", "s488", "g729", "ok")}
    d = t.ctid(gateways=[gateway("gw_" + k, p) for k, p in ports.items()])
    d.start()
    sink = t.rtp_sink()
    c = t.client(d.listen_port, "app")

    def call(port, ud):
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port), "play_content": "short.wav",
            "user_data": ud})
        res_id, _ = check_construct_result(t, reply, d.node_id, d.uri(port),
                                           ud, label=ud)
        return c.wait_event(res_id, timeout=20) if res_id else None, res_id

    def refused(key, status, scenario):
        def run():
            sp = t.sipp(scenario, port=ports[key],
                        rtp_sink_port=sink.port).start()
            before = sink.count()
            ev, res_id = call(ports[key], key)
            check_released(t, ev, res_id, key, "dial failed", "sys",
                           cause=status, answered=False, label=key)
            sp.check_exit(t, "%s: the daemon ACKed the %d" % (key, status))
            time.sleep(0.3)
            t.check_eq(sink.count() - before, 0, "%s: no RTP sent" % key)
        return run
    t.run("A: 503 Service Unavailable",
          refused("s503", 503, "uas_service_unavailable.xml"))
    t.run("B: 488 Not Acceptable Here",
          refused("s488", 488, "uas_not_acceptable.xml"))

    def no_codec():
        sp = t.sipp("uas_answer_no_codec.xml", port=ports["g729"],
                    rtp_sink_port=sink.port).start()
        before = sink.count()
        ev, res_id = call(ports["g729"], "g729")
        check_released(t, ev, res_id, "g729", "dial failed", "sys",
                       cause=488, label="C: G.729-only answer")
        sp.check_exit(t, "C: the daemon hung up the answered call with BYE")
        t.check_eq(len(sp.received("BYE")), 1, "C: exactly one BYE")
        time.sleep(0.3)
        t.check_eq(sink.count() - before, 0, "C: no RTP sent")
        log = d.log_text()
        t.check("answer offers neither PCMA nor PCMU" in log,
                "C: the reason is logged")
    t.run("C: no common codec", no_codec)

    def still_serving():
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["ok"],
                    rtp_sink_port=sink.port, codec=8).start()
        before = len(sink.snapshot())
        ev, res_id = call(ports["ok"], "ok")
        check_released(t, ev, res_id, "ok", None, "sys", cause=200,
                       answered=True, label="D: a normal call")
        sp.check_exit(t, "D: BYE after the prompt")
        sink.wait_quiet()
        pkts = sink.snapshot()[before:]
        check_rtp_stream(t, pkts, expected_payload(
            t.path("prompts", "short.wav"), 8, 1), 8,
            label="D: RTP")
    t.run("D: the daemon still serves", still_serving)
    c.close()
