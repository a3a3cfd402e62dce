//! Running one cell: a REST call, a frame on an open socket, or an `auth` frame on a
//! socket opened without a header.

use palaver_client::{ClientError, Socket};
use palaver_proto::{ClientFrame, ServerFrame, client_type, close};
use palaver_server::service::links::MediaFile;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

use super::table::{Actor, FrameRow, Got, Row, Target, Via, frame_for, frame_type};
use super::watch::{Watch, handshake, handshake_in_query, link_for};
use super::world::{Fixture, Payload, World, png, subscription};

pub(super) async fn rest_cell(
    w: &World,
    watch: &mut Watch,
    fx: &Fixture,
    row: &Row,
    actor: Actor,
) -> Got {
    let (method, template) = row.op.split_once(' ').expect("METHOD /path");
    let me = w.user(actor);
    // Who a caller without a working token says they are, where a body names someone.
    let identity = me.unwrap_or(&w.member);
    let mut token = w.token(actor);
    let mut payload = Payload::Empty;
    let mut query = String::new();
    let mut probe = None;
    let mut message = fx.message;
    let mut subscription_id = Uuid::nil();
    let mut report_id = Uuid::nil();
    let mut device_id = w.owner_device.device_id;
    // A token in the URL: any token, so the anonymous caller sends one too.
    let url_token = || w.token(actor).unwrap_or_else(|| "not-a-token".into());
    match (row.op, row.via) {
        ("GET /api/v1/ws", Via::Query) => return handshake_in_query(w, &url_token()).await,
        ("GET /api/v1/ws", _) => {
            return match handshake(w, actor).await {
                Ok(mut socket) if actor == Actor::Anonymous => {
                    // Nothing sent: the server gives up on it after the timeout.
                    match socket.next_within(WAIT).await {
                        Err(err @ ClientError::Closed(Some(_))) => Got::refused(err),
                        other => panic!("expected a close without hello, got {other:?}"),
                    }
                }
                Ok(socket) => {
                    socket.close().await.expect("close");
                    watch.settle(w, actor).await;
                    Got::status(101)
                }
                Err(got) => got,
            };
        }
        (op, Via::Link(link)) => {
            let file = if op.ends_with("/thumbnail") {
                MediaFile::Thumbnail
            } else {
                MediaFile::Original
            };
            let url = match link_for(w, fx, actor, link, file).await {
                Ok(url) => url,
                Err(got) => return got,
            };
            let (status, body) = w.request(method, &url, None, false, Payload::Empty).await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            return Got {
                code: json["error"]["code"].as_str().map(str::to_owned),
                body,
                ..Got::status(status)
            };
        }
        (_, Via::Query) => token = Some(url_token()),
        _ => {}
    }
    match row.op {
        "POST /api/v1/auth/register" => {
            payload = Payload::Json(json!({"username": w.unique("new"), "password": PASSWORD}));
        }
        "POST /api/v1/auth/login" => {
            payload = Payload::Json(json!({"username": identity.name, "password": PASSWORD}));
        }
        "POST /api/v1/auth/refresh" => {
            let refresh = match actor {
                Actor::Anonymous => "not-a-refresh-token".to_owned(),
                Actor::Expired => w.expired_refresh.clone(),
                Actor::Revoked => w.revoked_refresh.clone(),
                _ => identity.auth.refresh_token.clone(),
            };
            payload = Payload::Json(json!({ "refreshToken": refresh }));
        }
        "POST /api/v1/auth/logout" => {
            // A session of its own, so the caller's main one lives on.
            if let Some(user) = me {
                token = Some(fresh_session(w, user).await);
            }
        }
        "PUT /api/v1/rooms/{roomId}/members/{userId}/mute" => {
            payload = Payload::Json(json!({"durationSecs": 60}));
        }
        "POST /api/v1/messages/{messageId}/report" => {
            payload = Payload::Json(json!({"reason": format!("reported by {actor:?}")}));
        }
        // An open report of its own: the member's, of a message the owner just sent.
        "POST /api/v1/admin/reports/{reportId}/resolve"
        | "POST /api/v1/admin/reports/{reportId}/dismiss" => {
            let sent = w.owner.send(fx.room, "to report").await.id;
            let path = format!("/api/v1/messages/{sent}/report");
            let body = json!({"reason": "for the matrix"});
            let made = w
                .expect(&w.member, Method::POST, &path, Some(body), 201)
                .await;
            report_id = made["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("report id");
        }
        "POST /api/v1/admin/users" => {
            payload = Payload::Json(json!({"username": w.unique("made"), "password": PASSWORD}));
        }
        // The same password: `nobody` keeps it.
        "PUT /api/v1/admin/users/{userId}/password" => {
            payload = Payload::Json(json!({ "password": PASSWORD }));
        }
        "POST /api/v1/auth/login/second-factor" => {
            payload = Payload::Json(json!({"challenge": "not-a-challenge", "code": "123456"}));
        }
        "POST /api/v1/auth/totp/confirm" | "DELETE /api/v1/auth/totp" => {
            // An enrolment waiting for its code: confirming it fails on the code alone,
            // and dropping it needs no proof (it protects nothing yet).
            if let Some(user) = me {
                let _ = user
                    .api
                    .raw(Method::POST, "/api/v1/auth/totp/enrol", None)
                    .await;
            }
            payload = Payload::Json(match row.op.starts_with("POST") {
                true => json!({"code": "000000"}),
                false => json!({"password": PASSWORD}),
            });
        }
        "POST /api/v1/auth/sso/exchange" => {
            payload = Payload::Json(json!({"code": "not-a-login-code"}));
        }
        // Each caller's session of its own, which becomes a device.
        "POST /api/v1/mls/devices" => {
            if let Some(user) = me {
                token = Some(fresh_session(w, user).await);
            }
            payload = Payload::Json(
                json!({"name": "matrix", "signatureKey": format!("{}=", "A".repeat(43))}),
            );
        }
        // A device of the owner's other session, for the owner to revoke (the others
        // try the owner's main device, which is no more theirs).
        "DELETE /api/v1/mls/devices/{deviceId}" if actor == Actor::Owner => {
            let other = w.app.client().with_token(&fresh_session(w, &w.owner).await);
            let device = palaver_client::e2ee::MlsDevice::register(&other, "to revoke", 0)
                .await
                .expect("device");
            device_id = device.device_id;
        }
        "POST /api/v1/mls/devices/{deviceId}/key-packages" => {
            let package = w.owner_device.key_package(false).expect("package");
            payload = Payload::Json(json!({ "keyPackages": [package] }));
        }
        "POST /api/v1/mls/key-packages/claim" => {
            payload = Payload::Json(json!({ "userIds": [w.owner.id] }));
        }
        "GET /api/v1/users" => query = "?q=o".into(),
        "POST /api/v1/users/me/delete" => {
            payload = Payload::Json(json!({"password": "not the account's password"}));
        }
        "PATCH /api/v1/users/me" => {
            let same = identity.auth.user.display_name.clone();
            payload = Payload::Json(json!({ "displayName": same }));
        }
        "GET /api/v1/push/subscriptions" => {
            w.subscribe(&w.owner, "owner-listed").await;
            probe = Some(w.push.url("owner-listed"));
        }
        "POST /api/v1/push/subscriptions" if row.owners => {
            w.subscribe(&w.owner, "owner-taken").await;
            payload = Payload::Json(subscription(&w.push.url("owner-taken")));
        }
        "POST /api/v1/push/subscriptions" => {
            let name = w.unique(&format!("{actor:?}").to_lowercase());
            payload = Payload::Json(subscription(&w.push.url(&name)));
        }
        "DELETE /api/v1/push/subscriptions/{subscriptionId}" => {
            subscription_id = w.subscribe(&w.owner, &w.unique("owner")).await;
        }
        "PUT /api/v1/push/settings" => payload = Payload::Json(json!({"preview": "sender"})),
        "GET /api/v1/rooms" => probe = Some(fx.room.to_string()),
        "GET /api/v1/users/me/blocks" => probe = Some(w.blocked.id.to_string()),
        "POST /api/v1/rooms/create" if row.owners => {
            payload = Payload::Json(json!({"isGroup": false, "memberIds": [w.owner.id]}));
        }
        "POST /api/v1/rooms/create" => {
            // A group of one: a room with others would make the stranger their peer.
            payload = Payload::Json(json!({"name": "solo", "isGroup": true, "memberIds": []}));
        }
        "PATCH /api/v1/rooms/{roomId}" => {
            payload = Payload::Json(json!({ "name": format!("renamed by {actor:?}") }));
        }
        "POST /api/v1/rooms/{roomId}/members" => {
            payload = Payload::Json(json!({ "userIds": [w.extra.id] }));
        }
        "PATCH /api/v1/rooms/{roomId}/members/{userId}" => {
            payload = Payload::Json(json!({"role": "admin"}));
        }
        "POST /api/v1/rooms/{roomId}/receipts" => {
            // Past the end, so it moves the marker to the room's last seq, wherever the
            // room's events left it.
            payload = Payload::Json(json!({"seq": 1_000_000, "status": "read"}));
        }
        "POST /api/v1/messages/send" => {
            payload = Payload::Json(json!({"roomId": fx.room,
                "clientMsgId": Uuid::now_v7().to_string(), "content": "over REST"}));
        }
        "GET /api/v1/messages/history" => query = format!("?roomId={}", fx.room),
        "PATCH /api/v1/messages/{messageId}" => {
            payload = Payload::Json(json!({"content": "edited over REST"}));
        }
        "DELETE /api/v1/messages/{messageId}" => {
            message = w.owner.send(fx.room, "to delete over REST").await.id;
        }
        "POST /api/v1/chat/{conversationId}" => {
            payload = Payload::Json(
                json!({"clientMsgId": Uuid::now_v7().to_string(), "content": "over the alias"}),
            );
        }
        "POST /api/v1/messages/{messageId}/forward" => {
            payload = Payload::Json(
                json!({"roomId": fx.room, "clientMsgId": Uuid::now_v7().to_string()}),
            );
        }
        "PUT /api/v1/rooms/{roomId}/notifications" => {
            payload = Payload::Json(json!({"level": "mentions"}));
        }
        "POST /api/v1/media/upload" => payload = Payload::Picture,
        "PUT /api/v1/users/me/avatar" | "PUT /api/v1/rooms/{roomId}/picture" => {
            // The caller's own upload (the member's, for those without a working token).
            let upload = identity
                .api
                .upload("mine.png", "image/png", png())
                .await
                .expect("upload");
            payload = Payload::Json(json!({ "mediaId": upload.id }));
        }
        "GET /api/v1/search" => {
            // A word only this cell's message holds, said in the room just now.
            let word = w.unique("needle").replace('-', "x");
            w.owner.send(fx.room, &format!("the owner's {word}")).await;
            query = match row.owners {
                true => format!("?q={word}&roomId={}", fx.room),
                false => format!("?q={word}"),
            };
            probe = Some(fx.room.to_string());
        }
        _ => {}
    }
    let target = match row.target {
        Target::Owner => w.owner.id,
        Target::Admin => w.admin.id,
        Target::Member => w.member.id,
        Target::Nobody => w.nobody.id,
    };
    let path = template
        .replace("{roomId}", &fx.room.to_string())
        .replace("{conversationId}", &fx.room.to_string())
        .replace("{messageId}", &message.to_string())
        .replace("{emoji}", "%F0%9F%91%8D")
        .replace("{mediaId}", &fx.picture.id.to_string())
        .replace("{userId}", &target.to_string())
        .replace("{subscriptionId}", &subscription_id.to_string())
        .replace("{reportId}", &report_id.to_string())
        .replace("{deviceId}", &device_id.to_string())
        .replace("{welcomeId}", &Uuid::now_v7().to_string())
        // The matrix's server has no single sign-on provider (tests/api/sso.rs has one).
        .replace("{provider}", "none")
        + &query;
    let (status, body) = w
        .request(
            method,
            &path,
            token.as_deref(),
            row.via == Via::Query,
            payload,
        )
        .await;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    // The invited member who accepted a fixture of their own leaves it again: knowing the
    // owner from a shared room would make them joined, not invited, in later fixtures.
    if row.op == "POST /api/v1/rooms/{roomId}/accept" && actor == Actor::Invited && status == 200 {
        let leave = format!("/api/v1/rooms/{}/leave", fx.room);
        w.expect(&w.invited, Method::POST, &leave, None, 204).await;
    }
    if row.owners
        && row.op == "POST /api/v1/rooms/create"
        && let Some(id) = json["id"].as_str().and_then(|id| id.parse().ok())
    {
        w.asked.lock().push(id);
    }
    Got {
        code: json["error"]["code"].as_str().map(str::to_owned),
        sees: probe.map(|p| body.contains(&p)),
        body,
        ..Got::status(status)
    }
}

/// Sends a frame and reads its answer.
async fn exchange(socket: &mut Socket, frame: ClientFrame, room: Uuid) -> Got {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Ok(ServerFrame::Synced { rooms, .. }) => Got {
            sees: Some(rooms.contains_key(&room)),
            ..Got::status(200)
        },
        Ok(_) => Got::status(200),
        Err(err) => Got::refused(err),
    }
}

