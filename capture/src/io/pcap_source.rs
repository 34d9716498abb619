//! Frame sources: pcap/pcapng files and live interfaces.
//!
//! Files are read by `crate::pcapfile` (pcap-parser, 1 MiB reads), live
//! interfaces by libpcap; both hand over frames with their link type and
//! timestamp, and [`FrameDecoder`] does the rest. A BPF filter on a file is
//! compiled by libpcap for the file's link type and run on each frame.
//!
//! A file that ends in the middle of a record (tcpdump still writing it, a
//! rotated or copied-too-early file) is not an error that loses data: every
//! complete frame before the cut is decoded, reassembly is flushed as at a
//! normal end, and [`ReadStatus::CutShort`] says so, with the byte offset of
//! the broken record in [`PcapSource::cut_short`].

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap::{Active, BpfProgram, Capture, Linktype, Precision};

use crate::pcapfile::{FileReader, Frame, Step};

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
    /// Frames read before the cut (after the BPF filter, if any).
    pub frames: u64,
    /// Byte offset of the first record that cannot be read.
    pub offset: Option<u64>,
    /// The file's length in bytes (when known).
    pub file_len: Option<u64>,
    /// What is wrong with that record.
    pub reason: String,
    /// The file ends inside that record (tcpdump still writing it, a copy
    /// made too early), rather than the record being malformed.
    pub truncated: bool,
}

impl fmt::Display for CutShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.offset, self.file_len) {
            (Some(off), Some(len)) if self.truncated => write!(
                f,
                "cut short: the record at byte offset {off} does not fit in the file's {len} bytes"
            )?,
            (Some(off), _) => write!(f, "damaged: the record at byte offset {off} cannot be read")?,
            _ => write!(f, "cannot be read to its end")?,
        }
        write!(
            f,
            " ({} frames read before it: {})",
            self.frames, self.reason
        )
    }
}

enum Handle {
    File(Box<FileSource>),
    // Non-blocking: an idle interface returns at once, and readiness comes
    // from polling the fd (libpcap's own read timeout is not honoured by
    // every kernel/libpcap pairing, so it is not relied on).
    Live(Capture<Active>),
}

/// A capture file and its BPF filter.
struct FileSource {
    reader: FileReader,
    file_len: Option<u64>,
    filter: Option<FileFilter>,
}

/// A BPF filter compiled for each link type the file's frames have (a
/// pcapng file may have several).
struct FileFilter {
    text: String,
    /// `None`: the filter does not compile for that link type, so no frame
    /// of it passes.
    compiled: Vec<(u32, Option<BpfProgram>)>,
}

impl FileFilter {
    fn compile(text: &str, link: u32) -> Result<BpfProgram, pcap::Error> {
        let dlt = i32::try_from(link).unwrap_or(-1);
        Capture::dead(Linktype(dlt))?.compile(text, true)
    }

    fn passes(&mut self, link: u32, frame: &[u8]) -> bool {
        let i = match self.compiled.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                let prog = Self::compile(&self.text, link).ok();
                self.compiled.push((link, prog));
                self.compiled.len() - 1
            }
        };
        self.compiled[i].1.as_ref().is_some_and(|p| p.filter(frame))
    }
}

/// A pcap/pcapng file or a live interface, decoded into [`SipPacket`]s.
pub struct PcapSource {
    cap: Handle,
    dlt: i32,
    decode: Decoding,
    bytes_read: u64,
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
    /// accepts (as `tcpdump -r FILE FILTER` does; e.g. `udp port 9060` for
    /// the HEP copies only, `not port 9060` for the raw SIP only).
    pub fn open_file_filtered(
        path: &Path,
        filter: Option<&str>,
        cfg: DecoderConfig,
    ) -> Result<Self, CaptureError> {
        let what = || format!("cannot read capture file {}", path.display());
        let file = File::open(path).map_err(|e| CaptureError::Pcap {
            what: what(),
            reason: e.to_string(),
        })?;
        let file_len = file.metadata().ok().map(|m| m.len());
        Self::from_reader(file, file_len, filter, cfg).map_err(|e| match e {
            CaptureError::Pcap { what: w, reason } if w.is_empty() => CaptureError::Pcap {
                what: what(),
                reason,
            },
            e => e,
        })
    }

