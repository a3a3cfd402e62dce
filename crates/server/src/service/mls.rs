//! End-to-end encrypted rooms: Palaver as MLS's delivery service (RFC 9420 §3).
//!
//! The server holds no key that decrypts anything. It keeps the device directory (each
//! device is one session's, with its signature key and key packages), hands out one key
//! package per device to whoever adds them, orders every MLS message by the room's seq
//! like any message, accepts a commit only in the group's current epoch (the store's
//! append checks and moves it, so two concurrent commits cannot both win), and passes a
//! welcome only to the devices it names.
//!
//! What it reads of an MLS message is its framing: the group (the room's id), the epoch,
//! and whether it is a commit, a proposal or an application message. Commits and
//! proposals come as `PublicMessage` (signed, not encrypted) so any member joining
//! later, and the server, can tell who changed the group; application messages only as
//! `PrivateMessage`. docs/PROTOCOL.md ("Encrypted rooms") lists what the server sees.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    Ciphersuite, ContentType, CredentialType, KeyPackage, MlsMessageBodyIn, MlsMessageIn,
    OpenMlsProvider as _, ProtocolMessage, ProtocolVersion,
};
use openmls_rust_crypto::OpenMlsRustCrypto;
use palaver_proto::{
    ClaimKeyPackagesRequest, ClaimedKeyPackage, ClaimedKeyPackages, Device, DeviceList,
    KeyPackageStock, MessageType, MlsContent, MlsKind, RegisterDeviceRequest, SendMessageRequest,
    ServerFrame, UploadKeyPackagesRequest, Welcome, WelcomeList, device_identity,
};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult, class_of, encode};
use crate::bus::{Audience, Delivery, Event};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::store::mls::{Claim, DeviceRow, NewKeyPackage, Registered, Stock, WelcomeRow};

/// The one ciphersuite (`palaver_proto::CIPHERSUITE`).
const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// Key packages one upload may carry.
const MAX_UPLOAD: usize = 100;
/// Users one claim may name.
const MAX_CLAIM_USERS: usize = 100;
/// How long a claimer's share of one device's packages is counted over.
const CLAIM_WINDOW_MS: i64 = 3600 * 1000;

/// Why a plain send to an encrypted room is refused.
pub(super) const SEND_MLS: &str =
    "this room is end-to-end encrypted: it takes MLS messages only (type mls)";

/// Why an edit, reaction, pin or forward by the server is refused in an encrypted room.
pub(super) const IN_MLS: &str = "this room is end-to-end encrypted: its members edit, react, \
     pin and forward inside their MLS messages";

/// A commit's welcome and the devices it is for, as (user, device).
#[derive(Debug, Clone)]
pub(super) struct WelcomeFor {
    bytes: Vec<u8>,
    targets: Vec<(Uuid, Uuid)>,
}

/// What the server read of an MLS message sent to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Framing {
    pub kind: MlsKind,
    pub epoch: u64,
}

/// The checks and the crypto provider the directory needs (hashing key package
/// references, verifying their signatures): no secret is ever held.
fn crypto() -> OpenMlsRustCrypto {
    OpenMlsRustCrypto::default()
}

/// Decodes base64 MLS bytes within the size bound.
fn decode(what: &str, b64: &str, max: usize) -> ServiceResult<Vec<u8>> {
    // Base64 is 4 characters per 3 bytes: refuse the oversized before decoding it.
    if b64.len() > max.div_ceil(3) * 4 {
        return Err(ServiceError::PayloadTooLarge(format!(
            "{what} is larger than {max} bytes"
        )));
    }
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| ServiceError::InvalidMls(format!("{what} is not base64")))?;
    if bytes.len() > max {
        return Err(ServiceError::PayloadTooLarge(format!(
            "{what} is larger than {max} bytes"
        )));
    }
    Ok(bytes)
}

fn parse(what: &str, bytes: &[u8]) -> ServiceResult<MlsMessageBodyIn> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|_| ServiceError::InvalidMls(format!("{what} is not an MLS message")))
}

