//! Scenario files: the whole validated [`Scenario`], and [`parse`], which reads a file
//! and puts it together from its parts.
//!
//! A scenario is one TOML file: what the learner is told (alert, briefing, hints), the
//! hosts and links ([`crate::topo`]), the services, the faults ([`crate::fault`], one
//! module per kind), the checks `drill submit` runs ([`crate::check`], one module per
//! kind) and the reference solution. The file is read once into toml's spanned tree and
//! every table is held to its declared keys ([`crate::schema`]); every problem is
//! reported with file:line:column and what to do, and all problems of a file come out in
//! one run. The format is documented in `scenarios/README.md`.
//!
//! The types are re-exported here (`drill_core::scenario::{Fault, Check, ...}`), so users
//! of the model need not know which module defines what.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use toml::de::DeTable;

pub use crate::check::{CHECK_KINDS, Check, Counted};
pub use crate::fault::{FAULT_KINDS, Fault, NftAction, NftHook, NftRule, NftSource, parse_packet_rate, parse_rate};
pub use crate::model::{Cidr, MAX_HOST_NAME, MAX_ID, Service, Solution, Step, TcpState};
use crate::model::{Hosts, is_name};
use crate::schema::{Entry, Key, Shape, Ty, key};
use crate::source::{Collector, SourceError, SourceErrors};
use crate::topo::{self, RawHost, RawLink, RawSwitch};
pub use crate::topo::{Endpoint, Host, Route, Segment, Via};
use crate::workload::{self, Workload};
use crate::{check, fault};
pub use authoring::{Attempt, Difficulty, FileRef, LIMITS, MAX_NESTED, Meta, schema_tables, source_problem};

mod authoring;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conntrack;
#[cfg(test)]
mod tests_schema;
#[cfg(test)]
pub(crate) mod tests_support;

const fn table(name: &'static str, keys: &'static [Key]) -> Shape {
    Shape { name, is_kind: false, keys, common: &[] }
}

