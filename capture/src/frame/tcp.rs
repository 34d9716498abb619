//! TCP stream reassembly for passively captured connections.
//!
//! One stream per direction of a connection (plus outer VLAN). Sequence
//! numbers become 64-bit stream offsets (so wrap-around is invisible),
//! bytes are delivered in order exactly once, and out-of-order segments
//! wait within the per-stream byte limit. A capture misses segments the
//! endpoints never retransmit, so a hole that does not fill within
//! `tcp_gap_timeout`, or that would overflow the buffer, is skipped
//! (`TcpGap`) and the consumer resynchronises on the next message start.
//! The consumer is the SIP framer, or the HEP stream framer for HEP ports.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use memchr::memmem;

use super::DecoderConfig;
use super::hep_glue::{self, HepStreamFramer};
use super::sipframe::{self, SipFramer};
use super::websocket::{self, Handshake, WsDecoder, WsEvent};
use crate::{DropReason, SipPacket, Source, Stats, Timestamp, Transport};

/// Bytes charged per buffered out-of-order segment besides its data.
const SEG_OVERHEAD: usize = 64;
/// Timestamp marks kept per stream; past this, new bytes share the last
/// mark's time (only byte-sized segments get there).
const MAX_MARKS: usize = 1024;
/// Largest HEP frame (its length field is 16 bits).
const MAX_HEP_FRAME: usize = 65535;
/// The magic at the start of every HEPv3 packet, to resynchronise on.
const HEP3: &[u8] = b"HEP3";

/// Identifies one direction of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub vlan: Option<u16>,
}

impl StreamKey {
    fn reversed(self) -> StreamKey {
        StreamKey {
            src: self.dst,
            dst: self.src,
            vlan: self.vlan,
        }
    }
}

/// One TCP segment as the decoder hands it over.
#[derive(Debug)]
pub(crate) struct Segment<'a> {
    pub key: StreamKey,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
    pub ts: Timestamp,
    pub source: Source,
    /// To or from a HEP port: the stream carries HEP, not SIP.
    pub hep: bool,
}

/// Where results go: settings, counters and produced packets.
pub(crate) struct Sink<'a> {
    pub cfg: &'a DecoderConfig,
    pub stats: &'a mut Stats,
    pub out: &'a mut Vec<SipPacket>,
}

/// Why a stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// All bytes up to the FIN were delivered.
    Fin,
    /// RST, or a new SYN replacing the connection.
    Reset,
    /// No segment for `tcp_idle_timeout`.
    Idle,
    /// End of input.
    Finish,
}

/// What consumes a stream's in-order bytes.
#[derive(Debug)]
enum Consumer {
    Sip(SipFramer),
    /// HEP over TCP; `synced` once a HEP3 magic was found.
    Hep {
        framer: HepStreamFramer,
        synced: bool,
    },
    /// The first bytes look like HTTP: waiting for the head to tell
    /// whether this is a WebSocket upgrade to SIP (RFC 7118).
    Http,
    /// SIP over WebSocket, after the upgrade.
    Ws(WsDecoder),
    /// A stream that cannot be followed (a HEP stream that failed to
    /// frame, plain HTTP, a broken or closed WebSocket); its bytes are
    /// ignored.
    Dead,
}

#[derive(Debug)]
struct OooSeg {
    data: Vec<u8>,
    ts: Timestamp,
}

#[derive(Debug)]
struct Stream {
    key: StreamKey,
    source: Source,
    /// Sequence number of the SYN, if it was seen.
    isn: Option<u32>,
    /// Sequence number of stream offset 0.
    base_seq: u32,
    /// Next offset to deliver.
    next_off: u64,
    /// Offset of the FIN and when it was seen.
    fin: Option<(u64, Timestamp)>,
    /// Segments past `next_off`, by offset, never overlapping.
    ooo: BTreeMap<u64, OooSeg>,
    ooo_cost: usize,
    /// A segment too far ahead to buffer, kept until a second one confirms
    /// that the stream really jumped (capture loss) rather than one bogus
    /// packet.
    far: Option<(u64, OooSeg)>,
    /// In-order bytes not yet framed; `buf[0]` is at offset `buf_off`.
    buf: BytesMut,
    buf_off: u64,
    /// Where each delivered segment's bytes start, and its timestamp.
    marks: VecDeque<(u64, Timestamp)>,
    consumer: Consumer,
    last_seen: Timestamp,
    /// This stream's entry in [`TcpTable::timers`].
    timer: (Timestamp, u64),
    /// What [`Stream::held`] was when last added to [`TcpTable::held`].
    charged: usize,
}

