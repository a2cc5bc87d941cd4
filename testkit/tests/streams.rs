mod common;

use common::{decode_rtp, decode_udp};
use mediafork_testkit::payload::{pattern, pattern_index};
use mediafork_testkit::stream::{
    generate, merge, Impairments, StreamSpec, TimedFrame, DEFAULT_START_NS, DUPLICATE_GAP_NS,
};
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn spec(packets: u32) -> StreamSpec {
    StreamSpec {
        src: sa("192.0.2.10:20000"),
        dst: sa("198.51.100.20:40000"),
        ssrc: 0xCAFE_0001,
        payload_type: 8,
        ptime_ms: 20,
        clock_rate: 8000,
        first_seq: 100,
        first_ts: 1000,
        start_ns: DEFAULT_START_NS,
        packets,
        vlans: vec![],
    }
}

/// (index, seq, rtp ts, ssrc, marker) of each frame, decoded from the bytes.
fn decoded(frames: &[TimedFrame]) -> Vec<(u32, u16, u32, u32, bool)> {
    frames
        .iter()
        .map(|f| {
            let u = decode_udp(&f.frame).unwrap();
            let (pt, marker, seq, ts, ssrc, payload) = decode_rtp(&u.payload);
            assert_eq!(pt, 8);
            assert_eq!(payload, pattern(f.index, 160), "payload encodes the index");
            assert_eq!(pattern_index(payload[0]), Some(f.index % 200));
            assert_eq!(
                (seq, ts),
                (f.seq, f.rtp_ts),
                "TimedFrame fields match the bytes"
            );
            (f.index, seq, ts, ssrc, marker)
        })
        .collect()
}

fn indices(frames: &[TimedFrame]) -> Vec<u32> {
    frames.iter().map(|f| f.index).collect()
}

#[test]
fn ideal_stream_fields() {
    let frames = generate(spec(4), Impairments::default());
    let d = decoded(&frames);
    assert_eq!(
        d,
        vec![
            (0, 100, 1000, 0xCAFE_0001, true),
            (1, 101, 1160, 0xCAFE_0001, false),
            (2, 102, 1320, 0xCAFE_0001, false),
            (3, 103, 1480, 0xCAFE_0001, false),
        ]
    );
    let times: Vec<u64> = frames.iter().map(|f| f.ts_ns - DEFAULT_START_NS).collect();
    assert_eq!(times, vec![0, 20_000_000, 40_000_000, 60_000_000]);
    let u = decode_udp(&frames[0].frame).unwrap();
    assert_eq!(
        (u.src, u.dst),
        (sa("192.0.2.10:20000"), sa("198.51.100.20:40000"))
    );
}

#[test]
fn drops_are_missing() {
    let imp = Impairments {
        drop: vec![0, 3, 4, 99],
        ..Default::default()
    };
    let f = generate(spec(7), imp);
    assert_eq!(indices(&f), vec![1, 2, 5, 6]);
    // The sequence numbers keep their gaps: nothing is renumbered.
    let seqs: Vec<u16> = f.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, vec![101, 102, 105, 106]);
}

#[test]
fn duplicates_appear_twice() {
    let imp = Impairments {
        duplicate: vec![1, 3],
        ..Default::default()
    };
    let f = generate(spec(4), imp);
    assert_eq!(indices(&f), vec![0, 1, 1, 2, 3, 3]);
    assert_eq!(f[1].frame, f[2].frame, "identical bytes");
    assert_eq!(f[2].ts_ns, f[1].ts_ns + DUPLICATE_GAP_NS);
}

#[test]
fn reorder_swaps_neighbours() {
    let imp = Impairments {
        reorder: vec![2],
        ..Default::default()
    };
    let f = generate(spec(5), imp);
    assert_eq!(indices(&f), vec![0, 1, 3, 2, 4]);
    let seqs: Vec<u16> = f.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, vec![100, 101, 103, 102, 104]);
    assert!(
        f.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "sorted by arrival"
    );
    // reordering the last packet does nothing
    let last = Impairments {
        reorder: vec![4],
        ..Default::default()
    };
    assert_eq!(indices(&generate(spec(5), last)), vec![0, 1, 2, 3, 4]);
}

