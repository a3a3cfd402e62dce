//! Seeding through the real API: users, rooms, sockets. Concurrent, with a progress bar.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use palaver_client::{Client, ConnectOptions};
use palaver_proto::{MemberState, Room, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::{BenchError, Result, Target};

/// The password of every bench user.
pub const PASSWORD: &str = "palaver-bench-password";
/// Requests in flight at once while seeding.
const SEED_CONCURRENCY: usize = 32;

/// A registered user.
#[derive(Debug, Clone)]
pub struct BenchUser {
    pub id: Uuid,
    pub api: Client,
    /// The session's refresh token from registration, for runs longer than an access
    /// token lives.
    pub refresh_token: String,
}

/// A socket from the load generator.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A username prefix unique to this run, so runs against one server never collide.
pub fn run_prefix() -> String {
    let id = Uuid::now_v7().simple().to_string();
    format!("b{}", &id[id.len() - 8..])
}

/// A progress bar (hidden unless the target asks for them).
pub fn bar(target: &Target, len: u64, what: &str) -> ProgressBar {
    if !target.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// Registers `n` users named `<prefix>_<i>`.
pub async fn register_users(target: &Target, prefix: &str, n: usize) -> Result<Vec<BenchUser>> {
    let anon = Client::new(&target.base)?;
    let bar = bar(target, n as u64, "users");
    let users: Vec<(usize, BenchUser)> = futures::stream::iter(0..n)
        .map(|i| {
            let anon = anon.clone();
            let bar = bar.clone();
            let name = format!("{prefix}_{i}");
            async move {
                let auth = anon.register(&name, PASSWORD, None).await?;
                bar.inc(1);
                Ok::<_, BenchError>((
                    i,
                    BenchUser {
                        id: auth.user.id,
                        api: anon.with_token(auth.access_token),
                        refresh_token: auth.refresh_token,
                    },
                ))
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let mut users = users;
    users.sort_by_key(|(i, _)| *i);
    Ok(users.into_iter().map(|(_, u)| u).collect())
}

/// Creates a room per member list: a group owned by its first member, or a 1:1 room for
/// a pair when `group` is false; every other member accepts their invitation.
pub async fn create_rooms(
    target: &Target,
    users: &[BenchUser],
    rooms: &[Vec<usize>],
    group: bool,
) -> Result<Vec<Room>> {
    let bar = bar(target, rooms.len() as u64, "rooms");
    let created: Vec<(usize, Room)> = futures::stream::iter(rooms.iter().enumerate())
        .map(|(r, members)| {
            let bar = bar.clone();
            async move {
                let owner = &users[members[0]];
                let others: Vec<Uuid> = members[1..].iter().map(|m| users[*m].id).collect();
                let name = format!("bench room {r}");
                let (_, room) = owner
                    .api
                    .create_room(group.then_some(name.as_str()), group, &others)
                    .await?;
                // Bench users are strangers to each other, so everyone but the creator is
                // invited: each accepts, as a person would before chatting.
                for m in &members[1..] {
                    let invited = room
                        .members
                        .iter()
                        .any(|x| x.user_id == users[*m].id && x.state == MemberState::Invited);
                    if invited {
                        users[*m].api.accept(room.id).await?;
                    }
                }
                bar.inc(1);
                Ok::<_, BenchError>((r, room))
            }
        })
        .buffer_unordered(SEED_CONCURRENCY / 4)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let mut created = created;
    created.sort_by_key(|(i, _)| *i);
    Ok(created.into_iter().map(|(_, r)| r).collect())
}

/// Opens user's socket number `i` (which picks the source address) and reads `hello`.
pub async fn open(target: &Target, user: &BenchUser, i: usize) -> Result<Ws> {
    let options = ConnectOptions {
        origin: None,
        local_addr: target.source(i),
        small_buffers: true,
        auth_frame: false,
    };
    let mut socket = user.api.connect_with(&options).await?;
    match socket.next_within(Duration::from_secs(30)).await? {
        ServerFrame::Hello { .. } => Ok(socket.into_inner()),
        other => Err(BenchError::Setup(format!("expected hello, got {other:?}"))),
    }
}

/// Opens sockets for all users, `concurrency` handshakes at a time, in user order.
pub async fn open_all(target: &Target, users: &[BenchUser], concurrency: usize) -> Result<Vec<Ws>> {
    let bar = bar(target, users.len() as u64, "sockets");
    let sockets: Vec<(usize, Ws)> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, u)| {
            let bar = bar.clone();
            async move {
                let ws = open(target, u, i).await?;
                bar.inc(1);
                Ok::<_, BenchError>((i, ws))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let mut sockets = sockets;
    sockets.sort_by_key(|(i, _)| *i);
    Ok(sockets.into_iter().map(|(_, s)| s).collect())
}

/// Raises this process's open-file limit: to a million where allowed (root may raise the
/// hard limit up to `fs.nr_open`), else to the hard limit.
pub fn raise_fd_limit() -> u64 {
    const WANT: u64 = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, WANT, WANT).is_ok() {
        return WANT;
    }
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}
