//! Gratuitous ARP: tells the hosts and switches of the segment that the VIP now lives at this
//! interface's MAC address. The kernel announces nothing when an address is added, so without
//! it clients keep sending to the old holder until their ARP entries expire.
//!
//! The packet is an ARP request with sender IP = target IP = the VIP (RFC 5227 "ARP
//! announcement"), which every stack accepts as an update of an existing entry; Linux
//! creates a new entry from it only with `arp_accept`.
//!
//! Raw sockets are blocking and need CAP_NET_RAW: `send_burst` runs on the blocking pool.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pnet_datalink::{Channel, DataLinkSender, MacAddr, NetworkInterface};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

use super::VipError;

/// Ethernet header (14) + ARP for IPv4 over Ethernet (28). Drivers pad it to 60 on the wire.
pub const FRAME_LEN: usize = 42;
const ETHERNET_HEADER_LEN: usize = 14;

/// The announcement frame for `ip` from `mac`, broadcast.
pub fn packet(mac: MacAddr, ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    // Both constructors return None only for a buffer shorter than their fixed header; the
    // sizes here are constants, so the fallbacks are unreachable rather than error paths.
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = MutableArpPacket::new(&mut frame[ETHERNET_HEADER_LEN..]) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(mac);
        arp.set_sender_proto_addr(ip);
        // RFC 5227: the target hardware address of an announcement is ignored; zero it.
        arp.set_target_hw_addr(MacAddr::zero());
        arp.set_target_proto_addr(ip);
    }
    frame
}

/// Send `count` announcements of `ip` on `interface`, `interval` apart. Blocking. Stops as
/// soon as `cancelled` is set: announcing a VIP this node no longer holds would pull its
/// traffic away from the node that now does.
pub fn send_burst(
    interface: &str,
    ip: Ipv4Addr,
    count: u32,
    interval: Duration,
    cancelled: &AtomicBool,
) -> Result<(), VipError> {
    if count == 0 {
        return Ok(());
    }
    let iface = find(interface)?;
    let mac = match iface.mac {
        Some(mac) if mac != MacAddr::zero() => mac,
        _ => {
            return Err(VipError::Garp {
                interface: interface.to_owned(),
                message: "the interface has no MAC address (not Ethernet): nothing to announce"
                    .into(),
            })
        }
    };
    let mut tx = open(&iface)?;
    let frame = packet(mac, ip);
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        if cancelled.load(Ordering::Acquire) {
            return Ok(());
        }
        match tx.send_to(&frame, None) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(garp_io(interface, e)),
            None => {
                return Err(VipError::Garp {
                    interface: interface.to_owned(),
                    message: "no room in the send buffer".into(),
                })
            }
        }
    }
    Ok(())
}

fn find(interface: &str) -> Result<NetworkInterface, VipError> {
    pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == interface)
        .ok_or_else(|| VipError::NoInterface(interface.to_owned()))
}

fn open(iface: &NetworkInterface) -> Result<Box<dyn DataLinkSender>, VipError> {
    let config = pnet_datalink::Config {
        // pnet's default turns promiscuous mode on for the whole interface; sending needs
        // none of that.
        promiscuous: false,
        write_timeout: Some(Duration::from_secs(1)),
        read_timeout: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    match pnet_datalink::channel(iface, config) {
        // The receiving half is dropped at once: only sending is wanted.
        Ok(Channel::Ethernet(tx, _rx)) => Ok(tx),
        Ok(_) => Err(VipError::Garp {
            interface: iface.name.clone(),
            message: "not an Ethernet channel".into(),
        }),
        Err(e) => Err(garp_io(&iface.name, e)),
    }
}

fn garp_io(interface: &str, e: io::Error) -> VipError {
    let message = if e.kind() == io::ErrorKind::PermissionDenied {
        format!("{e}: sending gratuitous ARP needs CAP_NET_RAW")
    } else {
        e.to_string()
    };
    VipError::Garp {
        interface: interface.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_bytes() {
        let mac = MacAddr::new(0x02, 0x42, 0xac, 0x11, 0x00, 0x02);
        let frame = packet(mac, Ipv4Addr::new(10, 0, 0, 100));
        let expected: [u8; FRAME_LEN] = [
            // Ethernet: broadcast destination, our source, type ARP.
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, //
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02, //
            0x08, 0x06, //
            // ARP: Ethernet, IPv4, lengths 6 and 4, request.
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
            // Sender MAC and IP.
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 10, 0, 0, 100, //
            // Target MAC (zero) and IP (the same VIP).
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 100,
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn zero_count_sends_nothing_and_needs_no_interface() {
        send_burst(
            "no-such-if0",
            Ipv4Addr::new(10, 0, 0, 1),
            0,
            Duration::ZERO,
            &AtomicBool::new(false),
        )
        .unwrap();
    }

    #[test]
    fn missing_interface_is_named() {
        let err = send_burst(
            "no-such-if0",
            Ipv4Addr::new(10, 0, 0, 1),
            1,
            Duration::ZERO,
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no-such-if0"), "{err}");
    }
}
