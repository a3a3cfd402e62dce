//! Connections below HTTP: how many may be open at once, and how long one may sit without
//! progress. hyper times a request head itself (`header_timeout_secs`, set in `app.rs`);
//! what it cannot see is here. Both edges use it (`http` for its acceptor, `gateway` for
//! the socket handshake), and it depends on neither.
//!
//! - **The cap** (`max_connections`). Every accepted connection takes a slot, which its
//!   stream holds until it closes. Past the cap a connection is refused: a small HTTP server
//!   answers it `503 unavailable` with `Retry-After: 1` (`GET /healthz` still answers ok, so
//!   a full node is not taken for a dead one) and closes it, within [`REFUSAL_DEADLINE`].
//!   Refusing takes a descriptor too, so at most [`refusal_slots`] are refused at a time
//!   (a quarter of the descriptors the cap leaves, at most [`MAX_REFUSALS`]); past that a
//!   connection is closed at once. The cap and the refusals together stay under the
//!   open-file limit, so `accept` never fails for want of descriptors: a node out of
//!   descriptors could not even answer `/healthz`.
//! - **First byte** (`header_timeout_secs`). Before hyper parses a request it reads bytes to
//!   tell HTTP/1 from HTTP/2, with no timer: a connection that sends nothing is closed here.
//! - **Idle** (`idle_timeout_secs`). Nothing read and nothing written for this long closes
//!   the connection, whatever it was doing: an HTTP/2 connection, a response its client
//!   stopped reading, a half-sent TLS handshake, an upgraded socket. Not while a request is
//!   being answered: a slow handler is the server's doing, not the client's.
//! - **An expected answer** (`ws_handshake_timeout_secs`). After a WebSocket upgrade the
//!   gateway pings and asks, through the request's [`ConnTimer`], that the client send
//!   something within a deadline.
//! - **Request bodies** (`body_timeout_secs`) are HTTP's: `http/timeout.rs`.
//!
//! The timer is polled from reads only. Something always reads a connection that waits for
//! its peer (hyper between requests and for bodies, TLS, the gateway's reader), and a
//! connection whose writes are stuck is idle only if its peer sends nothing either. So one
//! timer per connection, re-armed lazily (when it fires early it is set again), costs a
//! clock read per read or write and a wake-up per idle period.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_server::accept::Accept;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use palaver_proto::{ErrorBody, ErrorCode, ErrorDetail, HealthResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How long a refused connection is given to read its answer.
pub const REFUSAL_DEADLINE: Duration = Duration::from_secs(2);
/// Most connections being refused at one time.
pub const MAX_REFUSALS: usize = 128;
/// What a refused client is told to wait.
const REFUSAL_RETRY: Duration = Duration::from_secs(1);

/// This process's open-file limit (the soft one, which is what `accept` runs into).
fn open_file_limit() -> usize {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .and_then(|(soft, _)| usize::try_from(soft).ok())
        .unwrap_or(1024)
}

/// The default `max_connections`: 90% of the open-file limit, the rest kept for refusals,
/// the database, media files and outbound connections.
pub fn default_max_connections() -> usize {
    (open_file_limit() / 10 * 9).max(1)
}

/// How many connections past `max_connections` may be answered at once: a quarter of the
/// descriptors the cap leaves, at most [`MAX_REFUSALS`]; none when it leaves none.
pub fn refusal_slots(max_connections: usize) -> usize {
    (open_file_limit().saturating_sub(max_connections) / 4).min(MAX_REFUSALS)
}

/// The timeouts a connection lives under, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `header_timeout_secs`: until the first byte.
    pub first_byte: Duration,
    /// `idle_timeout_secs`.
    pub idle: Duration,
}

/// One connection's read deadline, shared between its stream and its requests (a request
/// extension), so a handler can ask that the peer answer soon.
#[derive(Clone)]
pub struct ConnTimer(Arc<TimerShared>);

struct TimerShared {
    start: Instant,
    /// Milliseconds after `start` by which something must be read; [`NO_DEADLINE`] if none.
    read_by_ms: AtomicU64,
    /// Requests whose answer the server is still working out: meanwhile the connection is
    /// waiting for the server, not idle.
    busy: AtomicUsize,
    /// Milliseconds after `start` when the last such request was answered.
    answered_ms: AtomicU64,
}

const NO_DEADLINE: u64 = u64::MAX;

