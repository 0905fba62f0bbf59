//! The event stream: every event of the dialer gets a sequence number and is kept in a
//! bounded buffer, so a client that reconnects with `Last-Event-ID` gets what it missed (or is
//! told how many events it lost when they left the buffer). Filters by campaign and agent.
//!
//! Each event is serialized once, into its finished server-sent-events frame
//! ([`Numbered::frame`]); every subscriber writes those same bytes (a reference count, no
//! copy), several at a time when they are ready together.

use bytes::Bytes;
use dialer_runtime::{Dialer, DialerEvent};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// One numbered event, serialized once for every subscriber.
#[derive(Debug, Clone)]
pub struct Numbered {
    pub id: u64,
    /// The SSE event name: the engine event's name (`dialed`, `skipped`, `progress`...),
    /// `telephony`, `draining`, or `lagged` (the API itself fell behind the dialer).
    pub name: String,
    pub campaign: Option<String>,
    pub agent: Option<String>,
    pub json: String,
    /// The whole SSE frame (`id`, `event`, `data` lines and the blank line), written as is
    /// to every subscriber.
    pub frame: Bytes,
}

/// The SSE frame of an event. `data` is compact JSON (no line break), `name` a plain word.
pub fn sse_frame(id: Option<u64>, name: &str, data: &str) -> Bytes {
    let mut f = String::with_capacity(data.len() + name.len() + 32);
    if let Some(id) = id {
        f.push_str("id: ");
        f.push_str(&id.to_string());
        f.push('\n');
    }
    f.push_str("event: ");
    f.push_str(name);
    f.push_str("\ndata: ");
    f.push_str(data);
    f.push_str("\n\n");
    Bytes::from(f)
}

impl Numbered {
    /// Whether a subscriber filtering on `campaign` and `agent` sees it. An event that names
    /// no campaign (agent and telephony events) passes a campaign filter; one that names no
    /// agent passes an agent filter only when it is not about calls of other agents.
    pub fn matches(&self, campaign: Option<&str>, agent: Option<&str>) -> bool {
        let c_ok = match (campaign, &self.campaign) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        let a_ok = match (agent, &self.agent) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => self.campaign.is_none(),
            _ => true,
        };
        c_ok && a_ok
    }
}

struct Buffer {
    events: VecDeque<Arc<Numbered>>,
    capacity: usize,
    next_id: u64,
}

/// Numbers and keeps the dialer's events.
#[derive(Clone)]
pub struct EventHub {
    buffer: Arc<Mutex<Buffer>>,
    live: broadcast::Sender<Arc<Numbered>>,
}

/// What a resuming subscriber gets from the buffer.
pub struct Replay {
    /// Events after the one the client saw, oldest first.
    pub events: Vec<Arc<Numbered>>,
    /// Events that already left the buffer (the client cannot get them back).
    pub lost: u64,
}

