//! Receiving UDP datagrams in batches without copying them out.
//!
//! One `recvmmsg(2)` call fills up to [`MMSG`] slots of one shared block of
//! memory, and every datagram leaves as a [`Bytes`] slice of that block: no
//! allocation and no copy per datagram. A datagram longer than its slot
//! (rare: a SIP message over UDP is normally under the MTU) runs on into a
//! spill buffer of its own and is copied out whole.
//!
//! A block lives as long as any packet sliced from it. The blocks handed
//! out are remembered (a few), and one whose packets are all gone is
//! received into again, so in the steady state no block is allocated or
//! cleared either. The cost: a packet kept downstream holds its whole
//! block (`MMSG * SLOT` bytes) alive, not just its own bytes.

use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::os::fd::RawFd;

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};

/// Datagrams fetched per `recvmmsg(2)` call.
pub(crate) const MMSG: usize = 32;
/// Bytes of a datagram received into its slot of the shared block: a HEP
/// packet of a SIP message under the Ethernet MTU fits.
const SLOT: usize = 2048;
/// Bytes of one block.
const BLOCK: usize = MMSG * SLOT;
/// Room per datagram in all, slot and spill buffer: the largest UDP
/// payload fits, so nothing is ever truncated.
const DGRAM_MAX: usize = 65536;
/// Blocks remembered after they are handed out, for reuse once free.
const POOL: usize = 8;

/// The receive buffers of one UDP socket.
pub(crate) struct UdpBatch {
    /// The block the next call receives into: `BLOCK` bytes, zeroed when
    /// new (safe code cannot receive into uninitialised memory).
    block: BytesMut,
    /// Per slot, where a datagram longer than `SLOT` continues.
    spill: Vec<Vec<u8>>,
    /// Blocks handed out, oldest first.
    handed_out: VecDeque<Bytes>,
}

impl UdpBatch {
    pub(crate) fn new() -> Self {
        UdpBatch {
            block: BytesMut::zeroed(BLOCK),
            spill: (0..MMSG).map(|_| vec![0u8; DGRAM_MAX - SLOT]).collect(),
            handed_out: VecDeque::with_capacity(POOL + 1),
        }
    }

    /// One non-blocking `recvmmsg(2)` on `fd`: appends the datagrams
    /// received to `out` and returns how many. WouldBlock when nothing is
    /// queued.
    ///
    /// The message headers live only for the call: they hold raw pointers
    /// into the buffers, which must not outlive a borrow (and would make
    /// the task `!Send`).
    pub(crate) fn recv(&mut self, fd: RawFd, out: &mut Vec<Bytes>) -> std::io::Result<usize> {
        let mut lens = [0usize; MMSG];
        let n = {
            // No source addresses: the listener does not use them.
            let mut headers = MultiHeaders::<()>::preallocate(MMSG, None);
            let mut iovs: Vec<[IoSliceMut<'_>; 2]> = self
                .block
                .chunks_mut(SLOT)
                .zip(self.spill.iter_mut())
                .map(|(slot, spill)| [IoSliceMut::new(slot), IoSliceMut::new(spill)])
                .collect();
            let msgs = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(std::io::Error::from)?;
            let mut n = 0;
            for (len, m) in lens.iter_mut().zip(msgs) {
                *len = m.bytes;
                n += 1;
            }
            n
        };
        if n == 0 {
            return Ok(0);
        }
        let block = std::mem::replace(&mut self.block, BytesMut::new()).freeze();
        for (i, (&len, spill)) in lens.iter().zip(&self.spill).take(n).enumerate() {
            let at = i * SLOT;
            if len <= SLOT {
                out.push(block.slice(at..at + len));
            } else {
                let mut whole = Vec::with_capacity(len);
                whole.extend_from_slice(block.get(at..at + SLOT).unwrap_or_default());
                whole.extend_from_slice(spill.get(..len - SLOT).unwrap_or_default());
                out.push(Bytes::from(whole));
            }
        }
        self.handed_out.push_back(block);
        if self.handed_out.len() > POOL {
            // Still in use after POOL more calls: let its packets free it.
            self.handed_out.pop_front();
        }
        self.block = self.free_block();
        Ok(n)
    }

    /// A block whose packets are all dropped, else a new one.
    fn free_block(&mut self) -> BytesMut {
        if let Some(i) = self.handed_out.iter().position(Bytes::is_unique)
            && let Some(b) = self.handed_out.remove(i)
        {
            match b.try_into_mut() {
                Ok(b) if b.len() == BLOCK => return b,
                Ok(_) => {}
                Err(b) => self.handed_out.push_back(b),
            }
        }
        BytesMut::zeroed(BLOCK)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        (rx, tx)
    }

    #[test]
    fn short_long_and_empty_datagrams_arrive_whole() {
        let (rx, tx) = pair();
        let sizes = [0usize, 1, SLOT - 1, SLOT, SLOT + 1, 9000, 65507];
        let sent: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 7 + k) as u8).collect())
            .collect();
        for d in &sent {
            tx.send(d).unwrap();
        }
        let mut b = UdpBatch::new();
        let mut out = Vec::new();
        while out.len() < sent.len() {
            match b.recv(rx.as_raw_fd(), &mut out) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        let got: Vec<Vec<u8>> = out.iter().map(|d| d.to_vec()).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn short_datagrams_share_the_block_and_free_blocks_are_reused() {
        let (rx, tx) = pair();
        let mut b = UdpBatch::new();
        let mut out = Vec::new();
        let mut blocks = std::collections::HashSet::new();
        for round in 0..3 * POOL {
            for k in 0..MMSG {
                tx.send(&[round as u8, k as u8, 3]).unwrap();
            }
            out.clear();
            while out.len() < MMSG {
                match b.recv(rx.as_raw_fd(), &mut out) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            for (k, d) in out.iter().enumerate() {
                assert_eq!(&d[..], &[round as u8, k as u8, 3]);
            }
            blocks.insert(b.handed_out.back().unwrap().as_ptr() as usize);
        }
        // Packets dropped every round: the same block or two serve them
        // all, not one new block per call.
        drop(out);
        assert!(blocks.len() <= 2, "{} blocks", blocks.len());
    }
}
