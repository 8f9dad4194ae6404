//! The history: every drill and incident, kept in SQLite (docs/incidents.md, "History").
//!
//! One row per drill in `drills` (what `drill history` lists), its timeline in `events`
//! (one row per event; a command's row is rewritten when its exit is seen) and its
//! continuous-evaluation windows in `windows`. The daemon writes a drill's row at its
//! start and syncs it at every window, so a `kill -9` of drilld loses at most the last
//! window; the next daemon marks what was running as `aborted`.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward at open;
//! a database newer than this binary is refused, never rewritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use drill_core::api::HistoryEntry;
use drill_core::record::{DrillRecord, Event, EventKind, Window};
use rusqlite::{Connection, OptionalExtension, params};

mod writer;
pub use writer::Writer;

/// Where the history lives unless `DRILL_HISTORY` says otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/drill/history.sqlite";
pub const ENV: &str = "DRILL_HISTORY";

/// The history file this process uses.
pub fn path() -> PathBuf {
    std::env::var_os(ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// The migrations, in order: migration N brings `user_version` from N-1 to N.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE drills (
        id              TEXT PRIMARY KEY,
        scenario        TEXT NOT NULL,
        pack            TEXT NOT NULL,
        title           TEXT NOT NULL,
        severity        TEXT NOT NULL,
        alert           TEXT NOT NULL,
        owner_uid       INTEGER NOT NULL,
        mode            TEXT NOT NULL,
        time_limit_ms   INTEGER,
        started_unix_ms INTEGER NOT NULL,
        ended_unix_ms   INTEGER,
        outcome         TEXT NOT NULL,
        hosts           TEXT NOT NULL,   -- JSON array of host names
        root_cause      TEXT,            -- JSON, once over
        figures         TEXT NOT NULL,   -- JSON
        score           TEXT,            -- JSON, incidents
        score_total     INTEGER,
        updated_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX drills_started ON drills(started_unix_ms);
    CREATE TABLE events (
        drill_id TEXT NOT NULL REFERENCES drills(id) ON DELETE CASCADE,
        key      TEXT NOT NULL,          -- stable per event: a command's is its pid and start
        t_ms     INTEGER NOT NULL,
        type     TEXT NOT NULL,
        data     TEXT NOT NULL,          -- JSON of the event
        PRIMARY KEY (drill_id, key)
    );
    CREATE TABLE windows (
        drill_id TEXT NOT NULL REFERENCES drills(id) ON DELETE CASCADE,
        start_ms INTEGER NOT NULL,
        data     TEXT NOT NULL,          -- JSON of the window
        PRIMARY KEY (drill_id, start_ms)
    );
"];

pub struct History {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// What was last written of each drill's events (key -> JSON), so a sync writes only
    /// what changed.
    written: Mutex<HashMap<String, HashMap<String, String>>>,
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A stable key of an event inside its drill: commands by pid and start (their row is
/// rewritten when they exit), every other event by its position among the others.
fn keys(events: &[Event]) -> Vec<String> {
    let mut n = 0usize;
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Command(c) => format!("cmd:{}:{}", c.pid, e.t_ms),
            EventKind::Mitigated => "mitigated".to_string(),
            _ => {
                n += 1;
                format!("ev:{n}")
            }
        })
        .collect()
}

fn type_name(k: &EventKind) -> String {
    serde_json::to_value(k).ok().and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from)).unwrap_or_default()
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn enum_from<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).with_context(|| format!("unknown value `{s}`"))
}

/// The columns of a drill's row, in `Head::read`'s order.
const HEAD: &str = "id, scenario, pack, title, severity, alert, owner_uid, mode, time_limit_ms, started_unix_ms, ended_unix_ms, outcome, hosts, root_cause, figures, score";

/// A drill's row as read, before its JSON columns are parsed.
struct Head {
    id: String,
    scenario: String,
    pack: String,
    title: String,
    severity: String,
    alert: String,
    owner_uid: u32,
    mode: String,
    time_limit_ms: Option<i64>,
    started: i64,
    ended: Option<i64>,
    outcome: String,
    hosts: String,
    root_cause: Option<String>,
    figures: String,
    score: Option<String>,
}