impl EventHub {
    /// Starts numbering the dialer's events; keeps the last `capacity`.
    pub fn start(dialer: &Dialer, capacity: usize) -> EventHub {
        let capacity = capacity.max(16);
        let (live, _) = broadcast::channel(1024);
        let hub = EventHub {
            buffer: Arc::new(Mutex::new(Buffer {
                events: VecDeque::with_capacity(capacity.min(65_536)),
                capacity,
                next_id: 1,
            })),
            live,
        };
        let mut rx = dialer.subscribe();
        let h = hub.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => h.push(&ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the API fell behind the dialer's events");
                        h.push_value(
                            "lagged",
                            serde_json::json!({ "kind": "lagged", "missed": n }),
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    fn push(&self, ev: &DialerEvent) {
        let value = serde_json::to_value(ev).unwrap_or(Value::Null);
        crate::metrics::on_event(&value);
        let name = match &value {
            Value::Object(m) => m
                .get("event")
                .and_then(|e| e.get("event"))
                .or_else(|| m.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or("event")
                .to_owned(),
            _ => "event".to_owned(),
        };
        self.push_value(&name, value);
    }

    fn push_value(&self, name: &str, value: Value) {
        let inner = value.get("event").unwrap_or(&value);
        let campaign = inner
            .get("campaign")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let agent = inner
            .get("agent")
            .and_then(Value::as_str)
            .or_else(|| {
                inner
                    .get("progress")
                    .and_then(|p| p.get("agent"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned);
        let json = value.to_string();
        let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let n = Arc::new(Numbered {
            id: b.next_id,
            name: name.to_owned(),
            campaign,
            agent,
            frame: sse_frame(Some(b.next_id), name, &json),
            json,
        });
        b.next_id += 1;
        if b.events.len() == b.capacity {
            b.events.pop_front();
        }
        b.events.push_back(n.clone());
        // Sent under the lock: a subscriber that took its replay under the lock sees every
        // later event live, none twice.
        let _ = self.live.send(n);
    }

    /// Subscribes to live events and takes what came after `last_seen` from the buffer,
    /// atomically (nothing falls between the two).
    pub fn subscribe(
        &self,
        last_seen: Option<u64>,
    ) -> (Replay, broadcast::Receiver<Arc<Numbered>>) {
        let b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.live.subscribe();
        let replay = match last_seen {
            None => Replay {
                events: Vec::new(),
                lost: 0,
            },
            Some(seen) => self.after(&b, seen),
        };
        (replay, rx)
    }

    /// Events after `seen` still in the buffer (a subscriber that lagged behind the live
    /// channel catches up from here).
    pub fn since(&self, seen: u64) -> Replay {
        let b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        self.after(&b, seen)
    }

    fn after(&self, b: &Buffer, seen: u64) -> Replay {
        let oldest = b.events.front().map(|e| e.id).unwrap_or(b.next_id);
        let lost = oldest
            .saturating_sub(seen + 1)
            .min(b.next_id.saturating_sub(seen + 1));
        let events = b.events.iter().filter(|e| e.id > seen).cloned().collect();
        Replay { events, lost }
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.buffer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(capacity: usize) -> EventHub {
        let (live, _) = broadcast::channel(16);
        EventHub {
            buffer: Arc::new(Mutex::new(Buffer {
                events: VecDeque::new(),
                capacity,
                next_id: 1,
            })),
            live,
        }
    }

    #[test]
    fn a_resuming_client_gets_what_it_missed_and_is_told_what_left_the_buffer() {
        let h = hub(16);
        for i in 0..20 {
            h.push_value("x", serde_json::json!({ "campaign": "c", "i": i }));
        }
        // Buffer holds ids 5..=20.
        let r = h.since(18);
        assert_eq!(
            r.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![19, 20]
        );
        assert_eq!(r.lost, 0);
        assert_eq!(
            &r.events[0].frame[..],
            &b"id: 19\nevent: x\ndata: {\"campaign\":\"c\",\"i\":18}\n\n"[..],
            "the finished SSE frame every subscriber writes"
        );
        let r = h.since(2);
        assert_eq!(r.events.first().map(|e| e.id), Some(5));
        assert_eq!(r.lost, 2, "ids 3 and 4 are gone");
        assert_eq!(h.since(20).events.len(), 0);
    }

    #[test]
    fn filters_by_campaign_and_agent() {
        let h = hub(16);
        h.push_value(
            "dialed",
            serde_json::json!({ "event": { "campaign": "a" } }),
        );
        h.push_value(
            "agent_linked",
            serde_json::json!({ "event": { "agent": "ann" } }),
        );
        h.push_value(
            "progress",
            serde_json::json!({ "event": { "campaign": "b", "progress": { "agent": "bob" } } }),
        );
        let all = h.since(0).events;
        let names = |c: Option<&str>, a: Option<&str>| {
            all.iter()
                .filter(|e| e.matches(c, a))
                .map(|e| e.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some("a"), None), vec![1, 2]);
        assert_eq!(names(None, Some("bob")), vec![3]);
        assert_eq!(names(None, Some("ann")), vec![2]);
    }
}
