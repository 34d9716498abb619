//! Owned copies of packet bytes, carved out of shared blocks.
//!
//! A [`SipPacket`](crate::SipPacket) owns its payload while the frame it
//! came from is only borrowed, so the payload is copied; copying every
//! payload into an allocation of its own cost one `malloc` (and a `free`)
//! per packet. The arena appends payloads to one block and hands out
//! [`Bytes`] slices of it: one allocation per block of many packets, and a
//! block whose packets are all dropped is written into again. A packet kept
//! downstream holds its block (up to [`BLOCK`] bytes) alive.

use bytes::{Bytes, BytesMut};

/// Bytes of one block.
const BLOCK: usize = 64 * 1024;
/// Larger payloads get an allocation of their own, so a block holds at
/// least four and one big message does not waste most of a block.
const MAX_SHARED: usize = BLOCK / 4;

/// Where the frame decoder copies payloads.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    block: BytesMut,
}

impl Arena {
    /// An owned copy of `data`.
    pub(crate) fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.len() > MAX_SHARED {
            return Bytes::copy_from_slice(data);
        }
        if self.block.capacity() < data.len() {
            // Reuses the block's memory when every slice of it is gone,
            // else allocates a new block.
            self.block.reserve(BLOCK);
        }
        self.block.extend_from_slice(data);
        self.block.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_equal_and_share_blocks() {
        let mut a = Arena::default();
        let msgs: Vec<Vec<u8>> = (0..200u32)
            .map(|i| vec![u8::try_from(i % 251).unwrap(); 1 + (i as usize * 37) % 1500])
            .collect();
        let copies: Vec<Bytes> = msgs.iter().map(|m| a.copy(m)).collect();
        for (m, c) in msgs.iter().zip(&copies) {
            assert_eq!(&m[..], &c[..]);
        }
        // Consecutive small copies are neighbours in one block.
        let (x, y) = (&copies[0], &copies[1]);
        assert_eq!(x.as_ptr().wrapping_add(x.len()), y.as_ptr());
        // An empty payload and a big one are fine too.
        assert!(a.copy(b"").is_empty());
        let big = vec![7u8; MAX_SHARED + 1];
        assert_eq!(a.copy(&big), big);
    }

    #[test]
    fn a_free_block_is_reused() {
        let mut a = Arena::default();
        let first = a.copy(&[1; 1000]);
        let start = first.as_ptr();
        drop(first);
        // Fill past the block end: with every earlier copy dropped, the
        // same memory serves again.
        let mut starts = Vec::new();
        for _ in 0..3 * BLOCK / 1000 {
            let c = a.copy(&[2; 1000]);
            starts.push(c.as_ptr());
        }
        assert!(starts.contains(&start), "the block was not reused");
    }
}
