//! From SIP headers to charging fields: Account, Subject, Destination,
//! Tenant, Category and RequestType, as CGRateS names them.
//!
//! The defaults make the CGRateS tutorial tariff plans work unchanged:
//! Account = Subject = From user, Destination = Request-URI user of the
//! first INVITE, Tenant `cgrates.org`, Category `call`, RequestType
//! `*rated`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::Error;
use crate::event::Charging;
use smol_str::SmolStr;

/// Which SIP value a charging field is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldSource {
    /// The user part of the From URI.
    FromUser,
    /// The user part of the P-Asserted-Identity URI (RFC 3325).
    PaiUser,
    /// The user part of the Request-URI of the first INVITE.
    RuriUser,
    /// The user part of the To URI.
    ToUser,
    /// The user part of the first Diversion URI (RFC 5806).
    DiversionUser,
}

/// One number normalisation step. Steps run in order.
///
/// In TOML: `{ strip-prefix = "00" }`, `{ add-prefix = "+" }`,
/// `{ regex = { pattern = "^0([1-9])", replace = "49$1" } }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum NormRule {
    /// Removes this prefix when the value starts with it.
    StripPrefix(String),
    /// Puts this prefix in front of the value.
    AddPrefix(String),
    /// Replaces the first match of `pattern` with `replace` (`$1` refers to
    /// a capture group, as in the `regex` crate).
    Regex {
        /// The regular expression.
        pattern: String,
        /// The replacement.
        replace: String,
    },
}

/// How one charging field is derived.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FieldMap {
    /// Where the value comes from: the first source present wins. Empty
    /// means the field's default (From user; Request-URI user for
    /// Destination).
    pub from: Vec<FieldSource>,
    /// Normalisation steps applied to the value.
    pub normalize: Vec<NormRule>,
}

/// Tenant and Category for calls seen at a capture point or from/to an
/// address. The first matching rule wins; unset fields keep the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AddressRule {
    /// Matches [`capture::SipPacket::capture_point`] of the first INVITE.
    pub capture_point: Option<String>,
    /// An IP address or CIDR block (`10.0.0.0/8`) that the first INVITE's
    /// source or destination address must fall in.
    pub address: Option<String>,
    /// Tenant for matching calls.
    pub tenant: Option<String>,
    /// Category for matching calls.
    pub category: Option<String>,
}

/// The mapping from SIP to the charging event (embed it in the binary's
/// TOML config).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MappingConfig {
    /// Account (the balance that pays).
    pub account: FieldMap,
    /// Subject (the rating subject).
    pub subject: FieldMap,
    /// Destination (the number rated against destination prefixes).
    pub destination: FieldMap,
    /// Default tenant.
    pub tenant: String,
    /// Default category.
    pub category: String,
    /// Default request type: one of [`REQUEST_TYPES`] (`*rated`,
    /// `*postpaid`, `*prepaid`, `*pseudoprepaid`, `*none`); anything else
    /// is refused when the config is read.
    #[serde(deserialize_with = "request_type")]
    pub request_type: String,
    /// Request type per (normalised) account, each one of
    /// [`REQUEST_TYPES`].
    #[serde(deserialize_with = "request_types")]
    pub request_types: BTreeMap<String, String>,
    /// Tenant and category per capture point or address.
    pub rules: Vec<AddressRule>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            account: FieldMap::default(),
            subject: FieldMap::default(),
            destination: FieldMap::default(),
            tenant: "cgrates.org".into(),
            category: "call".into(),
            request_type: "*rated".into(),
            request_types: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

/// The request types CGRateS knows (`utils.MetaPrepaid` and friends).
pub const REQUEST_TYPES: [&str; 5] = ["*prepaid", "*postpaid", "*pseudoprepaid", "*rated", "*none"];

fn check_request_type(v: &str) -> Result<(), String> {
    if REQUEST_TYPES.contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "unknown request type {v:?}, expected one of {}",
            REQUEST_TYPES.join(", ")
        ))
    }
}

fn request_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    check_request_type(&v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

/// A request type checked as it is read, so the error points at the value.
struct Checked(String);

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        request_type(d).map(Checked)
    }
}

fn request_types<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, Checked>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

impl MappingConfig {
    /// Checks the request types (what deserializing checks already), for
    /// configs built in code.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason| Error::Config {
            key: "mapping.request-type",
            reason,
        };
        check_request_type(&self.request_type).map_err(bad)?;
        for v in self.request_types.values() {
            check_request_type(v).map_err(bad)?;
        }
        Ok(())
    }
}

/// The SIP values a mapping reads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapInput<'a> {
    pub from_user: Option<&'a str>,
    pub pai_user: Option<&'a str>,
    pub ruri_user: Option<&'a str>,
    pub to_user: Option<&'a str>,
    pub diversion_user: Option<&'a str>,
    pub capture_point: &'a str,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
}

