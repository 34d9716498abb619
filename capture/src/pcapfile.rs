//! Reading pcap and pcapng files: the records as frames with their link
//! type and timestamp, in 1 MiB reads.
//!
//! The formats are parsed by `pcap-parser` (rusticata). libpcap, which
//! read them before, reads a file through a stdio `FILE` of 4 KiB: about
//! 150,000 `read` calls for a 600 MB capture, which with libpcap's own
//! copying cost a tenth of `accurate replay`'s CPU time. Here a record is
//! handed over in place in the reader's buffer, and the buffer is refilled
//! a megabyte at a time.
//!
//! What libpcap did, kept: timestamps in nanoseconds (pcap's microsecond
//! files scaled; the record's 32-bit seconds read as libpcap reads them:
//! signed, its `bpf_int32`, when the file is in the host's byte order, so
//! that 0xffffffff is 1969, and unsigned, 2106, when it swaps them);
//! pcapng timestamps by each
//! interface's `if_tsresol` and `if_tsoffset`; a Simple Packet Block is
//! interface 0's, with no time (the epoch), cut to that interface's snap
//! length. Beyond libpcap: a pcapng file whose interfaces have different
//! link types is read (each frame decoded by its own interface's type;
//! libpcap refuses such a file).
//!
//! A record that cannot be read (the file ends inside it, a length that
//! does not add up, an interface that was never described) ends the file
//! there: [`Step::Damaged`] says at which byte offset and why, and every
//! record before it has been handed over.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::Timestamp;

/// The reader's buffer: one `read` fills up to this much.
const BUFFER: usize = 1 << 20;
/// The largest record (pcapng block) read: the buffer grows to it when a
/// block does not fit (libpcap's own bound for a pcapng block is 16 MiB).
const MAX_RECORD: usize = 16 << 20;

/// One captured frame, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame<'a> {
    /// The link type (DLT) of the interface it was captured on.
    pub(crate) link: u32,
    pub(crate) ts: Timestamp,
    /// The captured bytes.
    pub(crate) data: &'a [u8],
    /// The frame's length on the wire.
    pub(crate) orig_len: u32,
}

/// What one [`FileReader::next`] read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A frame, handed to the callback.
    Frame,
    /// A record that holds no frame (a header, interface or statistics
    /// block).
    Other,
    /// The end of the file, after a whole record.
    End,
    /// The record at `offset` cannot be read; nothing after it is.
    /// `truncated`: the file ends inside it (rather than it being
    /// malformed).
    Damaged {
        offset: u64,
        reason: String,
        truncated: bool,
    },
}

/// A pcapng interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: u32,
    /// Timestamp units per second (`None`: an `if_tsresol` beyond 64 bits).
    units: Option<u64>,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset: i64,
    snaplen: u32,
}

/// What the records read so far say about the ones to come.
#[derive(Debug, Default)]
struct Format {
    /// pcap: the file's link type, whether its timestamps are in
    /// nanoseconds, and whether their seconds are signed (see the module
    /// doc).
    legacy: Option<(u32, bool, bool)>,
    /// pcapng: the current section's interfaces.
    interfaces: Vec<Interface>,
}

/// A pcap or pcapng file being read.
pub(crate) struct FileReader {
    inner: Box<dyn PcapReaderIterator + Send>,
    /// The reader's buffer size (it grows for a larger record).
    capacity: usize,
    /// File offset of the next record.
    offset: u64,
    format: Format,
    done: bool,
}

