//! The Diameter dictionary: AVP names, codes, vendors, types and
//! enumerated values, and command names, read from text files (the format
//! is described at the top of `agents/dict/diameter/base.dict`). The base
//! protocol (RFC 6733), credit control (RFC 4006) and 3GPP Gy (TS 32.299)
//! files ship with the crate ([`Dictionary::builtin`]); more are added
//! with [`Dictionary::load`].

use std::collections::HashMap;

use super::avp::AvpType;
use crate::Error;

/// The shipped dictionary files: name and text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("base.dict", include_str!("../../dict/diameter/base.dict")),
    (
        "credit_control.dict",
        include_str!("../../dict/diameter/credit_control.dict"),
    ),
    (
        "gy_3gpp.dict",
        include_str!("../../dict/diameter/gy_3gpp.dict"),
    ),
];

/// One AVP's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvpDef {
    /// Its code.
    pub code: u32,
    /// Its vendor (`None` for IETF's 0).
    pub vendor: Option<u32>,
    /// Its type.
    pub ty: AvpType,
    /// Whether it is sent with `M`.
    pub mandatory: bool,
    /// Its name.
    pub name: String,
}

/// One command's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDef {
    /// Its name (`Credit-Control`).
    pub name: String,
    /// The request's abbreviation (`CCR`).
    pub request: String,
    /// The answer's abbreviation (`CCA`).
    pub answer: String,
}

/// AVPs and commands by name and by code.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    avps: Vec<AvpDef>,
    by_code: HashMap<(u32, Option<u32>), usize>,
    by_name: HashMap<String, usize>,
    /// Enumerated labels: (AVP name, value) to label.
    enums: HashMap<(String, i32), String>,
    commands: HashMap<u32, CommandDef>,
    vendors: HashMap<u32, String>,
}

impl Dictionary {
    /// The shipped dictionaries.
    ///
    /// # Errors
    /// None in practice (the files are tested); a parse error otherwise.
    pub fn builtin() -> Result<Dictionary, Error> {
        let mut d = Dictionary::default();
        for (name, text) in BUILTIN {
            d.load(name, text)?;
        }
        Ok(d)
    }

    /// Adds the entries of one dictionary file (`origin` names it in
    /// errors); later entries replace earlier ones of the same code or
    /// name.
    ///
    /// # Errors
    /// [`Error::DiameterDict`]: a line that does not read.
    pub fn load(&mut self, origin: &str, text: &str) -> Result<(), Error> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            let bad = |what: &str| Error::DiameterDict(format!("{origin}:{}: {what}", i + 1));
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |s: &str| {
                s.parse::<u32>()
                    .map_err(|_| bad(&format!("{s:?} is not a number")))
            };
            match f.as_slice() {
                ["vendor", id, name] => {
                    self.vendors.insert(num(id)?, (*name).to_owned());
                }
                ["command", code, name, req, ans] => {
                    self.commands.insert(
                        num(code)?,
                        CommandDef {
                            name: (*name).to_owned(),
                            request: (*req).to_owned(),
                            answer: (*ans).to_owned(),
                        },
                    );
                }
                ["avp", code, vendor, ty, flags, name] => {
                    let ty =
                        AvpType::parse(ty).ok_or_else(|| bad(&format!("unknown type {ty:?}")))?;
                    let mandatory = match *flags {
                        "M" => true,
                        "-" => false,
                        other => return Err(bad(&format!("flags {other:?} (M or -)"))),
                    };
                    let vendor = Some(num(vendor)?).filter(|v| *v != 0);
                    self.add(AvpDef {
                        code: num(code)?,
                        vendor,
                        ty,
                        mandatory,
                        name: (*name).to_owned(),
                    });
                }
                ["enum", avp, value, label] => {
                    let v = value
                        .parse::<i32>()
                        .map_err(|_| bad(&format!("{value:?} is not a number")))?;
                    self.enums
                        .insert(((*avp).to_owned(), v), (*label).to_owned());
                }
                _ => return Err(bad(&format!("cannot read {line:?}"))),
            }
        }
        Ok(())
    }

    fn add(&mut self, def: AvpDef) {
        let key = (def.code, def.vendor);
        if let Some(&i) = self.by_code.get(&key) {
            if let Some(old) = self.avps.get(i) {
                self.by_name.remove(&old.name);
            }
            self.by_name.insert(def.name.clone(), i);
            if let Some(slot) = self.avps.get_mut(i) {
                *slot = def;
            }
            return;
        }
        let i = self.avps.len();
        self.by_code.insert(key, i);
        self.by_name.insert(def.name.clone(), i);
        self.avps.push(def);
    }

    /// The AVP `code` of `vendor`.
    #[must_use]
    pub fn avp(&self, code: u32, vendor: Option<u32>) -> Option<&AvpDef> {
        self.by_code
            .get(&(code, vendor.filter(|v| *v != 0)))
            .and_then(|&i| self.avps.get(i))
    }

    /// The AVP named `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&AvpDef> {
        self.by_name.get(name).and_then(|&i| self.avps.get(i))
    }

    /// The label of value `v` of the Enumerated AVP `avp`.
    #[must_use]
    pub fn enum_label(&self, avp: &str, v: i32) -> Option<&str> {
        self.enums.get(&(avp.to_owned(), v)).map(String::as_str)
    }

    /// The command `code`.
    #[must_use]
    pub fn command(&self, code: u32) -> Option<&CommandDef> {
        self.commands.get(&code)
    }

    /// The vendor `id`'s name.
    #[must_use]
    pub fn vendor(&self, id: u32) -> Option<&str> {
        self.vendors.get(&id).map(String::as_str)
    }

    /// How many AVPs are defined.
    #[must_use]
    pub fn len(&self) -> usize {
        self.avps.len()
    }

    /// Whether no AVP is defined.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.avps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_load() {
        let d = Dictionary::builtin().unwrap();
        let cpa = d.by_name("Called-Party-Address").unwrap();
        assert_eq!(
            (cpa.code, cpa.vendor, cpa.ty),
            (832, Some(10415), AvpType::Utf8String)
        );
        assert_eq!(d.avp(873, Some(10415)).unwrap().name, "Service-Information");
        assert_eq!(d.avp(416, None).unwrap().ty, AvpType::Enumerated);
        assert_eq!(d.avp(416, Some(0)).unwrap().name, "CC-Request-Type");
        assert_eq!(
            d.enum_label("Subscription-Id-Type", 0),
            Some("END_USER_E164")
        );
        assert_eq!(d.command(272).unwrap().request, "CCR");
        assert_eq!(d.vendor(10415), Some("3GPP"));
        assert!(!d.by_name("Product-Name").unwrap().mandatory);
        assert!(d.len() > 100);
    }

    #[test]
    fn extra_files_add_and_replace() {
        let mut d = Dictionary::builtin().unwrap();
        d.load(
            "x.dict",
            "avp 9999 9 Unsigned64 - My-Counter # ours\navp 263 0 OctetString M Session-Ident",
        )
        .unwrap();
        assert_eq!(d.by_name("My-Counter").unwrap().vendor, Some(9));
        assert_eq!(d.avp(263, None).unwrap().name, "Session-Ident");
        assert!(d.by_name("Session-Id").is_none());
        for bad in [
            "avp 1 0 Nope M X",
            "avp x 0 UTF8String M X",
            "enum A b C",
            "what",
            "avp 1 0 UTF8String Q X",
        ] {
            let e = d.load("bad.dict", bad).unwrap_err();
            assert!(e.to_string().contains("bad.dict:1"), "{e}");
        }
    }
}
