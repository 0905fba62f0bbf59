//! Feeds arbitrary bytes, in arbitrary splits, to the AMI decoder and the one-shot parser.
//! Invariants: no panic; the decoder's buffer stays within one message limit plus one read;
//! a `Complete(n)` never claims more bytes than it was given.
#![no_main]

use backend_ami::codec::{parse_message, DecodeLimits, Decoder, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_line_bytes: 128,
        max_lines: 16,
        max_message_bytes: 1024,
    };
    if let Ok(Status::Complete((n, _))) = parse_message(data, &limits) {
        assert!(n <= data.len());
    }
    // The first byte picks the read size, so splits vary with the input.
    let (step, rest) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 64) + 1, rest),
        None => return,
    };
    let mut decoder = Decoder::new(limits);
    for chunk in rest.chunks(step) {
        decoder.feed(chunk);
        while let Ok(Some(_)) | Err(_) = decoder.decode() {}
        assert!(decoder.buffered() <= limits.max_message_bytes + step);
    }
});
