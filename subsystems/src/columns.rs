//! The column types the subsystems' CSV files share: `;`-separated lists,
//! booleans and numbers, read the same way by every loader.

/// A `;`-separated list column, empty entries dropped.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A boolean column: `true`/`false` (any case) or `1`/`0`, empty is false.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" => Ok(false),
        "true" | "1" => Ok(true),
        other => Err(format!("not a boolean: {other:?}")),
    }
}

/// A number column (finite), empty is 0.
pub(crate) fn parse_f64(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0.0);
    }
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("not a number: {s:?}"))
}
