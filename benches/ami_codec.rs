//! AMI decoding throughput on byte streams recorded from Asterisk 22: events parsed per second.

use backend_ami::codec::{DecodeLimits, Decoder, Frame};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A queue with callers waiting (162 kB, many events) and a whole queue call with agent.
const STREAMS: [(&str, &[u8]); 2] = [
    (
        "queue_callers_waiting",
        include_bytes!("../crates/backend-ami/tests/fixtures/queue_callers_waiting.ami"),
    ),
    (
        "orig_queue_agent",
        include_bytes!("../crates/backend-ami/tests/fixtures/orig_queue_agent.ami"),
    ),
];

/// Decodes `bytes` in reads of `read` bytes, as a socket would deliver them; returns messages seen.
fn decode(bytes: &[u8], read: usize) -> usize {
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut messages = 0;
    for chunk in bytes.chunks(read) {
        decoder.feed(chunk);
        loop {
            match decoder.decode() {
                Ok(Some(Frame::Message(_))) => messages += 1,
                Ok(Some(Frame::Banner(_))) | Err(_) => {}
                Ok(None) => break,
            }
        }
    }
    messages
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ami_decode");
    for (name, bytes) in STREAMS {
        let messages = decode(bytes, bytes.len());
        group.throughput(Throughput::Elements(messages as u64));
        for read in [1024usize, 16 * 1024] {
            group.bench_function(format!("{name}/read_{read}"), |b| {
                b.iter(|| decode(std::hint::black_box(bytes), read))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
