//! RADIUS dictionaries in FreeRADIUS's format: `ATTRIBUTE name code type
//! [vendor|flags]`, `VALUE attribute name number`, `VENDOR name id
//! [format=1,1]`, `BEGIN-VENDOR name` / `END-VENDOR name` and `$INCLUDE
//! file`. A base set written from RFC 2865, 2866, 2869, 5176 and 5090
//! (and Cisco's VSAs) is embedded ([`Dictionary::builtin`]); operators add
//! files (Debian's `freeradius-common` ships hundreds) with
//! [`Dictionary::load_file`].
//!
//! Only what the agent needs is kept: names, codes, vendors, types and
//! named values. TLVs, extended attributes (`241.1`), vendors in another
//! format than `format=1,1` and other keywords are skipped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::Error;

/// The embedded base dictionary files, by `$INCLUDE` name.
const BUILTIN: &[(&str, &str)] = &[
    ("dictionary", include_str!("../../dict/radius/dictionary")),
    (
        "dictionary.rfc2865",
        include_str!("../../dict/radius/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../dict/radius/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../dict/radius/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc5176",
        include_str!("../../dict/radius/dictionary.rfc5176"),
    ),
    (
        "dictionary.rfc5090",
        include_str!("../../dict/radius/dictionary.rfc5090"),
    ),
    (
        "dictionary.cisco",
        include_str!("../../dict/radius/dictionary.cisco"),
    ),
];

/// How deep `$INCLUDE`s nest before a loop is assumed.
const MAX_DEPTH: usize = 16;

/// An attribute's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// UTF-8 text (shown lossily when it is not).
    String,
    /// Bytes, shown as `0x` hex.
    Octets,
    /// An IPv4 address.
    Ipaddr,
    /// An IPv6 address.
    Ipv6addr,
    /// A 32-bit unsigned number (named by `VALUE`s).
    Integer,
    /// A 32-bit signed number.
    Signed,
    /// Seconds since 1970 (32 bits).
    Date,
    /// An 8-bit number.
    Byte,
    /// A 16-bit number.
    Short,
    /// A 64-bit number.
    Integer64,
    /// Any other type: handled as octets.
    Other,
}

impl AttrType {
    fn parse(s: &str) -> AttrType {
        match s.to_ascii_lowercase().as_str() {
            "string" => AttrType::String,
            "octets" => AttrType::Octets,
            "ipaddr" => AttrType::Ipaddr,
            "ipv6addr" => AttrType::Ipv6addr,
            "integer" => AttrType::Integer,
            "signed" => AttrType::Signed,
            "date" => AttrType::Date,
            "byte" => AttrType::Byte,
            "short" => AttrType::Short,
            "integer64" => AttrType::Integer64,
            _ => AttrType::Other,
        }
    }
}

/// One attribute's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrDef {
    /// Its name as written (`Acct-Session-Id`).
    pub name: String,
    /// Its vendor (0: a standard attribute).
    pub vendor: u32,
    /// Its type number (the vendor's, for a VSA).
    pub code: u8,
    /// Its data type.
    pub typ: AttrType,
}

/// A set of dictionaries.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    attrs: Vec<AttrDef>,
    by_name: HashMap<String, usize>,
    by_code: HashMap<(u32, u8), usize>,
    /// Named values per attribute (lowercase name): name to number and back.
    values: HashMap<String, Vec<(String, u64)>>,
    vendors: HashMap<String, (u32, bool)>,
}

