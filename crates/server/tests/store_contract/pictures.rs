//! Store cases about pictures: avatars and group pictures, what they read back as, and
//! the records they keep from the orphan sweep.

use palaver_proto::Role;
use palaver_server::store::{Entity, Picture, StoreError};
use uuid::Uuid;

use super::{Fixture, group, media_row, user};

pub(super) async fn pictures_keep_their_media(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let first = media_row(a.id, "s-first", Some("t-first"), 100);
    let avatar = media_row(a.id, "s-avatar", Some("t-avatar"), 100);
    let picture = media_row(a.id, "s-picture", None, 100);
    let unused = media_row(a.id, "s-unused", None, 100);
    for m in [&first, &avatar, &picture, &unused] {
        assert!(s.insert_media(m, None).await.expect("insert"));
    }
    let shown = |m: &palaver_server::store::MediaRow| Picture {
        media_id: m.id,
        thumbnail: m.thumb_sha256.is_some(),
    };

    // Nobody has one yet.
    assert!(s.avatars(&[a.id, b.id]).await.expect("avatars").is_empty());
    assert_eq!(
        s.room(room).await.expect("room").expect("some").picture,
        None
    );

    // Setting answers what was replaced.
    assert_eq!(s.set_avatar(a.id, Some(first.id)).await.expect("set"), None);
    assert_eq!(
        s.set_avatar(a.id, Some(avatar.id)).await.expect("set"),
        Some(first.id)
    );
    let avatars = s
        .avatars(&[a.id, b.id, Uuid::now_v7()])
        .await
        .expect("avatars");
    assert_eq!(avatars.len(), 1);
    assert_eq!(avatars.get(&a.id), Some(&shown(&avatar)));
    assert_eq!(
        s.set_room_picture(room, Some(picture.id))
            .await
            .expect("set"),
        None
    );

    // Rooms and members read back with them, a picture without thumbnail as such.
    let row = s.room(room).await.expect("room").expect("some");
    assert_eq!(row.picture, Some(shown(&picture)));
    assert!(!shown(&picture).thumbnail);
    let mine = s.rooms_of(b.id, None).await.expect("rooms");
    assert_eq!(mine[0].room.picture, Some(shown(&picture)));
    let members = s.members(room).await.expect("members");
    let of = |id: Uuid| members.iter().find(|m| m.user_id == id).expect("member");
    assert_eq!(of(a.id).avatar, Some(shown(&avatar)));
    assert_eq!(of(b.id).avatar, None);

    // Unknown users and rooms.
    assert!(matches!(
        s.set_avatar(Uuid::now_v7(), None).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        s.set_room_picture(Uuid::now_v7(), None).await,
        Err(StoreError::NotFound(Entity::Room))
    ));

    // The sweep keeps what is shown and takes what was replaced or never used.
    let mut gone: Vec<Uuid> = s
        .delete_orphan_media(1_000)
        .await
        .expect("orphans")
        .iter()
        .map(|m| m.id)
        .collect();
    gone.sort();
    assert_eq!(gone, vec![first.id, unused.id]);
    assert!(s.media(avatar.id).await.expect("media").is_some());
    assert!(s.media(picture.id).await.expect("media").is_some());

    // Cleared, a picture is an orphan like any other; a record that goes clears whoever
    // showed it.
    assert_eq!(
        s.set_avatar(a.id, None).await.expect("clear"),
        Some(avatar.id)
    );
    assert!(s.avatars(&[a.id]).await.expect("avatars").is_empty());
    let gone = s.delete_orphan_media(1_000).await.expect("orphans");
    assert_eq!(
        gone.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![avatar.id]
    );
    s.delete_media(picture.id).await.expect("delete");
    assert_eq!(
        s.room(room).await.expect("room").expect("some").picture,
        None
    );
}
