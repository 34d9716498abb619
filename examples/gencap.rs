//! Writes a large, realistic SIP capture for benchmarks and side-by-side
//! runs against tshark and sngrep (see `benches/side_by_side.sh`).
//!
//! `cargo run --release --example gencap -- OUT.pcap [CALLS] [--hep]`
#![allow(missing_docs)]

#[path = "../benches/gen/mod.rs"]
mod generator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: gencap OUT.pcap [CALLS] [--hep]");
        std::process::exit(2);
    };
    let calls = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let cfg = generator::GenConfig {
        calls,
        cps: 200,
        hep_copies: args.iter().any(|a| a == "--hep"),
        ..generator::GenConfig::default()
    };
    match generator::write_pcap(std::path::Path::new(out), &cfg) {
        Ok((frames, sip)) => {
            eprintln!("gencap: {out}: {calls} calls, {frames} frames, {sip} SIP messages")
        }
        Err(e) => {
            eprintln!("gencap: {e}");
            std::process::exit(1);
        }
    }
}