impl Dictionary {
    /// The embedded base set (its files are tested to parse).
    #[must_use]
    pub fn builtin() -> Dictionary {
        let mut d = Dictionary::default();
        // The embedded files parse (tested below); an error would leave
        // the dictionary partial, never panic.
        let _ = d.parse("dictionary", BUILTIN[0].1, 0, &mut |name| {
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| Error::Dictionary(format!("no embedded dictionary {name:?}")))
        });
        d
    }

    /// Adds a dictionary file and what it `$INCLUDE`s (relative to its
    /// folder).
    ///
    /// # Errors
    /// [`Error::Dictionary`]: a file that cannot be read, a line that does
    /// not parse, includes nested too deep.
    pub fn load_file(&mut self, path: &Path) -> Result<(), Error> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| Error::Dictionary(format!("{}: {e}", p.display())))
        };
        let text = read(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.parse(&path.display().to_string(), &text, 0, &mut |name| {
            read(&dir.join(name))
        })
    }

    /// Adds the definitions in `text` (read as file `source`).
    ///
    /// # Errors
    /// As [`Dictionary::load_file`].
    pub fn parse_text(&mut self, source: &str, text: &str) -> Result<(), Error> {
        self.parse(source, text, 0, &mut |name| {
            Err(Error::Dictionary(format!(
                "{source}: cannot $INCLUDE {name}"
            )))
        })
    }

    fn parse(
        &mut self,
        source: &str,
        text: &str,
        depth: usize,
        include: &mut dyn FnMut(&str) -> Result<String, Error>,
    ) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Dictionary(format!(
                "{source}: $INCLUDE nested too deep"
            )));
        }
        let mut vendor: Option<(u32, bool)> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(&kw) = words.first() else { continue };
            let bad = |m: &str| Error::Dictionary(format!("{source}:{}: {m}", n + 1));
            match kw {
                "$INCLUDE" | "$INCLUDE-" => {
                    let name = words.get(1).ok_or_else(|| bad("$INCLUDE without a file"))?;
                    match include(name) {
                        Ok(t) => self.parse(name, &t, depth + 1, include)?,
                        Err(_) if kw == "$INCLUDE-" => {}
                        Err(e) => return Err(e),
                    }
                }
                "VENDOR" => {
                    let (Some(name), Some(id)) = (words.get(1), words.get(2)) else {
                        return Err(bad("VENDOR needs a name and a number"));
                    };
                    let id = number(id).ok_or_else(|| bad("bad vendor number"))?;
                    let id = u32::try_from(id).map_err(|_| bad("vendor number too large"))?;
                    // Only the common format (1-byte type, 1-byte length).
                    let plain = words.get(3).is_none_or(|f| *f == "format=1,1");
                    self.vendors.insert(name.to_ascii_lowercase(), (id, plain));
                }
                "BEGIN-VENDOR" => {
                    let name = words
                        .get(1)
                        .ok_or_else(|| bad("BEGIN-VENDOR needs a name"))?;
                    let v = self
                        .vendors
                        .get(&name.to_ascii_lowercase())
                        .copied()
                        .ok_or_else(|| bad("BEGIN-VENDOR of an unknown vendor"))?;
                    vendor = Some(v);
                }
                "END-VENDOR" => vendor = None,
                "ATTRIBUTE" => {
                    let (Some(name), Some(code), Some(typ)) =
                        (words.get(1), words.get(2), words.get(3))
                    else {
                        return Err(bad("ATTRIBUTE needs a name, a number and a type"));
                    };
                    // Old style: a vendor name as the fourth word.
                    let mut v = vendor;
                    if let Some(w) = words.get(4).filter(|w| !w.contains('=')) {
                        if let Some(found) = self.vendors.get(&w.to_ascii_lowercase()) {
                            v = Some(*found);
                        }
                    }
                    let (vid, plain) = v.unwrap_or((0, true));
                    // Dotted (TLV, extended) and wide codes are not kept.
                    let Some(code) = number(code).and_then(|c| u8::try_from(c).ok()) else {
                        continue;
                    };
                    if !plain {
                        continue;
                    }
                    self.add(AttrDef {
                        name: (*name).to_owned(),
                        vendor: vid,
                        code,
                        typ: AttrType::parse(typ.split('[').next().unwrap_or_default()),
                    });
                }
                "VALUE" => {
                    let (Some(attr), Some(name), Some(num)) =
                        (words.get(1), words.get(2), words.get(3))
                    else {
                        return Err(bad("VALUE needs an attribute, a name and a number"));
                    };
                    let Some(num) = number(num) else { continue };
                    self.values
                        .entry(attr.to_ascii_lowercase())
                        .or_default()
                        .push(((*name).to_owned(), num));
                }
                // BEGIN-TLV, FLAGS, PROTOCOL, ALIAS, STRUCT, MEMBER, ...
                _ => {}
            }
        }
        Ok(())
    }

    fn add(&mut self, def: AttrDef) {
        let i = self.attrs.len();
        self.by_name.insert(def.name.to_ascii_lowercase(), i);
        self.by_code.insert((def.vendor, def.code), i);
        self.attrs.push(def);
    }

    /// The attribute named `name` (case does not matter).
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&AttrDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|i| self.attrs.get(*i))
    }

    /// The attribute `code` of `vendor` (0: standard).
    #[must_use]
    pub fn by_code(&self, vendor: u32, code: u8) -> Option<&AttrDef> {
        self.by_code
            .get(&(vendor, code))
            .and_then(|i| self.attrs.get(*i))
    }

    /// The vendor number of `name`.
    #[must_use]
    pub fn vendor(&self, name: &str) -> Option<u32> {
        self.vendors.get(&name.to_ascii_lowercase()).map(|v| v.0)
    }

    /// How many attributes are known.
    #[must_use]
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether no attribute is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// `raw` as text: named values by name, numbers in decimal, addresses
    /// dotted, octets as `0x` hex.
    #[must_use]
    pub fn text(&self, def: &AttrDef, raw: &[u8]) -> String {
        let num = match (def.typ, raw.len()) {
            (AttrType::Integer | AttrType::Date, 4) => Some(u64::from(u32::from_be_bytes([
                raw[0], raw[1], raw[2], raw[3],
            ]))),
            (AttrType::Byte, 1) => Some(u64::from(raw[0])),
            (AttrType::Short, 2) => Some(u64::from(u16::from_be_bytes([raw[0], raw[1]]))),
            (AttrType::Integer64, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(raw);
                Some(u64::from_be_bytes(b))
            }
            _ => None,
        };
        if let Some(n) = num {
            if let Some((name, _)) = self
                .values
                .get(&def.name.to_ascii_lowercase())
                .and_then(|vs| vs.iter().find(|(_, v)| *v == n))
            {
                return name.clone();
            }
            return n.to_string();
        }
        match (def.typ, raw.len()) {
            (AttrType::Signed, 4) => {
                i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]).to_string()
            }
            (AttrType::Ipaddr, 4) => Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).to_string(),
            (AttrType::Ipv6addr, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(raw);
                Ipv6Addr::from(b).to_string()
            }
            (AttrType::String, _) => String::from_utf8_lossy(raw).into_owned(),
            _ => hex(raw),
        }
    }

    /// `text` as the value bytes of `def` (a named value, a number, an
    /// address, `0x` hex or text).
    ///
    /// # Errors
    /// [`Error::Radius`] for text that is not a value of the type.
    pub fn encode(&self, def: &AttrDef, text: &str) -> Result<Vec<u8>, Error> {
        let bad = || Error::Radius(format!("{:?} is not a value of {}", text, def.name));
        let named = self
            .values
            .get(&def.name.to_ascii_lowercase())
            .and_then(|vs| vs.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)))
            .map(|(_, v)| *v);
        // Durations and amounts may come with decimals: whole part.
        let whole = || named.or_else(|| number(text.split('.').next().unwrap_or_default()));
        Ok(match def.typ {
            AttrType::Integer | AttrType::Date => u32::try_from(whole().ok_or_else(bad)?)
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec(),
            AttrType::Byte => vec![u8::try_from(whole().ok_or_else(bad)?).map_err(|_| bad())?],
            AttrType::Short => u16::try_from(whole().ok_or_else(bad)?)
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec(),
            AttrType::Integer64 => whole().ok_or_else(bad)?.to_be_bytes().to_vec(),
            AttrType::Signed => text
                .parse::<i32>()
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec(),
            AttrType::Ipaddr => text
                .parse::<Ipv4Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            AttrType::Ipv6addr => text
                .parse::<Ipv6Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            AttrType::String => text.as_bytes().to_vec(),
            AttrType::Octets | AttrType::Other => match text.strip_prefix("0x") {
                Some(h) => unhex(h).ok_or_else(bad)?,
                None => text.as_bytes().to_vec(),
            },
        })
    }
}

