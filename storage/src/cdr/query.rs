//! [`CdrFilter`] to SQL: one `WHERE` clause with bound values, in the
//! dialect of each backend.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use sessions::{CdrFilter, ListField};

use super::costkey::cost_key;

/// Which SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a `$N` placeholder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Dec(Decimal),
    /// PostgreSQL only (`= ANY($N)`).
    Texts(Vec<String>),
}

/// The columns a CDR is read from, in [`super::CdrRow`]'s order.
pub(crate) fn select_columns(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "cgrid, run_id, origin_host, source, origin_id, tor, request_type, tenant, \
             category, account, subject, destination, setup_time, answer_time, usage, cost, \
             cost_source, extra_fields, disconnect_cause, end_time"
        }
        Dialect::Postgres => {
            "cgrid, run_id, origin_host, source, origin_id, tor, request_type, tenant, \
             category, account, subject, destination, setup_time, answer_time, usage, \
             cost::text, cost_source, extra_fields::text, disconnect_cause, end_time"
        }
    }
}

fn column(f: ListField) -> &'static str {
    match f {
        ListField::Cgrid => "cgrid",
        ListField::RunId => "run_id",
        ListField::OriginId => "origin_id",
        ListField::OriginHost => "origin_host",
        ListField::Source => "source",
        ListField::Tor => "tor",
        ListField::RequestType => "request_type",
        ListField::Tenant => "tenant",
        ListField::Category => "category",
        ListField::Account => "account",
        ListField::Subject => "subject",
    }
}

/// A query under construction: SQL text and its arguments.
#[derive(Debug)]
pub(crate) struct Query {
    pub sql: String,
    pub args: Vec<Arg>,
    dialect: Dialect,
}

impl Query {
    fn new(dialect: Dialect, head: String) -> Self {
        Query {
            sql: head,
            args: Vec::new(),
            dialect,
        }
    }

    /// Adds `a` and returns its placeholder.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// `SELECT ... WHERE ... ORDER BY id LIMIT OFFSET`.
    pub(crate) fn select(dialect: Dialect, f: &CdrFilter) -> Self {
        let mut q = Query::new(
            dialect,
            format!("SELECT {} FROM cdrs", select_columns(dialect)),
        );
        q.filter(f);
        q.sql.push_str(" ORDER BY id");
        match (f.limit, dialect) {
            (Some(n), _) => {
                let _ = write!(q.sql, " LIMIT {}", i64::try_from(n).unwrap_or(i64::MAX));
            }
            (None, Dialect::Sqlite) if f.offset.is_some() => q.sql.push_str(" LIMIT -1"),
            (None, _) => {}
        }
        if let Some(n) = f.offset {
            let _ = write!(q.sql, " OFFSET {}", i64::try_from(n).unwrap_or(i64::MAX));
        }
        q
    }

    /// `SELECT COUNT(*) ... WHERE ...`.
    pub(crate) fn count(dialect: Dialect, f: &CdrFilter) -> Self {
        let mut q = Query::new(dialect, "SELECT COUNT(*) FROM cdrs".to_owned());
        q.filter(f);
        q
    }

    fn filter(&mut self, f: &CdrFilter) {
        let mut conds: Vec<String> = Vec::new();
        for (field, vals, not) in f.lists() {
            if vals.is_empty() {
                continue;
            }
            let col = column(field);
            let cond = match self.dialect {
                Dialect::Postgres => {
                    let p = self.arg(Arg::Texts(vals.to_vec()));
                    if not {
                        format!("NOT ({col} = ANY({p}))")
                    } else {
                        format!("{col} = ANY({p})")
                    }
                }
                Dialect::Sqlite => {
                    let ps: Vec<String> = vals
                        .iter()
                        .map(|v| self.arg(Arg::Text(v.clone())))
                        .collect();
                    let op = if not { "NOT IN" } else { "IN" };
                    format!("{col} {op} ({})", ps.join(", "))
                }
            };
            conds.push(cond);
        }
        for (prefixes, not) in [
            (&f.destination_prefixes, false),
            (&f.not_destination_prefixes, true),
        ] {
            if prefixes.is_empty() {
                continue;
            }
            let parts: Vec<String> = prefixes
                .iter()
                .map(|p| match self.dialect {
                    Dialect::Postgres => {
                        let a = self.arg(Arg::Text(p.clone()));
                        format!("starts_with(destination, {a})")
                    }
                    Dialect::Sqlite => {
                        let n = i64::try_from(p.chars().count()).unwrap_or(i64::MAX);
                        let n = self.arg(Arg::Int(n));
                        let a = self.arg(Arg::Text(p.clone()));
                        format!("substr(destination, 1, {n}) = {a}")
                    }
                })
                .collect();
            let any = parts.join(" OR ");
            conds.push(if not {
                format!("NOT ({any})")
            } else {
                format!("({any})")
            });
        }
        let ns = |t: capture::Timestamp| Arg::Int(t.as_nanos());
        let dur =
            |d: std::time::Duration| Arg::Int(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let bounds = [
            ("setup_time", ">=", f.setup_time_start.map(ns)),
            ("setup_time", "<", f.setup_time_end.map(ns)),
            ("answer_time", ">=", f.answer_time_start.map(ns)),
            ("answer_time", "<", f.answer_time_end.map(ns)),
            ("usage", ">=", f.min_usage.map(dur)),
            ("usage", "<", f.max_usage.map(dur)),
        ];
        for (col, op, v) in bounds {
            if let Some(v) = v {
                let p = self.arg(v);
                conds.push(format!("{col} {op} {p}"));
            }
        }
        for (op, v) in [(">=", f.min_cost), ("<", f.max_cost)] {
            let Some(v) = v else { continue };
            let cond = match self.dialect {
                Dialect::Postgres => format!("cost {op} {}", self.arg(Arg::Dec(v))),
                Dialect::Sqlite => format!("cost_key {op} {}", self.arg(Arg::Text(cost_key(v)))),
            };
            conds.push(cond);
        }
        if !conds.is_empty() {
            self.sql.push_str(" WHERE ");
            self.sql.push_str(&conds.join(" AND "));
        }
    }
}
