//! The reader against libpcap (which read the files before) on the
//! repository's captures and on files written here in every variant, and
//! on what libpcap does not read: mixed link types, damaged records.

use std::io::Read;
#[cfg(feature = "io")]
use std::path::{Path, PathBuf};

#[cfg(feature = "io")]
use pcap::{Capture, Precision};

use super::*;

/// What a reader hands over, in order: (link, ts, data, orig_len).
type Frames = Vec<(u32, i64, Vec<u8>, u32)>;

#[cfg(feature = "io")]
/// Link types as the decoder sees them (libpcap names LINKTYPE_RAW, 101,
/// by its DLT, 12; both decode as raw IP).
fn decoded(f: &Frames) -> Vec<(Option<crate::frame::LinkType>, i64, &[u8], u32)> {
    f.iter()
        .map(|(l, t, d, o)| (crate::frame::LinkType::from_linktype(*l), *t, &d[..], *o))
        .collect()
}

fn ours(bytes: Vec<u8>) -> (Frames, Step) {
    let mut r = FileReader::new(std::io::Cursor::new(bytes)).unwrap();
    let mut got = Frames::new();
    loop {
        let step = r.next(|f| got.push((f.link, f.ts.as_nanos(), f.data.to_vec(), f.orig_len)));
        match step {
            Step::Frame | Step::Other => {}
            end => return (got, end),
        }
    }
}

#[cfg(feature = "io")]
fn libpcaps(path: &Path) -> Frames {
    let mut c = Capture::from_file_with_precision(path, Precision::Nano).unwrap();
    let link = u32::try_from(c.get_datalink().0).unwrap();
    let mut got = Frames::new();
    while let Ok(p) = c.next_packet() {
        let ts = Timestamp::from_secs_nanos(
            p.header.ts.tv_sec,
            u32::try_from(p.header.ts.tv_usec).unwrap_or(0),
        );
        got.push((link, ts.as_nanos(), p.data.to_vec(), p.header.len));
    }
    got
}

#[cfg(feature = "io")]
fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("accurate-pcapfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A pcap file: magic by byte order and precision, then records
/// (seconds, fraction, data, original length).
fn pcap_file(big: bool, nanos: bool, link: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 65535);
    w32(&mut v, link);
    for (s, f, d, orig) in recs {
        w32(&mut v, *s);
        w32(&mut v, *f);
        w32(&mut v, u32::try_from(d.len()).unwrap());
        w32(&mut v, *orig);
        v.extend_from_slice(d);
    }
    v
}

/// pcapng blocks, little endian.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = u32::try_from(12 + body.len() + pad).unwrap();
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend_from_slice(&total.to_le_bytes());
    v
}

fn shb() -> Vec<u8> {
    let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &b)
}

fn idb(link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) -> Vec<u8> {
    let mut b = link.to_le_bytes().to_vec();
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&snaplen.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        b.extend_from_slice(&14u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&o.to_le_bytes());
    }
    if tsresol.is_some() || tsoffset.is_some() {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &b)
}

fn epb(iface: u32, ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut b = iface.to_le_bytes().to_vec();
    b.extend_from_slice(&u32::try_from(ticks >> 32).unwrap().to_le_bytes());
    b.extend_from_slice(&u32::try_from(ticks & 0xffff_ffff).unwrap().to_le_bytes());
    b.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    b.extend_from_slice(&orig.to_le_bytes());
    b.extend_from_slice(data);
    b.extend(std::iter::repeat_n(0u8, (4 - data.len() % 4) % 4));
    block(6, &b)
}

fn spb(data: &[u8], orig: u32) -> Vec<u8> {
    let mut b = orig.to_le_bytes().to_vec();
    b.extend_from_slice(data);
    block(3, &b)
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| n.wrapping_add(u8::try_from(i % 251).unwrap()))
        .collect()
}

#[cfg(feature = "io")]
#[test]
fn the_repository_captures_read_as_libpcap_reads_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if ext != "pcap" && ext != "pcapng" {
            continue;
        }
        let (got, end) = ours(std::fs::read(&p).unwrap());
        assert_eq!(end, Step::End, "{}", p.display());
        assert!(!got.is_empty(), "{}", p.display());
        assert_eq!(decoded(&got), decoded(&libpcaps(&p)), "{}", p.display());
        files += 1;
    }
    assert!(files >= 10, "only {files} captures found");
}