/// The top level of a scenario file.
const TOP: Shape = table(
    "the top level",
    &[
        key("id", Ty::Str, "\"close-wait-leak\"", "the scenario's id"),
        key("title", Ty::Str, "\"Client connections time out\"", "one line shown by drill list"),
        key("summary", Ty::Str, "\"...\"", "a few lines shown by drill start"),
        key("severity", Ty::Str, "\"SEV2\"", "the alert's severity (default SEV3)"),
        key("alert", Ty::Str, "\"...\"", "the page the learner receives"),
        key("briefing", Ty::Str, "\"...\"", "what the learner is told to do"),
        key("hints", Ty::List, "[\"...\"]", "hints given one at a time"),
        key("hosts", Ty::List, "[{ name = \"api\" }]", "the hosts"),
        key("links", Ty::List, "[{ a = { host = \"client\" }, b = { host = \"api\" } }]", "veth pairs"),
        key("switches", Ty::List, "[{ name = \"sw\", members = [...] }]", "bridges"),
        key("services", Ty::List, "[{ name = \"httpd\", host = \"api\", kind = \"httpd\" }]", "the services"),
        key("faults", Ty::List, "[{ kind = \"nft-drop\", host = \"api\" }]", "what is broken"),
        key("verify", Ty::Sub, "{ window_secs = 5 }", "how drill submit observes"),
        key("checks", Ty::List, "[{ kind = \"http-slo\", from = \"client\", target = \"api:8080\" }]", "what drill submit judges"),
        key("solution", Ty::Sub, "{ summary = \"...\", steps = [] }", "the reference fix"),
        key("difficulty", Ty::Str, "\"intermediate\"", "beginner, intermediate or advanced"),
        key("tags", Ty::List, "[\"tcp\", \"firewall\"]", "words to find the scenario by"),
        key("curriculum", Ty::List, "[\"seeds/networking.md#firewalls\"]", "where the curriculum teaches it"),
        key("estimated_minutes", Ty::Num, "20", "how long a learner usually needs (1-600)").from(1.0, 600.0, "minutes"),
        key("time_limit_minutes", Ty::Num, "30", "the clock of a timed incident (1-600)").from(1.0, 600.0, "minutes"),
        key("workarounds", Ty::List, "[{ name = \"open everything\", steps = [...] }]", "commands that look like fixes but are not: submit must fail"),
        key("alternatives", Ty::List, "[{ name = \"clamp the MSS\", steps = [...] }]", "other right fixes: submit must pass"),
        key("files", Ty::List, "[{ host = \"lb\", path = \"/etc/nginx/nginx.conf\", source = \"files/nginx.conf\" }]", "pack files placed in hosts"),
    ],
);
const SERVICE: Shape = table(
    "[[services]]",
    &[
        key("name", Ty::Str, "\"httpd\"", "the service's name"),
        key("host", Ty::Str, "\"api\"", "the host it runs on"),
        key("kind", Ty::Str, "\"httpd\"", "the workload: httpd, loadgen, proxy or worker"),
        key("config", Ty::Table, "{ listen = \"0.0.0.0:8080\" }", "its healthy config"),
        key("restart", Ty::Str, "\"on-failure\"", "when the host's init restarts it: no (default), on-failure, always"),
    ],
);
const VERIFY: Shape = table("[verify]", &[key("window_secs", Ty::Num, "5", "observation window of drill submit, seconds (1-300; default 5)")]);
const SOLUTION: Shape = table("[solution]", &[key("summary", Ty::Str, "\"...\"", "what was wrong and why the fix works"), key("steps", Ty::List, "[{ host = \"api\", run = \"...\" }]", "the fix")]);

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub severity: String,
    pub alert: String,
    pub briefing: String,
    pub hints: Vec<String>,
    pub hosts: Vec<Host>,
    /// Links and switches, in file order (links first).
    pub segments: Vec<Segment>,
    pub services: Vec<Service>,
    pub faults: Vec<Fault>,
    pub window_secs: f64,
    pub checks: Vec<Check>,
    pub solution: Solution,
    /// For authors and the self-test (`drill pack test`): see [`authoring`].
    #[serde(default)]
    pub meta: Meta,
    #[serde(default)]
    pub workarounds: Vec<Attempt>,
    #[serde(default)]
    pub alternatives: Vec<Attempt>,
    #[serde(default)]
    pub files: Vec<FileRef>,
    /// The name of each fault (parallel to `faults`): its `name` key, else its kind (`kind-N`
    /// when the kind repeats).
    #[serde(default)]
    pub fault_names: Vec<String>,
    /// The faults each check guards (parallel to `checks`, indices into `faults`): the
    /// check's `guards` key, else every fault. A check that guards none (`guards = []`)
    /// protects something the fix must keep (the site's real rules, say).
    #[serde(default)]
    pub guards: Vec<Vec<usize>>,
    /// The faults that are red herrings (indices into `faults`): harmless anomalies that
    /// look guilty. No check guards them (a check's default guards leave them out).
    #[serde(default)]
    pub red_herrings: Vec<usize>,
}

