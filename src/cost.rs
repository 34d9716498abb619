//! `accurate cost`: rate one call against a folder of CGRateS tariff plan
//! CSVs and print the cost with its breakdown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use rating::{
    CallCost, CallDescriptor, LoadOptions, RoundingMode, TariffPlan, Tor, format_duration,
};

/// Rounding mode flag values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Rounding {
    /// Exact decimals, rounded once with the plan's method and decimals.
    Exact,
    /// Reproduce CGRateS to the digit (5-decimal rounding per increment).
    Cgrates,
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
    /// Destination number.
    #[arg(long)]
    destination: String,
    /// When the call was answered, RFC 3339 (2024-05-13T10:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    answer_time: DateTime<Utc>,
    /// Usage as CGRateS writes it: 90s, 1m30s, 2h; a bare number counts
    /// units for *sms and *data.
    #[arg(long, value_name = "DURATION")]
    usage: String,
    /// Type of record: *voice, *data or *sms.
    #[arg(long, default_value = "*voice", value_parser = parse_tor)]
    tor: Tor,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time like 2024-05-13T10:00:00Z: {e}"))
}

fn parse_tor(s: &str) -> Result<Tor, String> {
    s.parse()
        .map_err(|()| "expected *voice, *data or *sms".to_owned())
}

/// Loads the plan, rates the call, prints the result.
pub(crate) fn run(args: CostArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load_or_default(config)?;
    let usage = rating::parse_duration(&args.usage)?;
    let trimmed = args.usage.trim();
    if args.tor == Tor::Voice
        && !trimmed.is_empty()
        && trimmed != "0"
        && trimmed.bytes().all(|b| b.is_ascii_digit())
    {
        bail!(
            "--usage {trimmed}: a bare number counts nanoseconds for *voice; write {trimmed}s for seconds"
        );
    }
    // The binary owns the clock: `*asap` timings anchor at load time.
    let options = LoadOptions {
        loaded_at: Utc::now(),
    };
    let (plan, report) = TariffPlan::load_dir_with(&args.tariffplan, &options, &cfg.load_policy())
        .with_context(|| format!("loading tariff plan {}", args.tariffplan.display()))?;
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
    std::io::stdout().write_all(text.as_bytes())?;
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
                ts.rating_plan.to_string(),
                format!("{} ({})", ts.destination_id, ts.matched_prefix),
                ts.timing.to_string(),
                format!(
                    "{} {}/{}",
                    ts.rate_id,
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
