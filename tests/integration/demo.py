"""The README's demo: one real notification call, end to end.

Starts ctid with sipp as the callee (a local VoIP "gateway" that answers),
asks ctid over JSON-RPC to phone 13800000000 and play a spoken prompt
twice, prints the request, the result and the on_released event, and saves
what the callee received as demo-out/heard.wav.

    python3 tests/integration/demo.py --ctid build/ctid --sipp-dir tests/sipp
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctidtest  # noqa: E402

TEXT = ("Hello. This is c t i d, your notification daemon. "
        "Your verification code is 4, 8, 1, 5.")


def show(label, obj):
    print("\n%s\n  %s" % (label, json.dumps(obj, ensure_ascii=False)))


def main():
    out_dir = os.path.abspath("demo-out")
    os.makedirs(out_dir, exist_ok=True)
    t = ctidtest.Test("demo", sys.argv[1:] + ["--keep"])
    with t:
        # A spoken prompt at espeak-ng's 22.05 kHz: ctid converts it to
        # 8 kHz mono once and caches it.
        prompts = t.path("prompts")
        os.makedirs(prompts, exist_ok=True)
        subprocess.run(["espeak-ng", "-s", "150", "-w",
                        os.path.join(prompts, "notice.wav"), TEXT], check=True)

        sink = t.rtp_sink()
        callee = t.sipp("uas_answer_wait_bye.xml", rtp_sink_port=sink.port)
        callee.start()
        gw = ctidtest.gateway("local-sipp", callee.port, max_calls=10)
        ctid = t.ctid(gateways=[gw], prompt_dir=prompts,
                      conf={"log_level": "info"})
        ctid.start()
        print("\nctid is running: JSON-RPC on 127.0.0.1:%d, SIP on 127.0.0.1:%d;"
              " sipp answers as the gateway on 127.0.0.1:%d"
              % (ctid.listen_port, ctid.sip_port, callee.port))

        client = t.client(ctid.listen_port)
        params = {"to_uri": "13800000000@127.0.0.1:%d" % callee.port,
                  "play_content": "notice.wav", "play_repeat": 1,
                  "user_data": "demo"}
        show(">>> request", {"id": 1, "method": "ext.notify_call.construct",
                             "params": params})
        reply = client.call("ext.notify_call.construct", params)
        show("<<< reply", reply)
        t.check(reply is not None and "result" in reply, "construct succeeded")
        if reply is None or "result" not in reply:
            return
        res_id = reply["result"]["res_id"]
        print("\n... the callee answers and hears the notice twice ...")
        event = client.wait_event(res_id, timeout=60)
        show("<<< event", event)
        t.check(event is not None and event["params"]["error"] is None,
                "call played to the end")
        t.check(callee.wait(15) == 0, "the callee got ctid's BYE")

        payload = b"".join(p.payload for p in sink.packets)
        heard = os.path.join(out_dir, "heard.wav")
        ctidtest.write_wav(heard, [ctidtest.alaw_decode(b) for b in payload])
        shutil.copy(ctid.log_path, os.path.join(out_dir, "ctid.log"))
        print("\nThe callee received %d RTP packets (%.1f s of audio)."
              % (len(sink.packets), len(payload) / 8000.0))
        print("Listen to it:  %s   (ctid's log: %s)\n"
              % (heard, os.path.join(out_dir, "ctid.log")))
        t.check(len(payload) > 0, "audio saved to %s" % heard)


if __name__ == "__main__":
    main()
