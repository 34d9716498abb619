//! `GET /metrics`: the server's counters in the Prometheus text format
//! (version 0.0.4), written by hand. Every metric is named `accurate_...`;
//! only things that exist are shown (the capture and dialog metrics only
//! when `serve` captures). Behind the bearer token when `[api]
//! auth-token` is set, like `POST /jsonrpc`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::capture::EVENT_KINDS;
use super::methods::State;

/// The `Content-Type` of the reply.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metrics into a string; `write!` to a `String` cannot fail.
struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn value(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }

    /// One metric with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
        self.head(name, kind, help);
        self.value(name, &[], v);
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Microseconds as seconds, exactly (no float).
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The whole page.
pub(crate) fn render(state: &State) -> String {
    let mut o = Out(String::with_capacity(8192));
    rpc(&mut o, state);
    debits(&mut o, state);
    capture(&mut o, state);
    sessions(&mut o, state);
    cdr_writer(&mut o, state);
    stat_queues(&mut o, state);
    resources_thresholds(&mut o, state);
    export(&mut o, state);
    radius(&mut o);
    diameter(&mut o);
    o.0
}

/// The RADIUS agents' requests, replies, drops and disconnects.
fn radius(o: &mut Out) {
    let all = super::radius::counters();
    if all.is_empty() {
        return;
    }
    o.head(
        "accurate_radius_packets_total",
        "counter",
        "RADIUS agents: datagrams received, replies sent by kind, duplicates answered from the cache, requests whose templates failed.",
    );
    for (agent, c) in &all {
        for (kind, v) in [
            ("received", c.received),
            ("access_accept", c.accepts),
            ("access_reject", c.rejects),
            ("accounting_response", c.accounting),
            ("duplicate_answered", c.duplicates),
            ("template_error", c.template_errors),
        ] {
            o.value(
                "accurate_radius_packets_total",
                &[("agent", agent), ("kind", kind)],
                v,
            );
        }
    }
    o.head(
        "accurate_radius_dropped_total",
        "counter",
        "RADIUS datagrams dropped without an answer, by reason (bad_authenticator, bad_message_authenticator: a wrong secret).",
    );
    for (agent, c) in &all {
        let mut reasons: Vec<_> = c.dropped.iter().collect();
        reasons.sort();
        for (reason, v) in reasons {
            o.value(
                "accurate_radius_dropped_total",
                &[("agent", agent), ("reason", reason)],
                v,
            );
        }
    }
    o.head(
        "accurate_radius_disconnects_total",
        "counter",
        "Disconnect-Requests sent to NASes and how they ended.",
    );
    for (agent, c) in &all {
        for (kind, v) in [
            ("sent", c.disconnects),
            ("ack", c.disconnect_acks),
            ("nak", c.disconnect_naks),
            ("timeout", c.disconnect_timeouts),
        ] {
            o.value(
                "accurate_radius_disconnects_total",
                &[("agent", agent), ("kind", kind)],
                v,
            );
        }
    }
}

/// The Diameter listeners' counters (`[[agents.diameter]]`).
fn diameter(o: &mut Out) {
    for (name, help, samples) in super::diameter::metrics_text() {
        o.head(name, "counter", help);
        for (label, value, n) in samples {
            if label.is_empty() {
                o.value(name, &[], n);
            } else {
                o.value(name, &[(label, value)], n);
            }
        }
    }
}

/// StatS: each queue's metrics that have a value (`*acd` and the other
/// durations in nanoseconds, `*asr` in percent), as CGRateS's
/// `GetQueueFloatMetrics`.
fn stat_queues(o: &mut Out, state: &State) {
    let gauges = super::subsys::stats::gauges(state);
    if gauges.is_empty() {
        return;
    }
    o.head(
        "accurate_stat_metric",
        "gauge",
        "StatS metrics by tenant, queue and metric (durations in nanoseconds, *asr in percent; N/A metrics absent).",
    );
    for (tenant, queue, metric, v) in gauges {
        o.value(
            "accurate_stat_metric",
            &[("tenant", &tenant), ("queue", &queue), ("metric", &metric)],
            v,
        );
    }
}

