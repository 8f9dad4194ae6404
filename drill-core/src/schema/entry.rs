//! [`Entry`]: one table read against its [`Shape`], and the conversions from toml's
//! spanned tree to plain TOML values.

use std::ops::Range;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Reported, Shape, and_list, nearest};
use crate::source::Collector;

/// One table being read against its shape.
pub struct Entry<'c, 't, 'd, 'i> {
    pub cx: &'c mut Collector<'t>,
    /// The whole table (missing keys are reported here).
    pub span: Range<usize>,
    table: &'d DeTable<'i>,
    shape: &'static Shape,
    /// A key's value was of the wrong type or out of bounds (already reported).
    bad: bool,
}

impl<'c, 't, 'd, 'i> Entry<'c, 't, 'd, 'i> {
    /// Starts reading `table`, reporting each key `shape` does not take; `family` holds
    /// the sibling shapes whose keys a suggestion may name.
    pub fn new(cx: &'c mut Collector<'t>, span: Range<usize>, table: &'d DeTable<'i>, shape: &'static Shape, family: &[&'static Shape]) -> Self {
        let mut unknown: Vec<&Spanned<toml::de::DeString<'i>>> = table.iter().map(|(k, _)| k).filter(|k| shape.key(k.get_ref()).is_none()).collect();
        unknown.sort_by_key(|k| k.span().start);
        for k in unknown {
            let name: &str = k.get_ref();
            let mut help = Vec::new();
            if let Some(n) = nearest(name, shape.keys.iter().chain(shape.common.iter()).map(|k| k.name)) {
                help.push(format!("did you mean `{n}`?"));
            }
            let mut takers: Vec<&Shape> = family.iter().copied().filter(|s| s.name != shape.name && s.key(name).is_some()).collect();
            takers.sort_by_key(|s| strsim::damerau_levenshtein(s.name, shape.name));
            if !takers.is_empty() {
                let names: Vec<String> = takers.iter().map(|s| s.label()).collect();
                help.push(format!("{} {} `{name}`", and_list(&names), if names.len() == 1 { "takes" } else { "take" }));
            }
            let keys = format!("(keys of {}: {})", shape.name, shape.list());
            let help = if help.is_empty() { keys } else { format!("{} {keys}", help.join("; ")) };
            cx.err(k.span(), format!("`{name}` is not a key of {}", shape.label()), help);
        }
        Entry { cx, span, table, shape, bad: false }
    }

    pub fn err(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.cx.err(span, message, help);
    }

    /// Reports that the entry lacks something, unless a key's value was already reported
    /// as being of the wrong type (one error, not two, for one mistake).
    pub fn need(&mut self, message: impl Into<String>, help: impl Into<String>) {
        if !self.bad {
            self.cx.err(self.span.clone(), message, help);
        }
    }

    /// Reports each of `names` the table lacks, with the key's example.
    pub fn require(&mut self, names: &[&str]) {
        for n in names {
            if self.raw(n).is_none() {
                let ex = self.shape.key(n).map_or(String::new(), |k| format!(", e.g. {n} = {}", k.example));
                let msg = format!("{} needs `{n}`", self.shape.label());
                self.cx.err(self.span.clone(), msg, format!("add the key{ex}; scenarios/README.md documents it"));
            }
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn raw(&self, name: &str) -> Option<&'d Spanned<DeValue<'i>>> {
        debug_assert!(self.shape.key(name).is_some(), "key `{name}` is not declared in {}", self.shape.name);
        self.table.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v)
    }

    fn wrong(&mut self, name: &str, v: &Spanned<DeValue<'i>>) {
        let (want, ex) = self.shape.key(name).map_or(("a value", ""), |k| (k.ty.noun(), k.example));
        let found = self.cx.snippet(&v.span());
        // Quote the value when it is a short scalar (not a table, a list or a long string).
        let scalar = !matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_));
        let quoted = if scalar && found.len() <= 40 && !found.contains('\n') { format!("`{name} = {found}`: ") } else { String::new() };
        self.bad = true;
        self.cx.err(v.span(), format!("{quoted}`{name}` takes {want}, not {}", v.get_ref().type_str()), format!("write e.g. {name} = {ex}"));
    }

    pub fn str(&mut self, name: &str) -> Option<Spanned<String>> {
        let v = self.raw(name)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong(name, v);
                None
            }
        }
    }

    /// Reports a number outside its key's declared bounds; whether it is inside.
    fn in_bounds(&mut self, name: &str, span: Range<usize>, x: f64) -> bool {
        let Some(b) = self.shape.key(name).and_then(|k| k.bounds) else { return true };
        if b.holds(x) {
            return true;
        }
        self.bad = true;
        let found = self.cx.snippet(&span);
        let range = b.describe();
        match b.says {
            Some((message, help)) => self.cx.err(span, message.replace("{}", found), help),
            None => self.cx.err(span, format!("{name} = {found} is out of range: it must be {range}"), format!("give {name} a value {range}")),
        }
        false
    }

    /// An optional number: Ok(None) when absent, Err when present but reported.
    pub fn num_opt(&mut self, name: &str) -> Result<Option<f64>, Reported> {
        match self.num(name) {
            Some(v) => Ok(Some(v.into_inner())),
            None if self.has(name) => Err(Reported),
            None => Ok(None),
        }
    }

    /// An optional integer: Ok(None) when absent, Err when present but reported.
    pub fn int_opt(&mut self, name: &str) -> Result<Option<i64>, Reported> {
        match self.int(name) {
            Some(v) => Ok(Some(v.into_inner())),
            None if self.has(name) => Err(Reported),
            None => Ok(None),
        }
    }

    /// An integer, within its key's bounds when it declares some.
    pub fn int(&mut self, name: &str) -> Option<Spanned<i64>> {
        let v = self.raw(name)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => self.in_bounds(name, v.span(), n as f64).then(|| Spanned::new(v.span(), n)),
                Err(_) => {
                    self.bad = true;
                    let found = self.cx.snippet(&v.span());
                    self.cx.err(v.span(), format!("`{name} = {found}` does not fit a 64-bit integer"), "give a smaller number");
                    None
                }
            },
            _ => {
                self.wrong(name, v);
                None
            }
        }
    }

    /// A finite number (an integer is accepted), within its key's bounds when it declares
    /// some; NaN and infinities are reported.
    pub fn num(&mut self, name: &str) -> Option<Spanned<f64>> {
        let v = self.raw(name)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong(name, v);
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() => self.in_bounds(name, v.span(), n).then(|| Spanned::new(v.span(), n)),
            _ => {
                self.bad = true;
                let found = self.cx.snippet(&v.span());
                let ex = self.shape.key(name).map_or("", |k| k.example);
                self.cx.err(v.span(), format!("`{name} = {found}` is not a finite number"), format!("give a number, e.g. {name} = {ex}"));
                None
            }
        }
    }

    pub fn bool(&mut self, name: &str) -> Option<Spanned<bool>> {
        let v = self.raw(name)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(v.span(), *b)),
            _ => {
                self.wrong(name, v);
                None
            }
        }
    }

    /// A free-form table, converted to a plain TOML table.
    pub fn table(&mut self, name: &str) -> Option<Spanned<toml::Table>> {
        let v = self.raw(name)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Spanned::new(v.span(), to_table(t))),
            _ => {
                self.wrong(name, v);
                None
            }
        }
    }

    /// Any value, converted to a plain TOML value (the caller checks what it accepts).
    pub fn value(&mut self, name: &str) -> Option<Spanned<toml::Value>> {
        let v = self.raw(name)?;
        Some(Spanned::new(v.span(), to_value(v.get_ref())))
    }

    /// A nested table to read with its own shape.
    pub fn sub(&mut self, name: &str) -> Option<(Range<usize>, &'d DeTable<'i>)> {
        let v = self.raw(name)?;
        match v.get_ref() {
            DeValue::Table(t) => Some((v.span(), t)),
            _ => {
                self.wrong(name, v);
                None
            }
        }
    }

    /// The items of a list (empty when absent).
    pub fn list(&mut self, name: &str) -> &'d [Spanned<DeValue<'i>>] {
        let Some(v) = self.raw(name) else { return &[] };
        match v.get_ref() {
            DeValue::Array(a) => a,
            _ => {
                self.wrong(name, v);
                &[]
            }
        }
    }

    /// A list of tables (`[[faults]]`, `members = [{..}]`); items that are not tables are
    /// reported.
    pub fn tables(&mut self, name: &str) -> Vec<(Range<usize>, &'d DeTable<'i>)> {
        let mut out = Vec::new();
        for item in self.list(name) {
            match item.get_ref() {
                DeValue::Table(t) => out.push((item.span(), t)),
                other => {
                    self.bad = true;
                    self.cx.err(item.span(), format!("an item of `{name}` is {}, not a table", other.type_str()), format!("write each item as a table: [[{name}]] or {{ key = value }}"));
                }
            }
        }
        out
    }

    /// A list of strings; other items are reported.
    pub fn strs(&mut self, name: &str) -> Vec<Spanned<String>> {
        let mut out = Vec::new();
        for item in self.list(name) {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => {
                    self.bad = true;
                    self.cx.err(item.span(), format!("an item of `{name}` is {}, not a string", other.type_str()), "write each item as a quoted string");
                }
            }
        }
        out
    }
}

/// Where a serde message about a table ("unknown field `x`, expected ...") points: the
/// key it names, when the table has it.
pub fn blamed_key(table: &DeTable<'_>, message: &str) -> Option<Range<usize>> {
    let name = message.split('`').nth(1)?;
    table.iter().find(|(k, _)| k.get_ref() == name).map(|(k, _)| k.span())
}

/// A spanned TOML value as a plain one.
pub fn to_value(v: &DeValue<'_>) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        // The parser has checked the digits; an integer beyond i64 becomes a float rather
        // than a panic (the typed readers report it).
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map_or_else(|_| toml::Value::Float(f64::INFINITY), toml::Value::Integer),
        DeValue::Float(f) => toml::Value::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(a) => toml::Value::Array(a.iter().map(|x| to_value(x.get_ref())).collect()),
        DeValue::Table(t) => toml::Value::Table(to_table(t)),
    }
}

/// A spanned TOML table as a plain one.
pub fn to_table(t: &DeTable<'_>) -> toml::Table {
    t.iter().map(|(k, v)| (k.get_ref().to_string(), to_value(v.get_ref()))).collect()
}