impl FileReader {
    /// Starts reading `r`; fails when it does not start as a pcap or pcapng
    /// file (the message says why).
    pub(crate) fn new(r: impl Read + Send + 'static) -> Result<Self, String> {
        let inner = pcap_parser::create_reader(
            BUFFER,
            FullRead {
                inner: r,
                started: false,
            },
        )
        .map_err(|e| match e {
            PcapError::Eof | PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                "the file is too short to be a capture".to_string()
            }
            PcapError::HeaderNotRecognized => "not a pcap or pcapng file".to_string(),
            PcapError::ReadError => "read error".to_string(),
            e => format!("bad file header ({})", describe(&e)),
        })?;
        Ok(FileReader {
            inner,
            capacity: BUFFER,
            offset: 0,
            format: Format::default(),
            done: false,
        })
    }

    /// Reads records up to the first that holds frames or describes an
    /// interface, so that [`FileReader::first_link`] knows the file's link
    /// type. Frames are not skipped: a file whose first packet comes
    /// before any interface is reported damaged by `next`, as it would be.
    // Used by the `io` frame source; the fuzz build has only `files`.
    #[cfg_attr(not(feature = "io"), allow(dead_code))]
    pub(crate) fn read_header(&mut self) -> Result<(), Step> {
        while self.first_link().is_none() {
            let frame_next = matches!(
                self.inner.next(),
                Ok((
                    _,
                    PcapBlockOwned::Legacy(_)
                        | PcapBlockOwned::NG(Block::EnhancedPacket(_) | Block::SimplePacket(_))
                ))
            );
            if frame_next {
                return Ok(());
            }
            match self.next(|_| {}) {
                Step::Other => {}
                Step::Frame => return Ok(()),
                Step::End => return Ok(()),
                damaged @ Step::Damaged { .. } => return Err(damaged),
            }
        }
        Ok(())
    }

    /// The link type of the file (pcap) or of its first interface (pcapng),
    /// once read.
    // Used by the `io` frame source; the fuzz build has only `files`.
    #[cfg_attr(not(feature = "io"), allow(dead_code))]
    pub(crate) fn first_link(&self) -> Option<u32> {
        match self.format.legacy {
            Some((link, _, _)) => Some(link),
            None => self.format.interfaces.first().map(|i| i.link),
        }
    }

    /// Bytes of the file read so far (whole records).
    // Used by the `io` frame source; the fuzz build has only `files`.
    #[cfg_attr(not(feature = "io"), allow(dead_code))]
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record; a frame goes to `on_frame` before this
    /// returns [`Step::Frame`]. After `End` or `Damaged`, returns `End`.
    pub(crate) fn next(&mut self, on_frame: impl FnOnce(Frame<'_>)) -> Step {
        if self.done {
            return Step::End;
        }
        loop {
            return match self.inner.next() {
                Ok((len, block)) => match self.format.record(block, on_frame) {
                    Ok(step) => {
                        // No shift per record: the tail moves to the front
                        // only when the buffer is refilled.
                        self.inner.consume_noshift(len);
                        self.offset += len as u64;
                        step
                    }
                    Err(reason) => self.damaged(reason, false),
                },
                Err(PcapError::Eof) => {
                    self.done = true;
                    Step::End
                }
                Err(PcapError::Incomplete(_)) => match self.inner.refill() {
                    Ok(()) => continue,
                    Err(_) => self.damaged("read error".into(), false),
                },
                // The record does not fit in the buffer: double it, up to
                // twice the largest record.
                Err(PcapError::BufferTooSmall) if self.capacity < 2 * MAX_RECORD => {
                    self.capacity *= 2;
                    self.inner.grow(self.capacity);
                    match self.inner.refill() {
                        Ok(()) => continue,
                        Err(_) => self.damaged("read error".into(), false),
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    self.damaged(format!("a record of over {MAX_RECORD} bytes"), false)
                }
                Err(PcapError::UnexpectedEof) => {
                    self.damaged("the file ends inside this record".into(), true)
                }
                Err(e) => {
                    let reason = describe(&e);
                    self.damaged(reason, false)
                }
            };
        }
    }

    fn damaged(&mut self, reason: String, truncated: bool) -> Step {
        self.done = true;
        Step::Damaged {
            offset: self.offset,
            reason,
            truncated,
        }
    }
}

impl Format {
    /// Takes one record in: a frame goes to `on_frame` (`Step::Frame`),
    /// a header or interface is remembered (`Step::Other`); `Err` says why
    /// the record cannot be read.
    fn record(
        &mut self,
        block: PcapBlockOwned<'_>,
        on_frame: impl FnOnce(Frame<'_>),
    ) -> Result<Step, String> {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                let signed = h.is_bigendian() == cfg!(target_endian = "big");
                self.legacy = Some((link_of(h.network.0), h.is_nanosecond_precision(), signed));
            }
            PcapBlockOwned::Legacy(b) => {
                let (link, nanos, signed) = self.legacy.ok_or("a record before the file header")?;
                let frac = if nanos {
                    u64::from(b.ts_usec)
                } else {
                    u64::from(b.ts_usec) * 1_000
                };
                let secs = if signed {
                    i64::from(i32::from_ne_bytes(b.ts_sec.to_ne_bytes()))
                } else {
                    i64::from(b.ts_sec)
                };
                on_frame(Frame {
                    link,
                    ts: Timestamp::from_secs_nanos(secs, u32::try_from(frac).unwrap_or(0)),
                    data: b.data,
                    orig_len: b.origlen,
                });
                return Ok(Step::Frame);
            }
            // A new section describes its interfaces anew.
            PcapBlockOwned::NG(Block::SectionHeader(_)) => self.interfaces.clear(),
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.interfaces.push(Interface {
                    link: link_of(idb.linktype.0),
                    units: idb.ts_resolution(),
                    offset: idb.if_tsoffset,
                    snaplen: idb.snaplen,
                });
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let i = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| self.interfaces.get(i))
                    .ok_or_else(|| {
                        format!(
                            "a packet of interface {}, which was not described",
                            epb.if_id
                        )
                    })?;
                let data = usize::try_from(epb.caplen)
                    .ok()
                    .and_then(|n| epb.data.get(..n))
                    .ok_or_else(|| {
                        format!(
                            "a packet block shorter than its captured length {}",
                            epb.caplen
                        )
                    })?;
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                on_frame(Frame {
                    link: i.link,
                    ts: ng_time(ticks, i),
                    data,
                    orig_len: epb.origlen,
                });
                return Ok(Step::Frame);
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let i = self
                    .interfaces
                    .first()
                    .ok_or("a simple packet block before any interface")?;
                // libpcap: the captured length is the original length, at
                // most the snap length (0: none).
                let n = match i.snaplen {
                    0 => spb.origlen,
                    snap => spb.origlen.min(snap),
                };
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(spb.data.len());
                on_frame(Frame {
                    link: i.link,
                    ts: Timestamp::EPOCH,
                    data: &spb.data[..n],
                    orig_len: spb.origlen,
                });
                return Ok(Step::Frame);
            }
            PcapBlockOwned::NG(_) => {}
        }
        Ok(Step::Other)
    }
}

