//! MQTT 5.0 reason codes used by the broker (3.1.1 mappings live in the encoder).

pub const SUCCESS: u8 = 0x00;
pub const GRANTED_QOS_1: u8 = 0x01;
pub const GRANTED_QOS_2: u8 = 0x02;
pub const DISCONNECT_WITH_WILL: u8 = 0x04;
pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
pub const UNSPECIFIED_ERROR: u8 = 0x80;
pub const MALFORMED_PACKET: u8 = 0x81;
pub const PROTOCOL_ERROR: u8 = 0x82;
pub const IMPLEMENTATION_SPECIFIC: u8 = 0x83;
pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
pub const BAD_USERNAME_OR_PASSWORD: u8 = 0x86;
pub const NOT_AUTHORIZED: u8 = 0x87;
pub const SERVER_UNAVAILABLE: u8 = 0x88;
pub const SERVER_BUSY: u8 = 0x89;
pub const BANNED: u8 = 0x8A;
pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
pub const SESSION_TAKEN_OVER: u8 = 0x8E;
pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
pub const TOPIC_NAME_INVALID: u8 = 0x90;
pub const PACKET_ID_IN_USE: u8 = 0x91;
pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
pub const PACKET_TOO_LARGE: u8 = 0x95;
pub const QUOTA_EXCEEDED: u8 = 0x97;
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
pub const USE_ANOTHER_SERVER: u8 = 0x9C;
pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;
pub const SUBSCRIPTION_IDS_NOT_SUPPORTED: u8 = 0xA1;
pub const WILDCARDS_NOT_SUPPORTED: u8 = 0xA2;

/// The reason code's name in snake case, as metric labels and log fields show it; codes the
/// broker never sends are `other`.
pub fn name(code: u8) -> &'static str {
    match code {
        SUCCESS => "success",
        UNSPECIFIED_ERROR => "unspecified_error",
        MALFORMED_PACKET => "malformed_packet",
        PROTOCOL_ERROR => "protocol_error",
        IMPLEMENTATION_SPECIFIC => "implementation_specific_error",
        UNSUPPORTED_PROTOCOL_VERSION => "unsupported_protocol_version",
        CLIENT_ID_NOT_VALID => "client_identifier_not_valid",
        BAD_USERNAME_OR_PASSWORD => "bad_user_name_or_password",
        NOT_AUTHORIZED => "not_authorized",
        SERVER_UNAVAILABLE => "server_unavailable",
        SERVER_BUSY => "server_busy",
        BANNED => "banned",
        SERVER_SHUTTING_DOWN => "server_shutting_down",
        KEEP_ALIVE_TIMEOUT => "keep_alive_timeout",
        SESSION_TAKEN_OVER => "session_taken_over",
        TOPIC_FILTER_INVALID => "topic_filter_invalid",
        TOPIC_NAME_INVALID => "topic_name_invalid",
        RECEIVE_MAXIMUM_EXCEEDED => "receive_maximum_exceeded",
        TOPIC_ALIAS_INVALID => "topic_alias_invalid",
        PACKET_TOO_LARGE => "packet_too_large",
        QUOTA_EXCEEDED => "quota_exceeded",
        PAYLOAD_FORMAT_INVALID => "payload_format_invalid",
        RETAIN_NOT_SUPPORTED => "retain_not_supported",
        QOS_NOT_SUPPORTED => "qos_not_supported",
        USE_ANOTHER_SERVER => "use_another_server",
        CONNECTION_RATE_EXCEEDED => "connection_rate_exceeded",
        _ => "other",
    }
}
