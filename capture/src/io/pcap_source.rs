//! libpcap sources: pcap/pcapng files and live interfaces.
//!
//! libpcap reads both file formats (pcapng since 1.1) and hands us frames
//! with their link type and timestamp; [`FrameDecoder`] does the rest.

use std::path::Path;

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
        Ok(Self::new(Handle::File(cap), cfg, Source::Pcap, false))
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
        }
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
        for _ in 0..max {
            match self.cap.next_packet() {
                Ok(p) => {
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
                    self.decoder.finish(out);
                    return Ok(ReadStatus::End);
                }
                Err(pcap::Error::TimeoutExpired) if self.live => return Ok(ReadStatus::Idle),
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
}
