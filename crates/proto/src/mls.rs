//! End-to-end encrypted rooms (MLS, RFC 9420): the device directory, what an encrypted
//! message carries, and welcomes.
//!
//! The server is MLS's delivery service. It never sees content: every MLS structure
//! crosses the wire as the standard, padded base64 of its TLS encoding (an `MLSMessage`,
//! RFC 9420 §6), and the server reads only what it must route and order (group, epoch,
//! whether a message is a commit, a proposal or an application message).
//!
//! Every device (a browser profile, a terminal client) is one leaf of each group it is in.
//! Its MLS credential is a basic credential whose identity is the UTF-8 text
//! `"<userId>:<deviceId>"` (`device_identity`), and its signature key is the one it
//! registered: so a member can tell from a leaf which account and device it is.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The one ciphersuite Palaver's groups use:
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (RFC 9420 §17.1, value 1).
pub const CIPHERSUITE: u16 = 1;

/// The identity in a device's MLS credential.
pub fn device_identity(user_id: Uuid, device_id: Uuid) -> String {
    format!("{user_id}:{device_id}")
}

/// Reads a credential identity back into (user, device); `None` for anything else.
pub fn parse_device_identity(identity: &[u8]) -> Option<(Uuid, Uuid)> {
    let text = std::str::from_utf8(identity).ok()?;
    let (user, device) = text.split_once(':')?;
    Some((Uuid::parse_str(user).ok()?, Uuid::parse_str(device).ok()?))
}

/// `POST /api/v1/mls/devices`: the calling session becomes a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceRequest {
    /// What the owner calls it ("Firefox on the laptop"): 1–64 visible characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::device_name))]
    pub name: String,
    /// The device's Ed25519 signature public key (32 bytes, base64). Every key package
    /// it uploads must carry this key.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")
    )]
    pub signature_key: String,
}

/// A device in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The Ed25519 signature public key (base64): what safety numbers are made of.
    pub signature_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/users/{userId}/devices`: a user's devices that are not revoked, oldest
/// first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// `POST /api/v1/mls/devices/{deviceId}/key-packages`: only the session that registered
/// the device may upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadKeyPackagesRequest {
    /// One-time key packages (each an `MLSMessage` holding a `KeyPackage`, base64), each
    /// handed out once.
    #[serde(default)]
    pub key_packages: Vec<String>,
    /// A key package handed out when the one-time ones run out, again and again; a new
    /// one replaces the old.
    #[serde(default)]
    pub last_resort: Option<String>,
}

/// What a device has left to hand out: the answer to an upload, and
/// `GET /api/v1/mls/devices/{deviceId}/key-packages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyPackageStock {
    /// One-time key packages not yet claimed.
    pub available: u32,
    /// Whether a last-resort key package is stored.
    pub last_resort: bool,
}

/// `POST /api/v1/mls/key-packages/claim`: one key package of every device of each user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClaimKeyPackagesRequest {
    /// 1–100 users.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub user_ids: Vec<Uuid>,
}

/// One claimed key package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClaimedKeyPackage {
    pub user_id: Uuid,
    pub device_id: Uuid,
    /// An `MLSMessage` holding a `KeyPackage` (base64).
    pub key_package: String,
    /// The device's last-resort package: it had no one-time package left for the caller.
    pub last_resort: bool,
}

/// The answer to a claim. A device with no package at all is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClaimedKeyPackages {
    pub key_packages: Vec<ClaimedKeyPackage>,
}

/// What an MLS message in a room is (the server reads it from the message's framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MlsKind {
    /// Encrypted content (`PrivateMessage`): text, an edit, a reaction, a file's key.
    Application,
    /// A proposal (`PublicMessage`), from a member or from the server.
    Proposal,
    /// A commit (`PublicMessage`): the group's next epoch.
    Commit,
}

impl MlsKind {
    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            MlsKind::Application => "application",
            MlsKind::Proposal => "proposal",
            MlsKind::Commit => "commit",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<MlsKind> {
        match s {
            "application" => Some(MlsKind::Application),
            "proposal" => Some(MlsKind::Proposal),
            "commit" => Some(MlsKind::Commit),
            _ => None,
        }
    }
}

/// The MLS part of a message of type `mls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MlsContent {
    pub kind: MlsKind,
    /// The epoch the message was made in. A commit moves the group from this epoch to the
    /// next.
    pub epoch: u64,
    /// The `MLSMessage` (base64).
    pub data: String,
}

/// A welcome into an encrypted room, for one device: kept until that device takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub id: Uuid,
    pub room_id: Uuid,
    pub device_id: Uuid,
    /// The seq of the commit that added the device: its messages start after it.
    pub seq: i64,
    /// An `MLSMessage` holding a `Welcome` (base64).
    pub data: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/mls/devices/{deviceId}/welcomes`: the device's welcomes, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WelcomeList {
    pub welcomes: Vec<Welcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_identity_reads_back() {
        let (user, device) = (Uuid::now_v7(), Uuid::now_v7());
        let identity = device_identity(user, device);
        assert_eq!(
            parse_device_identity(identity.as_bytes()),
            Some((user, device))
        );
        assert_eq!(parse_device_identity(b"server"), None);
        assert_eq!(parse_device_identity(&[0xff, 0x3a]), None);
    }
}
