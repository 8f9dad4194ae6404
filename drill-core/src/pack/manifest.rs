//! `pack.toml`: what a pack is and what it needs.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use toml::de::DeTable;

use crate::model::is_name;
use crate::schema::{Entry, Shape, Ty, key};
use crate::source::{Collector, SourceError};

/// Kernel features a pack may say it needs (`drill doctor` and `drill start` check them).
pub const KERNEL_FEATURES: &[&str] = &["btf", "nftables", "tc-bpf", "netem", "cgroup-v2", "vxlan", "conntrack"];

const MANIFEST: Shape = Shape {
    name: "pack.toml",
    is_kind: false,
    keys: &[
        key("name", Ty::Str, "\"net-basics\"", "the pack's name: lowercase letters, digits and '-'"),
        key("version", Ty::Str, "\"1.0.0\"", "the pack's version (semver)"),
        key("description", Ty::Str, "\"...\"", "what the pack teaches"),
        key("authors", Ty::List, "[\"A. Teacher <a@example.org>\"]", "who wrote it"),
        key("license", Ty::Str, "\"CC-BY-4.0\"", "an SPDX license expression"),
        key("engine", Ty::Str, "\">=0.1\"", "the drill versions it works with (a semver requirement)"),
        key("kernel_features", Ty::List, "[\"btf\", \"nftables\"]", "kernel features its scenarios need"),
    ],
    common: &[],
};

/// The keys of pack.toml, for the reference test of docs/packs.md.
pub fn manifest_keys() -> Vec<&'static str> {
    MANIFEST.keys.iter().map(|k| k.name).collect()
}

/// A pack's `pack.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub authors: Vec<String>,
    pub license: Option<String>,
    pub engine: semver::VersionReq,
    pub kernel_features: Vec<String>,
}

impl Manifest {
    /// Whether this engine ([`super::ENGINE_VERSION`]) satisfies the pack's requirement.
    pub fn engine_fits(&self) -> bool {
        semver::Version::parse(super::ENGINE_VERSION).is_ok_and(|v| self.engine.matches(&v))
    }
}

/// Parses `pack.toml`; every problem, with its position.
pub fn parse_manifest(file: &str, text: &str) -> Result<Manifest, Vec<SourceError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax.iter().take(crate::source::MAX_ERRORS).map(|e| SourceError::at(file, text, e.span(), e.message().trim().to_string(), "")).collect());
    }
    let mut cx = Collector::new(file, text);
    let mut e = Entry::new(&mut cx, doc.span(), doc.get_ref(), &MANIFEST, &[]);
    for k in ["name", "version", "description", "engine"] {
        if !e.has(k) {
            let ex = MANIFEST.key(k).map_or("", |k| k.example);
            e.err(e.span.clone(), format!("pack.toml needs `{k}`"), format!("add e.g. {k} = {ex} (docs/packs.md documents pack.toml)"));
        }
    }
    let name = e.str("name");
    if let Some(n) = &name
        && (!is_name(n.get_ref()) || n.get_ref().len() > 64)
    {
        e.err(n.span(), format!("pack name `{}` is not valid", n.get_ref()), "use lowercase letters, digits and '-', starting with a letter, at most 64 characters");
    }
    let version = e.str("version").and_then(|v| match semver::Version::parse(v.get_ref()) {
        Ok(x) => Some(x),
        Err(err) => {
            e.err(v.span(), format!("version `{}` is not a semantic version ({err})", v.get_ref()), "write MAJOR.MINOR.PATCH, e.g. \"1.0.0\"");
            None
        }
    });
    let engine = e.str("engine").and_then(|v| match semver::VersionReq::parse(v.get_ref()) {
        Ok(x) => Some(x),
        Err(err) => {
            e.err(v.span(), format!("engine `{}` is not a version requirement ({err})", v.get_ref()), format!("write a semver requirement such as \">={}\"", super::ENGINE_VERSION));
            None
        }
    });
    let mut kernel_features = Vec::new();
    for f in e.strs("kernel_features") {
        if KERNEL_FEATURES.contains(&f.get_ref().as_str()) {
            kernel_features.push(f.into_inner());
        } else {
            let near = crate::schema::nearest(f.get_ref(), KERNEL_FEATURES.iter().copied()).map(|n| format!("did you mean `{n}`? ")).unwrap_or_default();
            e.err(f.span(), format!("kernel feature `{}` is not known", f.get_ref()), format!("{near}known features: {}", KERNEL_FEATURES.join(", ")));
        }
    }
    let description = e.str("description").map(Spanned::into_inner).unwrap_or_default();
    let authors = e.strs("authors").into_iter().map(Spanned::into_inner).collect();
    let license = e.str("license").map(Spanned::into_inner);
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    match (name, version, engine) {
        (Some(name), Some(version), Some(engine)) => Ok(Manifest { name: name.into_inner(), version, description, authors, license, engine, kernel_features }),
        _ => Err(vec![SourceError::at(file, text, None, "pack.toml is incomplete", "give it name, version, description and engine")]),
    }
}