/// ResourceS and ThresholdS counters.
fn resources_thresholds(o: &mut Out, state: &State) {
    o.single(
        "accurate_resources_passive_over_limit_total",
        "counter",
        "Passive calls allocated over a resource's limit.",
        get(&state.resources.over_limit),
    );
    for (name, help, v) in state.thresholds.counters() {
        o.single(name, "counter", help, v);
    }
}

/// The CDR writer: CDRs queued, stored, already stored, failed; pending
/// as a gauge.
fn cdr_writer(o: &mut Out, state: &State) {
    let stats = state.cdr_writer.stats();
    o.head(
        "accurate_cdr_writer_total",
        "counter",
        "The CDR writer's counters, by name (submitted, stored, duplicate, failed, queue_full: submitters that waited for room, batches, insert_retries).",
    );
    for (name, v) in stats.all() {
        if name == "cdrs_pending" {
            continue;
        }
        let name = name
            .strip_prefix("cdrs_")
            .or_else(|| name.strip_prefix("cdr_"))
            .unwrap_or(name);
        o.value("accurate_cdr_writer_total", &[("name", name)], v);
    }
    o.single(
        "accurate_cdrs_pending",
        "gauge",
        "CDRs queued for the database, not stored yet.",
        stats.pending(),
    );
}

/// The exporters' and importers' counters, by ID and name (only those
/// that counted something).
fn export(o: &mut Out, state: &State) {
    for (metric, help, values) in [
        (
            "accurate_export_total",
            "CDR exporters' counters, by exporter and name (exported, filtered, failed, parked, replayed, post_errors, errors).",
            state.export.exports(),
        ),
        (
            "accurate_import_total",
            "CDR importers' counters, by importer and name (lines_imported, bad_lines, lines_filtered, files, errors).",
            state.export.imports(),
        ),
    ] {
        if values.is_empty() {
            continue;
        }
        o.head(metric, "counter", help);
        for ((id, name), v) in values {
            o.value(metric, &[("id", &id), ("name", name)], v);
        }
    }
}

fn sessions(o: &mut Out, state: &State) {
    let Some(s) = state.sessions.get() else {
        return;
    };
    let mut active = 0;
    o.head(
        "accurate_sessions_total",
        "counter",
        "The session manager's counters, by name (summed over the shards).",
    );
    for (name, v) in s.all_counters() {
        if name == "sessions.active" {
            active = v;
            continue;
        }
        let name = name.strip_prefix("sessions.").unwrap_or(name);
        o.value("accurate_sessions_total", &[("name", name)], v);
    }
    o.single(
        "accurate_sessions_active",
        "gauge",
        "Sessions in progress (API and passive calls).",
        active,
    );
}

fn rpc(o: &mut Out, state: &State) {
    let c = &state.counters;
    let by_method = c.by_method.lock().map(|m| m.clone()).unwrap_or_default();
    o.head(
        "accurate_rpc_requests_total",
        "counter",
        "JSON-RPC requests answered, by method (unknown: no such method; invalid: refused before dispatch); the plain HTTP calls by path (/v1/authorize, /v1/cdrs).",
    );
    for (m, (n, _)) in &by_method {
        o.value("accurate_rpc_requests_total", &[("method", m)], n);
    }
    o.head(
        "accurate_rpc_errors_total",
        "counter",
        "JSON-RPC requests answered with an error, by method; plain HTTP calls not authorized or not stored, by path.",
    );
    for (m, (_, e)) in &by_method {
        o.value("accurate_rpc_errors_total", &[("method", m)], e);
    }
    o.single(
        "accurate_rpc_tcp_connections_total",
        "counter",
        "JSON-RPC TCP connections accepted.",
        get(&c.tcp_connections),
    );
    o.head(
        "accurate_rpc_tcp_closed_total",
        "counter",
        "JSON-RPC TCP connections refused or closed by the server, by reason.",
    );
    for (reason, v) in [
        ("connection_limit", &c.tcp_conn_limit),
        ("malformed", &c.tcp_malformed),
        ("idle_timeout", &c.tcp_idle_timeout),
    ] {
        o.value(
            "accurate_rpc_tcp_closed_total",
            &[("reason", reason)],
            get(v),
        );
    }
    o.single(
        "accurate_rpc_http_refused_total",
        "counter",
        "HTTP requests refused before dispatch (path, method, size, auth).",
        get(&c.http_refused),
    );
}

