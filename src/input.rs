//! Opening the capture files named on the command line, with exit codes
//! that say what went wrong (see [`crate::exit`]).

use std::path::Path;

use capture::frame::DecoderConfig;
use capture::io::{CutShort, PcapSource};

use crate::exit::Failure;

/// Opens a pcap/pcapng file. A file that is missing, unreadable or a
/// folder is a missing input (66, with the OS error once); one libpcap
/// cannot read as a capture is bad data (65).
pub(crate) fn open_capture(
    path: &Path,
    filter: Option<&str>,
    cfg: DecoderConfig,
) -> anyhow::Result<PcapSource> {
    let input = |source| Failure::Input {
        what: "capture file",
        path: path.to_path_buf(),
        source,
    };
    // libpcap's own message for these is a string; ask the OS first.
    let f = std::fs::File::open(path).map_err(input)?;
    if f.metadata().map_err(input)?.is_dir() {
        return Err(input(std::io::Error::from(std::io::ErrorKind::IsADirectory)).into());
    }
    drop(f);
    Ok(PcapSource::open_file_filtered(path, filter, cfg)?)
}

/// The error for a capture file that was cut short (65), once everything
/// before the cut has been used and printed.
pub(crate) fn cut_short(path: &Path, cut: Option<&CutShort>) -> Failure {
    match cut {
        Some(c) => Failure::Data(format!("capture file {}: {c}", path.display())),
        None => Failure::Data(format!("capture file {}: cut short", path.display())),
    }
}