impl Head {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Head> {
        Ok(Head {
            id: r.get(0)?,
            scenario: r.get(1)?,
            pack: r.get(2)?,
            title: r.get(3)?,
            severity: r.get(4)?,
            alert: r.get(5)?,
            owner_uid: r.get(6)?,
            mode: r.get(7)?,
            time_limit_ms: r.get(8)?,
            started: r.get(9)?,
            ended: r.get(10)?,
            outcome: r.get(11)?,
            hosts: r.get(12)?,
            root_cause: r.get(13)?,
            figures: r.get(14)?,
            score: r.get(15)?,
        })
    }

    /// The record this row heads, without its events and windows.
    fn record(self) -> Result<DrillRecord> {
        Ok(DrillRecord {
            schema_version: drill_core::record::SCHEMA_VERSION,
            mode: enum_from(&self.mode)?,
            outcome: enum_from(&self.outcome)?,
            hosts: serde_json::from_str(&self.hosts)?,
            root_cause: self.root_cause.map(|r| serde_json::from_str(&r)).transpose()?,
            figures: serde_json::from_str(&self.figures)?,
            score: self.score.map(|s| serde_json::from_str(&s)).transpose()?,
            id: self.id,
            scenario: self.scenario,
            pack: self.pack,
            title: self.title,
            severity: self.severity,
            alert: self.alert,
            owner_uid: self.owner_uid,
            time_limit_ms: self.time_limit_ms.map(|v| v as u64),
            started_unix_ms: self.started as u64,
            ended_unix_ms: self.ended.map(|v| v as u64),
            events: Vec::new(),
            windows: Vec::new(),
        })
    }
}

