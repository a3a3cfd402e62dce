//! Request-body timeout (`body_timeout_secs`): a body that pauses for too long ends its
//! request with `408 request_timeout`. The connection-level timeouts are in `transport`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use palaver_proto::ErrorCode;
use tokio::time::Sleep;

use super::error::ApiError;

/// Middleware: a request body that pauses for longer than `body_timeout_secs` ends the
/// request with `408 request_timeout` (and the connection, whose body was not read to the
/// end), whatever the handler made of the broken body.
pub async fn body_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let fired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        Body::new(TimedBody {
            inner: body,
            limit,
            sleep: None,
            fired: fired.clone(),
        })
    });
    let response = next.run(req).await;
    if !fired.load(Ordering::Relaxed) {
        return response;
    }
    metrics::counter!("palaver_request_body_timeouts_total").increment(1);
    let mut response = ApiError::new(
        ErrorCode::RequestTimeout,
        "the request body stopped arriving",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails when no data arrives for `limit`.
struct TimedBody {
    inner: Body,
    limit: Duration,
    /// Armed while waiting for the next frame.
    sleep: Option<Pin<Box<Sleep>>>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame);
        }
        let limit = this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.fired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body timed out",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
