//! Where things are in a scenario file that has already parsed: the lints and the
//! cross-references run on the validated [`crate::scenario::Scenario`], which keeps no
//! spans, so they find their key again in toml's spanned tree.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The spanned tree of a file that parsed (empty when it does not, which cannot happen
/// for a scenario that was accepted).
pub struct Spans<'t> {
    doc: Option<DeTable<'t>>,
}

impl<'t> Spans<'t> {
    pub fn new(text: &'t str) -> Spans<'t> {
        Spans { doc: DeTable::parse(text).ok().map(|d| d.into_inner()) }
    }

    /// The span of a top-level key (the key itself), if present.
    pub fn key(&self, name: &str) -> Option<Range<usize>> {
        self.doc.as_ref()?.iter().find(|(k, _)| k.get_ref() == name).map(|(k, _)| k.span())
    }

    /// The span of a top-level key's value, if present.
    pub fn value(&self, name: &str) -> Option<Range<usize>> {
        self.doc.as_ref()?.get(name).map(|v| v.span())
    }

    /// Where to point for a key that is missing: the `id` line, else the file's start.
    pub fn missing(&self) -> Range<usize> {
        self.key("id").unwrap_or(0..0)
    }

    /// The `i`-th table of a top-level list (`[[faults]]`, `[[checks]]`).
    pub fn item(&self, list: &str, i: usize) -> Option<Range<usize>> {
        let DeValue::Array(a) = self.doc.as_ref()?.get(list)?.get_ref() else { return None };
        a.get(i).map(|v| v.span())
    }

    /// The span of key `k`'s value in the `i`-th table of a top-level list, else the table.
    pub fn item_key(&self, list: &str, i: usize, k: &str) -> Option<Range<usize>> {
        let DeValue::Array(a) = self.doc.as_ref()?.get(list)?.get_ref() else { return None };
        let item = a.get(i)?;
        match item.get_ref() {
            DeValue::Table(t) => Some(t.get(k).map_or(item.span(), |v| v.span())),
            _ => Some(item.span()),
        }
    }

    /// The span of key `k` in the top-level table `table` (`[solution] steps`).
    pub fn sub_key(&self, table: &str, k: &str) -> Option<Range<usize>> {
        let v = self.doc.as_ref()?.get(table)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(t.get(k).map_or(v.span(), |x| x.span())),
            _ => Some(v.span()),
        }
    }

    /// The span of the config key `k` of the `i`-th service, else the service.
    pub fn service_config(&self, i: usize, k: &str) -> Option<Range<usize>> {
        let DeValue::Array(a) = self.doc.as_ref()?.get("services")?.get_ref() else { return None };
        let item = a.get(i)?;
        let DeValue::Table(t) = item.get_ref() else { return Some(item.span()) };
        let Some(cfg) = t.get("config") else { return Some(item.span()) };
        match cfg.get_ref() {
            DeValue::Table(c) => Some(c.get(k).map_or(cfg.span(), |v| v.span())),
            _ => Some(cfg.span()),
        }
    }
}