enum Step {
    Strip(String),
    Add(String),
    Regex(regex::Regex, String),
}

struct Field {
    from: Vec<FieldSource>,
    steps: Vec<Step>,
}

struct Rule {
    capture_point: Option<String>,
    net: Option<(IpAddr, u8)>,
    tenant: Option<Arc<str>>,
    category: Option<Arc<str>>,
}

/// A [`MappingConfig`] with its regexes compiled and CIDRs parsed. Shared
/// strings (tenant, category, request type) are `Arc`s so a live dialog
/// does not own a copy.
pub(crate) struct Mapper {
    account: Field,
    subject: Field,
    destination: Field,
    tenant: Arc<str>,
    category: Arc<str>,
    request_type: Arc<str>,
    request_types: BTreeMap<String, Arc<str>>,
    rules: Vec<Rule>,
}

impl Mapper {
    pub(crate) fn new(cfg: &MappingConfig) -> Result<Self, Error> {
        let field = |f: &FieldMap, default: FieldSource| -> Result<Field, Error> {
            let from = if f.from.is_empty() {
                vec![default]
            } else {
                f.from.clone()
            };
            let steps = f
                .normalize
                .iter()
                .map(Step::new)
                .collect::<Result<_, _>>()?;
            Ok(Field { from, steps })
        };
        let rules = cfg
            .rules
            .iter()
            .map(|r| {
                Ok(Rule {
                    capture_point: r.capture_point.clone(),
                    net: r.address.as_deref().map(parse_cidr).transpose()?,
                    tenant: r.tenant.as_deref().map(Arc::from),
                    category: r.category.as_deref().map(Arc::from),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Mapper {
            account: field(&cfg.account, FieldSource::FromUser)?,
            subject: field(&cfg.subject, FieldSource::FromUser)?,
            destination: field(&cfg.destination, FieldSource::RuriUser)?,
            tenant: Arc::from(cfg.tenant.as_str()),
            category: Arc::from(cfg.category.as_str()),
            request_type: Arc::from(cfg.request_type.as_str()),
            request_types: cfg
                .request_types
                .iter()
                .map(|(k, v)| (k.clone(), Arc::from(v.as_str())))
                .collect(),
            rules,
        })
    }

    pub(crate) fn map(&self, input: &MapInput<'_>) -> Charging {
        let account = self.account.apply(input);
        let request_type = self
            .request_types
            .get(&*account)
            .unwrap_or(&self.request_type)
            .clone();
        let mut tenant = &self.tenant;
        let mut category = &self.category;
        if let Some(rule) = self.rules.iter().find(|r| r.matches(input)) {
            tenant = rule.tenant.as_ref().unwrap_or(tenant);
            category = rule.category.as_ref().unwrap_or(category);
        }
        Charging {
            tenant: tenant.clone(),
            category: category.clone(),
            subject: self.subject.apply(input),
            destination: self.destination.apply(input),
            account,
            request_type,
        }
    }
}

impl Step {
    fn new(rule: &NormRule) -> Result<Self, Error> {
        Ok(match rule {
            NormRule::StripPrefix(p) => Step::Strip(p.clone()),
            NormRule::AddPrefix(p) => Step::Add(p.clone()),
            NormRule::Regex { pattern, replace } => Step::Regex(
                regex::Regex::new(pattern).map_err(|e| Error::Regex {
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?,
                replace.clone(),
            ),
        })
    }
}

impl Field {
    fn apply(&self, input: &MapInput<'_>) -> SmolStr {
        let raw = self
            .from
            .iter()
            .find_map(|s| match s {
                FieldSource::FromUser => input.from_user,
                FieldSource::PaiUser => input.pai_user,
                FieldSource::RuriUser => input.ruri_user,
                FieldSource::ToUser => input.to_user,
                FieldSource::DiversionUser => input.diversion_user,
            })
            .unwrap_or("");
        if self.steps.is_empty() {
            return raw.into();
        }
        let mut v = raw.to_owned();
        for step in &self.steps {
            match step {
                Step::Strip(p) => {
                    if let Some(rest) = v.strip_prefix(p.as_str()) {
                        v = rest.to_owned();
                    }
                }
                Step::Add(p) => v.insert_str(0, p),
                Step::Regex(re, with) => v = re.replace(&v, with.as_str()).into_owned(),
            }
        }
        v.into()
    }
}

impl Rule {
    fn matches(&self, input: &MapInput<'_>) -> bool {
        if self
            .capture_point
            .as_deref()
            .is_some_and(|cp| cp != input.capture_point)
        {
            return false;
        }
        if let Some((net, len)) = self.net {
            let hit = |a: Option<SocketAddr>| a.is_some_and(|a| in_net(a.ip(), net, len));
            if !hit(input.src) && !hit(input.dst) {
                return false;
            }
        }
        self.capture_point.is_some() || self.net.is_some()
    }
}

/// Parses `IP` or `IP/LEN`.
fn parse_cidr(s: &str) -> Result<(IpAddr, u8), Error> {
    let bad = || Error::Cidr(s.to_owned());
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.trim().parse::<u8>().map_err(|_| bad())?,
        None => max,
    };
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let mask = |bits: u32, len: u8| -> u128 {
        if len == 0 {
            0
        } else {
            (!0u128) << (bits - u32::from(len))
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(32, len);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(n)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(128, len);
            (u128::from(a) & m) == (u128::from(n) & m)
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|a4| in_net(IpAddr::V4(a4), net, len)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> MapInput<'static> {
        MapInput {
            from_user: Some("1001"),
            pai_user: Some("+4930111"),
            ruri_user: Some("1002"),
            to_user: Some("1002to"),
            diversion_user: None,
            capture_point: "10.0.0.5:5060",
            src: "10.0.0.1:5060".parse().ok(),
            dst: "192.168.1.9:5060".parse().ok(),
        }
    }

    #[test]
    fn defaults_follow_the_cgrates_tutorial() {
        let c = Mapper::new(&MappingConfig::default())
            .unwrap()
            .map(&input());
        assert_eq!(&*c.tenant, "cgrates.org");
        assert_eq!(&*c.category, "call");
        assert_eq!(&*c.request_type, "*rated");
        assert_eq!(
            (&*c.account, &*c.subject, &*c.destination),
            ("1001", "1001", "1002")
        );
    }

    #[test]
    fn toml_config_with_sources_rules_and_normalisation() {
        let cfg: MappingConfig = toml::from_str(
            r#"
            tenant = "acme"
            request-type = "*postpaid"
            [account]
            from = ["diversion-user", "pai-user", "from-user"]
            normalize = [{ strip-prefix = "+" }, { add-prefix = "00" }]
            [destination]
            from = ["to-user"]
            normalize = [{ regex = { pattern = "^(\\d+)to$", replace = "49$1" } }]
            [request-types]
            "004930111" = "*prepaid"
            [[rules]]
            capture-point = "edge-1"
            category = "edge"
            [[rules]]
            address = "192.168.0.0/16"
            tenant = "lan"
            "#,
        )
        .unwrap();
        let c = Mapper::new(&cfg).unwrap().map(&input());
        assert_eq!(&*c.account, "004930111");
        assert_eq!(&*c.subject, "1001");
        assert_eq!(&*c.destination, "491002");
        assert_eq!(&*c.request_type, "*prepaid");
        assert_eq!((&*c.tenant, &*c.category), ("lan", "call"));
        let mut edge = input();
        edge.capture_point = "edge-1";
        let c = Mapper::new(&cfg).unwrap().map(&edge);
        assert_eq!((&*c.tenant, &*c.category), ("acme", "edge"));
    }

    #[test]
    fn unknown_keys_fail() {
        for bad in [
            "tennant = \"x\"",
            "[account]\nsource = [\"from-user\"]",
            "[account]\nfrom = [\"contact-user\"]",
            "[[rules]]\nip = \"10.0.0.0/8\"",
            "[account]\nnormalize = [{ strip = \"0\" }]",
        ] {
            assert!(toml::from_str::<MappingConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_regex_and_cidr_are_errors() {
        let mut cfg = MappingConfig::default();
        cfg.subject.normalize.push(NormRule::Regex {
            pattern: "(".into(),
            replace: String::new(),
        });
        assert!(matches!(Mapper::new(&cfg), Err(Error::Regex { .. })));
        for bad in ["10.0.0.0/33", "nonsense", "::1/129", "10.0.0.1/x"] {
            let cfg = MappingConfig {
                rules: vec![AddressRule {
                    address: Some(bad.into()),
                    ..AddressRule::default()
                }],
                ..MappingConfig::default()
            };
            assert!(matches!(Mapper::new(&cfg), Err(Error::Cidr(_))), "{bad}");
        }
    }

    #[test]
    fn cidr_matching() {
        let (n, l) = parse_cidr("10.1.0.0/16").unwrap();
        assert!(in_net("10.1.200.3".parse().unwrap(), n, l));
        assert!(!in_net("10.2.0.1".parse().unwrap(), n, l));
        assert!(in_net("::ffff:10.1.0.1".parse().unwrap(), n, l));
        let (n, l) = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_net("2001:db8:1::1".parse().unwrap(), n, l));
        assert!(!in_net("10.1.0.1".parse().unwrap(), n, l));
        let (n, l) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(in_net("1.2.3.4".parse().unwrap(), n, l));
    }

    #[test]
    fn missing_sources_fall_through_to_empty() {
        let cfg: MappingConfig = toml::from_str("[account]\nfrom = [\"diversion-user\"]").unwrap();
        let c = Mapper::new(&cfg).unwrap().map(&input());
        assert_eq!(&*c.account, "");
    }
}