/// Parses and validates one scenario file. `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, SourceErrors> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(SourceErrors(syntax.iter().take(crate::source::MAX_ERRORS).map(|e| SourceError::at(file, text, e.span(), e.message().trim().to_string(), "")).collect()));
    }
    let mut cx = Collector::new(file, text);
    if authoring::over_limits(&mut cx, doc.get_ref()) {
        return Err(SourceErrors(cx.errors));
    }
    let span = doc.span();
    let mut e = Entry::new(&mut cx, span, doc.get_ref(), &TOP, &[]);
    e.require(&["id", "title", "alert", "briefing", "solution"]);
    let head = read_head(&mut e);
    let host_tables = e.tables("hosts");
    let raw_hosts: Vec<RawHost> = host_tables.iter().filter_map(|(s, t)| topo::read_host(&mut *e.cx, s.clone(), t)).collect();
    let links: Vec<Spanned<RawLink>> = e.tables("links").into_iter().filter_map(|(s, t)| topo::read_link(&mut *e.cx, s, t)).collect();
    let switches: Vec<Spanned<RawSwitch>> = e.tables("switches").into_iter().filter_map(|(s, t)| topo::read_switch(&mut *e.cx, s, t)).collect();
    let hosts_known = host_names(e.cx, &raw_hosts, !host_tables.is_empty());
    let (hosts, segments) = topo::validate(e.cx, &raw_hosts, &links, &switches, &hosts_known.names);
    let (services, service_tables) = read_services(&mut e, &hosts_known);
    let base = fault::Env { hosts: &hosts_known, topo: &hosts, segments: &segments, services: &services, service_tables: &service_tables, earlier: &[] };
    let FaultTables { faults, declared, failed, red_herrings } = read_faults(&mut e, &base);
    let fault_names = authoring::fault_names(&declared, e.cx);
    let window = read_verify(&mut e);
    let env = check::Env { hosts: &hosts_known, services: &services, segments: &segments };
    let check_tables = e.tables("checks");
    let mut checks = Vec::new();
    let mut guards = Vec::new();
    for (s, t) in &check_tables {
        if let Some(c) = check::read(&mut *e.cx, s.clone(), t, &env) {
            guards.push(read_guards(e.cx, t, &fault_names, &failed, &red_herrings));
            checks.push(c);
        }
    }
    dwell_within_window(e.cx, &checks, &window);
    if !red_herrings.is_empty() && red_herrings.len() == faults.len() {
        e.cx.err(0..0, "every fault of the scenario is a red herring", "a drill needs at least one real cause: remove `red_herring` from the fault that breaks the service");
    }
    if check_tables.is_empty() {
        e.cx.err(0..0, "the scenario has no [[checks]]", "add at least one check, or `drill submit` could never fail");
    }
    let solution = read_solution(&mut e, &hosts_known);
    let meta = authoring::read_meta(&mut e);
    let workarounds = authoring::read_attempts(&mut e, "workarounds", &hosts_known);
    let alternatives = authoring::read_attempts(&mut e, "alternatives", &hosts_known);
    let files = authoring::read_files(&mut e, &hosts_known);
    let Head { id, title, summary, severity, alert, briefing, hints } = head;
    if !cx.errors.is_empty() {
        return Err(SourceErrors(cx.errors));
    }
    let window_secs = window.map_or(5.0, |w| *w.get_ref());
    Ok(Scenario {
        id,
        title,
        summary,
        severity,
        alert,
        briefing,
        hints,
        hosts,
        segments,
        services,
        faults,
        window_secs,
        checks,
        solution,
        meta,
        workarounds,
        alternatives,
        files,
        fault_names,
        guards,
        red_herrings,
    })
}

/// The [[faults]] tables read, in order.
struct FaultTables {
    faults: Vec<Fault>,
    /// (name, kind) of each fault read, for the guards' names.
    declared: Vec<(Option<Spanned<String>>, String)>,
    /// Names (or kinds) of the faults that did not read: their own error is reported,
    /// a guard naming them is not a second one.
    failed: Vec<String>,
    /// Indexes (into `faults`) of the red herrings.
    red_herrings: Vec<usize>,
}

fn read_faults(e: &mut Entry, base: &fault::Env) -> FaultTables {
    let mut r = FaultTables { faults: Vec::new(), declared: Vec::new(), failed: Vec::new(), red_herrings: Vec::new() };
    for (s, t) in e.tables("faults") {
        let env = fault::Env { earlier: &r.faults, ..*base };
        if let Some(f) = fault::read(&mut *e.cx, s, t, &env) {
            r.declared.push((raw_str(t, "name"), raw_str(t, "kind").map(Spanned::into_inner).unwrap_or_default()));
            if t.get("red_herring").and_then(|v| v.get_ref().as_bool()) == Some(true) {
                r.red_herrings.push(r.faults.len());
            }
            r.faults.push(f);
        } else {
            r.failed.extend(raw_str(t, "name").map(Spanned::into_inner).or_else(|| raw_str(t, "kind").map(Spanned::into_inner)));
        }
    }
    r
}

/// What the learner is told, from the top level.
struct Head {
    id: String,
    title: String,
    summary: String,
    severity: String,
    alert: String,
    briefing: String,
    hints: Vec<String>,
}

fn read_head(e: &mut Entry) -> Head {
    let text = |e: &mut Entry, k: &str| e.str(k).map(Spanned::into_inner).unwrap_or_default();
    if let Some(id) = e.str("id")
        && (!is_name(id.get_ref()) || id.get_ref().len() > MAX_ID)
    {
        e.err(id.span(), format!("scenario id `{}` is not valid", id.get_ref()), format!("use lowercase letters, digits and '-', starting with a letter, at most {MAX_ID} characters"));
    }
    let id = text(e, "id");
    let severity = e.str("severity").map_or_else(|| "SEV3".to_string(), Spanned::into_inner);
    Head {
        id,
        title: text(e, "title"),
        summary: text(e, "summary"),
        severity,
        alert: text(e, "alert"),
        briefing: text(e, "briefing"),
        hints: e.strs("hints").into_iter().map(Spanned::into_inner).collect(),
    }
}

