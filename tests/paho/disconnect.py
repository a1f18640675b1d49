"""paho's DISCONNECT: the normal 2-byte one discards the will, reason 0x04 sends it, and a
Session Expiry Interval of 0 on DISCONNECT ends a session the CONNECT asked to keep.
Usage: disconnect.py PORT"""

import queue
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from harness import WAIT, Peer, fail, port_arg, props

NO_MATCHING_SUBSCRIBERS = 0x10


def will(topic):
    return {"topic": topic, "payload": f"will of {topic}", "qos": 1}


def main():
    port = port_arg()
    watcher = Peer(port, "paho-watch")
    watcher.subscribe("paho/will/#", 1)

    normal = Peer(port, "paho-normal", will=will("paho/will/normal"))
    normal.disconnect()
    with_will = Peer(port, "paho-with", will=will("paho/will/with"))
    with_will.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    m = watcher.message("the will after DISCONNECT 0x04")
    if m.topic != "paho/will/with":
        fail(f"got the will of {m.topic} (normal DISCONNECT must discard it)")
    # The normal DISCONNECT came first, so its will would have too; 0.5 s grace.
    try:
        m = watcher.messages.get(timeout=0.5)
        fail(f"unexpected message on {m.topic}")
    except queue.Empty:
        pass

    kept = Peer(port, "paho-expiry", session_expiry=300)
    kept.subscribe("paho/expiry", 1)
    kept.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    # paho closes the socket without waiting for the broker: wait until the broker has
    # acted on the DISCONNECT, i.e. the session's subscription is gone (PUBACK 0x10), before
    # coming back, so the new CONNECT cannot overtake it.
    deadline = time.monotonic() + WAIT
    while watcher.publish("paho/expiry", b"probe", 1) != NO_MATCHING_SUBSCRIBERS:
        if time.monotonic() > deadline:
            fail("the session (and its subscription) outlived DISCONNECT with expiry 0")
        time.sleep(0.05)
    back = Peer(port, "paho-expiry", clean_start=False, session_expiry=300)
    if back.flags.session_present:
        fail("session present after DISCONNECT with Session Expiry Interval 0")
    back.disconnect()
    watcher.disconnect()
    print("ok")


main()
