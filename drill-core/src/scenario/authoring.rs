//! What a scenario says for its authors and its self-test, beside the drill itself:
//! metadata (difficulty, tags, curriculum references, estimated time, time limit), the
//! `[[workarounds]]` that look like fixes and must fail, the `[[alternatives]]` that are
//! right fixes other than the reference and must pass, the `[[files]]` a pack places in
//! hosts, the faults' names and the faults each check guards.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use crate::model::{Hosts, Step, is_name};
use crate::schema::{Entry, Shape, Ty, key};

/// How hard a scenario is, for `drill list` and instructors choosing drills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difficulty {
    Beginner,
    Intermediate,
    Advanced,
}

impl Difficulty {
    pub const NAMES: &'static [&'static str] = &["beginner", "intermediate", "advanced"];

    pub fn from_name(s: &str) -> Option<Difficulty> {
        match s {
            "beginner" => Some(Difficulty::Beginner),
            "intermediate" => Some(Difficulty::Intermediate),
            "advanced" => Some(Difficulty::Advanced),
            _ => None,
        }
    }
}

/// The scenario's metadata. All optional in the file; `drill pack validate` asks for a
/// time limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub difficulty: Option<Difficulty>,
    pub tags: Vec<String>,
    /// Where the curriculum teaches it (`seeds/networking.md#mtu`, a URL, a book section).
    pub curriculum: Vec<String>,
    pub estimated_minutes: Option<f64>,
    /// The clock of a timed incident.
    pub time_limit_minutes: Option<f64>,
}

/// A sequence of commands run in the hosts of a broken drill: a workaround (submit must
/// fail) or an alternative fix (submit must pass).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub name: String,
    /// Why it is wrong (workaround) or why it is also right (alternative).
    pub why: String,
    pub steps: Vec<Step>,
}

/// A file of the pack placed in a host's root at start (`source` relative to the pack
/// directory, checked to stay inside it by the pack reader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub host: String,
    /// Absolute path inside the host.
    pub path: String,
    /// Path relative to the pack directory (`files/nginx.conf`).
    pub source: String,
    /// Permission bits (default 0o644).
    pub mode: u32,
}

const ATTEMPT: Shape = Shape {
    name: "a workaround or alternative",
    is_kind: false,
    keys: &[
        key("name", Ty::Str, "\"restart the service\"", "what it is, in a few words"),
        key("why", Ty::Str, "\"...\"", "why it is wrong, or why it is right too"),
        key("steps", Ty::List, "[{ host = \"api\", run = \"...\" }]", "the commands, as in [solution]"),
    ],
    common: &[],
};
const STEP: Shape =
    Shape { name: "a solution step", is_kind: false, keys: &[key("host", Ty::Str, "\"api\"", "where the command runs"), key("run", Ty::Str, "\"svc restart httpd\"", "a shell command")], common: &[] };
const FILE: Shape = Shape {
    name: "[[files]]",
    is_kind: false,
    keys: &[
        key("host", Ty::Str, "\"lb\"", "the host that gets the file"),
        key("path", Ty::Str, "\"/etc/nginx/nginx.conf\"", "absolute path inside the host"),
        key("source", Ty::Str, "\"files/nginx.conf\"", "path relative to the pack directory"),
        key("mode", Ty::Int, "0o644", "permission bits (default 0o644)"),
    ],
    common: &[],
};

pub(super) fn read_meta(e: &mut Entry) -> Meta {
    let difficulty = e.str("difficulty").and_then(|d| match Difficulty::from_name(d.get_ref()) {
        Some(x) => Some(x),
        None => {
            e.err(d.span(), format!("difficulty `{}` is not known", d.get_ref()), format!("use one of: {}", Difficulty::NAMES.join(", ")));
            None
        }
    });
    let estimated_minutes = e.num("estimated_minutes").map(Spanned::into_inner);
    let time_limit_minutes = e.num("time_limit_minutes").map(Spanned::into_inner);
    Meta {
        difficulty,
        tags: e.strs("tags").into_iter().map(Spanned::into_inner).collect(),
        curriculum: e.strs("curriculum").into_iter().map(Spanned::into_inner).collect(),
        estimated_minutes,
        time_limit_minutes,
    }
}

