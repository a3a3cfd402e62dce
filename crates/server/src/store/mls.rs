//! The MLS directory: devices, their key packages, and welcomes waiting for their device
//! (migration `mls`, whose comments say why each column is there). Each encrypted room's
//! epoch lives on its room row and moves inside the message append (`messages.rs`).

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A device: one session's MLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The session that registered it: the only one that uploads its key packages.
    pub session_id: Uuid,
    pub name: String,
    /// The Ed25519 signature public key every key package of the device carries.
    pub signature_key: Vec<u8>,
    pub created_at_ms: i64,
}

/// The outcome of registering a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Stored.
    New,
    /// The session already has a live device (this one): revoke it first.
    SessionHasDevice(DeviceRow),
    /// The user has as many live devices as allowed.
    TooMany,
}

/// A key package to store, by its `KeyPackageRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyPackage {
    pub key_ref: Vec<u8>,
    /// The `MLSMessage` as uploaded.
    pub data: Vec<u8>,
    pub last_resort: bool,
}

/// What a device has left to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stock {
    pub available: u32,
    pub last_resort: bool,
}

/// One key package handed out by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRow {
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub data: Vec<u8>,
    pub last_resort: bool,
}

/// A claim: who asks, for whose devices, and how many one-time packages of one device
/// the claimer may take within `window_ms` before getting the last-resort one.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub claimer: Uuid,
    pub users: &'a [Uuid],
    pub share: u32,
    pub window_ms: i64,
    pub now_ms: i64,
}

/// A device named by a key package reference (of a welcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefOwner {
    pub key_ref: Vec<u8>,
    pub device_id: Uuid,
    pub user_id: Uuid,
}

/// A welcome for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeRow {
    pub id: Uuid,
    pub device_id: Uuid,
    pub room_id: Uuid,
    /// The seq of the commit that added the device.
    pub seq: i64,
    pub data: Vec<u8>,
    pub created_at_ms: i64,
}

/// The MLS directory. Every method is one transaction.
#[async_trait]
pub trait MlsStore: Send + Sync + 'static {
    /// Registers a device for its session, unless the session has a live one or the
    /// user already has `max_per_user` live devices.
    async fn register_device(
        &self,
        device: &DeviceRow,
        max_per_user: u32,
    ) -> StoreResult<Registered>;
    /// A live (not revoked) device.
    async fn device(&self, id: Uuid) -> StoreResult<Option<DeviceRow>>;
    /// A user's live devices, oldest first.
    async fn devices_of(&self, user: Uuid) -> StoreResult<Vec<DeviceRow>>;
    /// Revokes a live device of `user` and drops its packages and welcomes; false if
    /// there was none.
    async fn revoke_device(&self, user: Uuid, id: Uuid, now_ms: i64) -> StoreResult<bool>;
    /// Revokes the live device of each session (they ended); answers those revoked.
    async fn revoke_session_devices(
        &self,
        sessions: &[Uuid],
        now_ms: i64,
    ) -> StoreResult<Vec<DeviceRow>>;
    /// Stores key packages of a live device, keeping at most `max_stored` one-time ones
    /// (the oldest unclaimed go first); a last-resort package replaces the previous one.
    /// A reference already stored is left as it is.
    async fn add_key_packages(
        &self,
        device: Uuid,
        packages: &[NewKeyPackage],
        max_stored: u32,
        now_ms: i64,
    ) -> StoreResult<Stock>;
    async fn stock(&self, device: Uuid) -> StoreResult<Stock>;
    /// Hands out one package of every live device of each user: the oldest one-time
    /// package, unless the claimer has had their share of that device's within the
    /// window, or none is left; then the last-resort package. A device with neither is
    /// left out.
    async fn claim_key_packages(&self, claim: Claim<'_>) -> StoreResult<Vec<ClaimedRow>>;
    /// The live devices that key package references name (unknown ones are left out).
    async fn ref_owners(&self, refs: &[Vec<u8>]) -> StoreResult<Vec<RefOwner>>;
    /// Stores welcomes, keeping at most `max_per_device` waiting per device (the oldest
    /// go first).
    async fn add_welcomes(&self, welcomes: &[WelcomeRow], max_per_device: u32) -> StoreResult<()>;
    /// A device's waiting welcomes, oldest first.
    async fn welcomes(&self, device: Uuid) -> StoreResult<Vec<WelcomeRow>>;
    /// Drops a welcome the device has taken; false if it was not there.
    async fn take_welcome(&self, device: Uuid, id: Uuid) -> StoreResult<bool>;
}
