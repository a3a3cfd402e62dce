//! An MLS member of Palaver's encrypted rooms, on openmls: one device's signature key,
//! its key packages, and its groups (one per encrypted room, the group id being the room
//! id's 16 bytes). The terminal client and the tests use it; the browser has its own
//! (ts-mls) speaking the same bytes.
//!
//! The rules it follows are the server's (docs/PROTOCOL.md, "Encrypted rooms"): handshake
//! messages as `PublicMessage` and application messages as `PrivateMessage`
//! (`MIXED_PLAINTEXT_WIRE_FORMAT_POLICY`), the ratchet tree inside welcomes, one
//! ciphersuite. A commit is made pending, sent, and merged only once the server stored
//! it; refused for its epoch (`wrong_epoch`), it is cleared, the room's newer messages
//! are processed, and the caller makes it again.
//!
//! State lives in memory for now: a device that restarts registers again.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use palaver_proto::{
    ClaimedKeyPackage, Message, MessageType, MlsKind, SendMessageRequest, device_identity,
    parse_device_identity,
};
use uuid::Uuid;

use crate::{Client, ClientError};

/// The one ciphersuite (`palaver_proto::CIPHERSUITE`).
pub const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// What can go wrong in MLS.
#[derive(Debug, thiserror::Error)]
pub enum E2eeError {
    /// openmls refused or failed (the text is its error).
    #[error("mls: {0}")]
    Mls(String),
    /// Bytes that are not what was expected.
    #[error("malformed: {0}")]
    Malformed(String),
    /// No group for the room here.
    #[error("not in the encrypted room {0}")]
    NoGroup(Uuid),
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn mls(err: impl std::fmt::Display) -> E2eeError {
    E2eeError::Mls(err.to_string())
}

/// Result alias.
pub type E2eeResult<T> = Result<T, E2eeError>;

/// What processing one message of an encrypted room gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Decrypted content, and the device that sent it, as (user, device).
    Application {
        plaintext: Vec<u8>,
        sender: (Uuid, Uuid),
    },
    /// A proposal, kept for the next commit.
    Proposal,
    /// A commit, merged: the group is at `epoch` now. `removed` when it removed this
    /// device: the room can no longer be read.
    Commit { epoch: u64, removed: bool },
    /// This device's own message (or one from before it joined): nothing to do.
    Skipped,
}

/// The configuration every group of Palaver's is made and joined with.
fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

fn decode(b64: &str) -> E2eeResult<MlsMessageBodyIn> {
    let bytes = BASE64
        .decode(b64)
        .map_err(|e| E2eeError::Malformed(format!("base64: {e}")))?;
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| E2eeError::Malformed(format!("MLSMessage: {e}")))
}

fn encode(message: &MlsMessageOut) -> E2eeResult<String> {
    Ok(BASE64.encode(message.tls_serialize_detached().map_err(mls)?))
}

/// One encrypted room's group, and where this device is in the room's messages.
struct Room {
    group: MlsGroup,
    /// The seq of the last message processed (or of the commit that added this device).
    seq: i64,
}

/// One device of one account: its keys and its groups.
pub struct MlsDevice {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    pub user_id: Uuid,
    pub device_id: Uuid,
    rooms: HashMap<Uuid, Room>,
    /// Ids of messages this device sent: skipped when they come back.
    own: HashSet<Uuid>,
}

impl MlsDevice {
    /// Makes a signature key, registers the caller's session as a device with it, and
    /// uploads `packages` one-time key packages and a last-resort one.
    pub async fn register(client: &Client, name: &str, packages: usize) -> E2eeResult<MlsDevice> {
        let me = client.me().await?;
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).map_err(mls)?;
        signer.store(provider.storage()).map_err(mls)?;
        let device = client
            .register_device(name, &BASE64.encode(signer.to_public_vec()))
            .await?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(device_identity(me.id, device.id).into_bytes()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        let this = MlsDevice {
            provider,
            signer,
            credential,
            user_id: me.id,
            device_id: device.id,
            rooms: HashMap::new(),
            own: HashSet::new(),
        };
        let one_time = (0..packages)
            .map(|_| this.key_package(false))
            .collect::<E2eeResult<Vec<_>>>()?;
        let last_resort = this.key_package(true)?;
        client
            .upload_key_packages(this.device_id, one_time, Some(last_resort))
            .await?;
        Ok(this)
    }

