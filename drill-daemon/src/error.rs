//! The daemon library's errors: one kind per thing that can go wrong, each naming the
//! object it is about and what to do. The API maps a kind to an HTTP status and a
//! stable `code` (docs/API.md, "Errors"); nothing is ever classified by its text.
//!
//! Kernel-facing code below the seam (`kernel/linux/`) still builds its messages with
//! `anyhow` contexts; they arrive here as the `source` of [`DrillError::Kernel`].

use drill_core::source::SourceErrors;

/// Everything a drill operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// No running drill has this id.
    #[error("no drill `{id}` is running ({running})")]
    DrillNotFound { id: String, running: String },
    /// The drill has no host of this name.
    #[error("drill {drill} has no host `{host}` (hosts: {hosts})")]
    HostNotFound { drill: String, host: String, hosts: String },
    /// The drill has no fault of this kind and index.
    #[error("drill {drill} has {count} {kind} fault(s), not #{index}")]
    FaultNotFound { drill: String, kind: &'static str, index: usize, count: usize },
    /// No scenario of the built-in or an installed pack has this name.
    #[error("no scenario `{id}`; known scenarios: {known} (or pass a path to a .toml file)")]
    ScenarioNotFound { id: String, known: String },
    /// The id names scenarios of several packs: `PACK/ID` picks one.
    #[error("scenario `{id}` is in several packs; name one of: {choices}")]
    AmbiguousScenario { id: String, choices: String },
    /// A client that is not root asked to start a scenario from a file that is not an
    /// installed pack's (packs are trusted code: their commands run as root in hosts).
    #[error("uid {uid} may not start a scenario from an uninstalled file; only root may (packs run their commands as root inside drill hosts)")]
    SourceForbidden { uid: u32 },
    /// The scenario file does not validate: every error with its file:line:column.
    #[error("{0}")]
    InvalidScenario(SourceErrors),
    /// A request the API cannot take as it is (a bad id, an impossible figure).
    #[error("{0}")]
    BadRequest(String),
    /// A fault's after-apply measurement fell outside its tolerance.
    #[error("fault `{fault}` on host {host} did not take as asked: {figure}")]
    FaultDidNotTake { fault: String, host: String, figure: String },
    /// A fault's after-apply measurement could not be made (no reply at all, a control
    /// that already shows the effect): the start stops rather than trust it.
    #[error("fault `{fault}` on host {host} could not be measured after apply: {why}")]
    FaultNotMeasured { fault: String, host: String, why: String },
    /// The plan refuses a fault the engine cannot measure with its parameters.
    #[error("{0}")]
    Unmeasurable(drill_core::plan::PlanError),
    /// The kernel refused or failed an operation on a host (or switch, or wire).
    #[error("{op}{}: {source:#}", place(host, interface))]
    Kernel {
        host: Option<String>,
        interface: Option<String>,
        op: String,
        #[source]
        source: anyhow::Error,
    },
    /// A probe a check needs is not loaded (or a figure it needs does not exist here).
    #[error("{probe}: {why}")]
    ProbeMissing { probe: String, why: String },
    /// The machine lacks a piece the drill cannot run without (a program, a command), in
    /// `drill doctor`'s words; `need` is the doctor's check id.
    #[error("{why}")]
    RequirementMissing { need: String, why: String },
    /// No room or a conflicting operation: try again later or stop something.
    #[error("{0}")]
    Busy(String),
    /// A drill could not start; everything it created was removed.
    #[error("could not start drill {drill} (everything it created was removed): {source}")]
    StartFailed {
        drill: String,
        #[source]
        source: Box<DrillError>,
    },
    /// `drill solve` on a running incident without agreeing to abandon it.
    #[error("drill {drill} is a running incident: showing the solution ends it as abandoned (kept in the history as such)")]
    IncidentRunning { drill: String },
    /// An incident-only action (ack) on a plain drill.
    #[error("drill {drill} is not an incident: nothing was paged, so there is nothing to acknowledge")]
    NotIncident { drill: String },
    /// Neither running nor in the history (or not the asker's).
    #[error("no drill `{id}` in the history{}", if *.mine_only { " of your uid" } else { "" })]
    RecordNotFound { id: String, mine_only: bool },
    /// An action only root may take (it acts on every user's drills or on the machine).
    #[error("{what} is root's to run (it acts on every user's drills); uid {uid} may not")]
    RootOnly { what: String, uid: u32 },
    /// A cap on what drills may take of the machine would be passed.
    #[error("over the limit on {what}: {figure}")]
    OverLimit { what: String, figure: String },
    /// A request body over the API's size limit.
    #[error("the request body is over {limit} bytes, the most the API reads")]
    BodyTooLarge { limit: usize },
    /// A request whose handler panicked: the daemon logged it and serves on.
    #[error("drilld hit a bug answering this request ({0}); it logged it and serves on")]
    Panicked(String),
    /// Anything else (a bug, or a failure of the daemon's own files).
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

fn place(host: &Option<String>, interface: &Option<String>) -> String {
    match (host, interface) {
        (Some(h), Some(i)) => format!(" (host {h}, interface {i})"),
        (Some(h), None) => format!(" (host {h})"),
        (None, Some(i)) => format!(" (interface {i})"),
        (None, None) => String::new(),
    }
}

pub type Result<T, E = DrillError> = std::result::Result<T, E>;

impl DrillError {
    /// A kernel failure of `op` on `host` (and `interface`).
    pub fn kernel(op: impl Into<String>, host: Option<&str>, interface: Option<&str>, source: impl Into<anyhow::Error>) -> DrillError {
        DrillError::Kernel { host: host.map(String::from), interface: interface.map(String::from), op: op.into(), source: source.into() }
    }

    /// A fault whose measurement is off.
    pub fn did_not_take(fault: impl Into<String>, host: &str, figure: impl Into<String>) -> DrillError {
        DrillError::FaultDidNotTake { fault: fault.into(), host: host.to_string(), figure: figure.into() }
    }

    pub fn not_measured(fault: impl Into<String>, host: &str, why: impl Into<String>) -> DrillError {
        DrillError::FaultNotMeasured { fault: fault.into(), host: host.to_string(), why: why.into() }
    }

    /// The innermost kind (a failed start reports what made it fail).
    pub fn root(&self) -> &DrillError {
        match self {
            DrillError::StartFailed { source, .. } => source.root(),
            e => e,
        }
    }

    /// The stable code of this kind (docs/API.md lists them).
    pub fn code(&self) -> &'static str {
        match self.root() {
            DrillError::DrillNotFound { .. } => "drill_not_found",
            DrillError::HostNotFound { .. } => "host_not_found",
            DrillError::FaultNotFound { .. } => "fault_not_found",
            DrillError::ScenarioNotFound { .. } => "scenario_not_found",
            DrillError::AmbiguousScenario { .. } => "ambiguous_scenario",
            DrillError::SourceForbidden { .. } => "source_forbidden",
            DrillError::InvalidScenario(_) => "invalid_scenario",
            DrillError::BadRequest(_) => "bad_request",
            DrillError::FaultDidNotTake { .. } => "fault_did_not_take",
            DrillError::FaultNotMeasured { .. } => "fault_not_measured",
            DrillError::Unmeasurable(_) => "fault_unmeasurable",
            DrillError::Kernel { .. } => "kernel",
            DrillError::ProbeMissing { .. } => "probe_missing",
            DrillError::RequirementMissing { .. } => "requirement_missing",
            DrillError::Busy(_) => "busy",
            DrillError::IncidentRunning { .. } => "incident_running",
            DrillError::NotIncident { .. } => "not_incident",
            DrillError::RecordNotFound { .. } => "record_not_found",
            DrillError::RootOnly { .. } => "root_only",
            DrillError::OverLimit { .. } => "over_limit",
            DrillError::BodyTooLarge { .. } => "body_too_large",
            DrillError::StartFailed { .. } | DrillError::Internal(_) | DrillError::Panicked(_) => "internal",
        }
    }

    /// The HTTP status of this kind.
    pub fn http_status(&self) -> u16 {
        match self.root() {
            DrillError::DrillNotFound { .. } | DrillError::HostNotFound { .. } | DrillError::FaultNotFound { .. } | DrillError::ScenarioNotFound { .. } => 404,
            DrillError::InvalidScenario(_) | DrillError::BadRequest(_) | DrillError::Unmeasurable(_) => 400,
            DrillError::ProbeMissing { .. } | DrillError::RequirementMissing { .. } => 412,
            DrillError::SourceForbidden { .. } | DrillError::RootOnly { .. } => 403,
            DrillError::OverLimit { .. } => 503,
            DrillError::BodyTooLarge { .. } => 413,
            DrillError::AmbiguousScenario { .. } | DrillError::IncidentRunning { .. } | DrillError::NotIncident { .. } => 409,
            DrillError::RecordNotFound { .. } => 404,
            DrillError::Busy(_) => 503,
            DrillError::FaultDidNotTake { .. }
            | DrillError::FaultNotMeasured { .. }
            | DrillError::Kernel { .. }
            | DrillError::StartFailed { .. }
            | DrillError::Internal(_)
            | DrillError::Panicked(_) => 500,
        }
    }

    /// The object the error is about, as the CLI shows it.
    pub fn about(&self) -> Option<String> {
        let drill = match self {
            DrillError::StartFailed { drill, .. } => Some(format!("drill {drill}")),
            _ => None,
        };
        let inner = match self.root() {
            DrillError::DrillNotFound { id, .. } => Some(format!("drill {id}")),
            DrillError::HostNotFound { drill, host, .. } => Some(format!("drill {drill}, host {host}")),
            DrillError::FaultNotFound { drill, kind, index, .. } => Some(format!("drill {drill}, {kind} fault #{index}")),
            DrillError::ScenarioNotFound { id, .. } | DrillError::AmbiguousScenario { id, .. } => Some(format!("scenario {id}")),
            DrillError::SourceForbidden { uid } | DrillError::RootOnly { uid, .. } => Some(format!("uid {uid}")),
            DrillError::IncidentRunning { drill } | DrillError::NotIncident { drill } => Some(format!("drill {drill}")),
            DrillError::RecordNotFound { id, .. } => Some(format!("drill {id}")),
            DrillError::InvalidScenario(errs) => errs.0.first().map(|e| format!("{}:{}:{}", e.file, e.line, e.column)),
            DrillError::FaultDidNotTake { fault, host, .. } | DrillError::FaultNotMeasured { fault, host, .. } => Some(format!("host {host}, fault `{fault}`")),
            DrillError::Unmeasurable(e) => Some(format!("fault #{} (`{}`)", e.index + 1, e.fault)),
            DrillError::Kernel { host, interface, .. } => {
                let p = place(host, interface);
                (!p.is_empty()).then(|| p.trim_start_matches(" (").trim_end_matches(')').to_string())
            }
            DrillError::ProbeMissing { probe, .. } => Some(format!("probe {probe}")),
            DrillError::RequirementMissing { need, .. } => Some(format!("doctor check {need}")),
            _ => None,
        };
        match (drill, inner) {
            (Some(d), Some(i)) => Some(format!("{d}, {i}")),
            (d, i) => d.or(i),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.root() {
            DrillError::DrillNotFound { .. } => "`drill status` lists the running drills",
            DrillError::HostNotFound { .. } => "`drill status ID` lists the drill's hosts",
            DrillError::FaultNotFound { .. } => "`drill solve ID` lists the drill's faults",
            DrillError::ScenarioNotFound { .. } => "`drill list` shows the scenarios of the built-in and the installed packs",
            DrillError::AmbiguousScenario { .. } => "start it as PACK/ID; `drill list` shows each scenario's pack",
            DrillError::SourceForbidden { .. } => "ask an administrator to install the pack (`sudo drill pack install DIR`) and start it by name, or run `sudo drill start FILE`",
            DrillError::InvalidScenario(_) => "fix the file at the places shown, then run `drill start FILE --dry-run` again",
            DrillError::FaultDidNotTake { .. } => "the kernel did not apply the fault as asked; try again, and report it with `drilld`'s log if it stays",
            DrillError::FaultNotMeasured { .. } => {
                "the path the measurement needs did not answer as it must without the fault; check the scenario's topology and services (`drill start --dry-run` shows how each fault is measured)"
            }
            DrillError::Unmeasurable(_) => "change the fault as the error says; `drill start --dry-run` shows how each fault is measured",
            DrillError::Kernel { .. } => "see drilld's log; `drill reset` removes any leftovers",
            DrillError::ProbeMissing { .. } => "`drill doctor` names what this machine lacks and the drills it disables; GET /v1/info shows which probes loaded and why the others did not",
            DrillError::RequirementMissing { .. } => "`drill doctor` lists everything this machine lacks, what each piece disables and how to get it",
            DrillError::Busy(_) => "stop a drill (`drill stop ID`) and try again",
            DrillError::IncidentRunning { .. } => "run `drill solve` again and agree (or `drill solve --abandon`); `drill hint` costs fewer points",
            DrillError::NotIncident { .. } => "`drill incident` starts a timed incident that pages you",
            DrillError::RecordNotFound { .. } => "`drill history` lists the drills kept",
            DrillError::RootOnly { .. } => "run it with sudo, or ask the machine's administrator; `drill stop --all` stops your own drills",
            DrillError::OverLimit { .. } => "stop a drill (`drill status` lists yours); the caps are DRILL_MAX_DRILLS and DRILL_MEMORY_BUDGET in drilld's environment (docs/security.md)",
            DrillError::BodyTooLarge { .. } => "send a smaller request; a scenario file is read from its pack directory, not sent whole with its files",
            DrillError::Panicked(_) => "report it with drilld's log (it names the request); your drills are unaffected",
            _ => return None,
        })
    }
}

