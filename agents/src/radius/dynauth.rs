//! Disconnect-Requests (RFC 5176) to a NAS's dynamic authorization port,
//! sans-IO: a request is queued with [`DynAuth::disconnect`], its bytes
//! come out of [`DynAuth::poll_transmit`], the NAS's Disconnect-ACK or
//! -NAK goes into [`DynAuth::handle_reply`], and [`DynAuth::handle_timeout`]
//! resends until an answer or the last try (time passed in).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::auth;
use super::packet::{Attr, Code, Packet};
use crate::Error;

/// Error-Cause (RFC 5176 section 3.5).
pub const ERROR_CAUSE: u8 = 101;

/// How a disconnect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Disconnect-ACK: the session is gone.
    Acked {
        /// The session named when queued.
        session: String,
    },
    /// Disconnect-NAK, with its Error-Cause if any.
    Naked {
        /// The session.
        session: String,
        /// Error-Cause.
        cause: Option<u32>,
    },
    /// No answer after the last try.
    TimedOut {
        /// The session.
        session: String,
    },
}

#[derive(Debug)]
struct Pending {
    session: String,
    bytes: Vec<u8>,
    auth: [u8; 16],
    secret: Vec<u8>,
    tries: u32,
    next: DateTime<Utc>,
}

/// The Disconnect-Requests in flight.
#[derive(Debug)]
pub struct DynAuth {
    timeout: Duration,
    tries: u32,
    next_id: u8,
    pending: HashMap<(SocketAddr, u8), Pending>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    done: VecDeque<Outcome>,
}

impl DynAuth {
    /// Sends each request at most `tries` times, `timeout` apart.
    #[must_use]
    pub fn new(timeout: Duration, tries: u32) -> DynAuth {
        DynAuth {
            timeout,
            tries: tries.max(1),
            next_id: 0,
            pending: HashMap::new(),
            out: VecDeque::new(),
            done: VecDeque::new(),
        }
    }

    /// Queues a Disconnect-Request with `attrs` (User-Name,
    /// Acct-Session-Id, ...) to `nas`.
    ///
    /// # Errors
    /// [`Error::Radius`]: 256 requests already in flight to `nas`, or
    /// attributes too long for a packet.
    pub fn disconnect(
        &mut self,
        session: String,
        nas: SocketAddr,
        secret: &[u8],
        attrs: Vec<Attr>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let id = (0..=255u8)
            .map(|i| self.next_id.wrapping_add(i))
            .find(|id| !self.pending.contains_key(&(nas, *id)))
            .ok_or_else(|| Error::Radius(format!("256 Disconnect-Requests in flight to {nas}")))?;
        self.next_id = id.wrapping_add(1);
        let mut bytes = Packet {
            code: Code::DisconnectRequest,
            identifier: id,
            authenticator: [0; 16],
            attributes: attrs,
        }
        .encode()?;
        auth::sign_request(&mut bytes, secret);
        let mut a = [0u8; 16];
        a.copy_from_slice(bytes.get(4..20).unwrap_or(&[0; 16]));
        self.out.push_back((nas, bytes.clone()));
        self.pending.insert(
            (nas, id),
            Pending {
                session,
                bytes,
                auth: a,
                secret: secret.to_vec(),
                tries: 1,
                next: now + self.step(),
            },
        );
        Ok(())
    }

