//! The machine-wide caps on what drills take: how many run at once and the memory their
//! hosts may hold together.

use anyhow::anyhow;
use drill_core::plan;

use crate::error::DrillError;

/// The machine-wide caps on what drills take (docs/security.md, "Resource limits"). Each
/// host is also held to its own cgroup (memory, CPU, pids) and disk size.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Drills running at once.
    pub max_drills: usize,
    /// The sum of the running hosts' memory limits (cgroup memory.max; a host's disk is
    /// a tmpfs charged to it, so it is inside that figure).
    pub memory_budget: u64,
}

impl Limits {
    pub const DEFAULT_MAX_DRILLS: usize = 24;

    /// `DRILL_MAX_DRILLS` and `DRILL_MEMORY_BUDGET` (a size: `8G`, `512M`), else 24 drills
    /// and three quarters of the machine's memory.
    pub fn from_env() -> anyhow::Result<Limits> {
        let max_drills = match std::env::var("DRILL_MAX_DRILLS") {
            Ok(v) => v.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| anyhow!("DRILL_MAX_DRILLS={v:?} is not a count of drills (give 1 or more)"))?,
            Err(_) => Self::DEFAULT_MAX_DRILLS,
        };
        let memory_budget = match std::env::var("DRILL_MEMORY_BUDGET") {
            Ok(v) => parse_size(&v).filter(|b| *b >= 16 << 20).ok_or_else(|| anyhow!("DRILL_MEMORY_BUDGET={v:?} is not a size of at least 16M (write it like 8G or 512M)"))?,
            Err(_) => mem_total().map(|t| t / 4 * 3).unwrap_or(4 << 30),
        };
        Ok(Limits { max_drills, memory_budget })
    }

    /// Whether a drill of `plan` may start beside `running`; the error says which cap and
    /// the figures.
    pub fn admit<'a>(&self, running: impl Iterator<Item = &'a plan::Plan>, plan: &plan::Plan) -> Result<(), DrillError> {
        let (mut drills, mut committed) = (0usize, 0u64);
        for p in running {
            drills += 1;
            committed += plan_memory(p);
        }
        if drills >= self.max_drills {
            return Err(DrillError::OverLimit { what: "drills".into(), figure: format!("{drills} drills are running, the most this daemon allows (DRILL_MAX_DRILLS={})", self.max_drills) });
        }
        let asked = plan_memory(plan);
        if committed + asked > self.memory_budget {
            return Err(DrillError::OverLimit {
                what: "memory".into(),
                figure: format!(
                    "drill {} asks {} MiB for its {} hosts, and the running drills' hosts hold {} MiB of the {} MiB budget (DRILL_MEMORY_BUDGET)",
                    plan.drill_id,
                    asked >> 20,
                    plan.hosts.len(),
                    committed >> 20,
                    self.memory_budget >> 20
                ),
            });
        }
        Ok(())
    }
}

/// The memory a drill's hosts may hold together (their cgroups' memory.max).
fn plan_memory(p: &plan::Plan) -> u64 {
    let default = crate::host::Isolation::default().limits.memory_bytes;
    p.hosts.iter().map(|h| h.limits.memory_bytes.unwrap_or(default)).sum()
}

/// `512M`, `8G`, `1048576`: bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        _ => (s, 0),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn mem_total() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb << 10)
}