/// The declared host names, each checked (valid, declared once). `listed`: some host
/// tables were there (a host without a name is reported on its own).
fn host_names(cx: &mut Collector, raw: &[RawHost], listed: bool) -> Hosts {
    let mut names = BTreeSet::new();
    for h in raw {
        let name = h.name.get_ref();
        if !is_name(name) || name.len() > MAX_HOST_NAME {
            cx.err(h.name.span(), format!("host name `{name}` is not valid"), format!("use lowercase letters, digits and '-', starting with a letter, at most {MAX_HOST_NAME} characters"));
        }
        if !names.insert(name.clone()) {
            cx.err(h.name.span(), format!("host `{name}` is declared twice"), "give every host a distinct name");
        }
    }
    if raw.is_empty() && !listed {
        cx.err(0..0, "the scenario declares no hosts", "add at least one [[hosts]] table with a name");
    }
    Hosts::new(names)
}

type ServiceTables = BTreeMap<(String, String), (toml::Table, String)>;

/// The services with their healthy configs (faults patch them later), and each one's
/// config table and kind.
fn read_services(top: &mut Entry, hosts: &Hosts) -> (Vec<Service>, ServiceTables) {
    let mut services = Vec::new();
    let mut tables = ServiceTables::new();
    for (span, t) in top.tables("services") {
        let mut e = Entry::new(&mut *top.cx, span, t, &SERVICE, &[]);
        e.require(&["name", "host", "kind"]);
        let config = e.table("config").map(Spanned::into_inner).unwrap_or_default();
        let restart = match e.str("restart") {
            None => crate::model::Restart::No,
            Some(r) => match r.get_ref().parse::<crate::model::Restart>() {
                Ok(p) => p,
                Err(()) => {
                    e.err(r.span(), format!("restart = {:?} is not a restart policy", r.get_ref()), "use \"no\", \"on-failure\" (after it exits with an error or is killed) or \"always\"");
                    crate::model::Restart::No
                }
            },
        };
        let (Some(name), Some(host), Some(kind)) = (e.str("name"), e.str("host"), e.str("kind")) else { continue };
        let host_ok = hosts.check(e.cx, &host);
        if !is_name(name.get_ref()) {
            e.err(name.span(), format!("service name `{}` is not valid", name.get_ref()), "use lowercase letters, digits and '-', starting with a letter");
        }
        let k = (host.get_ref().clone(), name.get_ref().clone());
        if tables.contains_key(&k) {
            e.err(name.span(), format!("service `{}` is declared twice on host `{}`", k.1, k.0), "give each service on a host its own name");
            continue;
        }
        match Workload::from_table(kind.get_ref(), config.clone()) {
            Ok(w) if host_ok => {
                services.push(Service { name: k.1.clone(), host: k.0.clone(), workload: w, restart });
                tables.insert(k, (config, kind.into_inner()));
            }
            Ok(_) => {}
            Err(err) => {
                let known = workload::KINDS.contains(&kind.get_ref().as_str());
                let help = if known {
                    "fix the [services.config] table; the workload's keys are documented in scenarios/README.md".to_string()
                } else {
                    format!("use one of: {}", workload::KINDS.join(", "))
                };
                let blamed = e.sub("config").and_then(|(_, t)| crate::schema::blamed_key(t, &err));
                let span = if known { blamed.unwrap_or(name.span()) } else { kind.span() };
                e.err(span, format!("service `{}`: {err}", k.1), help);
            }
        }
    }
    (services, tables)
}

/// `[verify] window_secs` (1-300 s); None when absent or reported.
fn read_verify(top: &mut Entry) -> Option<Spanned<f64>> {
    let (span, t) = top.sub("verify")?;
    let mut e = Entry::new(&mut *top.cx, span, t, &VERIFY, &[]);
    let w = e.num("window_secs")?;
    if !(1.0..=300.0).contains(w.get_ref()) {
        e.err(w.span(), format!("window_secs = {} is out of range", w.get_ref()), "use a window between 1 and 300 seconds");
        return None;
    }
    Some(w)
}