/// Opens a socket without a header and authenticates with an `auth` frame carrying the
/// caller's token (an empty one for the anonymous caller): `hello`, or the refusal.
async fn auth_cell(w: &World, watch: &mut Watch, actor: Actor) -> Got {
    let token = w.token(actor).unwrap_or_default();
    let frame = ClientFrame::Auth {
        token: token.clone(),
    };
    assert_eq!(frame_type(&frame), "auth");
    let mut socket = w
        .app
        .client()
        .connect()
        .await
        .expect("a handshake without a header opens");
    let id = socket.send_frame(frame).await.expect("auth frame");
    match socket.next_within(WAIT).await {
        Ok(ServerFrame::Hello { .. }) => {
            socket.close().await.expect("close");
            watch.settle(w, actor).await;
            Got::status(200)
        }
        Ok(ServerFrame::Error {
            id: Some(i),
            code,
            message,
            ..
        }) if i == id => {
            // The refusal is followed by close 4003.
            match socket.next_within(WAIT).await {
                Err(ClientError::Closed(Some((close::AUTH_FAILED, _)))) => {}
                other => panic!("expected close 4003 after the refusal, got {other:?}"),
            }
            Got::refused(ClientError::Api {
                status: code.http_status(),
                code,
                message,
            })
        }
        other => panic!("expected hello or an error, got {other:?}"),
    }
}