/// Reads a room message's framing: a commit or proposal as a `PublicMessage`, an
/// application message as a `PrivateMessage`, for this room's group.
pub(super) fn framing(room: Uuid, bytes: &[u8]) -> ServiceResult<Framing> {
    let message: ProtocolMessage = match parse("mls", bytes)? {
        MlsMessageBodyIn::PublicMessage(m) => m.into(),
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        _ => {
            return Err(ServiceError::InvalidMls(
                "mls must be a PublicMessage or PrivateMessage; welcomes go in `welcome`".into(),
            ));
        }
    };
    if message.group_id().as_slice() != room.as_bytes() {
        return Err(ServiceError::InvalidMls(
            "the message is for another group (a room's group id is its id's 16 bytes)".into(),
        ));
    }
    let public = matches!(message, ProtocolMessage::PublicMessage(_));
    let kind = match (message.content_type(), public) {
        (ContentType::Application, false) => MlsKind::Application,
        (ContentType::Proposal, true) => MlsKind::Proposal,
        (ContentType::Commit, true) => MlsKind::Commit,
        (ContentType::Application, true) => {
            return Err(ServiceError::InvalidMls(
                "an application message must be encrypted (PrivateMessage)".into(),
            ));
        }
        (_, false) => {
            return Err(ServiceError::InvalidMls(
                "commits and proposals are sent as PublicMessage".into(),
            ));
        }
    };
    Ok(Framing {
        kind,
        epoch: message.epoch().as_u64(),
    })
}

/// The key package references a welcome is for (`EncryptedGroupSecrets.new_member`).
fn welcome_refs(bytes: &[u8]) -> ServiceResult<Vec<Vec<u8>>> {
    match parse("welcome", bytes)? {
        MlsMessageBodyIn::Welcome(w) if w.ciphersuite() == SUITE => Ok(w
            .secrets()
            .iter()
            .map(|s| s.new_member().as_slice().to_vec())
            .collect()),
        MlsMessageBodyIn::Welcome(_) => Err(ServiceError::InvalidMls(
            "the welcome is not of Palaver's ciphersuite".into(),
        )),
        _ => Err(ServiceError::InvalidMls(
            "welcome must hold a Welcome".into(),
        )),
    }
}

/// Checks an uploaded key package: a valid signature, Palaver's ciphersuite, a basic
/// credential naming this device, and the device's signature key. Answers its reference.
fn check_key_package(device: &DeviceRow, bytes: &[u8]) -> ServiceResult<Vec<u8>> {
    let MlsMessageBodyIn::KeyPackage(package) = parse("key package", bytes)? else {
        return Err(ServiceError::InvalidMls("not a KeyPackage".into()));
    };
    let provider = crypto();
    let package: KeyPackage = package
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(|e| ServiceError::InvalidMls(format!("key package refused: {e}")))?;
    // `validate` checks that now is inside the lifetime, not that the lifetime is a
    // sane span: a package valid "forever" would never need replacing.
    if !package.life_time().has_acceptable_range() {
        return Err(ServiceError::InvalidMls(
            "the key package's lifetime is longer than MLS allows (about 12 weeks)".into(),
        ));
    }
    if package.ciphersuite() != SUITE {
        return Err(ServiceError::InvalidMls(
            "key packages use MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519".into(),
        ));
    }
    let leaf = package.leaf_node();
    let credential = leaf.credential();
    let identity = device_identity(device.user_id, device.id);
    if credential.credential_type() != CredentialType::Basic
        || credential.serialized_content() != identity.as_bytes()
    {
        return Err(ServiceError::InvalidMls(format!(
            "the credential must be a basic credential of identity {identity:?}"
        )));
    }
    if leaf.signature_key().as_slice() != device.signature_key.as_slice() {
        return Err(ServiceError::InvalidMls(
            "the key package is not signed with the device's signature key".into(),
        ));
    }
    let key_ref = package
        .hash_ref(provider.crypto())
        .map_err(|e| ServiceError::Internal(format!("key package reference: {e}")))?;
    Ok(key_ref.as_slice().to_vec())
}

fn device_view(d: DeviceRow) -> Device {
    Device {
        id: d.id,
        user_id: d.user_id,
        name: d.name,
        signature_key: BASE64.encode(&d.signature_key),
        created_at: to_time(d.created_at_ms),
    }
}

fn stock_view(s: Stock) -> KeyPackageStock {
    KeyPackageStock {
        available: s.available,
        last_resort: s.last_resort,
    }
}

fn welcome_view(w: WelcomeRow) -> Welcome {
    Welcome {
        id: w.id,
        room_id: w.room_id,
        device_id: w.device_id,
        seq: w.seq,
        data: BASE64.encode(&w.data),
        created_at: to_time(w.created_at_ms),
    }
}