    fn step(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::MAX)
    }

    /// A datagram from `from` on the dynamic authorization socket.
    ///
    /// # Errors
    /// [`Error::Radius`]: not a packet, not an ACK/NAK, not for a request
    /// in flight, or a wrong Response Authenticator (dropped, RFC 5176
    /// section 3.5).
    pub fn handle_reply(&mut self, from: SocketAddr, bytes: &[u8]) -> Result<(), Error> {
        let p = Packet::decode(bytes)?;
        let key = (from, p.identifier);
        let Some(pend) = self.pending.get(&key) else {
            return Err(Error::Radius(format!(
                "answer {} from {from} to no request in flight",
                p.identifier
            )));
        };
        if !auth::response_authenticator_ok(bytes, &pend.auth, &pend.secret) {
            return Err(Error::Radius(format!(
                "answer from {from} with a wrong Response Authenticator"
            )));
        }
        let outcome = match p.code {
            Code::DisconnectAck => Outcome::Acked {
                session: pend.session.clone(),
            },
            Code::DisconnectNak => Outcome::Naked {
                session: pend.session.clone(),
                cause: p
                    .attr(ERROR_CAUSE)
                    .and_then(|v| v.first_chunk::<4>())
                    .map(|b| u32::from_be_bytes(*b)),
            },
            other => {
                return Err(Error::Radius(format!(
                    "code {} on the dynamic authorization socket",
                    other.number()
                )));
            }
        };
        self.pending.remove(&key);
        self.done.push_back(outcome);
        Ok(())
    }

    /// Resends what is due at `now`; gives up after the last try.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        let step = self.step();
        let mut gone = Vec::new();
        for (key, p) in &mut self.pending {
            if p.next > now {
                continue;
            }
            if p.tries >= self.tries {
                gone.push(*key);
                continue;
            }
            p.tries += 1;
            p.next = now + step;
            self.out.push_back((key.0, p.bytes.clone()));
        }
        for k in gone {
            if let Some(p) = self.pending.remove(&k) {
                self.done
                    .push_back(Outcome::TimedOut { session: p.session });
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next finished disconnect.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        self.done.pop_front()
    }

    /// When [`DynAuth::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.pending.values().map(|p| p.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nas_answer(req: &[u8], code: Code, secret: &[u8]) -> Vec<u8> {
        let p = Packet::decode(req).unwrap();
        let mut b = Packet {
            code,
            identifier: p.identifier,
            authenticator: p.authenticator,
            attributes: vec![],
        }
        .encode()
        .unwrap();
        auth::sign_response(&mut b, &p.authenticator, secret);
        b
    }

    #[test]
    fn retried_until_acked() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let nas: SocketAddr = "127.0.0.1:3799".parse().unwrap();
        let mut d = DynAuth::new(Duration::from_secs(2), 3);
        d.disconnect(
            "s1".into(),
            nas,
            b"k",
            vec![Attr::new(44, b"abc".to_vec())],
            t0,
        )
        .unwrap();
        let (to, first) = d.poll_transmit().unwrap();
        assert_eq!(to, nas);
        assert!(auth::request_authenticator_ok(&first, b"k"));
        assert_eq!(
            Packet::decode(&first).unwrap().code,
            Code::DisconnectRequest
        );
        d.handle_timeout(t0 + chrono::Duration::seconds(1));
        assert!(d.poll_transmit().is_none());
        d.handle_timeout(t0 + chrono::Duration::seconds(2));
        let (_, again) = d.poll_transmit().unwrap();
        assert_eq!(again, first);
        // a forged answer is refused
        assert!(
            d.handle_reply(nas, &nas_answer(&first, Code::DisconnectAck, b"bad"))
                .is_err()
        );
        d.handle_reply(nas, &nas_answer(&first, Code::DisconnectAck, b"k"))
            .unwrap();
        assert_eq!(
            d.poll_outcome(),
            Some(Outcome::Acked {
                session: "s1".into()
            })
        );
        assert!(d.poll_timeout().is_none());
    }

    #[test]
    fn gives_up_after_the_last_try() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let nas: SocketAddr = "127.0.0.1:3799".parse().unwrap();
        let mut d = DynAuth::new(Duration::from_secs(1), 2);
        d.disconnect("s1".into(), nas, b"k", vec![], t0).unwrap();
        d.handle_timeout(t0 + chrono::Duration::seconds(1));
        d.handle_timeout(t0 + chrono::Duration::seconds(2));
        assert_eq!(d.poll_transmit().map(|x| x.0), Some(nas));
        assert_eq!(d.poll_transmit().map(|x| x.0), Some(nas));
        assert!(d.poll_transmit().is_none());
        assert_eq!(
            d.poll_outcome(),
            Some(Outcome::TimedOut {
                session: "s1".into()
            })
        );
    }
}