/// `usize` from a stream distance known to fit (it is bounded by a slice
/// length); saturates otherwise, which slicing then refuses.
fn idx(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// The timestamp of the segment that carried the byte at `off`, dropping
/// marks of bytes before it.
fn ts_at(marks: &mut VecDeque<(u64, Timestamp)>, off: u64, fallback: Timestamp) -> Timestamp {
    while marks.get(1).is_some_and(|m| m.0 <= off) {
        marks.pop_front();
    }
    marks.front().map_or(fallback, |m| m.1)
}

impl Stream {
    /// Bytes this stream holds: unframed in-order data, out-of-order
    /// segments, a far segment and what its consumer buffers.
    fn held(&self) -> usize {
        let consumer = match &self.consumer {
            Consumer::Hep { framer, .. } => framer.buffered(),
            Consumer::Ws(d) => d.held(),
            Consumer::Sip(_) | Consumer::Http | Consumer::Dead => 0,
        };
        self.buf.len() + self.ooo_cost + self.far.as_ref().map_or(0, |f| f.1.data.len()) + consumer
    }

    /// The stream offset of sequence number `seq`, relative to `next_off`
    /// and its 32-bit window; negative before the stream's start.
    fn offset_of(&self, seq: u32) -> i64 {
        // Sequence numbers are offsets modulo 2^32: truncation intended.
        #[allow(clippy::cast_possible_truncation)]
        let next_seq = self.base_seq.wrapping_add(self.next_off as u32);
        #[allow(clippy::cast_possible_wrap)]
        let delta = seq.wrapping_sub(next_seq) as i32;
        #[allow(clippy::cast_possible_wrap)]
        let next = self.next_off as i64;
        next.saturating_add(i64::from(delta))
    }

    /// When the oldest hole must be given up, if there is one.
    fn gap_deadline(&self, cfg: &DecoderConfig) -> Option<Timestamp> {
        let ooo = self.ooo.first_key_value().map(|(_, s)| s.ts);
        let fin = self
            .fin
            .filter(|(off, _)| *off > self.next_off)
            .map(|(_, ts)| ts);
        let since = match (ooo, fin) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(since.saturating_add(cfg.tcp_gap_timeout))
    }

    fn deadline(&self, cfg: &DecoderConfig) -> Timestamp {
        let idle = self.last_seen.saturating_add(cfg.tcp_idle_timeout);
        self.gap_deadline(cfg).map_or(idle, |g| g.min(idle))
    }

    fn fin_reached(&self) -> bool {
        self.fin.is_some_and(|(off, _)| self.next_off >= off)
    }

    /// Takes a segment's payload starting at stream offset `off`.
    fn accept(&mut self, off: i64, data: &[u8], ts: Timestamp, sink: &mut Sink<'_>) {
        #[allow(clippy::cast_possible_wrap)]
        let next = self.next_off as i64;
        let (off, data) = if off < next {
            // Already delivered (retransmission or overlap): keep the rest.
            let skip = usize::try_from(next - off).unwrap_or(usize::MAX);
            match data.get(skip..) {
                Some(rest) if !rest.is_empty() => (self.next_off, rest),
                _ => return,
            }
        } else {
            (off.unsigned_abs(), data)
        };
        if data.is_empty() {
            return;
        }
        if off == self.next_off {
            self.deliver(data, ts, sink);
            self.pull_ooo(sink);
            return;
        }
        let limit = sink.cfg.max_tcp_stream_bytes;
        if off - self.next_off > limit as u64 {
            self.accept_far(off, data, ts, sink);
            return;
        }
        loop {
            let pieces = self.uncovered(off, data.len() as u64);
            let cost: usize = pieces.iter().map(|(a, b)| idx(b - a) + SEG_OVERHEAD).sum();
            if self.held() + cost <= limit {
                for (a, b) in pieces {
                    let d = data
                        .get(idx(a - off)..idx(b - off))
                        .unwrap_or_default()
                        .to_vec();
                    self.ooo_cost += d.len() + SEG_OVERHEAD;
                    self.ooo.insert(a, OooSeg { data: d, ts });
                }
                return;
            }
            // No room: give up the first hole and try again.
            if !self.skip_gap(sink) {
                self.jump_to(off, sink);
            }
            if off <= self.next_off {
                #[allow(clippy::cast_possible_wrap)]
                self.accept(off as i64, data, ts, sink);
                return;
            }
        }
    }

    /// A segment more than the buffer limit ahead.
    fn accept_far(&mut self, off: u64, data: &[u8], ts: Timestamp, sink: &mut Sink<'_>) {
        let limit = sink.cfg.max_tcp_stream_bytes as u64;
        let confirmed = self
            .far
            .as_ref()
            .is_some_and(|(f, seg)| off >= *f && off - *f <= seg.data.len() as u64 + limit);
        if !confirmed {
            self.far = Some((
                off,
                OooSeg {
                    data: data.to_vec(),
                    ts,
                },
            ));
            return;
        }
        if let Some((f, seg)) = self.far.take() {
            while self.skip_gap(sink) {}
            self.jump_to(f, sink);
            self.deliver(&seg.data, seg.ts, sink);
        }
        #[allow(clippy::cast_possible_wrap)]
        self.accept(off as i64, data, ts, sink);
    }

    /// The parts of `[off, off + len)` no buffered segment covers.
    fn uncovered(&self, off: u64, len: u64) -> Vec<(u64, u64)> {
        let end = off + len;
        let mut pos = off;
        if let Some((s, seg)) = self.ooo.range(..=pos).next_back() {
            pos = pos.max(s + seg.data.len() as u64);
        }
        let mut pieces = Vec::new();
        if pos < end {
            for (s, seg) in self.ooo.range(pos..end) {
                if *s > pos {
                    pieces.push((pos, *s));
                }
                pos = pos.max(s + seg.data.len() as u64);
            }
        }
        if pos < end {
            pieces.push((pos, end));
        }
        pieces
    }

    /// Delivers buffered segments that have become contiguous.
    fn pull_ooo(&mut self, sink: &mut Sink<'_>) {
        while let Some(entry) = self.ooo.first_entry() {
            let start = *entry.key();
            if start > self.next_off {
                break;
            }
            let seg = entry.remove();
            self.ooo_cost -= seg.data.len() + SEG_OVERHEAD;
            if let Some(rest) = seg.data.get(idx(self.next_off - start)..) {
                self.deliver(rest, seg.ts, sink);
            }
        }
    }

    /// Skips the first hole, if out-of-order data or a FIN lies beyond one.
    fn skip_gap(&mut self, sink: &mut Sink<'_>) -> bool {
        let target = match (self.ooo.first_key_value(), self.fin) {
            (Some((off, _)), _) => *off,
            (None, Some((fin, _))) if fin > self.next_off => fin,
            _ => return false,
        };
        self.jump_to(target, sink);
        self.pull_ooo(sink);
        true
    }

    /// Gives up everything before `off`: counts a `TcpGap`, drops the
    /// unfinished message and makes the consumer resynchronise.
    fn jump_to(&mut self, off: u64, sink: &mut Sink<'_>) {
        sink.stats.drop(DropReason::TcpGap);
        self.buf.clear();
        self.marks.clear();
        self.buf_off = off;
        self.next_off = off;
        // Out-of-order data before the new position is unreachable now.
        while let Some(entry) = self.ooo.first_entry() {
            let end = *entry.key() + entry.get().data.len() as u64;
            if end > off {
                break;
            }
            let seg = entry.remove();
            self.ooo_cost -= seg.data.len() + SEG_OVERHEAD;
        }
        match &mut self.consumer {
            Consumer::Sip(f) => *f = SipFramer::resync(),
            // WebSocket frames cannot be found again after a gap.
            Consumer::Http | Consumer::Ws(_) => self.consumer = Consumer::Dead,
            Consumer::Hep { framer, synced } => {
                *framer = HepStreamFramer::new(MAX_HEP_FRAME);
                *synced = false;
            }
            Consumer::Dead => {}
        }
    }

    /// Hands in-order bytes at `next_off` to the consumer.
    fn deliver(&mut self, data: &[u8], ts: Timestamp, sink: &mut Sink<'_>) {
        let at = self.next_off;
        self.next_off += data.len() as u64;
        match &mut self.consumer {
            Consumer::Dead => {}
            Consumer::Sip(_) | Consumer::Http | Consumer::Ws(_) => {
                if self.marks.back().is_none_or(|m| m.1 != ts) && self.marks.len() < MAX_MARKS {
                    self.marks.push_back((at, ts));
                }
                self.buf.extend_from_slice(data);
                // A stream whose first bytes after the SYN are HTTP may be
                // upgraded to SIP over WebSocket.
                if at == 0
                    && self.isn.is_some()
                    && matches!(self.consumer, Consumer::Sip(_))
                    && websocket::may_be_handshake(&self.buf)
                {
                    self.consumer = Consumer::Http;
                }
                match self.consumer {
                    Consumer::Http => self.upgrade(sink),
                    Consumer::Ws(_) => self.frame_ws(sink),
                    _ => self.frame_sip(sink),
                }
                // In-order data that never completes a message counts
                // against the stream's cap like out-of-order data does.
                if self.held() > sink.cfg.max_tcp_stream_bytes {
                    sink.stats.drop(DropReason::ReassemblyLimit);
                    self.buf.clear();
                    self.marks.clear();
                    self.buf_off = self.next_off;
                    self.consumer = match self.consumer {
                        Consumer::Sip(_) => Consumer::Sip(SipFramer::resync()),
                        _ => Consumer::Dead,
                    };
                }
            }
            Consumer::Hep { .. } => self.feed_hep(data, ts, sink),
        }
    }

    fn frame_sip(&mut self, sink: &mut Sink<'_>) {
        let Consumer::Sip(framer) = &mut self.consumer else {
            return;
        };
        loop {
            let r = framer.next(&mut self.buf, sink.cfg.max_sip_message, sink.stats);
            let start = self.buf_off + r.skipped as u64;
            let Some(payload) = r.message else {
                self.buf_off = start;
                break;
            };
            self.buf_off = start + payload.len() as u64;
            let ts = ts_at(&mut self.marks, start, self.last_seen);
            sink.stats.sip += 1;
            sink.out.push(SipPacket {
                ts,
                src: self.key.src,
                dst: self.key.dst,
                transport: Transport::Tcp,
                source: self.source,
                capture_id: None,
                node: None,
                correlation_id: None,
                vlan: self.key.vlan,
                payload,
            });
        }
        let _ = ts_at(&mut self.marks, self.buf_off, self.last_seen);
    }

    /// Reads the HTTP head at the stream's start: an upgrade to SIP over
    /// WebSocket switches to frame decoding, anything else is not SIP.
    fn upgrade(&mut self, sink: &mut Sink<'_>) {
        match websocket::handshake(&self.buf) {
            Handshake::NeedMore => {}
            Handshake::Sip(n) => {
                self.buf.advance(n);
                self.buf_off += n as u64;
                self.consumer = Consumer::Ws(WsDecoder::default());
                self.frame_ws(sink);
            }
            Handshake::No => {
                sink.stats.drop(DropReason::NotSip);
                self.consumer = Consumer::Dead;
                self.buf.clear();
                self.marks.clear();
                self.buf_off = self.next_off;
            }
        }
    }

    /// Takes complete WebSocket messages off the buffer; each is one SIP
    /// message (RFC 7118 section 5.2).
    fn frame_ws(&mut self, sink: &mut Sink<'_>) {
        let Consumer::Ws(d) = &mut self.consumer else {
            return;
        };
        loop {
            let (start, before) = (self.buf_off, self.buf.len());
            let ev = d.next(&mut self.buf, sink.cfg.max_sip_message, sink.stats);
            self.buf_off += (before - self.buf.len()) as u64;
            match ev {
                WsEvent::NeedMore => break,
                WsEvent::Message(m) => {
                    // The time of the segment that carried the last frame's
                    // start (most messages are one frame).
                    let ts = ts_at(&mut self.marks, start, self.last_seen);
                    if !sipframe::is_sip_message(&m) {
                        sink.stats.drop(DropReason::NotSip);
                        continue;
                    }
                    sink.stats.sip += 1;
                    sink.out.push(SipPacket {
                        ts,
                        src: self.key.src,
                        dst: self.key.dst,
                        transport: Transport::Ws,
                        source: self.source,
                        capture_id: None,
                        node: None,
                        correlation_id: None,
                        vlan: self.key.vlan,
                        payload: m.into(),
                    });
                }
                WsEvent::Closed | WsEvent::Bad => {
                    if ev == WsEvent::Bad {
                        sink.stats.drop(DropReason::BadWebsocket);
                    }
                    self.consumer = Consumer::Dead;
                    self.buf.clear();
                    self.marks.clear();
                    self.buf_off = self.next_off;
                    break;
                }
            }
        }
    }

    fn feed_hep(&mut self, data: &[u8], ts: Timestamp, sink: &mut Sink<'_>) {
        let Consumer::Hep { framer, synced } = &mut self.consumer else {
            return;
        };
        if *synced {
            framer.push(data);
        } else {
            // Joined mid-stream or after a gap: wait for a HEP3 magic.
            self.buf.extend_from_slice(data);
            match memmem::find(&self.buf, HEP3) {
                Some(p) => {
                    self.buf.advance(p);
                    framer.push(&self.buf);
                    self.buf.clear();
                    *synced = true;
                }
                None => {
                    let keep = self.buf.len().min(HEP3.len() - 1);
                    let drop = self.buf.len() - keep;
                    self.buf.advance(drop);
                    return;
                }
            }
        }
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => match hep_glue::decode_sip(&frame, ts, &sink.cfg.hep) {
                    Ok(p) => {
                        sink.stats.sip += 1;
                        sink.out.push(p);
                    }
                    Err(r) => sink.stats.drop(r),
                },
                Ok(None) => break,
                Err(_) => {
                    sink.stats.drop(DropReason::BadHepFrame);
                    self.consumer = Consumer::Dead;
                    self.buf.clear();
                    break;
                }
            }
        }
    }

    /// Ends the stream: delivers what can be, counts what is left.
    fn close(&mut self, why: Close, sink: &mut Sink<'_>) {
        if why != Close::Fin {
            while self.skip_gap(sink) {}
        }
        let partial = match &self.consumer {
            Consumer::Sip(f) => f.holds_partial(&self.buf),
            Consumer::Ws(d) => d.holds_partial() || !self.buf.is_empty(),
            Consumer::Http => !self.buf.is_empty(),
            Consumer::Hep { .. } | Consumer::Dead => false,
        };
        if partial {
            sink.stats.drop(match why {
                Close::Fin | Close::Reset => DropReason::Truncated,
                Close::Idle | Close::Finish => DropReason::ReassemblyTimeout,
            });
        }
        self.buf.clear();
    }
}

