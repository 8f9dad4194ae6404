//! The HTML report in a real browser: headless Chromium loads the fixture's file offline,
//! its DOM has the timeline with one marker per event and every section, and a screenshot
//! of it is a real picture. Chromium is a test dependency (`cargo xtask setup` installs it);
//! `DRILL_SKIP_CHROMIUM=1` skips this test, saying so.

mod report_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use drill_core::report::{self, Format, SECTIONS};

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn run(bin: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--hide-scrollbars"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    assert!(out.status.success(), "{} {args:?}: {}\n{}", bin.display(), out.status, String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_html_report_renders_in_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("DRILL_SKIP_CHROMIUM").as_deref() == Ok("1") {
            eprintln!("report_chromium: skipped (DRILL_SKIP_CHROMIUM=1): no chromium binary in PATH");
            return;
        }
        panic!(
            "no chromium in PATH: install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium` (or `cargo xtask setup`), or set DRILL_SKIP_CHROMIUM=1 to skip this test"
        );
    };
    let rec = report_fixture::incident();
    let dir = std::env::temp_dir().join(format!("drill-report-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    std::fs::write(&html, report::render(&rec, Format::Html)).unwrap();
    let url = format!("file://{}", html.display());
    // A profile of its own: no state shared with another run.
    let profile = format!("--user-data-dir={}", dir.join("profile").display());

    let dom = String::from_utf8(run(&bin, &[&profile, "--dump-dom", &url]).stdout).unwrap();
    assert!(dom.contains("<svg id=\"timeline\""), "the DOM has the timeline: {}", &dom[..dom.len().min(2000)]);
    let markers = dom.matches("data-event=\"").count();
    assert_eq!(markers, rec.events.len(), "one marker per event");
    for i in 0..rec.events.len() {
        assert_eq!(dom.matches(&format!("data-event=\"{i}\"")).count(), 1, "marker of event {i}");
    }
    for (id, h) in SECTIONS {
        assert!(dom.contains(&format!("<section id=\"{id}\"><h2>{h}</h2>")), "section {h}");
    }

    let png = std::env::var("DRILL_REPORT_PNG").map(PathBuf::from).unwrap_or_else(|_| dir.join("report.png"));
    run(&bin, &[&profile, &format!("--screenshot={}", png.display()), "--window-size=1400,2200", &url]);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "the screenshot {} is {size} bytes", png.display());
    eprintln!("report_chromium: screenshot {} ({size} bytes)", png.display());
    if std::env::var("DRILL_REPORT_PNG").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