    /// A copy of this device's whole state, as someone who copied its storage would have
    /// it: what tests of forward and post-compromise security start from.
    pub fn snapshot(&self) -> E2eeResult<MlsDevice> {
        let provider = OpenMlsRustCrypto::default();
        let values = self
            .provider
            .storage()
            .values
            .read()
            .map_err(|_| E2eeError::Mls("storage lock poisoned".into()))?
            .clone();
        *provider
            .storage()
            .values
            .write()
            .map_err(|_| E2eeError::Mls("storage lock poisoned".into()))? = values;
        let signer = SignatureKeyPair::read(
            provider.storage(),
            &self.signer.to_public_vec(),
            SUITE.signature_algorithm(),
        )
        .ok_or_else(|| E2eeError::Mls("the signature key is not in storage".into()))?;
        let mut rooms = HashMap::new();
        for (id, room) in &self.rooms {
            let group = MlsGroup::load(provider.storage(), room.group.group_id())
                .map_err(mls)?
                .ok_or(E2eeError::NoGroup(*id))?;
            rooms.insert(
                *id,
                Room {
                    group,
                    seq: room.seq,
                },
            );
        }
        Ok(MlsDevice {
            provider,
            signer,
            credential: self.credential.clone(),
            user_id: self.user_id,
            device_id: self.device_id,
            rooms,
            own: self.own.clone(),
        })
    }

