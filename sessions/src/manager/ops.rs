//! The API operations: authorize, initiate, update, terminate, process a
//! CDR.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rating::Reservation;
use rust_decimal::Decimal;

use super::charge::Piece;
use super::{
    Charging, Owner, REASON_DEBIT_ERROR, REASON_INSUFFICIENT_CREDIT, Reply, RequestType,
    SessionEvent, SessionKey, SessionManager, SessionSnapshot,
};
use crate::Error;

fn insufficient(ev: &SessionEvent) -> Error {
    Error::Rating(rating::Error::InsufficientCredit {
        account: format!("{}:{}", ev.tenant, ev.account),
        missing: Decimal::ZERO,
    })
}

impl SessionManager {
    /// `SessionSv1.AuthorizeEvent` (GetMaxUsage): the usage the call may
    /// have. `*prepaid`/`*pseudoprepaid`: what the account can pay
    /// (shared groups included), at most the requested Usage and
    /// `max-call-duration`; other types: that cap. Nothing is debited.
    ///
    /// # Errors
    /// Missing fields, an unknown request type, rating and account errors;
    /// `INSUFFICIENT_CREDIT` when a prepaid account can pay nothing.
    pub fn handle_authorize(
        &mut self,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let ev = ev.clone().with_defaults();
        let r = self.authorize(&ev, &ev.key(), now, ch);
        match &r {
            Ok(_) => self.counters.authorized += 1,
            Err(_) => self.counters.unauthorized += 1,
        }
        r.map(|m| Reply {
            max_usage: Some(m),
            ..Reply::default()
        })
    }

