//! The I/O layer of the capture crate: libpcap files and live taps, and the
//! HEP listeners. Everything here only moves bytes between the outside world
//! and the sans-IO decoders in [`crate::frame`] and [`crate::hep`].

mod hep_listener;
mod limits;
mod live;
mod pcap_source;

pub use hep_listener::{HepBind, HepListener, HepProto, ListenerConfig};
pub use limits::ByteBudget;
pub use live::{LiveReport, run_live};
pub use pcap_source::{CutShort, LiveConfig, PcapSource, ReadStatus, check_filter};