/// All TCP streams of a decoder.
#[derive(Debug, Default)]
pub(crate) struct TcpTable {
    streams: HashMap<StreamKey, Stream>,
    /// Bytes held over all streams (the sum of their `charged`).
    held: usize,
    /// One entry per stream, at or before its real deadline.
    timers: BTreeMap<(Timestamp, u64), StreamKey>,
    next_timer: u64,
}

impl TcpTable {
    /// Number of streams tracked.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// Bytes held over all streams.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Brings [`TcpTable::held`] up to date with one stream's holdings.
    fn recharge(&mut self, key: &StreamKey) {
        if let Some(s) = self.streams.get_mut(key) {
            let now = s.held();
            self.held = self.held - s.charged + now;
            s.charged = now;
        }
    }

    /// Takes a stream out of the table and its bytes off the total.
    fn take(&mut self, key: &StreamKey) -> Option<Stream> {
        let s = self.streams.remove(key)?;
        self.timers.remove(&s.timer);
        self.held -= s.charged;
        Some(s)
    }

    /// Forgets a stream and everything it holds, counting the loss as
    /// `ReassemblyBudget` (the global byte budget ran out).
    pub(crate) fn evict(&mut self, key: &StreamKey, stats: &mut Stats) {
        if self.take(key).is_some() {
            stats.drop(DropReason::ReassemblyBudget);
        }
    }

