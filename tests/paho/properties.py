"""Every PUBLISH property, at QoS 0, 1 and 2, goes through the broker untouched, and the
subscription identifier is added. Usage: properties.py PORT"""

from paho.mqtt.packettypes import PacketTypes

from harness import Peer, fail, port_arg, props


def main():
    port = port_arg()
    sub = Peer(port, "paho-props-sub")
    sub.subscribe("paho/props/#", 2, props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    pub = Peer(port, "paho-props-pub")
    sent = {
        "PayloadFormatIndicator": 1,
        "ContentType": "text/plain; charset=utf-8",
        "ResponseTopic": "paho/reply",
        "CorrelationData": b"\x00\xffcorrelation",
        "UserProperty": [("a", "1"), ("a", "2"), ("ключ", "значение")],
        "MessageExpiryInterval": 3600,
    }
    for qos in (0, 1, 2):
        pub.publish(f"paho/props/{qos}", f"payload {qos}".encode(), qos,
                    properties=props(PacketTypes.PUBLISH, **sent))
        m = sub.message(f"QoS {qos} publish")
        if m.topic != f"paho/props/{qos}" or m.payload != f"payload {qos}".encode():
            fail(f"QoS {qos}: got {m.topic} {m.payload!r}")
        if m.qos != qos:
            fail(f"QoS {qos}: delivered at QoS {m.qos}")
        got = m.properties
        for name, value in sent.items():
            have = getattr(got, name, None)
            if name == "MessageExpiryInterval":
                if have is None or not 3590 <= have <= 3600:
                    fail(f"QoS {qos}: MessageExpiryInterval {have}, sent 3600")
            elif name == "UserProperty":
                if list(map(tuple, have or [])) != value:
                    fail(f"QoS {qos}: UserProperty {have}, sent {value}")
            elif have != value:
                fail(f"QoS {qos}: {name} {have!r}, sent {value!r}")
        if getattr(got, "SubscriptionIdentifier", None) != [42]:
            fail(f"QoS {qos}: SubscriptionIdentifier {getattr(got, 'SubscriptionIdentifier', None)}")
    pub.disconnect()
    sub.disconnect()
    print("ok")


main()
