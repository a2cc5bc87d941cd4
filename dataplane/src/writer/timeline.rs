//! A track's audio timeline: turns (segment, offset, samples) records into
//! a continuous sample stream. Lost packets become silence of their length,
//! reordered packets land in their place as long as they arrive within the
//! reorder window, and each segment starts after the previous one with a
//! bounded gap.

/// A packet waiting for the reorder window to pass.
#[derive(Clone, Copy, Debug)]
struct Pending {
    rel: i64,
    start: usize,
    len: usize,
}

/// What happened to a pushed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Placed,
    /// Its place had already been written out.
    Late,
}

/// One segment as the writer saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentSpan {
    pub gap: u64,
    pub start: u64,
    pub samples: u64,
}

/// The timeline of one track.
pub struct Timeline {
    window: i64,
    /// Samples emitted so far (the WAV's length).
    written: u64,
    seg_start: u64,
    /// Offset that maps to `seg_start`; fixed by the segment's first output.
    origin: Option<i64>,
    pending: Vec<Pending>,
    arena: Vec<i16>,
    max_end: i64,
    late: u64,
    segments: Vec<SegmentSpan>,
}

impl Timeline {
    /// A timeline that holds `window` samples for reordering.
    pub fn new(window: u64) -> Self {
        Timeline {
            window: window as i64,
            written: 0,
            seg_start: 0,
            origin: None,
            pending: Vec::new(),
            arena: Vec::new(),
            max_end: i64::MIN,
            late: 0,
            segments: Vec::new(),
        }
    }

    /// Begin a segment after `gap` samples of silence.
    pub fn start_segment(&mut self, gap: u64, out: &mut Vec<i16>) {
        self.flush_all(out);
        self.close_segment();
        if !self.segments.is_empty() || gap > 0 {
            out.resize(out.len() + gap as usize, 0);
            self.written += gap;
        }
        self.seg_start = self.written;
        self.origin = None;
        self.max_end = i64::MIN;
        self.segments.push(SegmentSpan {
            gap,
            start: self.written,
            samples: 0,
        });
    }

    fn close_segment(&mut self) {
        if let Some(s) = self.segments.last_mut() {
            s.samples = self.written - s.start;
        }
    }