impl Core {
    /// The room is end-to-end encrypted. A room's encryption is set when it is made and
    /// never changes, so the answer is remembered (a byte per room this node has seen).
    pub(super) async fn is_encrypted(&self, room: Uuid) -> ServiceResult<bool> {
        if let Some(known) = self.encrypted_rooms.get(&room) {
            return Ok(*known);
        }
        let row = self
            .store
            .room(room)
            .await?
            .ok_or(ServiceError::RoomNotFound)?;
        let encrypted = row.mls_epoch.is_some();
        self.encrypted_rooms.insert(room, encrypted);
        Ok(encrypted)
    }

    /// Refuses what needs a room's plaintext (edits, reactions, pins, forwards) in an
    /// encrypted room: there, members do these inside their MLS messages.
    pub(super) async fn require_plain(&self, room: Uuid, what: &'static str) -> ServiceResult<()> {
        if self.is_encrypted(room).await? {
            return Err(ServiceError::EncryptedRoom(what));
        }
        Ok(())
    }

    /// Reads an MLS send's bytes and framing, for the room it is sent to.
    fn mls_content(&self, room: Uuid, data: &str) -> ServiceResult<MlsContent> {
        let bytes = decode("mls", data, self.config.mls.max_message_bytes)?;
        let framing = framing(room, &bytes)?;
        Ok(MlsContent {
            kind: framing.kind,
            epoch: framing.epoch,
            data: data.to_owned(),
        })
    }

    /// The MLS part of a send, checked against the room's encryption: an encrypted room
    /// takes only MLS messages (everything inside `mls`, no text, quote or thread), a
    /// plain room none; a welcome only with a commit.
    pub(super) async fn mls_send(
        &self,
        req: &SendMessageRequest,
        content: &str,
    ) -> ServiceResult<(Option<MlsContent>, Option<WelcomeFor>)> {
        let room = req.room_id;
        let encrypted = self.is_encrypted(room).await?;
        let mls = match (req.kind, encrypted) {
            (MessageType::Mls, false) => return Err(ServiceError::NotEncrypted),
            (_, true) if req.kind != MessageType::Mls => {
                return Err(ServiceError::EncryptedRoom(SEND_MLS));
            }
            (MessageType::Mls, true) => {
                if !content.is_empty() || req.reply_to_id.is_some() || req.thread_root_id.is_some()
                {
                    return Err(ServiceError::Validation(
                        "an MLS message carries its text, quote and thread inside `mls`".into(),
                    ));
                }
                let data = req.mls.as_deref().ok_or_else(|| {
                    ServiceError::Validation("a message of type mls needs `mls`".into())
                })?;
                self.mls_content(room, data)?
            }
            _ => {
                if req.mls.is_some() || req.welcome.is_some() {
                    return Err(ServiceError::Validation(
                        "mls and welcome go with type mls".into(),
                    ));
                }
                return Ok((None, None));
            }
        };
        let welcome = match &req.welcome {
            Some(w) if mls.kind == MlsKind::Commit => Some(self.welcome_for(room, w).await?),
            Some(_) => {
                return Err(ServiceError::Validation(
                    "a welcome goes with the commit that adds its devices".into(),
                ));
            }
            None => None,
        };
        Ok((Some(mls), welcome))
    }

    /// The devices a commit's welcome is for: live devices of members of the room that
    /// the welcome names by key package reference (others are left out: a device revoked
    /// since its package was claimed gets nothing).
    async fn welcome_for(&self, room: Uuid, welcome: &str) -> ServiceResult<WelcomeFor> {
        let bytes = decode("welcome", welcome, self.config.mls.max_message_bytes)?;
        let refs = welcome_refs(&bytes)?;
        let owners = self.store.ref_owners(&refs).await?;
        let targets = owners
            .into_iter()
            .filter(|o| self.membership.is_member(room, o.user_id))
            .map(|o| (o.user_id, o.device_id))
            .collect();
        Ok(WelcomeFor { bytes, targets })
    }

