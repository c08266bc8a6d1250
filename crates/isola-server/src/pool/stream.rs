//! Streamed response bodies: chunks move from the isolate to the client's
//! channel while the client keeps up, and wait (without holding the worker)
//! while it does not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use isola_core::{BodyProgress, Error, Permit};

use super::worker::Slot;

/// A streamed response body on its way to the client.
pub(super) struct StreamOut {
    pub(super) tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(super) chunk: Option<Bytes>,
    pub(super) wake: Instant,
    pub(super) _permit: Permit,
}

/// Chunks of a streamed response body in flight between worker and client.
pub(super) const STREAM_CHANNEL_CHUNKS: usize = 16;
/// How soon a full client channel is retried.
const STREAM_RETRY: Duration = Duration::from_millis(1);

/// Moves a streamed response body from the isolate to the client.
/// Returns the error that stopped the stream, if the tenant's code failed.
pub(super) fn pump_stream(queued: &AtomicUsize, slot: &mut Slot, now: Instant) -> Option<Error> {
    let mut failure = None;
    let st = slot.streaming.as_mut()?;
    if st.wake > now {
        return None;
    }
    let mut finished = false;
    for _ in 0..STREAM_CHANNEL_CHUNKS {
        if let Some(chunk) = st.chunk.take() {
            match st.tx.try_send(Ok(chunk)) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(Ok(c))) => {
                    st.chunk = Some(c);
                    st.wake = now + STREAM_RETRY;
                    return None;
                }
                Err(_) => {
                    // The client went away.
                    slot.tenant.cancel_body();
                    finished = true;
                    break;
                }
            }
        }
        match slot.tenant.poll_body() {
            BodyProgress::Chunk(c) => st.chunk = Some(Bytes::from(c)),
            BodyProgress::Wait(until) => {
                st.wake = until;
                return None;
            }
            BodyProgress::End => {
                finished = true;
                break;
            }
            BodyProgress::Failed(e) => {
                tracing::warn!(tenant = %slot.dep.id, "response stream failed: {e}");
                let _ = st.tx.try_send(Err(std::io::Error::other(e.to_string())));
                failure = Some(e);
                finished = true;
                break;
            }
        }
    }
    if finished {
        if let Some(st) = slot.streaming.take() {
            if let Some(chunk) = st.chunk {
                let _ = st.tx.try_send(Ok(chunk));
            }
        }
        queued.fetch_sub(1, Ordering::Relaxed);
    } else {
        st.wake = now;
    }
    failure
}