    /// The earliest stream deadline.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// Takes one TCP segment.
    pub(crate) fn segment(&mut self, seg: Segment<'_>, sink: &mut Sink<'_>) {
        if seg.rst {
            // RFC 793: a reset ends both directions.
            for key in [seg.key, seg.key.reversed()] {
                self.close(key, Close::Reset, sink);
            }
            return;
        }
        if seg.syn {
            let same = self
                .streams
                .get(&seg.key)
                .is_some_and(|s| s.isn == Some(seg.seq));
            if !same {
                self.close(seg.key, Close::Reset, sink);
            }
        }
        if !self.streams.contains_key(&seg.key) {
            if !seg.syn && seg.payload.is_empty() {
                return; // ACK or FIN of a connection we know nothing of
            }
            if !seg.syn && !seg.hep && memmem::find(seg.payload, b"SIP/2.0").is_none() {
                // Joining a connection in the middle: only a segment with a
                // start line in it is worth a stream. This keeps the rest of
                // a full capture (HTTPS, databases...) out of the table.
                sink.stats.drop(DropReason::NotSip);
                return;
            }
            if self.streams.len() >= sink.cfg.max_tcp_streams {
                sink.stats.drop(DropReason::ReassemblyLimit);
                return;
            }
            self.create(&seg, sink.cfg);
        }
        let Some(s) = self.streams.get_mut(&seg.key) else {
            return; // created just above
        };
        s.last_seen = s.last_seen.max(seg.ts);
        let data_seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let off = s.offset_of(data_seq);
        if seg.fin && s.fin.is_none() {
            let end = off.saturating_add(i64::try_from(seg.payload.len()).unwrap_or(0));
            s.fin = Some((u64::try_from(end).unwrap_or(0), seg.ts));
        }
        s.accept(off, seg.payload, seg.ts, sink);
        // A hole that waited too long is given up when traffic goes on.
        while s.gap_deadline(sink.cfg).is_some_and(|d| d <= seg.ts) && s.skip_gap(sink) {}
        if s.fin_reached() {
            self.close(seg.key, Close::Fin, sink);
            return;
        }
        let deadline = s.deadline(sink.cfg);
        let key = seg.key;
        if deadline < s.timer.0 {
            self.timers.remove(&s.timer);
            s.timer = (deadline, self.next_timer);
            self.next_timer += 1;
            self.timers.insert(s.timer, seg.key);
        }
        self.recharge(&key);
    }

    fn create(&mut self, seg: &Segment<'_>, cfg: &DecoderConfig) {
        let consumer = if seg.hep {
            Consumer::Hep {
                framer: HepStreamFramer::new(MAX_HEP_FRAME),
                synced: false,
            }
        } else if seg.syn {
            Consumer::Sip(SipFramer::at_boundary())
        } else {
            Consumer::Sip(SipFramer::resync())
        };
        let timer = (seg.ts.saturating_add(cfg.tcp_idle_timeout), self.next_timer);
        self.next_timer += 1;
        self.timers.insert(timer, seg.key);
        let stream = Stream {
            key: seg.key,
            source: seg.source,
            isn: seg.syn.then_some(seg.seq),
            base_seq: if seg.syn {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            },
            next_off: 0,
            fin: None,
            ooo: BTreeMap::new(),
            ooo_cost: 0,
            far: None,
            buf: BytesMut::new(),
            buf_off: 0,
            marks: VecDeque::new(),
            consumer,
            last_seen: seg.ts,
            timer,
            charged: 0,
        };
        self.streams.insert(seg.key, stream);
    }

    fn close(&mut self, key: StreamKey, why: Close, sink: &mut Sink<'_>) {
        if let Some(mut s) = self.take(&key) {
            s.close(why, sink);
        }
    }

