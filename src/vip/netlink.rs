//! Adding and removing the VIP on its interface over rtnetlink (`ip addr add/del`).
//! Both are idempotent: adding an address that is there and removing one that is not (or
//! whose interface is gone) succeed, so the caller can simply re-apply what it wants.

use std::io;

use futures_util::TryStreamExt;
use rtnetlink::{AddressMessageBuilder, Handle};

use super::VipError;
use crate::config::VipAddress;

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

pub struct Netlink {
    interface: String,
    address: VipAddress,
    /// Opened on first use and reopened after a failure, so a broken socket heals itself.
    handle: Option<Handle>,
}

impl Netlink {
    pub fn new(interface: String, address: VipAddress) -> Netlink {
        Netlink {
            interface,
            address,
            handle: None,
        }
    }

    pub async fn add(&mut self) -> Result<(), VipError> {
        let result = self.try_add().await;
        if result.is_err() {
            self.handle = None;
        }
        result
    }

    /// `Ok(true)` when the address was there and is now gone, `Ok(false)` when it was absent.
    pub async fn remove(&mut self) -> Result<bool, VipError> {
        let result = self.try_remove().await;
        if result.is_err() {
            self.handle = None;
        }
        result
    }

    async fn try_add(&mut self) -> Result<(), VipError> {
        let handle = self.handle()?;
        let index = self
            .link_index(&handle)
            .await?
            .ok_or_else(|| VipError::NoInterface(self.interface.clone()))?;
        let a = self.address;
        match handle
            .address()
            .add(index, a.ip.into(), a.prefix_len)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(self.error("add", e)),
        }
    }

    async fn try_remove(&mut self) -> Result<bool, VipError> {
        let handle = self.handle()?;
        // No interface, no address on it.
        let Some(index) = self.link_index(&handle).await? else {
            return Ok(false);
        };
        // Looking needs no privilege, deleting does: a node without CAP_NET_ADMIN that never
        // held the VIP (a follower at start-up) should not report an error for nothing.
        if !self.present(&handle, index).await? {
            return Ok(false);
        }
        let a = self.address;
        let message = AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a.ip, a.prefix_len)
            .build();
        match handle.address().del(message).execute().await {
            Ok(()) => Ok(true),
            // Gone between the look and the delete.
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENODEV)) => Ok(false),
            Err(e) => Err(self.error("remove", e)),
        }
    }

    fn handle(&mut self) -> Result<Handle, VipError> {
        if let Some(h) = &self.handle {
            return Ok(h.clone());
        }
        let (connection, handle, _) = rtnetlink::new_connection().map_err(VipError::Socket)?;
        // The connection task ends when every handle is dropped.
        tokio::spawn(connection);
        self.handle = Some(handle.clone());
        Ok(handle)
    }

    async fn link_index(&self, handle: &Handle) -> Result<Option<u32>, VipError> {
        let mut links = handle
            .link()
            .get()
            .match_name(self.interface.clone())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(self.error("look up", e)),
        }
    }

    async fn present(&self, handle: &Handle, index: u32) -> Result<bool, VipError> {
        let mut found = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(self.address.ip.into())
            .set_prefix_length_filter(self.address.prefix_len)
            .execute();
        match found.try_next().await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(self.error("look for", e)),
        }
    }

    fn error(&self, op: &'static str, e: rtnetlink::Error) -> VipError {
        let detail = match &e {
            rtnetlink::Error::NetlinkError(m) => {
                let io = m.to_io();
                if io.kind() == io::ErrorKind::PermissionDenied {
                    format!("{io}: managing addresses needs CAP_NET_ADMIN (or use vip.mode = \"hooks\")")
                } else {
                    io.to_string()
                }
            }
            other => other.to_string(),
        };
        VipError::Netlink {
            op,
            address: self.address.to_string(),
            interface: self.interface.clone(),
            detail,
        }
    }
}

/// The positive errno of a netlink error reply, if that is what `e` is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}
