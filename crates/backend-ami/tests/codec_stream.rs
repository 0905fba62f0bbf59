//! The codec on recorded streams: every split point, arbitrary chunking, arbitrary bytes, and
//! encode/parse round trips.

use backend_ami::codec::{Action, DecodeLimits, Decoder, Frame, Message, ParseError};
use proptest::prelude::*;

use crate::support::fixture;

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Decodes `chunks` in order, as a connection would receive them.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Result<Frame, ParseError>> {
    let mut d = Decoder::new(DecodeLimits::default());
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        loop {
            match d.decode() {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
    out
}

fn messages(frames: &[Result<Frame, ParseError>]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            Ok(Frame::Message(m)) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn recorded_queue_call_decodes_into_the_messages_the_summary_lists() {
    let frames = decode_chunks([recorded("orig_queue_agent.ami").as_slice()]);
    assert!(
        frames.iter().all(Result::is_ok),
        "no parse error on a real stream"
    );
    let msgs = messages(&frames);
    let summary = std::fs::read_to_string(fixture("orig_queue_agent.summary.txt")).unwrap();
    // The summary has one line per message, after the banner line and before the close note.
    let listed = summary
        .lines()
        .filter(|l| {
            l.starts_with("  ")
                && l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(msgs.len(), listed);
    assert!(matches!(&frames[0], Ok(Frame::Banner(b)) if b.version == "11.0.0"));
    let connect = msgs.iter().find(|m| m.is_event("AgentConnect")).unwrap();
    assert_eq!(connect.get("membername"), Some("Agent One"));
}

#[test]
fn bytes_split_at_every_position_decode_to_the_same_frames() {
    for name in ["orig_busy.ami", "command_ok.ami", "lists_idle.ami"] {
        let bytes = recorded(name);
        let whole = decode_chunks([bytes.as_slice()]);
        for at in 0..=bytes.len() {
            let split = decode_chunks([&bytes[..at], &bytes[at..]]);
            assert_eq!(split, whole, "{name} split at byte {at}");
        }
    }
}

#[test]
fn old_command_block_split_at_every_position_decodes_the_same() {
    let bytes: &[u8] = b"Asterisk Call Manager/1.1\r\nResponse: Follows\r\nPrivilege: Command\r\nActionID: c\r\nline: one\n\nline three\n--END COMMAND--\r\n\r\nEvent: After\r\n\r\n";
    let whole = decode_chunks([bytes]);
    let msgs = messages(&whole);
    assert_eq!(msgs[0].command_output(), ["line: one", "", "line three"]);
    assert!(msgs[1].is_event("After"));
    for at in 0..=bytes.len() {
        assert_eq!(
            decode_chunks([&bytes[..at], &bytes[at..]]),
            whole,
            "split at {at}"
        );
    }
}

#[test]
fn several_messages_in_one_read_are_all_decoded() {
    let frames = decode_chunks([recorded("login_plain.ami").as_slice()]);
    let kinds: Vec<String> = messages(&frames)
        .iter()
        .map(|m| m.event().or(m.response()).unwrap_or("").to_owned())
        .collect();
    assert_eq!(kinds, ["Success", "FullyBooted", "Success", "Goodbye"]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_of_a_recorded_stream_decodes_the_same(cuts in proptest::collection::vec(0usize..15_000, 0..40)) {
        let bytes = recorded("orig_congestion.ami");
        let whole = decode_chunks([bytes.as_slice()]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            chunks.push(&bytes[prev..c]);
            prev = c;
        }
        prop_assert_eq!(decode_chunks(chunks), whole);
    }

    #[test]
    fn arbitrary_input_never_panics_and_the_buffer_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
    ) {
        let limits = DecodeLimits { max_line_bytes: 64, max_lines: 8, max_message_bytes: 256 };
        let mut d = Decoder::new(limits);
        for chunk in &chunks {
            d.feed(chunk);
            while let Ok(Some(_)) | Err(_) = d.decode() {}
            prop_assert!(d.buffered() <= limits.max_message_bytes + chunk.len());
        }
    }

    #[test]
    fn encoded_actions_parse_back_to_the_same_headers_or_are_refused(
        value in "[ -~\r\n\0]{0,40}",
        name in "X[A-Za-z0-9_-]{0,10}",
    ) {
        let action = Action::new("UserEvent").header(name.clone(), value.clone());
        let mut out = Vec::new();
        match action.encode(&mut out) {
            Err(_) => {
                prop_assert!(out.is_empty(), "nothing written on refusal");
                prop_assert!(value.contains(['\r', '\n', '\0']));
            }
            Ok(n) => {
                prop_assert_eq!(n, out.len());
                let frames = {
                    let mut d = Decoder::without_banner(DecodeLimits::default());
                    d.feed(&out);
                    let mut v = Vec::new();
                    while let Ok(Some(Frame::Message(m))) = d.decode() { v.push(m); }
                    v
                };
                prop_assert_eq!(frames.len(), 1, "exactly one action on the wire");
                prop_assert_eq!(frames[0].get(&name), Some(value.trim_start_matches([' ', '\t'])));
            }
        }
    }
}