#[test]
fn sequence_wraps_around() {
    let s = StreamSpec {
        first_seq: 65534,
        first_ts: u32::MAX - 159,
        ..spec(4)
    };
    let d = decoded(&generate(&s, Impairments::default()));
    let seqs: Vec<u16> = d.iter().map(|x| x.1).collect();
    assert_eq!(seqs, vec![65534, 65535, 0, 1]);
    let ts: Vec<u32> = d.iter().map(|x| x.2).collect();
    assert_eq!(ts, vec![u32::MAX - 159, 0, 160, 320]);
}

#[test]
fn long_stream_wraps_more_than_once() {
    let s = StreamSpec {
        first_seq: 65000,
        ..spec(140_000)
    };
    let f = generate(&s, Impairments::default());
    assert_eq!(f.len(), 140_000);
    for (i, fr) in f.iter().enumerate().step_by(997) {
        assert_eq!(fr.seq, (65000 + i as u32) as u16);
    }
}

#[test]
fn ssrc_change_restarts_numbering() {
    let imp = Impairments {
        ssrc_change_at: Some((2, 0xBEEF, 65535, 7)),
        ..Default::default()
    };
    let d = decoded(&generate(spec(5), imp));
    assert_eq!(
        d,
        vec![
            (0, 100, 1000, 0xCAFE_0001, true),
            (1, 101, 1160, 0xCAFE_0001, false),
            (2, 65535, 7, 0xBEEF, true),
            (3, 0, 167, 0xBEEF, false),
            (4, 1, 327, 0xBEEF, false),
        ]
    );
}

#[test]
fn timestamp_jump_without_marker() {
    let imp = Impairments {
        ts_jump_at: Some((2, 8000)),
        ..Default::default()
    };
    let d = decoded(&generate(spec(4), imp));
    let ts: Vec<(u32, bool)> = d.iter().map(|x| (x.2, x.4)).collect();
    assert_eq!(
        ts,
        vec![(1000, true), (1160, false), (9320, false), (9480, false)]
    );
    let seqs: Vec<u16> = d.iter().map(|x| x.1).collect();
    assert_eq!(
        seqs,
        vec![100, 101, 102, 103],
        "sequence numbers stay continuous"
    );
}

#[test]
fn jitter_shifts_arrival_both_ways() {
    let imp = Impairments {
        jitter_ns: vec![(1, -5_000_000), (2, 7_000_000)],
        ..Default::default()
    };
    let f = generate(spec(3), imp);
    let t: Vec<i64> = f
        .iter()
        .map(|x| (x.ts_ns - DEFAULT_START_NS) as i64)
        .collect();
    assert_eq!(t, vec![0, 15_000_000, 47_000_000]);
}

#[test]
fn combined_impairments_are_exact() {
    let imp = Impairments {
        drop: vec![1],
        duplicate: vec![4],
        reorder: vec![5],
        ..Default::default()
    };
    assert_eq!(
        indices(&generate(spec(8), imp)),
        vec![0, 2, 3, 4, 4, 6, 5, 7]
    );
}

#[test]
fn vlans_reach_every_frame() {
    let s = StreamSpec {
        vlans: vec![100, 200],
        ..spec(3)
    };
    for f in generate(&s, Impairments::default()) {
        assert_eq!(
            decode_udp(&f.frame).unwrap().ip.tags,
            vec![(0x88A8, 100), (0x8100, 200)]
        );
    }
}

#[test]
fn merge_interleaves_by_time_stably() {
    let a = generate(spec(3), Impairments::default());
    let b = generate(
        StreamSpec {
            ssrc: 2,
            start_ns: DEFAULT_START_NS + 10_000_000,
            ..spec(3)
        },
        Impairments::default(),
    );
    let c = generate(StreamSpec { ssrc: 3, ..spec(1) }, Impairments::default());
    let m = merge(vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(m.len(), 7);
    assert!(m.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    // equal times keep stream order: a[0] before c[0]
    assert_eq!(m[0], a[0]);
    assert_eq!(m[1], c[0]);
    assert_eq!(m[2], b[0]);
}

#[test]
fn generation_is_deterministic() {
    let imp = Impairments::default()
        .with_random_jitter(42, 100, 2_000_000)
        .with_random_loss(43, 100, 5, 100);
    assert_eq!(generate(spec(100), &imp), generate(spec(100), imp.clone()));
}
