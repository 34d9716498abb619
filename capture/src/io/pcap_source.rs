//! libpcap sources: pcap/pcapng files and live interfaces.
//!
//! libpcap reads both file formats (pcapng since 1.1) and hands us frames
//! with their link type and timestamp; [`FrameDecoder`] does the rest.
//!
//! A file that ends in the middle of a record (tcpdump still writing it, a
//! rotated or copied-too-early file) is not an error that loses data: every
//! complete frame before the cut is decoded, reassembly is flushed as at a
//! normal end, and [`ReadStatus::CutShort`] says so, with the byte offset of
//! the broken record in [`PcapSource::cut_short`]. libpcap does not expose
//! its file offset, so the offset is found by walking the file's record
//! headers ourselves (only then, at the cut).

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use pcap::{Active, Capture, Offline, Packet, Precision};

use crate::frame::{DecoderConfig, FrameDecoder, LinkType};
use crate::{CaptureError, DropReason, SipPacket, Source, Stats, Timestamp};

/// Settings of a live tap.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface name (`eth0`, `lo`, `any`).
    pub interface: String,
    /// Optional BPF filter, e.g. `udp port 5060 or tcp port 5060`.
    pub filter: Option<String>,
    /// Bytes captured per frame.
    pub snaplen: i32,
    /// Kernel buffer size in bytes.
    pub buffer_size: i32,
    /// Promiscuous mode (for SPAN ports).
    pub promisc: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interface: "any".into(),
            filter: None,
            snaplen: 65535,
            buffer_size: 32 << 20,
            promisc: true,
        }
    }
}

/// What one [`PcapSource::read_batch`] call ended on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// The batch is full; more frames may be waiting.
    Full,
    /// A live source has no frame ready now: wait for its fd to be readable.
    Idle,
    /// The file is finished (and the reassemblers flushed).
    End,
    /// The file could not be read past some point (cut short, or a damaged
    /// record): every frame before it was decoded and the reassemblers were
    /// flushed, as at [`ReadStatus::End`]; [`PcapSource::cut_short`] says
    /// where. Later calls return `End`.
    CutShort,
}

/// Where and why a capture file stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutShort {
    /// Frames libpcap returned before the cut (after the BPF filter, if
    /// any).
    pub frames: u64,
    /// Byte offset of the first record that is not whole in the file, when
    /// the file's structure could be walked to it.
    pub offset: Option<u64>,
    /// The file's length in bytes.
    pub file_len: Option<u64>,
    /// libpcap's message.
    pub reason: String,
}

impl fmt::Display for CutShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.offset, self.file_len) {
            (Some(off), Some(len)) => write!(
                f,
                "cut short: the record at byte offset {off} does not fit in the file's {len} bytes"
            )?,
            _ => write!(f, "cannot be read to its end")?,
        }
        write!(
            f,
            " ({} frames read before it; libpcap: {})",
            self.frames, self.reason
        )
    }
}

enum Handle {
    File(Capture<Offline>),
    // Non-blocking: an idle interface returns at once, and readiness comes
    // from polling the fd (libpcap's own read timeout is not honoured by
    // every kernel/libpcap pairing, so it is not relied on).
    Live(Capture<Active>),
}

impl Handle {
    fn next_packet(&mut self) -> Result<Packet<'_>, pcap::Error> {
        match self {
            Handle::File(c) => c.next_packet(),
            Handle::Live(c) => c.next_packet(),
        }
    }

    fn datalink(&self) -> i32 {
        match self {
            Handle::File(c) => c.get_datalink().0,
            Handle::Live(c) => c.get_datalink().0,
        }
    }
}

/// A pcap/pcapng file or a live interface, decoded into [`SipPacket`]s.
pub struct PcapSource {
    cap: Handle,
    link: Option<LinkType>,
    dlt: i32,
    decoder: FrameDecoder,
    source: Source,
    live: bool,
    bytes_read: u64,
    /// Frames of a link type we cannot decode (counted here, as the
    /// decoder never sees them).
    unsupported: Stats,
    /// The file, to locate a cut in it.
    path: Option<PathBuf>,
    /// Frames libpcap returned so far.
    frames: u64,
    /// No more frames will be read (end of file, or cut short).
    done: bool,
    cut: Option<CutShort>,
}

impl PcapSource {
    /// Opens a pcap or pcapng file.
    pub fn open_file(path: &Path, cfg: DecoderConfig) -> Result<Self, CaptureError> {
        Self::open_file_filtered(path, None, cfg)
    }

