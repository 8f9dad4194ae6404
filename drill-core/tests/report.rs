//! `drill report` in its three formats on a realistic incident (tests/report_fixture),
//! escaping of learner input, a large record, and docs/report.md covering the JSON.

mod report_fixture;

use drill_core::record::*;
use drill_core::report::{self, Format, SECTIONS};
use report_fixture::{cmd, full, incident};

const DELETE: &str = "nft delete rule inet filter input handle 4";

#[test]
fn the_fixture_has_the_engine_s_figures() {
    let rec = incident();
    assert_eq!(rec.figures.mtta_ms, Some(40_000));
    assert_eq!(rec.figures.mttm_ms, Some(150_000));
    assert_eq!(rec.figures.mttr_ms, Some(268_000));
    assert_eq!(rec.figures.failed_requests, 144);
    assert!(rec.score.is_some());
}

#[test]
fn resolution_credits_the_delete_not_the_looking() {
    let steps = report::resolution(&incident());
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0].line, DELETE);
    assert_eq!(steps[0].host, "api");
    assert_eq!(steps[0].followed_by, "api-reachable");
    assert_eq!(steps[0].flips, ["api-reachable", "http-ok", "no-drops", "mitigated"]);
    assert!(!steps[0].read_only);
}

#[test]
fn resolution_falls_back_to_the_command_just_before() {
    let mut rec = incident();
    rec.events.retain(|e| !matches!(&e.kind, EventKind::Command(c) if c.argv[0] == "nft" && c.argv[1] == "delete"));
    let steps = report::resolution(&rec);
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].line, "nft -a list ruleset");
    assert!(steps[0].read_only);
}

#[test]
fn markdown_has_every_section_and_the_numbers() {
    let md = report::render(&incident(), Format::Md);
    for (_, h) in SECTIONS {
        assert!(md.contains(&format!("\n## {h}\n")), "## {h} in\n{md}");
    }
    for needle in [
        "# Postmortem: The API stopped answering its clients",
        "`core/firewall-drop`",
        "| Mode | incident |",
        "| Outcome | **resolved** |",
        "| Start | 2026-12-01 23:00:00 UTC |",
        "| End | 2026-12-01 23:04:30 UTC |",
        "**Score: ",
        "| resolved | 40 | 40 |",
        "- Failed requests: 144",
        "- Error ratio: 96.0% (144 / 150)",
        "- Paged at 0:00.0 (SEV2): api: HTTP checks from client time out (5/5 failing)",
        "- Acknowledged at 0:40.0 (MTTA 0:40)",
        "| 0:55.0 | client | command | `curl -v -m 3 http://api:8080/` cwd `/root`, uid 1000, exit code 28 |",
        "| 1:50.0 |  | submit failed | submit: failed api-reachable, http-ok |",
        "| 2:20.0 | api | `nft delete rule inet filter input handle 4` | api-reachable, http-ok, no-drops, mitigated |",
        "| MTTA (acknowledged) | 0:40 |",
        "| MTTM (mitigated: the service level recovered) | 2:30 |",
        "| MTTR (resolved: the passing submit) | 4:28 |",
        "1 service command(s)",
        "2. Delete the drop rule: `nft delete rule inet filter input handle 4`\n",
        "### What went wrong",
    ] {
        assert!(md.contains(needle), "`{needle}` in\n{md}");
    }
    assert_eq!(md.matches("\n|  |  |  |  |").count(), 3, "three empty action items");
    assert!(!md.contains("httpd -f"), "service commands are not listed");
}

#[test]
fn markdown_hides_the_cause_while_running_and_says_when_nothing_was_measured() {
    let mut rec = incident();
    rec.outcome = Outcome::Running;
    rec.ended_unix_ms = None;
    rec.windows.clear();
    rec.figures = drill_core::incident::figures(&rec, 30_000);
    let md = report::render(&rec, Format::Md);
    assert!(md.contains("*Revealed when the drill is over.*"));
    assert!(!md.contains("dropped TCP to port 8080"));
    assert!(md.contains("- Error ratio: no requests measured"));
    assert!(md.contains("| End | still running |"));
    let h = report::render(&rec, Format::Html);
    assert!(h.contains("Revealed when the drill is over."));
    assert!(!h.contains("dropped TCP to port 8080"));
    let mut d = incident();
    d.mode = Mode::Drill;
    d.figures.mtta_ms = None;
    assert!(report::render(&d, Format::Md).contains("| MTTA (acknowledged) | — |"));
}

#[test]
fn markdown_escapes_tables_and_code_spans() {
    let mut rec = incident();
    rec.title = "a|b *c* <d>".into();
    rec.events.push(Event::new(200_000, cmd("api", &["echo", "a`b``c|d", "<x>"], Some(Exit::Code(0)), false)));
    rec.events.push(Event::new(201_000, cmd("api", &["echo", "multi\nline"], Some(Exit::Code(0)), false)));
    rec.events.push(Event::new(202_000, EventKind::Collateral { what: "ran `x|y` and *z*".into(), host: "api".into() }));
    let md = report::render(&rec, Format::Md);
    assert!(md.contains("| 3:22.0 | api | collateral | ran `x\\|y` and \\*z\\* |"), "{md}");
    assert!(md.contains("# Postmortem: a\\|b \\*c\\* \\<d\\>\n"), "{md}");
    assert!(md.contains("| 3:20.0 | api | command | ``` echo a`b``c\\|d <x> ``` cwd"), "{md}");
    assert!(md.contains("`echo multi line`"));
    // Every table row keeps its column count (no unescaped `|` inside a cell).
    for l in md.lines().filter(|l| l.starts_with("| 3:20.0")) {
        let cells = l.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 5, "{l}");
    }
}