#[cfg(feature = "io")]
#[test]
fn pcap_variants_read_as_libpcap_reads_them() {
    let a = frame(1, 60);
    let b = frame(2, 1514);
    let c = frame(3, 7);
    // 0xffffffff seconds is -1 (libpcap's signed 32 bits); a fraction of
    // a second at the top of its range.
    let recs: [(u32, u32, &[u8], u32); 4] = [
        (1_700_000_000, 123_456, &a, 60),
        (1_700_000_001, 999_999, &b, 1600),
        (0xffff_ffff, 5, &c, 7),
        (0, 0, &[], 0),
    ];
    for big in [false, true] {
        for nanos in [false, true] {
            for link in [1, 101, 113, 276, 0] {
                let bytes = pcap_file(big, nanos, link, &recs);
                let p = temp(&format!("v-{big}-{nanos}-{link}.pcap"), &bytes);
                let (got, end) = ours(bytes);
                assert_eq!(end, Step::End);
                assert_eq!(got.len(), 4);
                assert_eq!(
                    decoded(&got),
                    decoded(&libpcaps(&p)),
                    "big {big} nanos {nanos} link {link}"
                );
            }
        }
    }
}

#[cfg(feature = "io")]
#[test]
fn pcapng_resolutions_and_offsets_read_as_libpcap_reads_them() {
    let a = frame(4, 61);
    let b = frame(5, 200);
    // Microseconds (the default), nanoseconds, milliseconds, an offset.
    for (resol, offset, ticks) in [
        (None, None, 1_700_000_000_123_456u64),
        (Some(9), None, 1_700_000_000_123_456_789),
        (Some(3), None, 1_700_000_000_123),
        (Some(6), Some(3_600i64), 1_700_000_000_000_001),
    ] {
        let mut f = shb();
        f.extend(idb(1, 65535, resol, offset));
        f.extend(epb(0, ticks, &a, 61));
        f.extend(epb(0, ticks + 1, &b, 300));
        let p = temp(&format!("r-{resol:?}-{offset:?}.pcapng"), &f);
        let (got, end) = ours(f);
        assert_eq!(end, Step::End);
        assert_eq!(got.len(), 2);
        assert_eq!(
            decoded(&got),
            decoded(&libpcaps(&p)),
            "resol {resol:?} offset {offset:?}"
        );
    }
    // A simple packet block: interface 0's, no time, cut to its snap length.
    let mut f = shb();
    f.extend(idb(1, 100, None, None));
    f.extend(spb(&b, 200));
    let (got, _) = ours(f);
    assert_eq!(got, vec![(1, 0, b[..100].to_vec(), 200)]);
}

#[test]
fn pcapng_interfaces_of_different_link_types_each_keep_theirs() {
    let (a, b) = (frame(6, 40), frame(7, 50));
    let mut f = shb();
    f.extend(idb(1, 65535, None, None));
    f.extend(idb(101, 65535, Some(9), None));
    f.extend(epb(1, 2_000_000_000, &b, 50));
    f.extend(epb(0, 3_000_000, &a, 40));
    // A second section describes its interfaces anew.
    f.extend(shb());
    f.extend(idb(113, 65535, None, None));
    f.extend(epb(0, 1_000_000, &a, 40));
    let (got, end) = ours(f);
    assert_eq!(end, Step::End);
    let want: Frames = vec![
        (101, 2_000_000_000, b.clone(), 50),
        (1, 3_000_000_000, a.clone(), 40),
        (113, 1_000_000_000, a, 40),
    ];
    assert_eq!(got, want);
}

