//! The I/O layer of the capture crate: libpcap files and live taps, and the
//! HEP listeners. Everything here only moves bytes between the outside world
//! and the sans-IO decoders in [`crate::frame`] and [`crate::hep`].

mod hep_listener;
mod limits;
mod live;
mod pcap_source;
mod udp_batch;

pub use hep_listener::{HepBind, HepListener, HepProto, ListenerConfig};
// The budget lives in the sans-IO core (the frame decoders share it); named
// here too, where the listener settings take it.
pub use crate::budget::{ByteBudget, Charge};
pub use live::{LiveReport, run_live, run_live_shared};
pub use pcap_source::{CutShort, LiveConfig, PcapSource, ReadStatus, check_filter};