    pub(super) fn authorize(
        &mut self,
        ev: &SessionEvent,
        key: &SessionKey,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Duration, Error> {
        let rt = ev.request_type()?;
        ev.check_authorize(rt)?;
        let want = self.wanted(ev);
        match rt {
            RequestType::Prepaid | RequestType::PseudoPrepaid => {
                let p = Piece {
                    answer: ev.answer_time.or(ev.setup_time).unwrap_or(now),
                    offset: Duration::ZERO,
                    usage: want,
                };
                let m = ch.max_usage(ev, key, p, now)?;
                if m.is_zero() {
                    return Err(insufficient(ev));
                }
                Ok(m)
            }
            _ => Ok(want),
        }
    }

    /// `SessionSv1.InitiateSession`: starts the session of an answered
    /// call (AnswerTime, else now). `*prepaid` reserves the first debit
    /// interval, or the whole MaxUsage when the interval is zero. A second
    /// initiate of the same session changes nothing.
    ///
    /// # Errors
    /// As [`SessionManager::handle_authorize`]; a passive call is never
    /// refused (it is going on anyway): it is flagged for disconnect
    /// instead.
    pub fn handle_initiate(
        &mut self,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let ev = ev.clone().with_defaults();
        let key = ev.key();
        self.initiate(key, ev, now, ch)
    }

    pub(super) fn initiate(
        &mut self,
        key: SessionKey,
        ev: SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        if let Some(s) = self.sessions.get(&key) {
            self.counters.duplicates += 1;
            return Ok(Reply {
                max_usage: Some(s.max_usage),
                cost: None,
                replayed: true,
            });
        }
        let rt = ev.request_type()?;
        ev.check_mandatory(rt)?;
        let passive = ev.owner == Owner::Passive;
        let want = self.wanted(&ev);
        let interval = ev.debit_interval.unwrap_or(self.config.debit_interval);
        let mut s = SessionSnapshot {
            key: key.clone(),
            answer_time: ev.answer_time.unwrap_or(now),
            event: ev,
            request_type: rt,
            started: now,
            last_update: now,
            total_usage: Duration::ZERO,
            last_usage: Duration::ZERO,
            reserved: Duration::ZERO,
            next_seq: 0,
            debit_interval: interval,
            max_usage: want,
            credit_short: false,
            disconnect: None,
        };
        let mut no_credit = false;
        let mut failed = false;
        match rt {
            RequestType::Prepaid => {
                let first = if interval.is_zero() {
                    want
                } else {
                    interval.min(want)
                };
                match self.reserve_more(&mut s, first, now, ch) {
                    Ok(got) if got.is_zero() => no_credit = true,
                    Ok(got) if got < first || interval.is_zero() => s.max_usage = got,
                    Ok(_) => {}
                    Err(_) if passive => {
                        self.counters.debit_errors += 1;
                        failed = true;
                    }
                    Err(e) => {
                        self.counters.debit_errors += 1;
                        return Err(e);
                    }
                }
            }
            RequestType::PseudoPrepaid => match self.authorize(&s.event, &key, now, ch) {
                Ok(m) => s.max_usage = m,
                Err(Error::Rating(rating::Error::InsufficientCredit { .. })) => no_credit = true,
                Err(_) if passive => self.counters.debit_errors += 1,
                Err(e) => return Err(e),
            },
            _ => {}
        }
        if no_credit {
            if !passive {
                self.counters.unauthorized += 1;
                return Err(insufficient(&s.event));
            }
            s.max_usage = Duration::ZERO;
            s.credit_short = true;
        }
        let reply = Reply {
            max_usage: Some(s.max_usage),
            ..Reply::default()
        };
        self.sessions.insert(key.clone(), s);
        self.counters.initiated += 1;
        if no_credit {
            // A passive call nobody can stop: flagged, billed in full.
            self.request_disconnect(&key, REASON_INSUFFICIENT_CREDIT);
        } else if failed {
            self.request_disconnect(&key, REASON_DEBIT_ERROR);
        } else {
            self.save(&key);
            self.rearm(&key);
        }
        Ok(reply)
    }

    /// `SessionSv1.UpdateSession`: LastUsed (the usage since the last
    /// update) adds to the usage known; `*prepaid` without a debit loop
    /// reserves up to that usage plus the requested Usage (default
    /// `max-call-duration`). Restarts the TTL.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`]; reservation errors.
    pub fn handle_update(
        &mut self,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let ev = ev.clone().with_defaults();
        let key = ev.key();
        let Some(mut s) = self.sessions.remove(&key) else {
            return Err(Error::SessionNotFound(key));
        };
        let r = self.update(&mut s, &ev, now, ch);
        self.sessions.insert(key.clone(), s);
        self.save(&key);
        self.rearm(&key);
        r
    }

    fn update(
        &mut self,
        s: &mut SessionSnapshot,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        self.counters.updated += 1;
        s.last_update = now;
        s.event.extra_fields.extend(ev.extra_fields.clone());
        // LastUsed is the usage since the previous report (Diameter's
        // Used-Service-Unit, RADIUS's Interim difference): the usage known
        // is their sum, as CGRateS's TotalUsage ends up once each granted
        // chunk is corrected by the LastUsed that follows it.
        if let Some(lu) = ev.last_used {
            s.total_usage = s.total_usage.saturating_add(lu);
            s.last_usage = lu;
        }
        let want = self.wanted(ev);
        if s.request_type != RequestType::Prepaid
            || !s.debit_interval.is_zero()
            || s.disconnect.is_some()
        {
            return Ok(Reply {
                max_usage: Some(want),
                ..Reply::default()
            });
        }
        let need = s
            .total_usage
            .saturating_add(want)
            .min(self.config.max_call_duration);
        if need > s.reserved {
            if let Err(e) = self.reserve_more(s, need - s.reserved, now, ch) {
                self.counters.debit_errors += 1;
                return Err(e);
            }
        }
        let left = s.reserved.saturating_sub(s.total_usage);
        s.max_usage = left;
        Ok(Reply {
            max_usage: Some(left),
            ..Reply::default()
        })
    }

    /// `SessionSv1.TerminateSession`: ends the session with its total
    /// Usage (else the usage known plus LastUsed), settles the
    /// charge (reservations given back, the real usage debited, below
    /// zero if need be) and writes its CDR. A session not active (a
    /// repeated terminate, a restart) is charged as a finished call: if it
    /// was charged before, its recorded cost is returned and nothing is
    /// debited.
    ///
    /// # Errors
    /// Missing fields, rating and store errors (the CDR is written anyway,
    /// with the error).
    pub fn handle_terminate(
        &mut self,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let ev = ev.clone().with_defaults();
        let key = ev.key();
        let Some(mut s) = self.sessions.remove(&key) else {
            self.counters.terminate_unknown += 1;
            return self.finished_call(&ev, &key, None, now, ch);
        };
        self.unarm(&key);
        s.event.extra_fields.extend(ev.extra_fields.clone());
        let usage = match (ev.usage, ev.last_used) {
            (Some(u), _) => u,
            (None, Some(lu)) => s.total_usage.saturating_add(lu),
            (None, None) => s.total_usage,
        };
        let cdr = self.cdr_of_event(&s.event, &key, Some(s.answer_time), usage, now);
        self.finish(&s, usage, cdr, now, ch)
    }

    /// `SessionSv1.ProcessCDR`: a finished call in one go (Usage is its
    /// total), charged by its request type and written as a CDR
    /// (`CostSource` `*cdrs`, as CGRateS's CDR server marks what it rates).
    /// An active session with its key is terminated (`*sessions`). Charged
    /// once, however often it comes.
    ///
    /// # Errors
    /// As [`SessionManager::handle_terminate`].
    pub fn handle_process_cdr(
        &mut self,
        ev: &SessionEvent,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Reply, Error> {
        let ev = ev.clone().with_defaults();
        let key = ev.key();
        if self.sessions.contains_key(&key) {
            return self.handle_terminate(&ev, now, ch);
        }
        // No session charged it: rated as CGRateS's CDR server rates it.
        let usage = ev.usage.unwrap_or(Duration::ZERO);
        let mut cdr = self.cdr_of_event(&ev, &key, ev.answer_time, usage, now);
        "*cdrs".clone_into(&mut cdr.cost_source);
        self.finished_call(&ev, &key, Some(cdr), now, ch)
    }

    /// The usage asked for: the event's Usage, at most (and by default)
    /// `max-call-duration`.
    pub(super) fn wanted(&self, ev: &SessionEvent) -> Duration {
        let cap = self.config.max_call_duration;
        ev.usage.unwrap_or(cap).min(cap)
    }

    /// Reserves up to `usage` more for a prepaid session, as much of it as
    /// the account can pay (never past `max-call-duration`); returns what
    /// was reserved.
    pub(super) fn reserve_more(
        &mut self,
        s: &mut SessionSnapshot,
        usage: Duration,
        now: DateTime<Utc>,
        ch: &Charging<'_>,
    ) -> Result<Duration, Error> {
        let cap = self.config.max_call_duration.saturating_sub(s.reserved);
        let usage = usage.min(cap);
        if usage.is_zero() {
            return Ok(Duration::ZERO);
        }
        let piece = Piece {
            answer: s.answer_time,
            offset: s.reserved,
            usage,
        };
        let can = ch.max_usage(&s.event, &s.key, piece, now)?;
        if can < usage {
            s.credit_short = true;
        }
        if can.is_zero() {
            return Ok(Duration::ZERO);
        }
        let keep = self.config.keep_charged_marks;
        let r = ch.reserve(
            &s.event,
            &s.key,
            s.next_seq,
            Piece {
                usage: can,
                ..piece
            },
            now,
            keep,
        )?;
        let got = match r {
            Reservation::Reserved(o) => {
                self.counters.reservations += 1;
                o.usage
            }
            Reservation::Replayed(o) => {
                self.counters.duplicates += 1;
                o.usage
            }
            Reservation::Settled(_) => {
                // Another copy of the call already settled it.
                self.counters.duplicates += 1;
                return Ok(Duration::ZERO);
            }
        };
        s.reserved = s.reserved.saturating_add(got);
        s.next_seq = s.next_seq.saturating_add(1);
        Ok(got)
    }
}