/// The daemon's own files and bugs (journal, host directories, certificates).
impl From<anyhow::Error> for DrillError {
    fn from(e: anyhow::Error) -> Self {
        DrillError::Internal(e)
    }
}

impl From<SourceErrors> for DrillError {
    fn from(e: SourceErrors) -> Self {
        DrillError::InvalidScenario(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_reports_the_kind_that_made_it_fail() {
        let e = DrillError::StartFailed { drill: "abc123".into(), source: Box::new(DrillError::did_not_take("nft-drop", "server", "it connected")) };
        assert_eq!((e.code(), e.http_status()), ("fault_did_not_take", 500));
        assert_eq!(e.about().as_deref(), Some("drill abc123, host server, fault `nft-drop`"));
        let k = DrillError::kernel("setting mtu", Some("lb"), Some("eth0"), anyhow::anyhow!("EPERM"));
        assert_eq!(k.to_string(), "setting mtu (host lb, interface eth0): EPERM");
        assert_eq!(k.about().as_deref(), Some("host lb, interface eth0"));
    }

    #[test]
    fn not_found_kinds_are_404_and_bad_input_400() {
        let nf = DrillError::FaultNotFound { drill: "a".into(), kind: "eBPF", index: 3, count: 1 };
        assert_eq!((nf.code(), nf.http_status()), ("fault_not_found", 404));
        assert_eq!(DrillError::BadRequest("x".into()).http_status(), 400);
        assert_eq!(DrillError::Busy("x".into()).http_status(), 503);
    }

    #[test]
    fn a_forbidden_source_is_403_and_an_ambiguous_name_409() {
        let f = DrillError::SourceForbidden { uid: 1000 };
        assert_eq!((f.code(), f.http_status(), f.about().as_deref()), ("source_forbidden", 403, Some("uid 1000")));
        assert!(f.hint().is_some_and(|h| h.contains("pack install")));
        let a = DrillError::AmbiguousScenario { id: "firewall-drop".into(), choices: "core/firewall-drop, net101/firewall-drop".into() };
        assert_eq!((a.code(), a.http_status()), ("ambiguous_scenario", 409));
        assert!(a.to_string().contains("net101/firewall-drop"));
    }
}
