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
mod tests;