impl ConnTimer {
    fn new(first_read: Duration) -> Self {
        ConnTimer(Arc::new(TimerShared {
            start: Instant::now(),
            read_by_ms: AtomicU64::new(millis(first_read)),
            busy: AtomicUsize::new(0),
            answered_ms: AtomicU64::new(0),
        }))
    }

    /// Closes the connection unless the peer sends something within `within` from now.
    pub fn expect_read_within(&self, within: Duration) {
        let at = millis(self.0.start.elapsed()).saturating_add(millis(within));
        self.0.read_by_ms.store(at, Ordering::Relaxed);
    }

    fn read_by(&self) -> Option<Instant> {
        match self.0.read_by_ms.load(Ordering::Relaxed) {
            NO_DEADLINE => None,
            ms => Some(self.0.start + Duration::from_millis(ms)),
        }
    }

    fn read_happened(&self) {
        if self.0.read_by_ms.load(Ordering::Relaxed) != NO_DEADLINE {
            self.0.read_by_ms.store(NO_DEADLINE, Ordering::Relaxed);
        }
    }

    /// When the idle period started, given the last byte moved at `last`; `None` while a
    /// request is being answered.
    fn idle_since(&self, last: Instant) -> Option<Instant> {
        if self.0.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let answered =
            self.0.start + Duration::from_millis(self.0.answered_ms.load(Ordering::Relaxed));
        Some(last.max(answered))
    }
}

/// Counts a request as being answered while it lives.
struct Answering(ConnTimer);

impl Answering {
    fn new(timer: ConnTimer) -> Self {
        timer.0.busy.fetch_add(1, Ordering::Relaxed);
        Answering(timer)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let shared = &self.0.0;
        shared
            .answered_ms
            .store(millis(shared.start.elapsed()), Ordering::Relaxed);
        shared.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NO_DEADLINE - 1)
}

/// A connection's stream under its timeouts, holding its slot under the cap.
pub struct Watched<S> {
    inner: S,
    timer: ConnTimer,
    idle: Duration,
    /// When a byte last moved either way.
    last: Instant,
    sleep: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl<S> Watched<S> {
    fn new(inner: S, timer: ConnTimer, timeouts: Timeouts, slot: OwnedSemaphorePermit) -> Self {
        let now = Instant::now();
        let first = now + timeouts.first_byte.min(timeouts.idle);
        Watched {
            inner,
            timer,
            idle: timeouts.idle,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(first)),
            _slot: slot,
        }
    }

    /// Whether a deadline has passed; if not, the timer will wake this task at the next one.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let idle_due = self.timer.idle_since(self.last).map(|t| t + self.idle);
        let due = match (idle_due, self.timer.read_by()) {
            (Some(idle), Some(by)) => idle.min(by),
            (Some(due), None) | (None, Some(due)) => due,
            // A request is being answered: the server's turn, whatever it takes. Its end
            // wakes the connection (hyper reads for the next request), which comes back here.
            (None, None) => return false,
        };
        if due < self.sleep.deadline() {
            self.sleep.as_mut().reset(due);
        }
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= due {
                return true;
            }
            // Fired for an older deadline; progress since moved it.
            self.sleep.as_mut().reset(due);
        }
    }
}

fn timed_out() -> io::Error {
    metrics::counter!("palaver_connections_timed_out_total").increment(1);
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                    this.timer.read_happened();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if n > 0 {
            this.last = Instant::now();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        if n > 0 {
            this.last = Instant::now();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The acceptor: `TCP_NODELAY`, the cap, the timeouts, then `inner` (TLS or nothing).
#[derive(Clone)]
pub struct Guard<A> {
    inner: A,
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    timeouts: Timeouts,
    refuser: Arc<Builder<TokioExecutor>>,
}

impl<A> Guard<A> {
    /// At most `max_connections` open at once, and `refusals` being answered past that.
    pub fn new(inner: A, max_connections: usize, refusals: usize, timeouts: Timeouts) -> Self {
        let mut refuser = Builder::new(TokioExecutor::new());
        // One answer, then close.
        refuser.http1().keep_alive(false);
        Guard {
            inner,
            slots: Arc::new(Semaphore::new(max_connections)),
            refusals: Arc::new(Semaphore::new(refusals)),
            timeouts,
            refuser: Arc::new(refuser),
        }
    }
}

/// A connection's service, adding the connection's [`ConnTimer`] to every request.
#[derive(Clone)]
pub struct WithTimer<S> {
    inner: S,
    timer: ConnTimer,
}

impl<S, B> tower::Service<axum::http::Request<B>> for WithTimer<S>
where
    S: tower::Service<axum::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.timer.clone());
        let answering = Answering::new(self.timer.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let answer = answer.await;
            drop(answering);
            answer
        })
    }
}

