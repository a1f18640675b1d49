"""Shared by the paho-mqtt test scripts: a 5.0 client whose events land in queues, and
`fail`, which ends the script with a clear message and a non-zero status."""

import queue
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# How long anything that should happen may take on a loaded machine.
WAIT = 10.0


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def port_arg():
    if len(sys.argv) != 2:
        fail(f"usage: {sys.argv[0]} PORT")
    return int(sys.argv[1])


def props(packet_type, **values):
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


class Peer:
    """One MQTT 5.0 connection driven by paho's network thread."""

    def __init__(self, port, client_id, clean_start=True, will=None, session_expiry=None):
        self.messages = queue.Queue()
        self.acks = queue.Queue()
        self.connacks = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags, rc, p))
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.acks.put(("suback", mid, rcs))
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.put(("pub", mid, rc))
        self.gone = queue.Queue()
        self.client.on_disconnect = lambda c, u, flags, rc, p: self.gone.put(rc)
        if will is not None:
            self.client.will_set(**will)
        connect_props = None
        if session_expiry is not None:
            connect_props = props(PacketTypes.CONNECT, SessionExpiryInterval=session_expiry)
        try:
            self.client.connect("127.0.0.1", port, keepalive=30, clean_start=clean_start,
                                properties=connect_props)
        except OSError as e:
            fail(f"{client_id}: cannot connect to 127.0.0.1:{port}: {e}")
        self.client.loop_start()
        try:
            self.flags, rc, _ = self.connacks.get(timeout=WAIT)
        except queue.Empty:
            fail(f"{client_id}: no CONNACK")
        if rc.is_failure:
            fail(f"{client_id}: CONNECT refused: {rc}")

    def subscribe(self, topic, qos, properties=None):
        _, mid = self.client.subscribe(topic, qos=qos, properties=properties)
        kind, got, rcs = self.acks.get(timeout=WAIT)
        if kind != "suback" or got != mid or rcs[0].is_failure:
            fail(f"SUBSCRIBE {topic}: {kind} {got} {rcs}")

    def publish(self, topic, payload, qos, retain=False, properties=None):
        """Publish and wait for the acknowledgement; returns its reason code (QoS 1/2)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        if not info.is_published():
            fail(f"PUBLISH {topic} not acknowledged")
        while True:
            try:
                kind, mid, rc = self.acks.get(timeout=WAIT)
            except queue.Empty:
                fail(f"PUBLISH {topic}: no on_publish")
            if kind == "pub" and mid == info.mid:
                return rc

    def message(self, what):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            fail(f"no message: {what}")

    def disconnect(self, reasoncode=None, properties=None):
        """Send DISCONNECT and wait until paho has written it and closed the socket
        (stopping the network thread at once could lose the packet)."""
        self.client.disconnect(reasoncode=reasoncode, properties=properties)
        try:
            self.gone.get(timeout=WAIT)
        except queue.Empty:
            fail("DISCONNECT not completed")
        self.client.loop_stop()