    /// A new key package (an `MLSMessage`, base64); its private keys stay here.
    pub fn key_package(&self, last_resort: bool) -> E2eeResult<String> {
        // Every package says it knows the last-resort extension, so a last-resort one is
        // valid and all of the device's leaves look alike.
        let capabilities =
            Capabilities::new(None, None, Some(&[ExtensionType::LastResort]), None, None);
        let mut builder = KeyPackage::builder().leaf_node_capabilities(capabilities);
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .map_err(mls)?;
        encode(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// Starts the group of an encrypted room this device made (its epoch 0, with only
    /// this device in it).
    pub fn create_group(&mut self, room: Uuid) -> E2eeResult<()> {
        let group = MlsGroup::builder()
            .with_group_id(GroupId::from_slice(room.as_bytes()))
            .ciphersuite(SUITE)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build(&self.provider, &self.signer, self.credential.clone())
            .map_err(mls)?;
        self.rooms.insert(room, Room { group, seq: 0 });
        Ok(())
    }

    /// The room's group, with what its operations take beside it.
    fn group(
        &mut self,
        room: Uuid,
    ) -> E2eeResult<(&OpenMlsRustCrypto, &SignatureKeyPair, &mut MlsGroup)> {
        let group = &mut self
            .rooms
            .get_mut(&room)
            .ok_or(E2eeError::NoGroup(room))?
            .group;
        Ok((&self.provider, &self.signer, group))
    }

    fn room(&mut self, room: Uuid) -> E2eeResult<&mut Room> {
        self.rooms.get_mut(&room).ok_or(E2eeError::NoGroup(room))
    }

    /// The group's epoch.
    pub fn epoch(&self, room: Uuid) -> Option<u64> {
        self.rooms.get(&room).map(|r| r.group.epoch().as_u64())
    }

    /// The devices in the group, as (user, device), by leaf.
    pub fn members(&self, room: Uuid) -> Vec<(Uuid, Uuid)> {
        self.rooms
            .get(&room)
            .map(|r| {
                r.group
                    .members()
                    .filter_map(|m| parse_device_identity(m.credential.serialized_content()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A pending commit adding the claimed devices: (commit, welcome), to send together.
    pub fn add(
        &mut self,
        room: Uuid,
        claimed: &[ClaimedKeyPackage],
    ) -> E2eeResult<(String, String)> {
        let mut packages = Vec::with_capacity(claimed.len());
        for c in claimed {
            let MlsMessageBodyIn::KeyPackage(package) = decode(&c.key_package)? else {
                return Err(E2eeError::Malformed("not a key package".into()));
            };
            let package = package
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(mls)?;
            // The directory vouches for the device; the package must say the same.
            if parse_device_identity(package.leaf_node().credential().serialized_content())
                != Some((c.user_id, c.device_id))
            {
                return Err(E2eeError::Malformed(format!(
                    "the key package of device {} names another",
                    c.device_id
                )));
            }
            packages.push(package);
        }
        let (provider, signer, group) = self.group(room)?;
        let (commit, welcome, _) = group
            .add_members(provider, signer, &packages)
            .map_err(mls)?;
        Ok((encode(&commit)?, encode(&welcome)?))
    }

    /// A pending commit removing these devices (those not in the group are left out).
    pub fn remove(&mut self, room: Uuid, devices: &[(Uuid, Uuid)]) -> E2eeResult<String> {
        let (provider, signer, group) = self.group(room)?;
        let leaves: Vec<LeafNodeIndex> = group
            .members()
            .filter(|m| {
                parse_device_identity(m.credential.serialized_content())
                    .is_some_and(|d| devices.contains(&d))
            })
            .map(|m| m.index)
            .collect();
        let (commit, _, _) = group
            .remove_members(provider, signer, &leaves)
            .map_err(mls)?;
        encode(&commit)
    }

    /// A pending commit that renews this device's keys (post-compromise security).
    pub fn update(&mut self, room: Uuid) -> E2eeResult<String> {
        let (provider, signer, group) = self.group(room)?;
        let bundle = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .map_err(mls)?;
        encode(bundle.commit())
    }

    /// The server stored this device's message: a pending commit takes effect, and the
    /// message is skipped when it comes back.
    pub fn sent(&mut self, message: &Message) -> E2eeResult<()> {
        self.own.insert(message.id);
        let provider = &self.provider;
        let room = self
            .rooms
            .get_mut(&message.room_id)
            .ok_or(E2eeError::NoGroup(message.room_id))?;
        if message
            .mls
            .as_ref()
            .is_some_and(|m| m.kind == MlsKind::Commit)
        {
            room.group.merge_pending_commit(provider).map_err(mls)?;
        }
        // Its own messages move it on only if nothing came between.
        if message.seq == room.seq + 1 {
            room.seq = message.seq;
        }
        Ok(())
    }

    /// The server refused this device's commit: it is dropped, the group is as it was.
    pub fn discard_pending(&mut self, room: Uuid) -> E2eeResult<()> {
        let storage = self.provider.storage();
        let room = self.rooms.get_mut(&room).ok_or(E2eeError::NoGroup(room))?;
        room.group.clear_pending_commit(storage).map_err(mls)
    }

    /// Joins a room from a welcome (`Welcome.data`); its messages after `seq` are for
    /// this device.
    pub fn join(&mut self, data: &str, seq: i64) -> E2eeResult<Uuid> {
        let MlsMessageBodyIn::Welcome(welcome) = decode(data)? else {
            return Err(E2eeError::Malformed("not a welcome".into()));
        };
        let group = StagedWelcome::build_from_welcome(&self.provider, &join_config(), welcome)
            .map_err(mls)?
            .replace_old_group()
            .build()
            .map_err(mls)?
            .into_group(&self.provider)
            .map_err(mls)?;
        let room = Uuid::from_slice(group.group_id().as_slice())
            .map_err(|_| E2eeError::Malformed("the group id is not a room id".into()))?;
        self.rooms.insert(room, Room { group, seq });
        Ok(room)
    }

    /// An application message carrying `plaintext`.
    pub fn encrypt(&mut self, room: Uuid, plaintext: &[u8]) -> E2eeResult<String> {
        let (provider, signer, group) = self.group(room)?;
        let message = group
            .create_message(provider, signer, plaintext)
            .map_err(mls)?;
        encode(&message)
    }

    /// Processes the room's next message (in seq order): decrypts, stores a proposal, or
    /// merges a commit. Messages already processed, this device's own, plain room
    /// events and deleted messages are skipped. A message that fails is passed over all
    /// the same (its error returned), so one bad message does not stall the room.
    pub fn process(&mut self, message: &Message) -> E2eeResult<Processed> {
        let provider = &self.provider;
        let room = self
            .rooms
            .get_mut(&message.room_id)
            .ok_or(E2eeError::NoGroup(message.room_id))?;
        if message.seq <= room.seq {
            return Ok(Processed::Skipped);
        }
        room.seq = message.seq;
        let content = match (&message.mls, message.kind) {
            (Some(content), MessageType::Mls) if !self.own.contains(&message.id) => content,
            _ => return Ok(Processed::Skipped),
        };
        let protocol = match decode(&content.data)? {
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            _ => return Err(E2eeError::Malformed("not a group message".into())),
        };
        let processed = room
            .group
            .process_message(provider, protocol)
            .map_err(mls)?;
        let sender = processed.credential().serialized_content().to_vec();
        Ok(match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => Processed::Application {
                plaintext: app.into_bytes(),
                sender: parse_device_identity(&sender)
                    .ok_or_else(|| E2eeError::Malformed("a sender that is no device".into()))?,
            },
            ProcessedMessageContent::ProposalMessage(proposal) => {
                room.group
                    .store_pending_proposal(provider.storage(), *proposal)
                    .map_err(mls)?;
                Processed::Proposal
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(_) => Processed::Proposal,
            // This device's own, seen again (another of its copies sent it).
            ProcessedMessageContent::OwnPendingCommit
            | ProcessedMessageContent::OwnPrivateMessage => Processed::Skipped,
            ProcessedMessageContent::StagedCommitMessage(commit) => {
                let removed = commit.self_removed();
                room.group
                    .merge_staged_commit(provider, *commit)
                    .map_err(mls)?;
                Processed::Commit {
                    epoch: room.group.epoch().as_u64(),
                    removed,
                }
            }
        })
    }

    /// The room's messages after the last one processed, each processed, in order.
    pub async fn catch_up(&mut self, client: &Client, room: Uuid) -> E2eeResult<Vec<Processed>> {
        let mut out = Vec::new();
        loop {
            let after = self.room(room)?.seq;
            let page = client
                .history(room, None, Some(after), Some(100))
                .await?
                .messages;
            if page.is_empty() {
                return Ok(out);
            }
            for message in &page {
                out.push(self.process(message)?);
            }
        }
    }
}

/// A send of an MLS message to a room.
pub fn mls_request(
    room: Uuid,
    client_msg_id: &str,
    mls: String,
    welcome: Option<String>,
) -> SendMessageRequest {
    SendMessageRequest {
        room_id: room,
        client_msg_id: client_msg_id.into(),
        kind: MessageType::Mls,
        mls: Some(mls),
        welcome,
        ..Default::default()
    }
}