impl History {
    /// Opens (creating the file and its directory, mode 0700/0600) and migrates.
    pub fn open(path: &Path) -> Result<History> {
        if let Some(dir) = path.parent()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let conn = Connection::open(path).with_context(|| format!("opening the history {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Self::setup(conn, path.to_path_buf())
    }

    pub fn open_in_memory() -> Result<History> {
        Self::setup(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn setup(conn: Connection, path: PathBuf) -> Result<History> {
        // WAL: a reader (`drilld history` with no daemon, a backup) never blocks the daemon,
        // and a crash mid-write leaves the last committed state.
        conn.pragma_update(None, "journal_mode", "WAL").ok();
        // In WAL mode NORMAL loses nothing to a crash of drilld (kill -9): only a power
        // cut may lose the last commits. A commit then costs no fsync.
        conn.pragma_update(None, "synchronous", "NORMAL").ok();
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            bail!("the history {} has schema version {version}, newer than this drilld knows ({known}); use a newer drill, or move the file away", path.display());
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m).with_context(|| format!("migrating the history {} to version {}", path.display(), i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(History { conn: Mutex::new(conn), path, written: Mutex::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.conn().query_row("SELECT 1 FROM drills WHERE id = ?1", [id], |_| Ok(())).optional().ok().flatten().is_some()
    }

    /// Writes the record: its row, the events that changed since the last sync, the
    /// windows not yet written. One transaction.
    pub fn sync(&self, rec: &DrillRecord) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO drills (id, scenario, pack, title, severity, alert, owner_uid, mode, time_limit_ms, started_unix_ms, ended_unix_ms, outcome,
                                 hosts, root_cause, figures, score, score_total, updated_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT(id) DO UPDATE SET ended_unix_ms = excluded.ended_unix_ms, outcome = excluded.outcome, root_cause = excluded.root_cause,
                 figures = excluded.figures, score = excluded.score, score_total = excluded.score_total, updated_unix_ms = excluded.updated_unix_ms,
                 time_limit_ms = excluded.time_limit_ms",
            params![
                rec.id,
                rec.scenario,
                rec.pack,
                rec.title,
                rec.severity,
                rec.alert,
                rec.owner_uid,
                enum_str(&rec.mode),
                rec.time_limit_ms.map(|v| v as i64),
                rec.started_unix_ms as i64,
                rec.ended_unix_ms.map(|v| v as i64),
                rec.outcome.as_str(),
                serde_json::to_string(&rec.hosts)?,
                rec.root_cause.as_ref().map(serde_json::to_string).transpose()?,
                serde_json::to_string(&rec.figures)?,
                rec.score.as_ref().map(serde_json::to_string).transpose()?,
                rec.score.as_ref().map(|s| s.total),
                now_unix_ms() as i64,
            ],
        )?;
        let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = written.entry(rec.id.clone()).or_default();
        let ks = keys(&rec.events);
        let mut wanted = std::collections::HashSet::new();
        for (e, k) in rec.events.iter().zip(&ks) {
            wanted.insert(k.as_str());
            let data = serde_json::to_string(e)?;
            if seen.get(k) == Some(&data) {
                continue;
            }
            tx.execute(
                "INSERT INTO events (drill_id, key, t_ms, type, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(drill_id, key) DO UPDATE SET t_ms = excluded.t_ms, type = excluded.type, data = excluded.data",
                params![rec.id, k, e.t_ms as i64, type_name(&e.kind), data],
            )?;
            seen.insert(k.clone(), data);
        }
        // An event that is no longer in the record (a recovery that relapsed) goes too.
        let gone: Vec<String> = seen.keys().filter(|k| !wanted.contains(k.as_str())).cloned().collect();
        for k in gone {
            tx.execute("DELETE FROM events WHERE drill_id = ?1 AND key = ?2", params![rec.id, k])?;
            seen.remove(&k);
        }
        for w in &rec.windows {
            tx.execute("INSERT OR IGNORE INTO windows (drill_id, start_ms, data) VALUES (?1, ?2, ?3)", params![rec.id, w.start_ms as i64, serde_json::to_string(w)?])?;
        }
        tx.commit()?;
        if rec.outcome.is_over() {
            // Nothing more will change; keep no cache of it.
            written.remove(&rec.id);
        }
        Ok(())
    }

    /// Marks every drill still `running` as `aborted` (the daemon that ran it died),
    /// ended at its last recorded moment. Returns their ids.
    pub fn abort_running(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let ids: Vec<(String, i64, i64)> = conn
            .prepare("SELECT d.id, d.started_unix_ms, COALESCE((SELECT MAX(t_ms) FROM events e WHERE e.drill_id = d.id), 0) FROM drills d WHERE d.outcome = 'running'")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, started, last) in &ids {
            conn.execute("UPDATE drills SET outcome = 'aborted', ended_unix_ms = ?2, updated_unix_ms = ?3 WHERE id = ?1", params![id, started + last, now_unix_ms() as i64])?;
        }
        Ok(ids.into_iter().map(|(id, _, _)| id).collect())
    }

    /// Newest first; `owner`: only that uid's (None: everyone's).
    pub fn list(&self, owner: Option<u32>, limit: usize) -> Result<Vec<HistoryEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT {HEAD} FROM drills WHERE (?1 IS NULL OR owner_uid = ?1) ORDER BY started_unix_ms DESC LIMIT ?2"))?;
        let rows = st.query_map(params![owner, limit as i64], Head::read)?;
        rows.map(|r| Ok(HistoryEntry::from(&r?.record()?))).collect()
    }

    /// The whole record of one drill.
    pub fn get(&self, id: &str) -> Result<Option<DrillRecord>> {
        let conn = self.conn();
        let Some(head) = conn.query_row(&format!("SELECT {HEAD} FROM drills WHERE id = ?1"), [id], Head::read).optional()? else {
            return Ok(None);
        };
        let mut rec = head.record()?;
        let events: Vec<Event> = conn
            .prepare("SELECT data FROM events WHERE drill_id = ?1 ORDER BY t_ms, rowid")?
            .query_map([id], |r| r.get::<_, String>(0))?
            .map(|d| Ok(serde_json::from_str(&d?)?))
            .collect::<Result<_>>()
            .with_context(|| format!("reading the events of drill {id}"))?;
        let windows: Vec<Window> = conn
            .prepare("SELECT data FROM windows WHERE drill_id = ?1 ORDER BY start_ms")?
            .query_map([id], |r| r.get::<_, String>(0))?
            .map(|d| Ok(serde_json::from_str(&d?)?))
            .collect::<Result<_>>()
            .with_context(|| format!("reading the windows of drill {id}"))?;
        rec.events = events;
        rec.windows = windows;
        Ok(Some(rec))
    }
}

#[cfg(test)]
mod tests;