fn debits(o: &mut Out, state: &State) {
    let Ok(d) = state.debits.lock() else {
        return;
    };
    o.single(
        "accurate_debits_total",
        "counter",
        "Debits: APIerSv1.DebitUsage calls and the session manager's charging operations (reservations, settles).",
        d.count,
    );
    o.single(
        "accurate_debit_errors_total",
        "counter",
        "Debits that failed (refused or in error).",
        d.errors,
    );
    let name = "accurate_debit_latency_seconds";
    o.head(
        name,
        "summary",
        "Debit latency: APIerSv1.DebitUsage from dispatch to the answer, a session charging operation its atomic account update.",
    );
    if let Some(h) = &d.latency_us {
        for (q, label) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] {
            let v = if h.is_empty() {
                "NaN".to_owned()
            } else {
                seconds(h.value_at_quantile(q))
            };
            o.value(name, &[("quantile", label)], v);
        }
    }
    o.value(&format!("{name}_sum"), &[], seconds(d.sum_us));
    o.value(&format!("{name}_count"), &[], d.count);
}

fn capture(o: &mut Out, state: &State) {
    let m = &state.capture;
    if !m.enabled.load(Ordering::Relaxed) {
        return;
    }
    let s = m.stats.snapshot();
    o.single(
        "accurate_capture_packets_total",
        "counter",
        "Frames, datagrams or HEP packets read by the capture sources.",
        s.packets,
    );
    o.single(
        "accurate_capture_bytes_total",
        "counter",
        "Bytes read by the capture sources.",
        s.bytes,
    );
    o.single(
        "accurate_capture_sip_messages_total",
        "counter",
        "SIP messages the capture sources produced.",
        s.sip,
    );
    o.single(
        "accurate_capture_discarded_bytes_total",
        "counter",
        "Bytes received and thrown away unread (partial HEP-over-TCP frames of closed connections, frames that did not decode).",
        s.discarded_bytes,
    );
    o.head(
        "accurate_capture_drops_total",
        "counter",
        "Capture inputs dropped, by reason.",
    );
    for (r, n) in s.drop_counts() {
        o.value("accurate_capture_drops_total", &[("reason", r.as_str())], n);
    }
    o.single(
        "accurate_live_dialogs",
        "gauge",
        "Calls the dialog machine tracks now (finished ones still lingering included).",
        get(&m.live_dialogs),
    );
    o.head(
        "accurate_dialog_events_total",
        "counter",
        "Dialog events sent to the session side, by kind.",
    );
    for (kind, c) in EVENT_KINDS.iter().zip(&m.events) {
        o.value("accurate_dialog_events_total", &[("kind", kind)], get(c));
    }
    o.single(
        "accurate_dialog_event_waits_total",
        "counter",
        "Times the dialog task waited for room in the full event channel.",
        get(&m.event_waits),
    );
    o.single(
        "accurate_cdrs_total",
        "counter",
        "CDRs made from ended and failed calls.",
        get(&m.cdrs),
    );
    let dialog = m.dialog.lock().map(|d| d.clone()).unwrap_or_default();
    o.head(
        "accurate_dialog_counter_total",
        "counter",
        "The dialog machine's named counters (as in replay's summary).",
    );
    for (name, v) in crate::replay::summary::dialog_counters(&dialog) {
        let name = name.strip_prefix("dialog.").unwrap_or(&name);
        o.value("accurate_dialog_counter_total", &[("name", name)], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_seconds_exact() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(seconds(1_234_567), "1.234567");
        assert_eq!(seconds(42), "0.000042");
    }
}