/// `[[workarounds]]` or `[[alternatives]]` (`which`).
pub(super) fn read_attempts(top: &mut Entry, which: &str, hosts: &Hosts) -> Vec<Attempt> {
    let mut out = Vec::new();
    for (span, t) in top.tables(which) {
        let mut e = Entry::new(&mut *top.cx, span, t, &ATTEMPT, &[]);
        e.require(&["name", "steps"]);
        let name = e.str("name").map(Spanned::into_inner).unwrap_or_default();
        let why = e.str("why").map(Spanned::into_inner).unwrap_or_default();
        let steps = read_steps(&mut e, hosts);
        if steps.is_empty() && e.has("steps") {
            e.need(format!("{which} `{name}` has no steps"), "give it at least one { host, run } step");
        }
        out.push(Attempt { name, why, steps });
    }
    out
}

/// The `steps` list of a table (solution, workaround, alternative).
pub(super) fn read_steps(e: &mut Entry, hosts: &Hosts) -> Vec<Step> {
    let mut steps = Vec::new();
    for (span, t) in e.tables("steps") {
        let mut s = Entry::new(&mut *e.cx, span, t, &STEP, &[]);
        s.require(&["host", "run"]);
        if let (Some(host), Some(run)) = (s.str("host"), s.str("run"))
            && hosts.check(s.cx, &host)
        {
            steps.push(Step { host: host.into_inner(), run: run.into_inner() });
        }
    }
    steps
}

/// `[[files]]`: where each is placed is checked here; that its source exists and stays in
/// the pack is the pack reader's (it has the directory).
pub(super) fn read_files(top: &mut Entry, hosts: &Hosts) -> Vec<FileRef> {
    let mut out = Vec::new();
    for (span, t) in top.tables("files") {
        let mut e = Entry::new(&mut *top.cx, span, t, &FILE, &[]);
        e.require(&["host", "path", "source"]);
        let (Some(host), Some(path), Some(source)) = (e.str("host"), e.str("path"), e.str("source")) else { continue };
        let host_ok = hosts.check(e.cx, &host);
        let p = path.get_ref();
        if !p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") || p.ends_with('/') {
            e.err(path.span(), format!("path `{p}` is not an absolute file path"), "give the file's absolute path inside the host, without `.` or `..`, e.g. /etc/nginx/nginx.conf");
            continue;
        }
        if let Some(bad) = source_problem(source.get_ref()) {
            e.err(source.span(), format!("source `{}` {bad}", source.get_ref()), "name a file under the pack directory by its relative path, e.g. files/nginx.conf");
            continue;
        }
        let mode = match e.int("mode") {
            Some(m) if (0..=0o7777).contains(m.get_ref()) => *m.get_ref() as u32,
            Some(m) => {
                e.err(m.span(), format!("mode {} is out of range", m.get_ref()), "use permission bits from 0o000 to 0o7777, e.g. 0o644");
                continue;
            }
            None => 0o644,
        };
        if host_ok {
            out.push(FileRef { host: host.into_inner(), path: path.get_ref().clone(), source: source.get_ref().clone(), mode });
        }
    }
    out
}

/// Every table of a scenario file with the keys it takes (the top level, hosts, routes,
/// links, switches, endpoints, services, `[verify]`, `[solution]`, a step, workarounds
/// and alternatives, `[[files]]`, and the keys every fault and every check takes), for
/// the reference test of docs/packs.md. Per-kind fault and check keys are in
/// [`crate::fault::KINDS`] and [`crate::check::KINDS`] (documented in scenarios/README.md).
pub fn schema_tables() -> Vec<(&'static str, Vec<&'static str>)> {
    let names = |s: &Shape| s.keys.iter().map(|k| k.name).collect::<Vec<_>>();
    let mut out: Vec<(&'static str, Vec<&'static str>)> = [&super::TOP, &super::SERVICE, &super::VERIFY, &super::SOLUTION, &STEP, &ATTEMPT, &FILE].into_iter().map(|s| (s.name, names(s))).collect();
    out.extend(crate::topo::shapes().into_iter().map(|s| (s.name, names(s))));
    let common = |c: &[crate::schema::Key]| c.iter().map(|k| k.name).collect::<Vec<_>>();
    out.push(("every fault", crate::fault::KINDS.first().map_or_else(Vec::new, |k| common(k.shape.common))));
    out.push(("every check", crate::check::KINDS.first().map_or_else(Vec::new, |k| common(k.shape.common))));
    out
}

