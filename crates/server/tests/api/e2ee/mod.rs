//! End-to-end encrypted rooms: the device directory (`directory`) and the delivery
//! service (`rooms`), driven by real openmls members (`palaver_client::e2ee`).

mod directory;
mod rooms;

use palaver_client::e2ee::{MlsDevice, mls_request};
use palaver_proto::{CreateRoomRequest, Message, Room};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

/// A user with one device.
pub struct Member {
    pub user: TestUser,
    pub device: MlsDevice,
}

/// Registers users, each with a device holding `packages` one-time key packages.
pub async fn members(app: &TestApp, names: &[&str], packages: usize) -> Vec<Member> {
    let mut out = Vec::new();
    for user in app.users(names).await {
        let device = MlsDevice::register(&user.api, &format!("{}'s laptop", user.name), packages)
            .await
            .expect("register device");
        out.push(Member { user, device });
    }
    out
}

/// An encrypted group of `owner` with `others`, every invitation accepted; no MLS yet.
pub async fn encrypted_group(owner: &Member, others: &[&Member]) -> Room {
    let body = CreateRoomRequest {
        name: Some("Secret plans".into()),
        is_group: true,
        member_ids: others.iter().map(|m| m.user.id).collect(),
        encrypted: true,
    };
    let (status, room) = owner
        .user
        .api
        .create_room_with(&body)
        .await
        .expect("create encrypted group");
    assert_eq!(status, 201);
    assert!(room.encrypted);
    assert_eq!(room.mls_epoch, Some(0));
    let others: Vec<&TestUser> = others.iter().map(|m| &m.user).collect();
    owner.user.accepted(room, &others).await
}

/// Sends an MLS message as `member`, and tells its device it was stored.
pub async fn send_mls(
    member: &mut Member,
    room: Uuid,
    mls: String,
    welcome: Option<String>,
) -> Message {
    let request = mls_request(room, &Uuid::now_v7().to_string(), mls, welcome);
    let (status, message) = member
        .user
        .api
        .send_request(&request)
        .await
        .expect("send mls");
    assert_eq!(status, 201, "{message:?}");
    member.device.sent(&message).expect("sent");
    message
}

/// The owner makes the group and adds every device of `others` (claimed now); each of
/// them joins from the welcome the server lists for its device.
pub async fn start_group(owner: &mut Member, others: &mut [&mut Member], room: Uuid) {
    owner.device.create_group(room).expect("create group");
    let ids: Vec<Uuid> = others.iter().map(|m| m.user.id).collect();
    let claimed = owner
        .user
        .api
        .claim_key_packages(&ids)
        .await
        .expect("claim")
        .key_packages;
    assert_eq!(claimed.len(), others.len(), "one package per device");
    let (commit, welcome) = owner.device.add(room, &claimed).expect("add");
    send_mls(owner, room, commit, Some(welcome)).await;
    for m in others.iter_mut() {
        join_from_directory(m, room).await;
    }
}

/// Joins `room` from the device's waiting welcome, and takes it.
pub async fn join_from_directory(m: &mut Member, room: Uuid) {
    let welcomes = m
        .user
        .api
        .welcomes(m.device.device_id)
        .await
        .expect("welcomes")
        .welcomes;
    let welcome = welcomes
        .iter()
        .find(|w| w.room_id == room)
        .expect("a welcome for the room");
    let joined = m.device.join(&welcome.data, welcome.seq).expect("join");
    assert_eq!(joined, room);
    m.user
        .api
        .take_welcome(m.device.device_id, welcome.id)
        .await
        .expect("take welcome");
}