/// A decimal or `0x` hex number.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `0x` and lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(2 + b.len() * 2);
    s.push_str("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Hex text (no prefix) as bytes.
pub(crate) fn unhex(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| h.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_set_parses_with_vendors_and_values() {
        let mut d = Dictionary::default();
        for (name, text) in BUILTIN {
            d.parse_text(name, &text.replace("$INCLUDE", "# $INCLUDE"))
                .unwrap();
        }
        let d = Dictionary::builtin();
        let u = d.by_name("user-name").unwrap();
        assert_eq!((u.vendor, u.code, u.typ), (0, 1, AttrType::String));
        let st = d.by_name("Acct-Status-Type").unwrap();
        assert_eq!(d.text(st, &[0, 0, 0, 3]), "Interim-Update");
        assert_eq!(d.encode(st, "Stop").unwrap(), [0, 0, 0, 2]);
        let c = d.by_name("Cisco-AVPair").unwrap();
        assert_eq!((c.vendor, c.code), (9, 1));
        assert_eq!(d.by_code(9, 1).unwrap().name, "Cisco-AVPair");
        assert_eq!(d.by_name("Digest-Response").unwrap().code, 103);
        assert_eq!(d.by_name("Error-Cause").unwrap().code, 101);
        let t = d.by_name("Session-Timeout").unwrap();
        assert_eq!(d.encode(t, "1000.5").unwrap(), 1000u32.to_be_bytes());
        let ip = d.by_name("NAS-IP-Address").unwrap();
        assert_eq!(d.text(ip, &[127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(d.encode(ip, "10.0.0.1").unwrap(), [10, 0, 0, 1]);
    }

    #[test]
    fn formats_and_old_style_vendors() {
        let mut d = Dictionary::default();
        d.parse_text(
            "t",
            "VENDOR Acme 555\nVENDOR Wide 556 format=2,2\nATTRIBUTE Acme-Thing 3 octets Acme\n\
             BEGIN-VENDOR Wide\nATTRIBUTE Wide-X 300 string\nATTRIBUTE Wide-Y 1 string\nEND-VENDOR Wide\n\
             ATTRIBUTE Ext 241.1 string\nATTRIBUTE Pw 2 string encrypt=1\n",
        )
        .unwrap();
        assert_eq!(d.by_name("Acme-Thing").unwrap().vendor, 555);
        assert!(d.by_name("Wide-X").is_none());
        assert!(d.by_name("Wide-Y").is_none());
        assert!(d.by_name("Ext").is_none());
        assert_eq!(d.by_name("Pw").unwrap().vendor, 0);
        assert_eq!(
            d.text(d.by_name("Acme-Thing").unwrap(), b"\x01\xff"),
            "0x01ff"
        );
        assert!(d.parse_text("t", "ATTRIBUTE X").is_err());
        assert!(d.parse_text("t", "BEGIN-VENDOR Nobody").is_err());
    }

    /// Debian's `freeradius-common` files load (skipped when the package
    /// is missing, unless ACCURATE_REQUIRE_PEERS=1); another folder with
    /// ACCURATE_FREERADIUS_DICT_DIR.
    #[test]
    fn debians_freeradius_dictionaries_load() {
        let dir = std::env::var("ACCURATE_FREERADIUS_DICT_DIR")
            .unwrap_or_else(|_| "/usr/share/freeradius".into());
        let root = Path::new(&dir);
        if !root.join("dictionary").exists() {
            assert!(
                std::env::var("ACCURATE_REQUIRE_PEERS").as_deref() != Ok("1"),
                "freeradius-common is not installed (apt-get install freeradius-common)"
            );
            return;
        }
        let mut d = Dictionary::default();
        d.load_file(&root.join("dictionary.rfc2865")).unwrap();
        assert_eq!(d.by_name("Called-Station-Id").unwrap().code, 30);
        d.load_file(&root.join("dictionary.cisco")).unwrap();
        assert_eq!(d.by_name("h323-conf-id").unwrap().vendor, 9);
        // The whole tree, through its $INCLUDEs.
        let mut all = Dictionary::default();
        all.load_file(&root.join("dictionary")).unwrap();
        assert!(all.len() > 5000, "{}", all.len());
        assert_eq!(all.by_name("Acct-Session-Time").unwrap().code, 46);
    }
}
