"""paho-mqtt over WebSocket (`transport="websockets"`, path /mqtt): QoS 1 publish and
subscribe, and a persistent session that keeps a QoS 1 message queued while its subscriber
is away and reports session present when it is back.

Usage: ws_session.py PORT v5|v311 [CA_FILE]   (with CA_FILE: wss://, verified by that CA)
"""

import queue
import sys
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes

from harness import WAIT, fail, props

if len(sys.argv) not in (3, 4) or sys.argv[2] not in ("v5", "v311"):
    fail(f"usage: {sys.argv[0]} PORT v5|v311 [CA_FILE]")
PORT = int(sys.argv[1])
V5 = sys.argv[2] == "v5"
CA = sys.argv[3] if len(sys.argv) == 4 else None
RUN = uuid.uuid4().hex[:8]
TOPIC = f"ws/{RUN}/t"


class WsPeer:
    """One connection over ws:// or wss:// on /mqtt, driven by paho's network thread."""

    def __init__(self, client_id, persistent):
        self.name = client_id
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.acks = queue.Queue()
        kwargs = {"protocol": mqtt.MQTTv5} if V5 else {
            "protocol": mqtt.MQTTv311, "clean_session": not persistent}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  transport="websockets", **kwargs)
        self.client.ws_set_options(path="/mqtt")
        if CA is not None:
            self.client.tls_set(ca_certs=CA)
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags, rc))
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.acks.put(("suback", rcs))
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.put(("puback", mid))
        extra = {}
        if V5:
            extra["clean_start"] = not persistent
            if persistent:
                extra["properties"] = props(PacketTypes.CONNECT, SessionExpiryInterval=300)
        try:
            self.client.connect("127.0.0.1", PORT, keepalive=30, **extra)
        except Exception as e:  # paho raises socket, TLS and handshake errors alike
            fail(f"{client_id}: cannot connect over WebSocket to 127.0.0.1:{PORT}: {e!r}")
        self.client.loop_start()
        try:
            flags, rc = self.connacks.get(timeout=WAIT)
        except queue.Empty:
            fail(f"{client_id}: no CONNACK over WebSocket")
        if rc.is_failure:
            fail(f"{client_id}: CONNACK refused: {rc}")
        self.session_present = flags.session_present

    def subscribe(self, topic, qos):
        self.client.subscribe(topic, qos)
        kind, rcs = self.acks.get(timeout=WAIT)
        if kind != "suback" or any(rc.is_failure for rc in rcs):
            fail(f"{self.name}: SUBSCRIBE {topic} refused: {kind} {rcs}")

    def publish(self, topic, payload, qos):
        info = self.client.publish(topic, payload, qos)
        if qos > 0:
            try:
                info.wait_for_publish(timeout=WAIT)
            except Exception as e:
                fail(f"{self.name}: PUBLISH {payload!r}: {e!r}")
            if not info.is_published():
                fail(f"{self.name}: no PUBACK for {payload!r}")

    def expect(self, payload, qos):
        try:
            m = self.messages.get(timeout=WAIT)
        except queue.Empty:
            fail(f"{self.name}: did not receive {payload!r}")
        if m.payload != payload or m.qos != qos or m.topic != TOPIC:
            fail(f"{self.name}: got {m.topic} {m.payload!r} QoS {m.qos}, "
                 f"wanted {TOPIC} {payload!r} QoS {qos}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


sub = WsPeer(f"ws-sub-{RUN}", persistent=True)
if sub.session_present:
    fail("a new persistent session reported session present")
sub.subscribe(TOPIC, 1)
pub = WsPeer(f"ws-pub-{RUN}", persistent=False)
pub.publish(TOPIC, b"live", 1)
sub.expect(b"live", 1)
sub.close()

# Queued for the absent subscriber; the PUBACK means the broker has it.
pub.publish(TOPIC, b"while away", 1)
sub = WsPeer(f"ws-sub-{RUN}", persistent=True)
if not sub.session_present:
    fail("the persistent session was not present on reconnect")
sub.expect(b"while away", 1)
pub.publish(TOPIC, b"after return", 1)
sub.expect(b"after return", 1)
sub.close()
pub.close()
print("ok")