    /// Opens a pcap or pcapng file, keeping only the frames a BPF filter
    /// accepts (libpcap applies it, as `tcpdump -r FILE FILTER` does; e.g.
    /// `udp port 9060` for the HEP copies only, `not port 9060` for the raw
    /// SIP only).
    pub fn open_file_filtered(
        path: &Path,
        filter: Option<&str>,
        cfg: DecoderConfig,
    ) -> Result<Self, CaptureError> {
        let mut cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| {
            CaptureError::Pcap {
                what: format!("cannot read capture file {}", path.display()),
                reason: e.to_string(),
            }
        })?;
        if let Some(f) = filter {
            cap.filter(f, true).map_err(|e| CaptureError::Pcap {
                what: format!("bad BPF filter {f:?}"),
                reason: e.to_string(),
            })?;
        }
        let mut src = Self::new(Handle::File(cap), cfg, Source::Pcap, false);
        src.path = Some(path.to_path_buf());
        Ok(src)
    }

    /// Opens a live interface with an optional BPF filter.
    ///
    /// Needs CAP_NET_RAW (or root); a permission failure comes back as
    /// [`CaptureError::Permission`].
    pub fn open_live(live: &LiveConfig, cfg: DecoderConfig) -> Result<Self, CaptureError> {
        let err = |e: pcap::Error| {
            let reason = e.to_string();
            if reason.contains("ermission") || reason.contains("not permitted") {
                CaptureError::Permission(format!("interface {}: {reason}", live.interface))
            } else {
                CaptureError::Pcap {
                    what: format!("cannot open interface {}", live.interface),
                    reason,
                }
            }
        };
        let inactive = Capture::from_device(live.interface.as_str()).map_err(err)?;
        let mut cap = inactive
            .promisc(live.promisc)
            .snaplen(live.snaplen)
            .buffer_size(live.buffer_size)
            .immediate_mode(true)
            .precision(Precision::Nano)
            .open()
            .and_then(Capture::setnonblock)
            .map_err(err)?;
        if let Some(f) = &live.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Pcap {
                what: format!("bad BPF filter {f:?}"),
                reason: e.to_string(),
            })?;
        }
        Ok(Self::new(Handle::Live(cap), cfg, Source::Live, true))
    }

    fn new(cap: Handle, cfg: DecoderConfig, source: Source, live: bool) -> Self {
        let dlt = cap.datalink();
        let link = u32::try_from(dlt).ok().and_then(LinkType::from_linktype);
        PcapSource {
            cap,
            link,
            dlt,
            decoder: FrameDecoder::new(cfg),
            source,
            live,
            bytes_read: 0,
            unsupported: Stats::default(),
            path: None,
            frames: 0,
            done: false,
            cut: None,
        }
    }

    /// Where the file was cut short, once [`ReadStatus::CutShort`] was
    /// returned.
    pub fn cut_short(&self) -> Option<&CutShort> {
        self.cut.as_ref()
    }

    /// The capture's link type number (DLT).
    pub fn datalink(&self) -> i32 {
        self.dlt
    }

    /// The live capture's file descriptor, to poll for readability.
    pub fn live_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.cap {
            Handle::Live(c) => Some(c.as_raw_fd()),
            Handle::File(_) => None,
        }
    }

    /// Reads up to `max` frames, appending the SIP messages they complete to
    /// `out`. See [`ReadStatus`] for how it ends.
    pub fn read_batch(
        &mut self,
        max: usize,
        out: &mut Vec<SipPacket>,
    ) -> Result<ReadStatus, CaptureError> {
        if self.done {
            return Ok(ReadStatus::End);
        }
        for _ in 0..max {
            match self.cap.next_packet() {
                Ok(p) => {
                    self.frames += 1;
                    let ts = Timestamp::from_secs_nanos(
                        p.header.ts.tv_sec,
                        // libpcap opened with nanosecond precision puts
                        // nanoseconds (< 1e9) in tv_usec.
                        u32::try_from(p.header.ts.tv_usec).unwrap_or(0),
                    );
                    self.bytes_read += u64::from(p.header.caplen) + 16;
                    let orig_len = usize::try_from(p.header.len).unwrap_or(usize::MAX);
                    if let Some(t) = self.decoder.poll_timeout()
                        && t <= ts
                    {
                        self.decoder.handle_timeout(ts);
                    }
                    match self.link {
                        Some(link) => {
                            self.decoder
                                .handle_frame(link, ts, p.data, orig_len, self.source, out)
                        }
                        None => {
                            self.unsupported.packets += 1;
                            self.unsupported.bytes += p.data.len() as u64;
                            self.unsupported.drop(DropReason::UnsupportedLinkType);
                        }
                    }
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.done = true;
                    self.decoder.finish(out);
                    return Ok(ReadStatus::End);
                }
                Err(pcap::Error::TimeoutExpired) if self.live => return Ok(ReadStatus::Idle),
                // A file read fails only on a record libpcap cannot read
                // whole: keep everything before it.
                Err(e) if !self.live => {
                    self.done = true;
                    self.decoder.finish(out);
                    let at = self.path.as_deref().and_then(locate_cut);
                    self.cut = Some(CutShort {
                        frames: self.frames,
                        offset: at.and_then(|(off, _)| off),
                        file_len: at.map(|(_, len)| len),
                        reason: match e {
                            pcap::Error::PcapError(m) => m,
                            e => e.to_string(),
                        },
                    });
                    return Ok(ReadStatus::CutShort);
                }
                Err(e) => {
                    return Err(CaptureError::Pcap {
                        what: "capture read failed".into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(ReadStatus::Full)
    }

    /// Runs reassembly timeouts at `now` (live sources call this with the
    /// wall clock when the interface is idle), appending what they release.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut Vec<SipPacket>) {
        if self.decoder.poll_timeout().is_some_and(|t| t <= now) {
            self.decoder.handle_timeout(now);
        }
        self.decoder.poll_packets(out);
    }

    /// Ends the input: flushes and counts half-done reassembly.
    pub fn finish(&mut self, out: &mut Vec<SipPacket>) {
        self.decoder.finish(out);
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.decoder.stats().clone();
        s.merge(&self.unsupported);
        s
    }

    /// Approximate bytes of the file consumed (record headers included), for
    /// progress bars.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Frames the kernel dropped before libpcap saw them (live sources).
    pub fn kernel_drops(&mut self) -> Option<u32> {
        match &mut self.cap {
            Handle::Live(c) => c.stats().ok().map(|s| s.dropped + s.if_dropped),
            Handle::File(_) => None,
        }
    }
}

/// Byte offset of the first record of a pcap or pcapng file that does not
/// fit in the file (`None` when every record is whole), with the file's
/// length. `None` altogether when the file cannot be read or is neither
/// format. Reads only record headers.
fn locate_cut(path: &Path) -> Option<(Option<u64>, u64)> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).ok()?;
    r.rewind().ok()?;
    let off = match magic {
        // pcap, micro- and nanosecond variants, either byte order.
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => walk_pcap(&mut r, len, false),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => walk_pcap(&mut r, len, true),
        // pcapng Section Header Block.
        [0x0a, 0x0d, 0x0d, 0x0a] => walk_pcapng(&mut r, len),
        _ => return None,
    };
    Some((off, len))
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    })
}