    /// Reads a pcap or pcapng file from `r` (`file_len`, when known, goes
    /// into [`CutShort`]). As [`PcapSource::open_file_filtered`].
    pub fn from_reader(
        r: impl Read + Send + 'static,
        file_len: Option<u64>,
        filter: Option<&str>,
        cfg: DecoderConfig,
    ) -> Result<Self, CaptureError> {
        let mut reader = FileReader::new(r).map_err(|reason| CaptureError::Pcap {
            what: String::new(),
            reason,
        })?;
        // The file's link type, for the filter (and `datalink`). A file
        // damaged this early still opens: reading it says where.
        let header = reader.read_header();
        let first = reader.first_link();
        let filter = match filter {
            None => None,
            Some(f) => {
                // A bad filter is refused at once, as libpcap's setfilter
                // did, for the file's own link type (Ethernet if unknown).
                let link = first.unwrap_or(1);
                let prog = FileFilter::compile(f, link).map_err(|e| CaptureError::Pcap {
                    what: format!("bad BPF filter {f:?}"),
                    reason: e.to_string(),
                })?;
                Some(FileFilter {
                    text: f.to_string(),
                    compiled: vec![(link, Some(prog))],
                })
            }
        };
        let dlt = first.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1);
        let mut src = Self::new(
            Handle::File(Box::new(FileSource {
                reader,
                file_len,
                filter,
            })),
            dlt,
            cfg,
            Source::Pcap,
        );
        if let Err(Step::Damaged {
            offset,
            reason,
            truncated,
        }) = header
        {
            src.done = true;
            src.cut = Some(CutShort {
                frames: 0,
                offset: Some(offset),
                file_len,
                reason,
                truncated,
            });
        }
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
        let dlt = cap.get_datalink().0;
        Ok(Self::new(Handle::Live(cap), dlt, cfg, Source::Live))
    }

    fn new(cap: Handle, dlt: i32, cfg: DecoderConfig, source: Source) -> Self {
        PcapSource {
            cap,
            dlt,
            decode: Decoding {
                decoder: FrameDecoder::new(cfg),
                source,
                unsupported: Stats::default(),
                frames: 0,
            },
            bytes_read: 0,
            done: false,
            cut: None,
        }
    }

    /// Where the file was cut short, once [`ReadStatus::CutShort`] was
    /// returned.
    pub fn cut_short(&self) -> Option<&CutShort> {
        self.cut.as_ref()
    }

    /// The capture's link type number (DLT); a pcapng file's first
    /// interface's (-1 if the file describes none).
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
        match &mut self.cap {
            Handle::File(_) => Ok(self.read_file(max, out)),
            Handle::Live(_) => self.read_live(max, out),
        }
    }

    fn read_file(&mut self, max: usize, out: &mut Vec<SipPacket>) -> ReadStatus {
        let Handle::File(f) = &mut self.cap else {
            return ReadStatus::End;
        };
        let decode = &mut self.decode;
        let mut read = 0;
        while read < max {
            let filter = &mut f.filter;
            let step = f.reader.next(|fr| {
                if filter.as_mut().is_none_or(|x| x.passes(fr.link, fr.data)) {
                    decode.frame(fr, out);
                }
            });
            self.bytes_read = f.reader.offset();
            match step {
                Step::Frame => read += 1,
                Step::Other => {}
                Step::End => {
                    self.done = true;
                    decode.decoder.finish(out);
                    return ReadStatus::End;
                }
                Step::Damaged {
                    offset,
                    reason,
                    truncated,
                } => {
                    self.done = true;
                    decode.decoder.finish(out);
                    self.cut = Some(CutShort {
                        frames: decode.frames,
                        offset: Some(offset),
                        file_len: f.file_len,
                        reason,
                        truncated,
                    });
                    return ReadStatus::CutShort;
                }
            }
        }
        ReadStatus::Full
    }

    fn read_live(
        &mut self,
        max: usize,
        out: &mut Vec<SipPacket>,
    ) -> Result<ReadStatus, CaptureError> {
        let Handle::Live(cap) = &mut self.cap else {
            return Ok(ReadStatus::End);
        };
        for _ in 0..max {
            match cap.next_packet() {
                Ok(p) => {
                    self.bytes_read += u64::from(p.header.caplen) + 16;
                    self.decode.frame(
                        Frame {
                            link: u32::try_from(self.dlt).unwrap_or(u32::MAX),
                            ts: Timestamp::from_secs_nanos(
                                p.header.ts.tv_sec,
                                // libpcap opened with nanosecond precision puts
                                // nanoseconds (< 1e9) in tv_usec.
                                u32::try_from(p.header.ts.tv_usec).unwrap_or(0),
                            ),
                            data: p.data,
                            orig_len: p.header.len,
                        },
                        out,
                    );
                }
                Err(pcap::Error::TimeoutExpired) => return Ok(ReadStatus::Idle),
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
        let d = &mut self.decode.decoder;
        if d.poll_timeout().is_some_and(|t| t <= now) {
            d.handle_timeout(now);
        }
        d.poll_packets(out);
    }

    /// Ends the input: flushes and counts half-done reassembly.
    pub fn finish(&mut self, out: &mut Vec<SipPacket>) {
        self.decode.decoder.finish(out);
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.decode.decoder.stats().clone();
        s.merge(&self.decode.unsupported);
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

/// Where [`PcapSource`] hands frames: the decoder and the counters kept
/// beside it.
struct Decoding {
    decoder: FrameDecoder,
    source: Source,
    /// Frames of a link type we cannot decode (counted here, as the
    /// decoder never sees them).
    unsupported: Stats,
    /// Frames read so far (after the filter).
    frames: u64,
}

impl Decoding {
    fn frame(&mut self, fr: Frame<'_>, out: &mut Vec<SipPacket>) {
        self.frames += 1;
        if let Some(t) = self.decoder.poll_timeout()
            && t <= fr.ts
        {
            self.decoder.handle_timeout(fr.ts);
        }
        let orig_len = usize::try_from(fr.orig_len).unwrap_or(usize::MAX);
        match LinkType::from_linktype(fr.link) {
            Some(link) => {
                self.decoder
                    .handle_frame(link, fr.ts, fr.data, orig_len, self.source, out)
            }
            None => {
                self.unsupported.packets += 1;
                self.unsupported.bytes += fr.data.len() as u64;
                self.unsupported.drop(DropReason::UnsupportedLinkType);
            }
        }
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
    use std::path::PathBuf;

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
            let (_, st, src) = read_all(&short);
            assert_eq!(st, ReadStatus::CutShort);
            let last_start = src.cut_short().unwrap().offset.unwrap();
            assert!(last_start > 0 && last_start < len);
            // Cut in the middle of the last record, and inside its header.
            for keep in [(last_start + len) / 2, last_start + 5] {
                let cut = cut_copy(name, usize::try_from(keep).unwrap());
                let (got, st, mut src) = read_all(&cut);
                assert_eq!(st, ReadStatus::CutShort, "{name} at {keep}");
                let c = src.cut_short().unwrap().clone();
                assert_eq!(c.offset, Some(last_start), "{name}: {c}");
                assert!(c.truncated, "{name}: {c}");
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
