//! Declared keys, and the reader that holds one TOML table to them.
//!
//! Every table of a scenario file (the top level, a host, a link, a fault of one kind, a
//! check of one kind, ...) has a [`Shape`]: the keys it takes, each with its type, an
//! example and what it means. An [`Entry`] reads one table against its shape:
//! - every unknown key is reported, with the nearest key of this shape and, when a sibling
//!   shape (another fault kind, say) takes that key, which one does;
//! - a value of the wrong type names the key, the type wanted and an example;
//! - the module that owns the shape then checks meanings and ranges.
//!
//! Everything goes to one [`Collector`], so a file's errors all come out in one run.
//! The file is read once with toml's spanned document tree ([`DeTable`]), which keeps a
//! span for every key and value; serde is not used for the file's shape.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::source::Collector;

mod entry;

pub use entry::{Entry, blamed_key, to_table, to_value};

/// The error of a read whose problem is already reported to the [`Collector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported;

/// The type of a key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    /// A finite number; an integer is accepted (`delay_ms = 300`).
    Num,
    Bool,
    /// A free-form table (a service's config, a config patch).
    Table,
    /// A table read with its own shape (an endpoint, `[verify]`).
    Sub,
    /// A list (of strings or tables).
    List,
    /// A string or an integer (a sysctl value).
    StrOrInt,
}

impl Ty {
    fn noun(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "an integer",
            Ty::Num => "a number",
            Ty::Bool => "true or false",
            Ty::Table | Ty::Sub => "a table",
            Ty::List => "a list",
            Ty::StrOrInt => "a string or an integer",
        }
    }
}

/// One key a table takes.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    /// The value of an example, as written in a file (`8080`, `"tcp"`).
    pub example: &'static str,
    /// What it means, with its range and default.
    pub doc: &'static str,
    /// The range of a number, enforced by [`Entry::num`] and [`Entry::int`]. Kinds whose
    /// numbers need a message of their own (a delay, a loss) check them in their module.
    pub bounds: Option<Bounds>,
}

/// Declares a key (a `const fn`, so key lists are `const`).
pub const fn key(name: &'static str, ty: Ty, example: &'static str, doc: &'static str) -> Key {
    Key { name, ty, example, doc, bounds: None }
}

impl Key {
    /// The value must lie in `lo..=hi` (`hi` infinite: no upper bound), counted in `unit`.
    pub const fn from(self, lo: f64, hi: f64, unit: &'static str) -> Key {
        Key { bounds: Some(Bounds { lo, lo_open: false, hi, unit, says: None }), ..self }
    }

    /// The value must be above `lo` and at most `hi`.
    pub const fn above(self, lo: f64, hi: f64, unit: &'static str) -> Key {
        Key { bounds: Some(Bounds { lo, lo_open: true, hi, unit, says: None }), ..self }
    }

    /// The message (`{}`: the value as written) and help of a value out of the bounds
    /// given before, where the kind words it itself ("delay of -5 ms is impossible").
    pub const fn says(self, message: &'static str, help: &'static str) -> Key {
        match self.bounds {
            Some(b) => Key { bounds: Some(Bounds { says: Some((message, help)), ..b }), ..self },
            None => panic!("Key::says needs bounds first (Key::from or Key::above)"),
        }
    }
}

/// The range of a number key.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub lo: f64,
    /// `lo` itself is out of range (a bound of 0 that could never be missed, say).
    pub lo_open: bool,
    pub hi: f64,
    pub unit: &'static str,
    /// Message and help of a value out of bounds; a standard one giving the range if None.
    pub says: Option<(&'static str, &'static str)>,
}

impl Bounds {
    pub fn holds(&self, x: f64) -> bool {
        (if self.lo_open { x > self.lo } else { x >= self.lo }) && x <= self.hi
    }

    /// "above 0 and at most 60000 ms", "from 10 to 60000 ms", "at least 1 connections".
    pub fn describe(&self) -> String {
        let range = match (self.lo_open, self.hi.is_finite()) {
            (true, true) => format!("above {} and at most {}", self.lo, self.hi),
            (true, false) => format!("above {}", self.lo),
            (false, true) => format!("from {} to {}", self.lo, self.hi),
            (false, false) => format!("at least {}", self.lo),
        };
        if self.unit.is_empty() { range } else { format!("{range} {}", self.unit) }
    }
}

/// The keys of one kind of table.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// How messages name it: a kind (`nft-drop`) or a table (`[[hosts]]`).
    pub name: &'static str,
    /// Whether `name` is a kind (messages then say "`nft-loss` takes ...").
    pub is_kind: bool,
    /// The keys proper to it.
    pub keys: &'static [Key],
    /// Keys every shape of its family takes (`kind`, a check's `name`), not listed in help.
    pub common: &'static [Key],
}

impl Shape {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().chain(self.common.iter()).find(|k| k.name == name)
    }

    fn label(&self) -> String {
        if self.is_kind { format!("`{}`", self.name) } else { self.name.to_string() }
    }

    fn list(&self) -> String {
        self.keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
    }
}

/// The name in `names` nearest to `name`, when near enough to be a likely typo or a
/// shortening (`window` for `window_secs`).
pub fn nearest<'n>(name: &str, names: impl IntoIterator<Item = &'n str>) -> Option<&'n str> {
    let limit = (name.chars().count() / 3).max(1);
    let name = name.to_lowercase();
    let score = |n: &str| {
        let n = n.to_lowercase();
        let d = strsim::damerau_levenshtein(&name, &n);
        let prefix = name.len() >= 3 && n.len() >= 3 && (n.starts_with(&name) || name.starts_with(&n));
        if prefix { d.min(limit) } else { d }
    };
    names.into_iter().map(|n| (score(n), n)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, n)| n)
}

/// `a`, `a` and `b`, `a`, `b` and `c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Finds the kind of a `[[faults]]` or `[[checks]]` entry among `names`; reports a
/// missing, mistyped or unknown kind (with the nearest one) and returns None then.
pub fn kind_of(cx: &mut Collector, span: Range<usize>, table: &DeTable<'_>, noun: &str, names: &[&'static str]) -> Option<usize> {
    let all = names.join(", ");
    let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref() == "kind") else {
        cx.err(span, format!("a {noun} needs `kind`"), format!("add kind = \"...\", one of: {all}"));
        return None;
    };
    let DeValue::String(kind) = v.get_ref() else {
        cx.err(v.span(), format!("the {noun} kind is {}, not a string", v.get_ref().type_str()), format!("write kind = \"...\", one of: {all}"));
        return None;
    };
    if let Some(i) = names.iter().position(|n| *n == kind.as_ref()) {
        return Some(i);
    }
    let near = nearest(kind, names.iter().copied()).map_or(String::new(), |n| format!("; did you mean `{n}`?"));
    cx.err(v.span(), format!("unknown {noun} kind `{kind}`{near}"), format!("use one of: {all}"));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_takes_typos_not_strangers() {
        assert_eq!(nearest("titel", ["title", "alert"]), Some("title"));
        assert_eq!(nearest("dprot", ["dport", "proto"]), Some("dport"));
        assert_eq!(nearest("percent", ["host", "proto", "dport"]), None);
        assert_eq!(nearest("window", ["window_secs"]), Some("window_secs"));
        assert_eq!(nearest("NFT-DROP", ["nft-drop", "nft-loss"]), Some("nft-drop"));
    }

    #[test]
    fn and_lists() {
        assert_eq!(and_list(&["a".into()]), "a");
        assert_eq!(and_list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
    }
}