impl<A, S> Accept<TcpStream, S> for Guard<A>
where
    A: Accept<Watched<TcpStream>, WithTimer<S>> + Clone + Send + Sync + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(A::Stream, A::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let guard = self.clone();
        Box::pin(async move {
            // Frames are small and their latency is the product: without TCP_NODELAY a
            // frame written while the peer has not yet acknowledged the last one waits for
            // its delayed ACK (up to 40 ms on Linux), which the soak showed as a 44 ms p99.
            stream.set_nodelay(true)?;
            let (slot, admitted) = match guard.slots.clone().try_acquire_owned() {
                Ok(slot) => (slot, true),
                Err(_) => match guard.refusals.clone().try_acquire_owned() {
                    Ok(slot) => (slot, false),
                    Err(_) => {
                        metrics::counter!(crate::telemetry::metric::CONNECTIONS_REFUSED)
                            .increment(1);
                        return Err(io::Error::other("connection limit reached"));
                    }
                },
            };
            let timer = ConnTimer::new(guard.timeouts.first_byte);
            let io = Watched::new(stream, timer.clone(), guard.timeouts, slot);
            let accepted = guard.inner.accept(
                io,
                WithTimer {
                    inner: service,
                    timer,
                },
            );
            if admitted {
                return accepted.await;
            }
            metrics::counter!(crate::telemetry::metric::CONNECTIONS_REFUSED).increment(1);
            let refused = async {
                let (stream, _) = accepted.await?;
                let answer = tower::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(refusal(req.uri().path()))
                });
                guard
                    .refuser
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(answer))
                    .await
                    .map_err(io::Error::other)
            };
            let _ = tokio::time::timeout(REFUSAL_DEADLINE, refused).await;
            Err(io::Error::other("connection limit reached"))
        })
    }
}

/// The answer on a connection past the cap: the documented error shape (`/healthz` as
/// usual), and `Connection: close`.
fn refusal(path: &str) -> Response {
    let mut response = if path == "/healthz" {
        axum::Json(HealthResponse {
            status: "ok".into(),
        })
        .into_response()
    } else {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::Unavailable,
                message: "too many connections; retry shortly".into(),
                retry_after_ms: Some(REFUSAL_RETRY.as_millis() as u64),
            },
        };
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(REFUSAL_RETRY.as_secs()),
        );
        response
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn watched(timer: &ConnTimer, idle: Duration) -> Watched<tokio::io::DuplexStream> {
        let (client, server) = tokio::io::duplex(64);
        // The client end stays open (and silent) for the test's lifetime.
        std::mem::forget(client);
        let slot = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a slot");
        let timeouts = Timeouts {
            first_byte: Duration::from_secs(1000),
            idle,
        };
        Watched::new(server, timer.clone(), timeouts, slot)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_is_counted_from_the_last_answer_and_not_while_answering() {
        let timer = ConnTimer::new(Duration::from_secs(1000));
        let mut io = watched(&timer, Duration::from_secs(2));
        let mut buf = [0u8; 8];
        // A request takes 10 s to answer: the connection is not idle meanwhile.
        let answering = Answering::new(timer.clone());
        let waited = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf)).await;
        assert!(waited.is_err(), "closed while a request was being answered");
        drop(answering);
        // Answered: idle from now on.
        let started = Instant::now();
        let read = tokio::time::timeout(Duration::from_secs(5), io.read(&mut buf))
            .await
            .expect("closed within the idle timeout");
        assert_eq!(read.expect_err("timed out").kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expected_answer_has_its_own_deadline() {
        let timer = ConnTimer::new(Duration::from_secs(1000));
        let mut io = watched(&timer, Duration::from_secs(30));
        let mut buf = [0u8; 8];
        let started = Instant::now();
        timer.expect_read_within(Duration::from_secs(3));
        let read = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
            .await
            .expect("closed at the deadline");
        assert_eq!(read.expect_err("timed out").kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
