//! The in-process bus of the single-binary deployment: a tokio broadcast channel.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{Bus, BusError, Event, EventStream};

/// Broadcast within one process.
pub struct MemoryBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl MemoryBus {
    /// A bus that buffers up to `capacity` events per slow subscriber before it skips.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        // No subscriber is not an error: with nobody connected there is nobody to tell.
        let _ = self.tx.send(Arc::new(event));
        Ok(())
    }

    fn subscribe(&self) -> EventStream {
        BroadcastStream::new(self.tx.subscribe())
            .filter_map(|item| async move {
                match item {
                    Ok(event) => Some(event),
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        // Connections repair the gap from the store when the next
                        // message of the room arrives.
                        tracing::warn!(skipped = n, "bus subscriber lagged");
                        metrics::counter!(crate::telemetry::metric::BUS_LAGGED).increment(n);
                        None
                    }
                }
            })
            .boxed()
    }
}