/// The most items each list of a scenario may hold: far above any real drill, low enough
/// that a hostile file (100 000 hosts) is refused at once instead of being validated.
pub const LIMITS: &[(&str, usize)] = &[
    ("hosts", 64),
    ("links", 256),
    ("switches", 64),
    ("services", 128),
    ("faults", 64),
    ("checks", 64),
    ("hints", 32),
    ("workarounds", 32),
    ("alternatives", 32),
    ("files", 128),
    ("tags", 32),
    ("curriculum", 32),
];
/// The most items of a list inside a table (a switch's members, a host's routes, steps).
pub const MAX_NESTED: usize = 256;

/// Reports each top-level list longer than its [`LIMITS`] and each nested list longer
/// than [`MAX_NESTED`]; whether any was (the file is then not read further).
pub(super) fn over_limits(cx: &mut crate::source::Collector, doc: &DeTable<'_>) -> bool {
    let mut over = false;
    for (k, v) in doc.iter() {
        let DeValue::Array(items) = v.get_ref() else { continue };
        if let Some((_, max)) = LIMITS.iter().find(|(n, _)| *n == k.get_ref().as_ref())
            && items.len() > *max
        {
            cx.err(k.span(), format!("`{}` holds {} items; a scenario may hold at most {max}", k.get_ref(), items.len()), "split the drill; no real scenario needs that many");
            over = true;
        }
        for item in items {
            let DeValue::Table(t) = item.get_ref() else { continue };
            for (nk, nv) in t.iter() {
                if let DeValue::Array(inner) = nv.get_ref()
                    && inner.len() > MAX_NESTED
                {
                    cx.err(nk.span(), format!("`{}` holds {} items; a list in a table may hold at most {MAX_NESTED}", nk.get_ref(), inner.len()), "shorten it");
                    over = true;
                }
            }
        }
    }
    if let Some(DeValue::Table(sol)) = doc.get("solution").map(|v| v.get_ref())
        && let Some(DeValue::Array(steps)) = sol.get("steps").map(|v| v.get_ref())
        && steps.len() > MAX_NESTED
    {
        cx.err(0..0, format!("the solution has {} steps; at most {MAX_NESTED}", steps.len()), "shorten it");
        over = true;
    }
    over
}

/// Why a pack-relative path is refused (absolute, `..`, empty), or None.
pub fn source_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty");
    }
    if s.starts_with('/') {
        return Some("is absolute; a pack may only name its own files");
    }
    if s.contains('\0') || s.contains('\\') {
        return Some("holds a character a pack path may not");
    }
    if s.split('/').any(|c| c == "..") {
        return Some("leaves the pack directory (`..`)");
    }
    None
}

/// A fault's name: the `name` key, else its kind, else `kind-N` when the kind repeats
/// (N counting from 1 in file order).
pub(super) fn fault_names(declared: &[(Option<Spanned<String>>, String)], cx: &mut crate::source::Collector) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (name, kind)) in declared.iter().enumerate() {
        let n = match name {
            Some(n) => {
                if !is_name(n.get_ref()) {
                    cx.err(n.span(), format!("fault name `{}` is not valid", n.get_ref()), "use lowercase letters, digits and '-', starting with a letter");
                }
                n.get_ref().clone()
            }
            None if declared.iter().filter(|(_, k)| k == kind).count() > 1 => {
                let nth = declared[..=i].iter().filter(|(_, k)| k == kind).count();
                format!("{kind}-{nth}")
            }
            None => kind.clone(),
        };
        if out.contains(&n) {
            let span = name.as_ref().map_or(0..0, |s| s.span());
            cx.err(span, format!("two faults are named `{n}`"), "give each fault its own `name`");
        }
        out.push(n);
    }
    out
}