    /// Stores a stored commit's welcome for its devices and tells their users' sockets.
    pub(super) async fn deliver_welcome(
        &self,
        room: Uuid,
        seq: i64,
        welcome: WelcomeFor,
    ) -> ServiceResult<()> {
        let WelcomeFor { bytes, targets } = welcome;
        if targets.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let rows: Vec<WelcomeRow> = targets
            .iter()
            .map(|(_, device)| WelcomeRow {
                id: Uuid::now_v7(),
                device_id: *device,
                room_id: room,
                seq,
                data: bytes.clone(),
                created_at_ms: now,
            })
            .collect();
        self.store
            .add_welcomes(&rows, self.config.mls.max_welcomes_per_device)
            .await?;
        for ((user, _), row) in targets.iter().zip(rows) {
            let frame = ServerFrame::MlsWelcome {
                welcome: welcome_view(row),
            };
            let delivery = Delivery {
                audience: Audience::Users(vec![*user]),
                frame: encode(&frame),
                room_seq: None,
                exclude_conn: None,
                class: class_of(&frame),
            };
            if let Err(err) = self.bus.publish(Event::Deliver(delivery)).await {
                // Stored is what counts: the device lists its welcomes when it connects.
                tracing::warn!(%err, "could not announce a welcome");
            }
        }
        Ok(())
    }