/// Every dwell bound must be shorter than the window, or a stuck socket is never seen.
fn dwell_within_window(cx: &mut Collector, checks: &[Check], window: &Option<Spanned<f64>>) {
    let window_secs = window.as_ref().map_or(5.0, |w| *w.get_ref());
    for c in checks {
        if let Check::TcpStateDwell { name, max_secs, .. } = c
            && *max_secs >= window_secs
        {
            let span: Range<usize> = window.as_ref().map_or(0..0, |w| w.span());
            cx.err(
                span,
                format!("check `{name}`: max_secs = {max_secs} is not shorter than the {window_secs} s window"),
                "make [verify] window_secs longer than every max_secs, or a stuck socket could never be seen",
            );
        }
    }
}

fn read_solution(top: &mut Entry, hosts: &Hosts) -> Solution {
    let mut solution = Solution { summary: String::new(), steps: Vec::new() };
    let Some((span, t)) = top.sub("solution") else { return solution };
    let mut e = Entry::new(&mut *top.cx, span, t, &SOLUTION, &[]);
    e.require(&["summary", "steps"]);
    solution.summary = e.str("summary").map(Spanned::into_inner).unwrap_or_default();
    solution.steps = authoring::read_steps(&mut e, hosts);
    solution
}

/// A string key of a table read without its schema (the fault's `name`, its `kind`),
/// which the kind's own reader has already checked.
fn raw_str(t: &DeTable<'_>, k: &str) -> Option<Spanned<String>> {
    let v = t.get(k)?;
    v.get_ref().as_str().map(|s| Spanned::new(v.span(), s.to_string()))
}

/// A check's `guards`: names of faults, resolved to their indices; every fault but the
/// red herrings when absent. A red herring named in `guards` is an error: it is harmless,
/// so no check can fail because of it.
fn read_guards(cx: &mut Collector, t: &DeTable<'_>, fault_names: &[String], failed: &[String], red_herrings: &[usize]) -> Vec<usize> {
    let Some(v) = t.get("guards") else { return (0..fault_names.len()).filter(|i| !red_herrings.contains(i)).collect() };
    let Some(items) = v.get_ref().as_array() else {
        cx.err(v.span(), "guards is a list of fault names", "write guards = [\"nft-drop\"] with the faults' names (their `name`, else their kind), or [] for none");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(name) = item.get_ref().as_str() else {
            cx.err(item.span(), "a guard is a fault's name", "write guards = [\"nft-drop\"] with the faults' names (their `name`, else their kind)");
            continue;
        };
        match fault_names.iter().position(|n| n == name) {
            Some(i) if red_herrings.contains(&i) => {
                cx.err(item.span(), format!("check guards `{name}`, a red herring"), "a red herring is harmless: no check can fail because of it; guard the faults that break the service");
            }
            Some(i) => out.push(i),
            None if failed.iter().any(|f| f == name) => {}
            None => {
                let near = crate::schema::nearest(name, fault_names.iter().map(String::as_str)).map(|n| format!("did you mean `{n}`? ")).unwrap_or_default();
                cx.err(item.span(), format!("check guards `{name}`, which is no fault of this scenario"), format!("{near}the faults are: {}", fault_names.join(", ")));
            }
        }
    }
    out
}

impl Scenario {
    /// The same drill with nothing broken: topology and healthy services only (the
    /// self-test's baseline, where every check must pass).
    pub fn without_faults(mut self) -> Scenario {
        self.faults.clear();
        self.fault_names.clear();
        self.red_herrings.clear();
        for g in &mut self.guards {
            g.clear();
        }
        self
    }
    /// Whether anything in the drill speaks TLS (its hosts then get certificates).
    pub fn uses_tls(&self) -> bool {
        self.services.iter().any(|s| s.workload.uses_tls())
            || self.faults.iter().any(|f| matches!(f, Fault::ServiceConfig { faulty, .. } if faulty.uses_tls()))
            || self.checks.iter().any(|c| matches!(c, Check::HttpSlo { tls: true, .. }))
    }

    /// The workload a service starts with when the drill begins (fault applied).
    pub fn initial_workload(&self, host: &str, service: &str) -> Option<&Workload> {
        for f in &self.faults {
            if let Fault::ServiceConfig { host: h, service: s, faulty, .. } = f
                && h == host
                && s == service
            {
                return Some(faulty);
            }
        }
        self.services.iter().find(|s| s.host == host && s.name == service).map(|s| &s.workload)
    }
}
