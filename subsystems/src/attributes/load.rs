//! Attributes.csv and inline profiles.

use std::path::Path;

use rustc_hash::FxHashMap;

use super::{Attribute, AttributeProfile, AttributeProfiles, Kind, Template};
use crate::Error;
use crate::activation::ActivationInterval;

fn add_unique(to: &mut Vec<String>, from: Vec<String>) {
    for x in from {
        if !to.contains(&x) {
            to.push(x);
        }
    }
}

/// Whether a row is in v0.9's layout (`FieldName,Initial,Substitute,
/// Append`): its 9th column is Append (`true`/`false`), its 8th is not a
/// substitution type and its 7th is an Initial value (`*any` or plain
/// text), not a path such as `*req.X`.
fn is_v09_row(r: &rating::csv::Record<'_>) -> bool {
    let append = r.field(8);
    let initial = r.field(6);
    r.len() >= 10
        && (append.eq_ignore_ascii_case("true") || append.eq_ignore_ascii_case("false"))
        && !r.field(7).is_empty()
        && Kind::parse(r.field(7)).is_none()
        && (initial == "*any" || !initial.starts_with('*'))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "false" => Some(false),
        "true" => Some(true),
        _ => None,
    }
}

pub(super) fn load(
    records: &rating::csv::Records,
    file: &Path,
) -> Result<AttributeProfiles, Error> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut profs: FxHashMap<(String, String), AttributeProfile> = FxHashMap::default();
    for r in records.iter() {
        let err = |column: usize, why: String| Error::Load {
            file: file.to_owned(),
            line: r.line,
            column,
            why,
        };
        let (tenant, id) = (r.field(0), r.field(1));
        if tenant.is_empty() || id.is_empty() {
            return Err(err(0, "Tenant and ID are required".into()));
        }
        if r.len() < 10 {
            return Err(err(
                0,
                format!(
                    "{} columns; expected Tenant,ID,Contexts,FilterIDs,ActivationInterval,\
                     AttributeFilterIDs,Path,Type,Value,Blocker,Weight",
                    r.len()
                ),
            ));
        }
        let activation = ActivationInterval::parse(r.field(4)).map_err(|e| err(5, e))?;
        let v09 = is_v09_row(&r);
        // v0.9 rows of 10 columns have no Blocker.
        let (blocker_col, weight_col) = if v09 && r.len() == 10 {
            (None, 9)
        } else {
            (Some(9), 10)
        };
        let blocker_text = blocker_col.map_or("", |c| r.field(c));
        let blocker = parse_bool(blocker_text)
            .ok_or_else(|| err(10, format!("Blocker {blocker_text:?} is not true or false")))?;
        let weight_text = r.field(weight_col);
        let weight = if weight_text.is_empty() {
            None
        } else {
            Some(
                weight_text
                    .parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite())
                    .ok_or_else(|| {
                        err(
                            weight_col + 1,
                            format!("Weight {weight_text:?} is not a number"),
                        )
                    })?,
            )
        };
        let attribute = if v09 {
            v09_attribute(&r).map_err(|(c, why)| err(c, why))?
        } else if r.field(6).is_empty() {
            if !r.field(7).is_empty() || !r.field(8).is_empty() {
                return Err(err(7, "a Type or Value without a Path".into()));
            }
            None
        } else {
            let kind = Kind::parse(r.field(7))
                .ok_or_else(|| err(8, format!("unknown attribute type {:?}", r.field(7))))?;
            let value = Template::parse(r.field(8), ';').map_err(|e| err(9, e))?;
            if let Some(n) = kind.arity()
                && value.parts.len() != n
            {
                return Err(err(
                    9,
                    format!("{} takes {n} values separated by ;", kind.name()),
                ));
            }
            Some(Attribute {
                filter_ids: crate::columns::list(r.field(5)),
                path: r.field(6).to_owned(),
                kind,
                value,
            })
        };
        let key = (tenant.to_owned(), id.to_owned());
        let p = profs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            AttributeProfile {
                tenant: tenant.to_owned(),
                id: id.to_owned(),
                contexts: Vec::new(),
                filter_ids: Vec::new(),
                activation: ActivationInterval::default(),
                attributes: Vec::new(),
                blocker: false,
                weight: 0.0,
            }
        });
        add_unique(&mut p.contexts, crate::columns::list(r.field(2)));
        add_unique(&mut p.filter_ids, crate::columns::list(r.field(3)));
        if activation != ActivationInterval::default() {
            p.activation = activation;
        }
        if blocker {
            p.blocker = true;
        }
        if let Some(w) = weight
            && w != 0.0
        {
            p.weight = w;
        }
        p.attributes.extend(attribute);
    }
    let mut out = AttributeProfiles::default();
    for key in order {
        if let Some(p) = profs.remove(&key) {
            out.push(p);
        }
    }
    out.reindex();
    Ok(out)
}

/// A v0.9 row's attribute: `FieldName` (5), `Initial` (6: `*any` or the
/// value the field must hold), `Substitute` (7), `Append` (8: whether to
/// set a field the event lacks).
fn v09_attribute(r: &rating::csv::Record<'_>) -> Result<Option<Attribute>, (usize, String)> {
    let field = r.field(5);
    if field.is_empty() {
        return Ok(None);
    }
    let name = field.strip_prefix("*req.").unwrap_or(field);
    let mut filter_ids = Vec::new();
    let initial = r.field(6);
    if !initial.is_empty() && initial != "*any" {
        filter_ids.push(format!("*string:~*req.{name}:{initial}"));
    }
    if r.field(8).eq_ignore_ascii_case("false") {
        filter_ids.push(format!("*exists:~*req.{name}:"));
    }
    let sub = r.field(7);
    let kind = if sub.starts_with('~') {
        Kind::Variable
    } else {
        Kind::Constant
    };
    Ok(Some(Attribute {
        filter_ids,
        path: format!("*req.{name}"),
        kind,
        value: Template::parse(sub, ';').map_err(|e| (8, e))?,
    }))
}

/// An inline profile as ChargerS's AttributeIDs write one:
/// `*type:path:value`, several joined by `;`, a value's parts by `&`.
/// Its ID is the text itself; it serves every context.
///
/// # Errors
/// A rule without three parts, an empty path, an unknown type, a value
/// that does not parse.
pub fn inline_profile(tenant: &str, text: &str) -> Result<AttributeProfile, String> {
    let mut attributes = Vec::new();
    for rule in text.split(';') {
        let mut parts = rule.splitn(3, ':');
        let (Some(ty), Some(path), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("inline parse error for string: <{rule}>"));
        };
        if path.is_empty() {
            return Err(format!("empty path in inline AttributeProfile <{text}>"));
        }
        let kind =
            Kind::parse(ty).ok_or_else(|| format!("unknown attribute type {ty:?} in <{text}>"))?;
        attributes.push(Attribute {
            filter_ids: Vec::new(),
            path: path.to_owned(),
            kind,
            value: Template::parse(value, '&')?,
        });
    }
    Ok(AttributeProfile {
        tenant: tenant.to_owned(),
        id: text.to_owned(),
        contexts: vec!["*any".to_owned()],
        filter_ids: Vec::new(),
        activation: ActivationInterval::default(),
        attributes,
        blocker: false,
        weight: 0.0,
    })
}