    /// Add `samples` at offset `rel` of the current segment.
    pub fn push(&mut self, rel: i64, samples: &[i16], out: &mut Vec<i16>) -> Placement {
        if self.segments.is_empty() {
            self.start_segment(0, out);
        }
        let len = samples.len() as i64;
        if let Some(origin) = self.origin {
            let pos = self.seg_start as i64 + (rel - origin);
            if rel < origin || pos + len <= self.written as i64 {
                self.late += 1;
                return Placement::Late;
            }
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(samples);
        let p = Pending {
            rel,
            start,
            len: samples.len(),
        };
        // Nearly always appended at the end: packets mostly arrive in order.
        let at = self
            .pending
            .iter()
            .rposition(|q| q.rel <= rel)
            .map_or(0, |i| i + 1);
        self.pending.insert(at, p);
        self.max_end = self.max_end.max(rel + len);
        self.flush_until(self.max_end - self.window, out);
        Placement::Placed
    }

    /// Write out everything that waits (segment or track end).
    pub fn flush_all(&mut self, out: &mut Vec<i16>) {
        self.flush_until(i64::MAX, out);
        self.close_segment();
    }

    fn flush_until(&mut self, horizon: i64, out: &mut Vec<i16>) {
        let mut n = 0;
        for p in &self.pending {
            if p.rel.saturating_add(p.len as i64) > horizon {
                break;
            }
            let origin = *self.origin.get_or_insert(p.rel);
            let pos = self.seg_start as i64 + (p.rel - origin);
            let mut src = &self.arena[p.start..p.start + p.len];
            if pos > self.written as i64 {
                let gap = (pos - self.written as i64) as usize;
                out.resize(out.len() + gap, 0);
                self.written += gap as u64;
            } else if pos < self.written as i64 {
                // Overlaps audio already out (a duplicate that slipped past
                // the worker, or a sender that overlaps timestamps).
                let skip = (self.written as i64 - pos) as usize;
                if skip >= src.len() {
                    self.late += 1;
                    n += 1;
                    continue;
                }
                src = &src[skip..];
            }
            out.extend_from_slice(src);
            self.written += src.len() as u64;
            n += 1;
        }
        if n > 0 {
            self.pending.drain(..n);
            if self.pending.is_empty() {
                self.arena.clear();
            } else if self.pending.iter().map(|p| p.start).min().unwrap_or(0) > self.arena.len() / 2
            {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        let base = self.pending.iter().map(|p| p.start).min().unwrap_or(0);
        self.arena.drain(..base);
        for p in &mut self.pending {
            p.start -= base;
        }
    }

    /// Where offset `rel` of the current segment falls in the output, in
    /// samples (the segment's start while its first audio is not out yet).
    pub fn position(&self, rel: i64) -> u64 {
        match self.origin {
            Some(origin) => {
                (self.seg_start as i64 + (rel - origin)).max(self.seg_start as i64) as u64
            }
            None => self.seg_start,
        }
    }

    /// Samples emitted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets that arrived after their place was written.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The segments so far (the last one complete after `flush_all`).
    pub fn segments(&self) -> &[SegmentSpan] {
        &self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    fn run(window: u64, packets: &[(i64, i16)]) -> (Vec<i16>, Timeline) {
        let mut t = Timeline::new(window);
        let mut out = Vec::new();
        for &(rel, v) in packets {
            t.push(rel, &block(v), &mut out);
        }
        t.flush_all(&mut out);
        (out, t)
    }

    fn blocks(out: &[i16]) -> Vec<i16> {
        out.chunks(160).map(|c| c[0]).collect()
    }

    #[test]
    fn in_order_is_contiguous() {
        let (out, t) = run(1600, &[(0, 1), (160, 2), (320, 3)]);
        assert_eq!(out.len(), 480);
        assert_eq!(blocks(&out), vec![1, 2, 3]);
        assert_eq!(t.late(), 0);
    }

    #[test]
    fn loss_becomes_silence_of_the_right_length() {
        let (out, _) = run(1600, &[(0, 1), (480, 4)]);
        assert_eq!(blocks(&out), vec![1, 0, 0, 4]);
    }

    #[test]
    fn reordered_within_window_lands_in_place() {
        let (out, t) = run(1600, &[(0, 1), (320, 3), (160, 2), (480, 4)]);
        assert_eq!(blocks(&out), vec![1, 2, 3, 4]);
        assert_eq!(t.late(), 0);
    }

    #[test]
    fn reordered_before_the_first_packet_still_lands() {
        let (out, _) = run(1600, &[(160, 2), (0, 1), (320, 3)]);
        assert_eq!(blocks(&out), vec![1, 2, 3]);
    }

    #[test]
    fn too_late_is_counted_and_leaves_silence() {
        // Window of two packets: packet 1 arrives after 4 more.
        let (out, t) = run(
            320,
            &[(0, 1), (320, 3), (480, 4), (640, 5), (800, 6), (160, 2)],
        );
        assert_eq!(blocks(&out), vec![1, 0, 3, 4, 5, 6]);
        assert_eq!(t.late(), 1);
    }

    #[test]
    fn segments_follow_each_other_with_their_gap() {
        let mut t = Timeline::new(1600);
        let mut out = Vec::new();
        t.push(0, &block(1), &mut out);
        t.push(160, &block(2), &mut out);
        t.start_segment(80, &mut out);
        t.push(0, &block(3), &mut out);
        t.flush_all(&mut out);
        assert_eq!(out.len(), 320 + 80 + 160);
        assert_eq!(out[320..400], vec![0; 80][..]);
        assert_eq!(out[400], 3);
        let s = t.segments();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            SegmentSpan {
                gap: 0,
                start: 0,
                samples: 320
            }
        );
        assert_eq!(
            s[1],
            SegmentSpan {
                gap: 80,
                start: 400,
                samples: 160
            }
        );
    }

    #[test]
    fn arena_stays_bounded_on_long_streams() {
        let mut t = Timeline::new(1600);
        let mut out = Vec::new();
        for i in 0..100_000i64 {
            t.push(i * 160, &block(1), &mut out);
            out.clear();
        }
        assert!(t.arena.len() < 160 * 40, "{}", t.arena.len());
    }
}