/// pcap: a 24-byte file header, then records of a 16-byte header (captured
/// length at bytes 8..12) and the captured bytes.
fn walk_pcap<R: Read + Seek>(r: &mut BufReader<R>, len: u64, big_endian: bool) -> Option<u64> {
    const FILE_HEADER: u64 = 24;
    const RECORD_HEADER: u64 = 16;
    let mut pos = FILE_HEADER;
    if len < pos {
        return Some(0);
    }
    r.seek(std::io::SeekFrom::Start(pos)).ok()?;
    let mut h = [0u8; 16];
    loop {
        if pos == len {
            return None;
        }
        if len - pos < RECORD_HEADER {
            return Some(pos);
        }
        r.read_exact(&mut h).ok()?;
        let caplen = u64::from(u32_at(&h, 8, big_endian)?);
        if len - pos - RECORD_HEADER < caplen {
            return Some(pos);
        }
        r.seek_relative(i64::try_from(caplen).ok()?).ok()?;
        pos += RECORD_HEADER + caplen;
    }
}

/// pcapng: blocks of type, total length (a multiple of 4, at least 12),
/// body, total length again. Each Section Header Block sets the byte order
/// (its magic 0x1A2B3C4D follows the length).
fn walk_pcapng<R: Read + Seek>(r: &mut BufReader<R>, len: u64) -> Option<u64> {
    const SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    let mut pos = 0u64;
    let mut big_endian = false;
    let mut h = [0u8; 12];
    loop {
        if pos == len {
            return None;
        }
        if len - pos < 12 {
            return Some(pos);
        }
        r.read_exact(&mut h).ok()?;
        if h[..4] == SHB {
            big_endian = h[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
        }
        let total = u64::from(u32_at(&h, 4, big_endian)?);
        if total < 12 || total % 4 != 0 || len - pos < total {
            return Some(pos);
        }
        r.seek_relative(i64::try_from(total - 12).ok()?).ok()?;
        pos += total;
    }
}

/// Checks a BPF filter for syntax against an Ethernet link, without opening
/// an interface (for `accurate config check`).
pub fn check_filter(filter: &str) -> Result<(), CaptureError> {
    let dead = Capture::dead(pcap::Linktype::ETHERNET).map_err(|e| CaptureError::Pcap {
        what: "cannot create a BPF compiler".into(),
        reason: e.to_string(),
    })?;
    dead.compile(filter, true)
        .map(|_| ())
        .map_err(|e| CaptureError::Pcap {
            what: format!("bad BPF filter {filter:?}"),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filter_is_refused() {
        assert!(check_filter("udp port 5060").is_ok());
        let e = check_filter("udp port nonsense(").unwrap_err();
        assert!(e.to_string().contains("bad BPF filter"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = PcapSource::open_file(Path::new("/nonexistent/x.pcap"), DecoderConfig::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/x.pcap"), "{e}");
    }

    fn captures(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../captures")
            .join(name)
    }

    /// Writes the first `keep` bytes of `name` to a temporary file.
    fn cut_copy(name: &str, keep: usize) -> PathBuf {
        let data = std::fs::read(captures(name)).unwrap();
        let dir = std::env::temp_dir().join(format!("accurate-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{keep}-{name}"));
        std::fs::write(&p, &data[..keep]).unwrap();
        p
    }

    fn read_all(path: &Path) -> (Vec<SipPacket>, ReadStatus, PcapSource) {
        let mut src = PcapSource::open_file(path, DecoderConfig::default()).unwrap();
        let mut out = Vec::new();
        loop {
            match src.read_batch(7, &mut out).unwrap() {
                ReadStatus::Full => {}
                st => return (out, st, src),
            }
        }
    }

    #[test]
    fn whole_files_have_no_cut() {
        for name in ["answered-caller-bye.pcap", "answered-pcapng.pcapng"] {
            assert_eq!(locate_cut(&captures(name)).unwrap().0, None, "{name}");
        }
    }

    /// Regression: a file cut in its last record (tcpdump still writing)
    /// lost the whole last batch and the reassemblers' contents; now every
    /// whole frame is decoded and the cut is located.
    #[test]
    fn file_cut_in_its_last_record_keeps_every_whole_frame() {
        for name in ["answered-caller-bye.pcap", "answered-pcapng.pcapng"] {
            let whole = captures(name);
            let (all, st, _) = read_all(&whole);
            assert_eq!(st, ReadStatus::End);
            let len = std::fs::metadata(&whole).unwrap().len();
            // Find where the last record starts by cutting one byte off.
            let short = cut_copy(name, usize::try_from(len).unwrap() - 1);
            let (_, last_start) = {
                let (off, l) = locate_cut(&short).unwrap();
                (l, off.unwrap())
            };
            // Cut in the middle of the last record, and inside its header.
            for keep in [(last_start + len) / 2, last_start + 5] {
                let cut = cut_copy(name, usize::try_from(keep).unwrap());
                let (got, st, mut src) = read_all(&cut);
                assert_eq!(st, ReadStatus::CutShort, "{name} at {keep}");
                let c = src.cut_short().unwrap().clone();
                assert_eq!(c.offset, Some(last_start), "{name}: {c}");
                assert_eq!(c.file_len, Some(keep));
                assert!(c.to_string().contains(&last_start.to_string()), "{c}");
                // Every message but the last frame's (these captures end
                // on a SIP message in one UDP frame).
                assert_eq!(got.len() + 1, all.len(), "{name} at {keep}");
                assert_eq!(
                    got.iter().map(|p| &p.payload).collect::<Vec<_>>(),
                    all.iter()
                        .take(got.len())
                        .map(|p| &p.payload)
                        .collect::<Vec<_>>()
                );
                // Finished: later reads return End.
                assert_eq!(src.read_batch(7, &mut Vec::new()).unwrap(), ReadStatus::End);
            }
        }
    }
}