#[test]
fn damaged_records_end_the_file_at_their_offset() {
    let a = frame(8, 100);
    let head = [shb(), idb(1, 65535, None, None), epb(0, 1, &a, 100)].concat();
    // A packet of an interface never described.
    let f = [head.clone(), epb(3, 2, &a, 100), epb(0, 3, &a, 100)].concat();
    let (got, end) = ours(f);
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&end, Step::Damaged { offset, reason, truncated: false }
            if *offset == head.len() as u64 && reason.contains("interface 3")),
        "{end:?}"
    );
    // Cut inside the second packet, and inside its first bytes.
    let two = [head.clone(), epb(0, 2, &a, 100)].concat();
    for keep in [head.len() + 50, head.len() + 3] {
        let (got, end) = ours(two[..keep].to_vec());
        assert_eq!(got.len(), 1);
        assert!(
            matches!(&end, Step::Damaged { offset, reason, truncated: true }
                if *offset == head.len() as u64 && reason.contains("ends inside")),
            "{keep}: {end:?}"
        );
    }
    // pcap: a captured length of 4 GiB in a small file.
    let mut f = pcap_file(false, false, 1, &[(1, 0, &a, 100)]);
    let second = f.len() as u64;
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&a);
    let (got, end) = ours(f);
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&end, Step::Damaged { offset, .. } if *offset == second),
        "{end:?}"
    );
    // Not a capture at all, or too short to be one.
    assert!(FileReader::new(std::io::Cursor::new(b"hello world, not a capture".to_vec())).is_err());
    assert!(FileReader::new(std::io::Cursor::new(Vec::new())).is_err());
}

/// Hands out a few bytes a read, as a pipe may.
struct Trickle(std::io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn short_reads_and_records_larger_than_the_buffer_are_read_whole() {
    let big = frame(9, BUFFER + BUFFER / 2);
    let small = frame(10, 90);
    let mut f = shb();
    f.extend(idb(1, 0, None, None));
    f.extend(epb(0, 1, &small, 90));
    f.extend(epb(0, 2, &big, 5_000_000));
    f.extend(epb(0, 3, &small, 90));
    let want = ours(f.clone()).0;
    assert_eq!(want.len(), 3);
    assert_eq!(want[1].2, big);
    let mut r = FileReader::new(Trickle(std::io::Cursor::new(f.clone()))).unwrap();
    let mut got = Frames::new();
    let mut steps = 0;
    loop {
        match r.next(|fr| got.push((fr.link, fr.ts.as_nanos(), fr.data.to_vec(), fr.orig_len))) {
            Step::End => break,
            Step::Damaged { reason, .. } => panic!("{reason}"),
            _ => steps += 1,
        }
    }
    assert_eq!(got, want);
    assert_eq!(steps, 5);
    assert_eq!(r.offset(), f.len() as u64);
}

/// Hands out its chunks one per read, counting them, as a pipe from a
/// capturing tcpdump does.
struct Chunks {
    chunks: std::collections::VecDeque<Vec<u8>>,
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(mut c) = self.chunks.pop_front() else {
            return Ok(0);
        };
        self.taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let n = c.len().min(buf.len());
        buf[..n].copy_from_slice(&c[..n]);
        if n < c.len() {
            self.chunks.push_front(c.split_off(n));
        }
        Ok(n)
    }
}

#[test]
fn a_pipe_hands_over_each_packet_as_it_comes() {
    let (a, b, c) = (frame(11, 80), frame(12, 90), frame(13, 70));
    let whole = pcap_file(
        false,
        false,
        1,
        &[(1, 0, &a, 80), (2, 0, &b, 90), (3, 0, &c, 70)],
    );
    let (one, two) = (24 + 16 + 80, 24 + 16 + 80 + 16 + 90);
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pipe = Chunks {
        chunks: [
            whole[..one].to_vec(),
            whole[one..two].to_vec(),
            whole[two..].to_vec(),
        ]
        .into(),
        taken: taken.clone(),
    };
    let mut r = FileReader::new(pipe).unwrap();
    let mut seen = Vec::new();
    loop {
        let step = r.next(|f| {
            seen.push((
                f.data.to_vec(),
                taken.load(std::sync::atomic::Ordering::SeqCst),
            ));
        });
        match step {
            Step::End => break,
            Step::Damaged { reason, .. } => panic!("{reason}"),
            _ => {}
        }
    }
    // pcap-parser reads once more after the header before the first
    // record; after that each packet comes out before the next is read.
    assert_eq!(seen, vec![(a, 2), (b, 2), (c, 3)]);
}
