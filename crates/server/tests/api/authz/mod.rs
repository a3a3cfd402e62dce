//! The authorisation matrix: every REST route and every client socket frame, tried by
//! each kind of caller, every answer checked against one table.
//!
//! The columns are the callers: the group's owner, an admin, a plain member, a stranger
//! (registered, never in the room), a removed member (in the room until the owner removed
//! them), an invited member (the owner added them, a stranger to the owner, and they have
//! not accepted), a blocked member (joined, then blocked by the owner), an anonymous
//! caller (no token), a member whose access token has expired, and a member whose session
//! ended with logout. `REST` has a row per (method, path) of the
//! live OpenAPI document plus the routes it does not list (the WebSocket handshake, the
//! web client); a route has more rows where the target changes the answer (removing the
//! owner, an admin or a member). `FRAMES` has a row per client frame type. A cell is the
//! status and error code the caller gets (for a frame: `ack`, `pong` or `synced` when
//! allowed, else the `error` frame's code), and, for answers that list things, whether the
//! room (or the owner's subscription) is in them. Rows that change who may do what
//! (roles, removals, leaving) give each caller a fixture of its own. Some rows carry the
//! credential another way: the token in the URL (refused for everyone), or a signed
//! media link instead of a token (one the caller was issued, or one that is expired, for
//! another object or file, or tampered with). The `auth` frame row opens a socket without
//! a header and authenticates with its first frame.
//!
//! While the matrix runs, the stranger and the removed member keep sockets open and every
//! frame they get is checked: nothing about the room, nobody's presence. An admin's socket
//! hears every kind of event meanwhile, so their silence means something; a push service
//! on loopback checks the same for notifications. The removed member's frame cells use the
//! socket that was open when they were removed. `every_route_and_frame_has_a_row` fails
//! when a route (in the OpenAPI document or in the router's source) or a frame type has
//! no row. `removal_is_immediate_on_an_open_socket` and `a_removed_member_gets_no_push`
//! follow one removal closely: frames, events, presence, media and notifications.
//!
//! The parts: `table` (the rows and cells, and what a call got), `world` (the server, the
//! people and the fixtures the matrix runs on), `watch` (the sockets that listen meanwhile),
//! `cells` (running one cell), and the tests: `matrix` (every cell, and a row for every
//! route and frame) and `removal` (one removal followed closely).

mod cells;
mod matrix;
mod removal;
mod table;
mod watch;
mod world;