    /// Makes the calling session a device.
    pub async fn register_device(
        &self,
        who: Identity,
        req: RegisterDeviceRequest,
    ) -> ServiceResult<Device> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let name = crate::domain::device_name(&req.name)?;
        let key = BASE64.decode(&req.signature_key).unwrap_or_default();
        if key.len() != 32 {
            return Err(ServiceError::Validation(
                "signatureKey is an Ed25519 public key: 32 bytes, base64".into(),
            ));
        }
        let device = DeviceRow {
            id: Uuid::now_v7(),
            user_id: who.user_id,
            session_id: who.session_id,
            name,
            signature_key: key,
            created_at_ms: now_ms(),
        };
        match self
            .store
            .register_device(&device, self.config.mls.max_devices_per_user)
            .await?
        {
            Registered::New => {}
            Registered::SessionHasDevice(_) => {
                return Err(ServiceError::Conflict(
                    "this session already has a device; revoke it first",
                ));
            }
            Registered::TooMany => {
                return Err(ServiceError::LimitReached(
                    "the account has as many devices as allowed; revoke one first",
                ));
            }
        }
        self.audit(
            Some(who.user_id),
            "mls.device.register",
            Some(device.id.to_string()),
            None,
        )
        .await;
        Ok(device_view(device))
    }

    /// A user's live devices: anyone who may see the user (neither blocked the other).
    pub async fn devices(&self, who: Identity, user: Uuid) -> ServiceResult<DeviceList> {
        if user != who.user_id
            && (self.membership.blocked_either(who.user_id, user)
                || self.store.user(user).await?.is_none())
        {
            return Err(ServiceError::UserNotFound);
        }
        let devices = self.store.devices_of(user).await?;
        Ok(DeviceList {
            devices: devices.into_iter().map(device_view).collect(),
        })
    }

    /// A live device of the caller's own.
    async fn own_device(&self, who: Identity, device: Uuid) -> ServiceResult<DeviceRow> {
        match self.store.device(device).await? {
            Some(d) if d.user_id == who.user_id => Ok(d),
            _ => Err(ServiceError::DeviceNotFound),
        }
    }

    /// The caller's own device, from the session it belongs to.
    async fn session_device(&self, who: Identity, device: Uuid) -> ServiceResult<DeviceRow> {
        let d = self.own_device(who, device).await?;
        if d.session_id != who.session_id {
            return Err(ServiceError::Forbidden(
                "only the device's own session may do this",
            ));
        }
        Ok(d)
    }

    /// Revokes one of the caller's devices (from any of their sessions): its packages
    /// and waiting welcomes go at once.
    pub async fn revoke_device(&self, who: Identity, device: Uuid) -> ServiceResult<()> {
        self.own_device(who, device).await?;
        if !self
            .store
            .revoke_device(who.user_id, device, now_ms())
            .await?
        {
            return Err(ServiceError::DeviceNotFound);
        }
        self.audit(
            Some(who.user_id),
            "mls.device.revoke",
            Some(device.to_string()),
            None,
        )
        .await;
        Ok(())
    }

    /// Stores key packages of the caller's session's device, each checked.
    pub async fn upload_key_packages(
        &self,
        who: Identity,
        device: Uuid,
        req: UploadKeyPackagesRequest,
    ) -> ServiceResult<KeyPackageStock> {
        let d = self.session_device(who, device).await?;
        if req.key_packages.len() > MAX_UPLOAD {
            return Err(ServiceError::PayloadTooLarge(format!(
                "at most {MAX_UPLOAD} key packages per upload"
            )));
        }
        if req.key_packages.is_empty() && req.last_resort.is_none() {
            return Err(ServiceError::Validation(
                "keyPackages or lastResort is required".into(),
            ));
        }
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let max = self.config.mls.max_message_bytes;
        let mut packages = Vec::with_capacity(req.key_packages.len() + 1);
        let all = req.key_packages.iter().map(|p| (p, false));
        for (b64, last_resort) in all.chain(req.last_resort.iter().map(|p| (p, true))) {
            let data = decode("key package", b64, max)?;
            let key_ref = check_key_package(&d, &data)?;
            packages.push(NewKeyPackage {
                key_ref,
                data,
                last_resort,
            });
        }
        let stock = self
            .store
            .add_key_packages(
                device,
                &packages,
                self.config.mls.max_key_packages,
                now_ms(),
            )
            .await?;
        Ok(stock_view(stock))
    }

    /// What the caller's device has left to hand out.
    pub async fn key_package_stock(
        &self,
        who: Identity,
        device: Uuid,
    ) -> ServiceResult<KeyPackageStock> {
        self.own_device(who, device).await?;
        Ok(stock_view(self.store.stock(device).await?))
    }

    /// One key package of every live device of each user, to add them to a group.
    pub async fn claim_key_packages(
        &self,
        who: Identity,
        req: ClaimKeyPackagesRequest,
    ) -> ServiceResult<ClaimedKeyPackages> {
        if req.user_ids.is_empty() || req.user_ids.len() > MAX_CLAIM_USERS {
            return Err(ServiceError::Validation(format!(
                "userIds names 1–{MAX_CLAIM_USERS} users"
            )));
        }
        for user in &req.user_ids {
            if *user != who.user_id && self.membership.blocked_either(who.user_id, *user) {
                return Err(ServiceError::UserNotFound);
            }
        }
        self.check_users_exist(&req.user_ids).await?;
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let claimed = self
            .store
            .claim_key_packages(Claim {
                claimer: who.user_id,
                users: &req.user_ids,
                share: self.config.mls.claim_share_per_hour,
                window_ms: CLAIM_WINDOW_MS,
                now_ms: now_ms(),
            })
            .await?;
        Ok(ClaimedKeyPackages {
            key_packages: claimed
                .into_iter()
                .map(|c| ClaimedKeyPackage {
                    user_id: c.user_id,
                    device_id: c.device_id,
                    key_package: BASE64.encode(&c.data),
                    last_resort: c.last_resort,
                })
                .collect(),
        })
    }

    /// The welcomes waiting for the caller's session's device.
    pub async fn welcomes(&self, who: Identity, device: Uuid) -> ServiceResult<WelcomeList> {
        self.session_device(who, device).await?;
        let rows = self.store.welcomes(device).await?;
        Ok(WelcomeList {
            welcomes: rows.into_iter().map(welcome_view).collect(),
        })
    }

    /// The device has taken a welcome (joined, or given up on it).
    pub async fn take_welcome(&self, who: Identity, device: Uuid, id: Uuid) -> ServiceResult<()> {
        self.session_device(who, device).await?;
        if !self.store.take_welcome(device, id).await? {
            return Err(ServiceError::WelcomeNotFound);
        }
        Ok(())
    }

    /// Revokes the devices of sessions that ended (logout, revocation, deletion).
    pub(super) async fn sessions_ended(&self, sessions: &[Uuid]) -> ServiceResult<()> {
        for d in self
            .store
            .revoke_session_devices(sessions, now_ms())
            .await?
        {
            self.audit(
                Some(d.user_id),
                "mls.device.revoke",
                Some(d.id.to_string()),
                Some("session ended".into()),
            )
            .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_clear_error() {
        let room = Uuid::now_v7();
        for bytes in [&b""[..], b"\x00\x01", &[0xff; 64]] {
            let err = framing(room, bytes).expect_err("garbage");
            assert!(matches!(err, ServiceError::InvalidMls(_)), "{err:?}");
        }
        assert!(matches!(
            welcome_refs(b"\x00\x01\x00\x03"),
            Err(ServiceError::InvalidMls(_))
        ));
    }

    #[test]
    fn oversized_base64_is_refused_before_decoding() {
        let big = "A".repeat(200);
        assert!(matches!(
            decode("mls", &big, 100),
            Err(ServiceError::PayloadTooLarge(_))
        ));
        assert!(matches!(
            decode("mls", "not base64!", 100),
            Err(ServiceError::InvalidMls(_))
        ));
        assert_eq!(decode("mls", "AAEC", 100).expect("decodes"), vec![0, 1, 2]);
    }
}