/// The first read gathers the file header whole (the parser wants it in
/// its first read: a pcap header, or a pcapng section header block, whose
/// length its own bytes give); later reads are single `read`s, so that a
/// pipe (tcpdump writing to it) hands over each packet as it comes, not a
/// megabyte at a time (pcap-parser's reader reads once more when it
/// starts, so the first packet waits for the second's bytes).
struct FullRead<R> {
    inner: R,
    started: bool,
}

/// Bytes the first read needs, given what it holds so far (`have`): a
/// pcapng section header block's length (at bytes 4..8, in the byte order
/// its byte-order magic at 8..12 gives), else a pcap header's 24.
fn header_len(have: &[u8]) -> usize {
    match have {
        [0x0a, 0x0d, 0x0d, 0x0a, l0, l1, l2, l3, bom @ ..] if bom.len() >= 4 => {
            let len = [*l0, *l1, *l2, *l3];
            let n = if bom[..4] == [0x4d, 0x3c, 0x2b, 0x1a] {
                u32::from_le_bytes(len)
            } else {
                u32::from_be_bytes(len)
            };
            usize::try_from(n).unwrap_or(usize::MAX).max(12)
        }
        [0x0a, 0x0d, 0x0d, 0x0a, ..] => 12,
        _ => 24,
    }
}

impl<R: Read> Read for FullRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let first = !self.started;
        self.started = true;
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
            if !first || n >= header_len(&buf[..n]) {
                break;
            }
        }
        Ok(n)
    }
}

/// A link type as the decoder takes it (a negative one matches none).
fn link_of(dlt: i32) -> u32 {
    u32::try_from(dlt).unwrap_or(u32::MAX)
}

fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "end of file".into(),
        PcapError::BufferTooSmall => "a record too large".into(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => {
            "the file ends inside a record".into()
        }
        PcapError::ReadError => "read error".into(),
        PcapError::HeaderNotRecognized => "not a pcap or pcapng file".into(),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("malformed record ({})", kind.description())
        }
    }
}

/// A pcapng timestamp of `ticks` in the interface's units, in nanoseconds.
fn ng_time(ticks: u64, i: &Interface) -> Timestamp {
    let Some(units) = i.units.filter(|u| *u > 0) else {
        return Timestamp::EPOCH;
    };
    let secs = i64::try_from(ticks / units)
        .unwrap_or(i64::MAX)
        .saturating_add(i.offset);
    let frac = u128::from(ticks % units) * 1_000_000_000 / u128::from(units);
    Timestamp::from_secs_nanos(secs, u32::try_from(frac).unwrap_or(0))
}

#[cfg(test)]
mod tests;