#[test]
fn json_is_the_record_and_the_report() {
    let rec = incident();
    let v: serde_json::Value = serde_json::from_str(&report::render(&rec, Format::Json)).unwrap();
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    let back: DrillRecord = serde_json::from_value(v["record"].clone()).unwrap();
    assert_eq!(back, rec);
    let r = &v["report"]["resolution"];
    assert_eq!(r.as_array().unwrap().len(), 1);
    assert_eq!(r[0]["line"], DELETE);
    assert_eq!(r[0]["host"], "api");
    assert_eq!(r[0]["t_ms"], 140_000);
    assert_eq!(r[0]["followed_by"], "api-reachable");
    let ids: Vec<&str> = v["report"]["sections"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, SECTIONS.iter().map(|(i, _)| *i).collect::<Vec<_>>());
    let fig = v["report"]["sections"].as_array().unwrap().iter().find(|s| s["id"] == "figures").unwrap();
    assert!(fig["markdown"].as_str().unwrap().contains("| MTTA (acknowledged) | 0:40 |"));
}

#[test]
fn html_has_every_section_a_marker_per_event_and_no_external_resource() {
    let rec = incident();
    let h = report::render(&rec, Format::Html);
    assert!(h.starts_with("<!DOCTYPE html>"));
    for (id, head) in SECTIONS {
        assert!(h.contains(&format!(r#"<section id="{id}"><h2>{}</h2>"#, head)), "{id}");
    }
    assert_eq!(h.matches("data-event=\"").count(), rec.events.len());
    for i in 0..rec.events.len() {
        assert_eq!(h.matches(&format!("data-event=\"{i}\"")).count(), 1, "marker {i}");
    }
    assert!(h.contains(r#"<svg id="timeline""#) && h.contains(r#"<svg id="plot-latency""#) && h.contains(r#"<svg id="plot-requests""#) && h.contains(r#"<svg id="plot-counters""#));
    assert!(h.contains("drops:NETFILTER_DROP"));
    assert!(h.contains("time since the page (m:ss)") && h.contains("latency (ms)"));
    assert!(h.contains("MTTA · acknowledged"));
    assert!(h.contains(&format!("<code>{DELETE}</code>")));
    assert!(h.contains("<li>On api, list the ruleset with handles: <code>nft -a list ruleset</code></li>"), "scenario prose keeps its code spans");
    for bad in ["<script", "src=", "href=", "url(", "@import", "xmlns"] {
        assert!(!h.contains(bad), "{bad}");
    }
    for (i, _) in h.match_indices("http://").chain(h.match_indices("https://")) {
        assert!(h[i..].starts_with("http://api:8080/"), "only the learner's curl names a URL: {}", &h[i..i + 40]);
    }
}

#[test]
fn html_escapes_learner_input() {
    let mut rec = incident();
    rec.events.push(Event::new(200_000, cmd("api\"><b>", &["<script>alert(1)</script>", "&amp;", "'q'"], Some(Exit::Code(0)), false)));
    rec.title = "<img onerror=x>".into();
    let h = report::render(&rec, Format::Html);
    assert!(!h.contains("<script"));
    assert!(!h.contains("<img"));
    assert!(!h.contains("\"><b>"));
    assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp; &#39;q&#39;"));
    assert!(h.contains("&lt;img onerror=x&gt;"));
}

#[test]
fn a_record_of_5000_commands_renders_bounded() {
    let mut rec = incident();
    for i in 0..5000u64 {
        let host = if i % 2 == 0 { "client" } else { "api" };
        rec.events.push(Event::new(150_000 + i * 20, cmd(host, &["ss", "-tn", &format!("{i}")], Some(Exit::Code((i % 3) as i32)), i % 5 == 0)));
    }
    rec.sort_events();
    let t0 = std::time::Instant::now();
    let h = report::render(&rec, Format::Html);
    eprintln!("5000 commands: {} bytes of HTML in {:?}", h.len(), t0.elapsed());
    if let Ok(p) = std::env::var("DRILL_REPORT_BIG_HTML") {
        std::fs::write(p, &h).unwrap();
    }
    assert_eq!(h.matches("data-event=\"").count(), drill_core::report::MAX_MARKERS);
    let drawn_other = incident().events.len();
    assert!(h.contains(&format!("{} more commands not drawn", rec.events.len() - drill_core::report::MAX_MARKERS)), "{drawn_other}");
    let md = report::render(&rec, Format::Md);
    assert!(md.contains("1001 service command(s)"));
    let j = report::render(&rec, Format::Json);
    assert!(j.len() > 1_000_000);
}

/// Every key of the JSON of a full record (objects, recursively; the free-form map of
/// probe counters excepted) is named in docs/report.md as `key`.
#[test]
fn every_json_key_is_in_docs_report_md() {
    let doc = include_str!("../../docs/report.md");
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    if k != "counters" {
                        keys(x, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let rec = full();
    let v: serde_json::Value = serde_json::from_str(&report::render(&rec, Format::Json)).unwrap();
    let mut ks = std::collections::BTreeSet::new();
    keys(&v, &mut ks);
    assert!(ks.len() > 50, "{ks:?}");
    let missing: Vec<&String> = ks.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/report.md does not name these JSON keys as `key`: {missing:?}");
    // And every event type and exit form has a name there too.
    for t in ["fault-injected", "paged", "ack", "command", "svc", "hint", "submit", "check-flip", "mitigated", "collateral", "solve", "time-up", "ended", "code", "signal"] {
        assert!(doc.contains(&format!("`{t}`")), "`{t}` in docs/report.md");
    }
    for f in ["md", "html", "json"] {
        assert!(doc.contains(&format!("`{f}`")));
    }
    assert!(doc.contains("more commands not drawn") && doc.contains("schema_version") && doc.contains("bump"));
}
