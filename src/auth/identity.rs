//! The identity a TLS client certificate gives, for `auth.use_identity_as_username`
//! (Mosquitto's `use_identity_as_username`): the subject's Common Name, or when the
//! subject has none, the first Subject Alternative Name (DNS name, e-mail address, URI or IP
//! address).

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How a connection arrived, as far as authentication cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS; `identity` is the verified client certificate's name, `None` when the client
    /// sent no certificate (or one without a usable name).
    Tls { identity: Option<String> },
}

/// The identity of a DER certificate (already verified by rustls against the client CA).
pub fn from_der(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    if let Some(cn) = subject
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
    {
        return Some(cn.to_owned());
    }
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
            Some((*s).to_owned())
        }
        GeneralName::IPAddress(bytes) => ip_text(bytes),
        _ => None,
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}
