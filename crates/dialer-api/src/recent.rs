//! Reads that many clients poll (the status, a campaign's counters), taken at most once per
//! short interval and shared: the first request after the interval takes a fresh copy, the
//! requests that arrive meanwhile wait for it and get the same bytes. Under load this turns
//! hundreds of identical round trips through the dialer task and identical scans of the spool
//! into a few per second; a poller never sees data older than the interval.

use crate::problem::Problem;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Bytes)>>>;

/// Shared recent copies, by key.
#[derive(Clone, Default)]
pub struct Recent {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl Recent {
    /// The copy under `key` if it is younger than `max_age`, else a fresh one from `take`
    /// (kept only when `take` succeeds: a failed read leaves nothing behind).
    pub async fn get<Fut>(
        &self,
        key: &str,
        max_age: Duration,
        take: impl FnOnce() -> Fut,
    ) -> Result<Bytes, Problem>
    where
        Fut: Future<Output = Result<Bytes, Problem>>,
    {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut copy = slot.lock().await;
        if let Some((taken, body)) = copy.as_ref() {
            if taken.elapsed() < max_age {
                return Ok(body.clone());
            }
        }
        let taken = Instant::now();
        match take().await {
            Ok(body) => {
                *copy = Some((taken, body.clone()));
                Ok(body)
            }
            Err(p) => {
                if copy.is_none() {
                    // A key that never read (an unknown campaign) does not stay.
                    drop(copy);
                    self.slots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(key);
                }
                Err(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn requests_within_the_interval_share_one_read_and_failures_leave_nothing() {
        let recent = Recent::default();
        let reads = Arc::new(AtomicU32::new(0));
        let read = |reads: Arc<AtomicU32>| async move {
            let n = reads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Problem>(Bytes::from(n.to_string()))
        };
        let a = recent
            .get("k", Duration::from_secs(60), || read(reads.clone()))
            .await
            .unwrap();
        let b = recent
            .get("k", Duration::from_secs(60), || read(reads.clone()))
            .await
            .unwrap();
        assert_eq!((a, b), (Bytes::from("0"), Bytes::from("0")));
        let c = recent
            .get("k", Duration::ZERO, || read(reads.clone()))
            .await
            .unwrap();
        assert_eq!(c, Bytes::from("1"), "an old copy is taken afresh");
        let e = recent
            .get("unknown", Duration::from_secs(60), || async {
                Err::<Bytes, _>(Problem::not_found(
                    "unknown_campaign",
                    "no such campaign here",
                ))
            })
            .await;
        assert!(e.is_err());
        assert_eq!(recent.slots.lock().unwrap().len(), 1, "only `k` is kept");
    }
}