pub(super) async fn frame_cell(
    w: &World,
    watch: &mut Watch,
    fx: &Fixture,
    row: &FrameRow,
    actor: Actor,
) -> Got {
    if row.kind == client_type::AUTH {
        return auth_cell(w, watch, actor).await;
    }
    let message = if row.kind == client_type::DELETE {
        w.owner.send(fx.room, "to delete over the socket").await.id
    } else {
        fx.message
    };
    let frame = frame_for(row.kind, fx.room, message);
    assert_eq!(frame_type(&frame), row.kind, "the row sends its own frame");
    match actor {
        // The sockets that were open before the removal (and before the stranger was
        // anywhere near the room).
        Actor::Stranger => exchange(&mut watch.stranger.socket, frame, fx.room).await,
        Actor::Removed => exchange(&mut watch.removed.socket, frame, fx.room).await,
        _ => match handshake(w, actor).await {
            // Refused as a first frame that is not `auth`: the server has closed (4003).
            Ok(mut socket) if actor == Actor::Anonymous => {
                exchange(&mut socket, frame, fx.room).await
            }
            Ok(mut socket) => {
                let got = exchange(&mut socket, frame, fx.room).await;
                socket.close().await.expect("close");
                watch.settle(w, actor).await;
                got
            }
            Err(got) => got,
        },
    }
}

/// An access token of a new session of `user`'s, so the session the matrix uses lives on.
async fn fresh_session(w: &World, user: &TestUser) -> String {
    w.app
        .client()
        .login(&user.name, PASSWORD)
        .await
        .expect("login")
        .access_token
}
