//! AccuRate capture layer.
//!
//! Turns every way SIP reaches us — HEP v1/v2/v3 over UDP and TCP, pcap and
//! pcapng files, live libpcap taps — into one stream of [`SipPacket`]s.
//!
//! The codecs (HEP, link layer, IP reassembly, TCP reassembly) are sans-IO:
//! bytes and timestamps in, packets and counters out. The `files` feature
//! adds the pcap/pcapng file reader (`pcapfile`, over any `Read`); the `io`
//! feature (which includes it) the tokio listeners and the frame sources on
//! top.
#![forbid(unsafe_code)]

mod budget;
mod error;
pub mod frame;
pub mod hep;
#[cfg(feature = "io")]
pub mod io;
mod packet;
#[cfg(feature = "files")]
mod pcapfile;
mod stats;

pub use budget::{ByteBudget, Charge};
pub use error::CaptureError;
pub use packet::{SipPacket, Source, Timestamp, Transport};
pub use stats::{DropReason, SharedStats, Stats, StatsPublisher};

// The HEP codec types most callers name.
pub use hep::{HepConfig, HepError, HepPacket};

// The capture-frame path (pcap files and live taps).
pub use frame::{DecoderConfig, FrameDecoder, LinkType};
