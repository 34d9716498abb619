//! `accurate cost`: rate one call against a folder of CGRateS tariff plan
//! CSVs and print the cost with its breakdown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::args::{Rounding, parse_time};
use anyhow::Context;
use chrono::{DateTime, Utc};
use rating::{
    CallCost, CallDescriptor, LoadOptions, LoadReport, RoundingMode, TariffPlan, Tor,
    format_duration,
};

/// The moment offline pricing takes a tariff plan as loaded: `*asap`
/// timings and activation times are anchored here (CGRateS anchors them
/// when it loads the plan). The epoch rather than the wall clock makes a
/// plan's `*asap` rates apply to every call priced, past or present, and
/// makes the price of a call the same whenever it is worked out.
pub(crate) const OFFLINE_LOADED_AT: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// Loads a tariff plan folder for offline pricing. `accurate cost` and
/// `accurate replay --tariffplan` both load through here, so they price a
/// call the same way (`*asap` anchored at [`OFFLINE_LOADED_AT`]).
pub(crate) fn load_tariff_plan(
    dir: &Path,
    policy: &rating::LoadPolicy,
) -> anyhow::Result<(TariffPlan, LoadReport)> {
    let options = LoadOptions {
        loaded_at: OFFLINE_LOADED_AT,
    };
    TariffPlan::load_dir_with(dir, &options, policy)
        .with_context(|| format!("loading tariff plan {}", dir.display()))
}

/// Output format flag values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// One JSON object: `{"Cost": ..., "Usage": ns, ...}`.
    Json,
    /// A human-readable table.
    Table,
}

/// Arguments of `accurate cost`.
#[derive(Debug, clap::Args)]
pub(crate) struct CostArgs {
    /// Folder of CGRateS tariff plan CSVs (Destinations.csv, Rates.csv, ...).
    #[arg(long, value_name = "DIR")]
    tariffplan: PathBuf,
    /// exact: round once at the end; cgrates: reproduce CGRateS's rounding.
    #[arg(long, value_enum, default_value_t = Rounding::Exact)]
    rounding: Rounding,
    /// Tenant.
    #[arg(long, default_value = "cgrates.org")]
    tenant: String,
    /// Category.
    #[arg(long, default_value = "call")]
    category: String,
    /// Rating subject (usually the caller's account).
    #[arg(long)]
    subject: String,
    /// Destination number; left out, `*any` (as CGRateS does), which only
    /// the plan's `*any` destination rates price.
    #[arg(long, default_value = "*any")]
    destination: String,
    /// When the call was answered, RFC 3339 (2024-05-13T10:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    answer_time: DateTime<Utc>,
    /// Usage as CGRateS reads it: 90s, 1m30s, 2h; a bare number counts
    /// nanoseconds for *voice (120000000000 is 120 s) and units for *sms
    /// and *data.
    #[arg(long, value_name = "DURATION")]
    usage: String,
    /// Type of record: *voice, *data or *sms.
    #[arg(long, default_value = "*voice", value_parser = parse_tor)]
    tor: Tor,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_tor(s: &str) -> Result<Tor, String> {
    s.parse()
        .map_err(|()| "expected *voice, *data or *sms".to_owned())
}

/// Loads the plan, rates the call, prints the result.
pub(crate) fn run(args: CostArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load_or_default(config)?;
    // CGRateS's ParseDurationWithNanosecs: a bare integer is nanoseconds
    // whatever the ToR (for *sms and *data one unit is one nanosecond).
    let usage = rating::parse_duration(&args.usage)?;
    let (plan, report) = load_tariff_plan(&args.tariffplan, &cfg.load_policy())?;
    if !report.unhandled_files.is_empty() {
        let names: Vec<String> = report
            .unhandled_files
            .iter()
            .map(|f| {
                f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        eprintln!(
            "note: not used for rating (not handled yet): {}",
            names.join(", ")
        );
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    let mode = match args.rounding {
        Rounding::Exact => RoundingMode::Exact,
        Rounding::Cgrates => RoundingMode::Cgrates,
    };
    let mut cd = CallDescriptor::new(&args.subject, &args.destination, args.answer_time, usage);
    cd.tenant = &args.tenant;
    cd.category = &args.category;
    cd.tor = args.tor;
    let cc = plan.cost(&cd, mode)?;
    let text = match args.format {
        Format::Json => cc.to_json() + "\n",
        Format::Table => table(&cc, args.tor),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(crate::exit::Failure::Output)?;
    Ok(())
}

fn usage_text(d: std::time::Duration, tor: Tor) -> String {
    match tor {
        Tor::Voice => format_duration(d),
        Tor::Data | Tor::Sms => format!("{} units", d.as_nanos()),
    }
}

fn table(cc: &CallCost, tor: Tor) -> String {
    let mut out = String::new();
    let rounding = cc.rounding.map_or_else(
        || "no rounding".to_owned(),
        |r| format!("{} {} decimals", r.method().as_str(), r.decimals()),
    );
    let _ = writeln!(
        out,
        "Cost         {}   ({} mode, {rounding})",
        cc.cost,
        cc.mode.as_str()
    );
    let _ = writeln!(out, "Unrounded    {}", cc.unrounded_cost);
    let _ = writeln!(
        out,
        "Usage        {}   (rated {})",
        usage_text(cc.usage, tor),
        usage_text(cc.rated_usage, tor)
    );
    let _ = writeln!(out, "Connect fee  {}", cc.connect_fee);
    if cc.max_cost_applied {
        let _ = writeln!(out, "MaxCost      *free cap applied");
    }
    if let Some(d) = cc.max_cost_disconnect_at {
        let _ = writeln!(out, "MaxCost      *disconnect after {}", usage_text(d, tor));
    }
    let headers = [
        "#",
        "Start",
        "Usage",
        "Plan",
        "Destination",
        "Timing",
        "Rate",
        "Increments",
        "Cost",
    ];
    let rows: Vec<[String; 9]> = cc
        .timespans
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            [
                (i + 1).to_string(),
                ts.start.to_rfc3339(),
                usage_text(ts.usage, tor),
                ts.rating_plan().to_string(),
                format!("{} ({})", ts.destination_id(), ts.matched_prefix()),
                ts.timing().to_string(),
                format!(
                    "{} {}/{}",
                    ts.rate_id(),
                    ts.rate,
                    usage_text(ts.rate_unit, tor)
                ),
                format!("{} x {}", ts.increments, usage_text(ts.rate_increment, tor)),
                ts.cost.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&headers);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}