    /// Runs the timers due by `now`: skips holes that waited too long and
    /// closes idle streams.
    pub(crate) fn expire(&mut self, now: Timestamp, sink: &mut Sink<'_>) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            let Some(s) = self.streams.get_mut(&key) else {
                continue;
            };
            while s.gap_deadline(sink.cfg).is_some_and(|d| d <= now) && s.skip_gap(sink) {}
            if s.fin_reached() {
                self.close(key, Close::Fin, sink);
                continue;
            }
            if s.last_seen.saturating_add(sink.cfg.tcp_idle_timeout) <= now {
                self.close(key, Close::Idle, sink);
                continue;
            }
            s.timer = (s.deadline(sink.cfg), self.next_timer);
            self.next_timer += 1;
            self.timers.insert(s.timer, key);
            self.recharge(&key);
        }
    }

    /// End of input: every stream delivers what it can and is closed, in a
    /// fixed order so replays are reproducible.
    pub(crate) fn finish(&mut self, sink: &mut Sink<'_>) {
        let mut keys: Vec<StreamKey> = self.streams.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.close(key, Close::Finish, sink);
        }
        self.timers.clear();
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are small
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::frame::testutil::*;
    use crate::frame::{FrameDecoder, LinkType};

    const ISN: u32 = 1000;

    struct Run {
        d: FrameDecoder,
        out: Vec<SipPacket>,
    }

    impl Run {
        fn new(cfg: DecoderConfig) -> Self {
            Run {
                d: FrameDecoder::new(cfg),
                out: Vec::new(),
            }
        }

        fn default() -> Self {
            Run::new(DecoderConfig::default())
        }

        fn frame(&mut self, f: &[u8], at: Timestamp) {
            self.d
                .handle_frame(LinkType::RawIp, at, f, f.len(), Source::Pcap, &mut self.out);
        }

        /// A segment of 10.0.0.1:40000 -> 10.0.0.2:5060 whose data starts
        /// at stream offset `off` (the SYN is at ISN, data at ISN + 1).
        fn seg(&mut self, off: u32, f: Flags, data: &[u8], at: Timestamp) {
            let seq = if f.syn {
                ISN.wrapping_add(off)
            } else {
                ISN.wrapping_add(1).wrapping_add(off)
            };
            self.frame(&tcp_ipv4(40000, 5060, seq, f, data), at);
        }

        fn syn(&mut self) {
            self.seg(0, SYN, b"", ts(0));
        }

        fn payloads(&self) -> Vec<Vec<u8>> {
            self.out.iter().map(|p| p.payload.to_vec()).collect()
        }

        fn stats(&self) -> &Stats {
            self.d.stats()
        }
    }

    fn msgs(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| sip(i, &"x".repeat(i * 7))).collect()
    }

    #[test]
    fn several_messages_in_one_segment_with_keepalives() {
        let m = msgs(3);
        let mut r = Run::default();
        r.syn();
        let data = [&b"\r\n\r\n"[..], &m[0], b"\r\n", &m[1], &m[2], b"\r\n\r\n"].concat();
        r.seg(0, NONE, &data, ts(1));
        assert_eq!(r.payloads(), m);
        let p = &r.out[0];
        assert_eq!(p.src, "10.0.0.1:40000".parse().expect("addr"));
        assert_eq!(p.dst, "10.0.0.2:5060".parse().expect("addr"));
        assert_eq!(p.transport, Transport::Tcp);
        assert_eq!(p.source, Source::Pcap);
        assert_eq!(p.ts, ts(1));
        assert_eq!(r.stats().sip, 3);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn keepalive_only_segments_produce_nothing() {
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, b"\r\n\r\n", ts(1));
        r.seg(4, NONE, b"\r\n", ts(2));
        assert!(r.out.is_empty());
        assert_eq!(r.stats().total_drops(), 0);
        let m = sip(1, "abc");
        r.seg(6, NONE, &m, ts(3));
        assert_eq!(r.payloads(), vec![m]);
    }

    #[test]
    fn one_message_split_at_every_byte() {
        let m = sip(1, "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n");
        for cut in 1..m.len() {
            let mut r = Run::default();
            r.syn();
            r.seg(0, NONE, &m[..cut], ts(1));
            assert!(r.out.is_empty(), "cut {cut}");
            r.seg(cut as u32, NONE, &m[cut..], ts(2));
            assert_eq!(r.payloads(), vec![m.clone()], "cut {cut}");
            assert_eq!(r.out[0].ts, ts(1), "timestamp of the first byte");
            assert_eq!(r.stats().total_drops(), 0);
        }
    }

    #[test]
    fn byte_by_byte_stream() {
        let m = msgs(3);
        let data = m.concat();
        let mut r = Run::default();
        r.syn();
        for (i, b) in data.iter().enumerate() {
            r.seg(i as u32, NONE, &[*b], ts(i as i64));
        }
        assert_eq!(r.payloads(), m);
        assert_eq!(r.out[1].ts, ts(m[0].len() as i64));
    }

    #[test]
    fn retransmissions_are_deduplicated() {
        let m = msgs(3);
        let data = m.concat();
        let mut r = Run::default();
        r.syn();
        let (a, b) = (m[0].len(), m[0].len() + m[1].len());
        r.seg(0, NONE, &data[..b], ts(1));
        r.seg(0, NONE, &data[..b], ts(2)); // exact copy
        r.seg(a as u32, NONE, &data[a..], ts(3)); // overlaps the first
        r.seg(0, NONE, &data, ts(4)); // everything again
        assert_eq!(r.payloads(), m);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn out_of_order_segments_are_reordered() {
        let m = msgs(3);
        let data = m.concat();
        let third = data.len() / 3;
        let mut r = Run::default();
        r.syn();
        r.seg((2 * third) as u32, NONE, &data[2 * third..], ts(1));
        r.seg(third as u32, NONE, &data[third..2 * third], ts(2));
        assert!(r.out.is_empty());
        r.seg(0, NONE, &data[..third], ts(3));
        assert_eq!(r.payloads(), m);
        assert_eq!(r.out[0].ts, ts(3));
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let m = msgs(4);
        let data = m.concat();
        let mut r = Run::default();
        let isn = u32::MAX - 40;
        let send = |r: &mut Run, off: usize, f: Flags, d: &[u8]| {
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            let seq = if f.syn { isn } else { seq };
            r.frame(&tcp_ipv4(40000, 5060, seq, f, d), ts(1));
        };
        send(&mut r, 0, SYN, b"");
        for (i, chunk) in data.chunks(30).enumerate().rev() {
            send(&mut r, i * 30, NONE, chunk);
        }
        assert_eq!(r.payloads(), m);
    }

    /// Messages 0..3; the segment holding the start of message 1 is lost.
    fn lossy_stream(r: &mut Run) -> Vec<Vec<u8>> {
        let m = msgs(3);
        let (a, b) = (m[0].len(), m[0].len() + m[1].len());
        r.syn();
        r.seg(0, NONE, &m[0], ts(1));
        // m[1][..10] lost.
        r.seg(
            (a + 10) as u32,
            NONE,
            &[&m[1][10..], &m[2][..]].concat(),
            ts(2),
        );
        let _ = b;
        m
    }

    #[test]
    fn gap_times_out_then_resyncs() {
        let mut r = Run::default();
        let m = lossy_stream(&mut r);
        assert_eq!(r.payloads(), vec![m[0].clone()]);
        assert_eq!(r.d.poll_timeout(), Some(ts(7)));
        r.d.handle_timeout(ts(6));
        assert_eq!(r.stats().drops(DropReason::TcpGap), 0);
        r.d.handle_timeout(ts(7));
        assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
        let mut out = Vec::new();
        r.d.poll_packets(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, m[2]);
        assert_eq!(out[0].ts, ts(2));
    }

    #[test]
    fn gap_is_skipped_when_later_traffic_is_past_the_deadline() {
        let mut r = Run::default();
        let m = lossy_stream(&mut r);
        let end = m.concat().len();
        let m3 = sip(3, "later");
        r.seg(end as u32, NONE, &m3, ts(60));
        assert_eq!(r.payloads(), vec![m[0].clone(), m[2].clone(), m3]);
        assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
    }

    #[test]
    fn gap_is_skipped_when_the_buffer_is_full() {
        let cfg = DecoderConfig {
            max_tcp_stream_bytes: 600,
            ..DecoderConfig::default()
        };
        let mut r = Run::new(cfg);
        r.syn();
        let m: Vec<Vec<u8>> = (0..6).map(|i| sip(i, "body")).collect();
        let data = m.concat();
        // The first 10 bytes are lost; the rest arrives in 50-byte pieces.
        for (i, chunk) in data[10..].chunks(50).enumerate() {
            r.seg((10 + i * 50) as u32, NONE, chunk, ts(1));
        }
        assert!(r.stats().drops(DropReason::TcpGap) >= 1);
        // Everything after the first message made it.
        assert_eq!(r.payloads(), m[1..].to_vec());
    }

    #[test]
    fn missing_content_length_keeps_the_headers() {
        let bad = b"INVITE sip:b SIP/2.0\r\nCall-ID: x\r\n\r\n".to_vec();
        let good = sip(2, "ok");
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &[&bad[..], &good].concat(), ts(1));
        assert_eq!(r.payloads(), vec![bad, good]);
        assert_eq!(r.stats().drops(DropReason::BadContentLength), 1);
    }

    #[test]
    fn oversize_message_is_skipped() {
        let cfg = DecoderConfig {
            max_sip_message: 200,
            ..DecoderConfig::default()
        };
        let big = sip(1, &"y".repeat(300));
        let good = sip(2, "ok");
        let mut r = Run::new(cfg);
        r.syn();
        let data = [&big[..], &good].concat();
        for (i, c) in data.chunks(64).enumerate() {
            r.seg((i * 64) as u32, NONE, c, ts(1));
        }
        assert_eq!(r.payloads(), vec![good]);
        assert_eq!(r.stats().drops(DropReason::Oversize), 1);
    }

    #[test]
    fn non_sip_stream_counts_not_sip_once() {
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ts(1));
        r.seg(27, NONE, &[0x16; 500], ts(1));
        assert!(r.out.is_empty());
        assert_eq!(r.stats().drops(DropReason::NotSip), 1);
    }

    #[test]
    fn joining_mid_stream_skips_to_a_message_start() {
        let m = msgs(2);
        let mut r = Run::default();
        // No SYN seen: the capture began inside message 0.
        r.seg(0, NONE, &[&m[0][20..], &m[1][..]].concat(), ts(1));
        assert_eq!(r.payloads(), vec![m[1].clone()]);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn unknown_non_sip_connections_get_no_stream() {
        let mut r = Run::default();
        r.seg(0, NONE, &[0x17, 0x03, 0x03, 0, 20], ts(1));
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.stats().drops(DropReason::NotSip), 1);
        // The tail of a message: no stream until a start line shows up.
        let m = msgs(2);
        r.seg(100, NONE, &m[0][m[0].len() - 10..], ts(1));
        assert_eq!(r.d.tcp_streams(), 0);
        r.seg(100 + 10, NONE, &m[1], ts(1));
        assert_eq!(r.payloads(), vec![m[1].clone()]);
    }

    #[test]
    fn fin_closes_and_counts_a_cut_message() {
        let m = sip(1, "body");
        let mut r = Run::default();
        r.syn();
        r.seg(0, FIN, &m, ts(1));
        assert_eq!(r.payloads(), vec![m.clone()]);
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.stats().total_drops(), 0);

        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[..10], ts(1));
        r.seg(10, FIN, b"", ts(1));
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.stats().drops(DropReason::Truncated), 1);
    }

    #[test]
    fn fin_waits_for_out_of_order_data() {
        let m = sip(1, "body");
        let mut r = Run::default();
        r.syn();
        r.seg(10, FIN, &m[10..], ts(1));
        assert_eq!(r.d.tcp_streams(), 1);
        r.seg(0, NONE, &m[..10], ts(1));
        assert_eq!(r.payloads(), vec![m]);
        assert_eq!(r.d.tcp_streams(), 0);
    }

    #[test]
    fn rst_closes_both_directions() {
        let m = sip(1, "body");
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[..10], ts(1));
        // The other direction: 10.0.0.2:5060 -> 10.0.0.1:40000.
        let back = tcp_ipv4_addrs(B4, A4, 5060, 40000, 77, SYN, b"");
        r.frame(&back, ts(1));
        assert_eq!(r.d.tcp_streams(), 2);
        let rst = tcp_ipv4_addrs(B4, A4, 5060, 40000, 78, RST, b"");
        r.frame(&rst, ts(2));
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.stats().drops(DropReason::Truncated), 1);
    }

    #[test]
    fn new_syn_replaces_the_connection() {
        let m = sip(1, "body");
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[..10], ts(1));
        r.syn(); // a retransmitted SYN changes nothing
        r.seg(10, NONE, &m[10..], ts(1));
        assert_eq!(r.payloads(), vec![m.clone()]);
        // Port reuse: a new ISN starts a new stream.
        r.frame(&tcp_ipv4(40000, 5060, 5, SYN, b""), ts(2));
        r.frame(&tcp_ipv4(40000, 5060, 6, NONE, &m), ts(2));
        assert_eq!(r.out.len(), 2);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn idle_streams_expire() {
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, b"INVITE sip:x SIP/2.0\r\n", ts(1));
        assert_eq!(
            r.d.poll_timeout(),
            Some(ts(0).saturating_add(Duration::from_secs(300)))
        );
        r.d.handle_timeout(ts(300));
        assert_eq!(r.d.tcp_streams(), 1, "rescheduled from the last segment");
        assert_eq!(r.d.poll_timeout(), Some(ts(301)));
        r.d.handle_timeout(ts(301));
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.stats().drops(DropReason::ReassemblyTimeout), 1);
        assert_eq!(r.d.poll_timeout(), None);
    }

    #[test]
    fn finish_delivers_behind_holes_and_counts_partials() {
        let mut r = Run::default();
        let m = lossy_stream(&mut r);
        // Another stream with half a message.
        r.frame(&tcp_ipv4(40001, 5060, 1, SYN, b""), ts(1));
        r.frame(&tcp_ipv4(40001, 5060, 2, NONE, &m[0][..20]), ts(1));
        let mut out = Vec::new();
        r.d.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, m[2]);
        assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
        assert_eq!(r.stats().drops(DropReason::ReassemblyTimeout), 1);
        assert_eq!(r.d.tcp_streams(), 0);
        assert_eq!(r.d.poll_timeout(), None);
    }

    #[test]
    fn stream_limit_refuses_new_streams() {
        let cfg = DecoderConfig {
            max_tcp_streams: 1,
            ..DecoderConfig::default()
        };
        let m = sip(1, "x");
        let mut r = Run::new(cfg);
        r.syn();
        r.frame(&tcp_ipv4(40001, 5060, 1, SYN, b""), ts(1));
        r.frame(&tcp_ipv4(40001, 5060, 2, NONE, &m), ts(1));
        assert_eq!(r.stats().drops(DropReason::ReassemblyLimit), 2);
        assert!(r.out.is_empty());
        r.seg(0, NONE, &m, ts(1));
        assert_eq!(r.out.len(), 1);
    }

    #[test]
    fn one_bogus_far_segment_does_not_derail_the_stream() {
        let m = msgs(2);
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[0], ts(1));
        r.seg(50_000_000, NONE, b"garbage", ts(1));
        r.seg(m[0].len() as u32, NONE, &m[1], ts(1));
        assert_eq!(r.payloads(), m);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn a_confirmed_jump_resyncs() {
        let m = msgs(3);
        let mut r = Run::default();
        r.syn();
        r.seg(0, NONE, &m[0], ts(1));
        let far = 10_000_000u32;
        r.seg(far, NONE, &m[1], ts(2));
        r.seg(far + m[1].len() as u32, NONE, &m[2], ts(3));
        assert_eq!(r.payloads(), m);
        assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
    }

    #[test]
    fn vlan_separates_streams() {
        let m = sip(1, "x");
        let mut d = FrameDecoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        for vlan in [10u16, 20] {
            let mut f = Vec::new();
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .single_vlan(etherparse::VlanId::try_new(vlan).expect("vlan"))
                .ipv4(A4, B4, 64)
                .tcp(40000, 5060, 1, 1000)
                .write(&mut f, &m[..40])
                .expect("builds");
            d.handle_frame(
                LinkType::Ethernet,
                ts(1),
                &f,
                f.len(),
                Source::Live,
                &mut out,
            );
        }
        assert_eq!(d.tcp_streams(), 2);
    }

    /// Issue 7: in-order data that never completes a message counts
    /// against `max_tcp_stream_bytes` (it used to grow to
    /// `max_sip_message`, or without end when resynchronising on
    /// `INVITE SIP/2.0aaaa...`), and is dropped with a counter.
    #[test]
    fn in_order_data_without_a_message_end_is_capped() {
        let cfg = DecoderConfig {
            max_tcp_stream_bytes: 4096,
            ..DecoderConfig::default()
        };
        for (syn, head) in [
            (true, &b"INVITE sip:x SIP/2.0\r\nX-H: "[..]),
            (false, b"INVITE SIP/2.0"),
        ] {
            let mut r = Run::new(cfg.clone());
            if syn {
                r.syn();
            }
            let mut off = 0usize;
            let mut send = |r: &mut Run, d: &[u8]| {
                r.seg(off as u32, NONE, d, ts(1));
                off += d.len();
                assert!(r.d.held_bytes() <= 4096, "{}", r.d.held_bytes());
            };
            send(&mut r, head);
            for _ in 0..(1 << 20) / 512 {
                send(&mut r, &[b'a'; 512]);
            }
            assert!(
                r.stats().drops(DropReason::ReassemblyLimit) >= 1,
                "{head:?}"
            );
            assert_eq!(r.d.tcp_streams(), 1);
            // The stream goes on: a message after a line end is found.
            let m = sip(1, "ok");
            send(&mut r, b"\r\n");
            send(&mut r, &m);
            assert_eq!(r.payloads(), vec![m], "{head:?}");
        }
    }

    /// Issue 7: one byte budget over every stream and all IP fragments;
    /// the stream (or datagram) that would pass it is dropped and counted.
    #[test]
    fn global_budget_bounds_all_streams_and_fragments() {
        let cfg = DecoderConfig {
            max_total_bytes: 10_000,
            ..DecoderConfig::default()
        };
        let mut r = Run::new(cfg);
        // Streams holding out-of-order data behind a lost first segment.
        for port in 0..10u16 {
            r.frame(&tcp_ipv4(41000 + port, 5060, 1, SYN, b""), ts(1));
            r.frame(
                &tcp_ipv4(41000 + port, 5060, 100, NONE, &[b'x'; 2000]),
                ts(1),
            );
            assert!(r.d.held_bytes() <= 10_000, "{}", r.d.held_bytes());
        }
        let evicted = r.stats().drops(DropReason::ReassemblyBudget);
        assert!(evicted >= 5, "{evicted}");
        assert_eq!(r.d.tcp_streams(), 10 - evicted as usize);
        // No room left for a fragmented datagram either.
        let before = r.stats().drops(DropReason::ReassemblyBudget);
        let dg = udp_datagram_v4(&[b'y'; 3000]);
        for f in ipv4_fragments(9, &dg, 1480) {
            r.frame(&f, ts(1));
        }
        assert!(r.stats().drops(DropReason::ReassemblyBudget) > before);
        assert!(r.d.held_bytes() <= 10_000);
        assert_eq!(r.d.pending_datagrams(), 0);
        // Closing streams gives their bytes back.
        let mut out = Vec::new();
        r.d.finish(&mut out);
        assert_eq!(r.d.held_bytes(), 0);
    }

    /// A stream on `port` holding 2000 bytes of out-of-order data (the
    /// segment before it lost).
    fn hold_2000(r: &mut Run, port: u16) {
        r.frame(&tcp_ipv4(port, 5060, 1, SYN, b""), ts(1));
        r.frame(&tcp_ipv4(port, 5060, 100, NONE, &[b'x'; 2000]), ts(1));
    }

    /// Issue 7: one budget per process, not one per holder. Two frame
    /// decoders and a HEP framer's account share a budget: once the others
    /// hold most of it, a decoder's new stream (or datagram) is refused as
    /// `ReassemblyBudget`, however little that decoder holds itself. (With
    /// a budget each, every one of them could hold the whole limit.)
    #[test]
    fn decoders_and_hep_framers_share_one_budget() {
        let budget = crate::ByteBudget::new(10_000);
        let shared = DecoderConfig {
            budget: Some(budget.clone()),
            ..DecoderConfig::default()
        };
        // A HEP TCP connection holding a 7000-byte partial frame.
        let mut hep = budget.account();
        assert!(hep.set(7000));
        let mut a = Run::new(shared.clone());
        assert!(a.d.budget().same(&budget));
        hold_2000(&mut a, 41000);
        assert_eq!(a.d.tcp_streams(), 1, "{:?}", a.stats());
        assert_eq!(budget.used(), 7000 + a.d.held_bytes());
        // A second decoder (another capture file, the live tap): its
        // first stream passes the shared total and goes.
        let mut b = Run::new(shared);
        hold_2000(&mut b, 42000);
        assert_eq!(b.stats().drops(DropReason::ReassemblyBudget), 1);
        assert_eq!(b.d.tcp_streams(), 0);
        assert_eq!(b.d.held_bytes(), 0);
        // So is a fragmented datagram.
        let dg = udp_datagram_v4(&[b'y'; 3000]);
        for f in ipv4_fragments(9, &dg, 1480) {
            b.frame(&f, ts(1));
        }
        assert_eq!(
            b.stats().drops(DropReason::ReassemblyBudget),
            1 + 3,
            "each fragment"
        );
        assert_eq!(b.d.pending_datagrams(), 0);
        assert!(budget.used() <= budget.limit(), "{}", budget.used());
        // The holder that did not grow keeps what it has.
        assert_eq!(a.d.tcp_streams(), 1);
        assert!(hep.set(7000));
        // Once the HEP connection lets go, there is room again.
        drop(hep);
        hold_2000(&mut b, 42001);
        assert_eq!(b.d.tcp_streams(), 1, "{:?}", b.stats());
        assert_eq!(budget.used(), a.d.held_bytes() + b.d.held_bytes());
        // Closing streams, or dropping a decoder, gives the bytes back.
        let mut out = Vec::new();
        a.d.finish(&mut out);
        assert_eq!(budget.used(), b.d.held_bytes());
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    fn hep_seg(r: &mut Run, seq: u32, f: Flags, data: &[u8]) {
        r.frame(&tcp_ipv4(40000, 9060, seq, f, data), ts(1));
    }

    #[test]
    fn hep_over_tcp_split_and_batched() {
        let m = msgs(3);
        let stream: Vec<u8> = m
            .iter()
            .enumerate()
            .flat_map(|(i, x)| hep3(x, i as u32))
            .collect();
        for cut in [1, 5, 7, 40, stream.len() / 2, stream.len() - 1] {
            let mut r = Run::default();
            hep_seg(&mut r, 0, SYN, b"");
            hep_seg(&mut r, 1 + cut as u32, NONE, &stream[cut..]);
            hep_seg(&mut r, 1, NONE, &stream[..cut]);
            assert_eq!(r.payloads(), m, "cut {cut}");
            assert!(r.out.iter().all(|p| p.source == Source::Hep));
            assert_eq!(r.out[2].ts, ts(2));
            assert_eq!(r.stats().total_drops(), 0);
        }
    }

    #[test]
    fn hep_over_tcp_resyncs_on_the_magic() {
        let m = msgs(2);
        let h0 = hep3(&m[0], 0);
        let stream = [&h0[..], &hep3(&m[1], 1)].concat();
        // Joined mid-stream: the first packet's tail comes first.
        let mut r = Run::default();
        hep_seg(&mut r, 50, NONE, &stream[10..]);
        assert_eq!(r.payloads(), vec![m[1].clone()]);
        assert_eq!(r.stats().total_drops(), 0);
    }

    #[test]
    fn bad_hep_frame_kills_the_stream() {
        let m = sip(1, "x");
        let mut r = Run::default();
        hep_seg(&mut r, 0, SYN, b"");
        let mut bad = hep3(&m, 0);
        bad[4] = 0;
        bad[5] = 2; // length 2: impossible
        hep_seg(&mut r, 1, NONE, &bad);
        assert_eq!(r.stats().drops(DropReason::BadHepFrame), 1);
        // Later packets on the stream are ignored, not counted again.
        hep_seg(&mut r, 1 + bad.len() as u32, NONE, &hep3(&m, 1));
        assert!(r.out.is_empty());
        assert_eq!(r.stats().total_drops(), 1);
        // A new connection on the same ports starts afresh.
        hep_seg(&mut r, 5000, SYN, b"");
        hep_seg(&mut r, 5001, NONE, &hep3(&m, 1));
        assert_eq!(r.payloads(), vec![m]);
    }

    #[test]
    fn hep_over_tcp_after_a_gap() {
        let m = msgs(3);
        let hs: Vec<Vec<u8>> = m
            .iter()
            .enumerate()
            .map(|(i, x)| hep3(x, i as u32))
            .collect();
        let stream = hs.concat();
        let mut r = Run::default();
        hep_seg(&mut r, 0, SYN, b"");
        hep_seg(&mut r, 1, NONE, &hs[0]);
        // The first 10 bytes of the second packet are lost.
        let at = hs[0].len() + 10;
        hep_seg(&mut r, 1 + at as u32, NONE, &stream[at..]);
        r.d.handle_timeout(ts(60));
        r.d.poll_packets(&mut r.out);
        assert_eq!(r.payloads(), vec![m[0].clone(), m[2].clone()]);
        assert_eq!(r.stats().drops(DropReason::TcpGap), 1);
    }

    /// Cuts `data` into segments at `cuts`, sends them with bounded
    /// reordering and duplicates, and returns what came out.
    fn shuffled_run(
        data: &[u8],
        cuts: &[usize],
        swaps: &[(usize, usize)],
        dups: &[(usize, usize)],
    ) -> Vec<Vec<u8>> {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % data.len().max(1)).collect();
        bounds.push(0);
        bounds.push(data.len());
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        for (i, dist) in swaps {
            if segs.is_empty() {
                break;
            }
            let a = i % segs.len();
            let b = (a + dist % 4).min(segs.len() - 1);
            segs.swap(a, b);
        }
        for (at, len) in dups {
            let s = at % data.len().max(1);
            let e = (s + len % 300).min(data.len());
            let pos = (at / 7) % (segs.len() + 1);
            segs.insert(pos, (s, e));
        }
        let mut r = Run::default();
        r.syn();
        for (s, e) in segs {
            r.seg(s as u32, NONE, &data[s..e], ts(1));
        }
        r.payloads()
    }

    proptest! {
        #[test]
        fn random_segmentation_gives_the_same_messages(
            bodies in proptest::collection::vec("[a-z\r\n]{0,80}", 1..6),
            keepalive in proptest::collection::vec(any::<bool>(), 6),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            swaps in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..10),
            dups in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..5),
        ) {
            let m: Vec<Vec<u8>> = bodies.iter().enumerate().map(|(i, b)| sip(i, b)).collect();
            let mut data = Vec::new();
            for (i, msg) in m.iter().enumerate() {
                if keepalive[i] {
                    data.extend_from_slice(b"\r\n\r\n");
                }
                data.extend_from_slice(msg);
            }
            prop_assert_eq!(shuffled_run(&data, &cuts, &swaps, &dups), m);
        }
    }
}
