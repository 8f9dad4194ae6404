//! The map of a drill: hosts as boxes (their interfaces, addresses and services), links
//! between neighbouring boxes, switches as a bus under their members' boxes. Drawn on a
//! character grid, so it is plain text for any terminal and for tests.

use drill_core::api::{HostInfo, ServiceInfo};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Columns between two boxes (where a link is drawn).
const GAP: usize = 5;
/// The widest a box's text may be.
const MAX_INNER: usize = 24;

/// A character grid with a style per cell.
struct Grid {
    rows: Vec<Vec<(char, Style)>>,
}

impl Grid {
    fn new() -> Grid {
        Grid { rows: Vec::new() }
    }

    fn put(&mut self, x: usize, y: usize, c: char, st: Style) {
        while self.rows.len() <= y {
            self.rows.push(Vec::new());
        }
        let row = &mut self.rows[y];
        while row.len() <= x {
            row.push((' ', Style::default()));
        }
        row[x] = (c, st);
    }

    fn get(&self, x: usize, y: usize) -> char {
        self.rows.get(y).and_then(|r| r.get(x)).map_or(' ', |c| c.0)
    }

    fn text(&mut self, x: usize, y: usize, s: &str, st: Style) {
        for (i, c) in s.chars().enumerate() {
            self.put(x + i, y, c, st);
        }
    }

    fn lines(self) -> Vec<Line<'static>> {
        self.rows
            .into_iter()
            .map(|row| {
                let mut spans: Vec<Span<'static>> = Vec::new();
                let mut cur = String::new();
                let mut st = Style::default();
                for (c, s) in row {
                    if s != st && !cur.is_empty() {
                        spans.push(Span::styled(std::mem::take(&mut cur), st));
                    }
                    st = s;
                    cur.push(c);
                }
                if !cur.is_empty() {
                    spans.push(Span::styled(cur, st));
                }
                Line::from(spans)
            })
            .collect()
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>()) }
}

/// One box: its lines of text and the row (within the box's text) of each interface.
struct HostBox<'a> {
    host: &'a HostInfo,
    lines: Vec<(String, Style)>,
    /// Row of the interface leading to the left and right neighbour.
    left_row: Option<usize>,
    right_row: Option<usize>,
    /// Switches this host is plugged into.
    switches: Vec<String>,
    inner: usize,
}

/// The order of the boxes: along the links (a chain reads client → router → api),
/// starting from an end, in the scenario's order otherwise.
fn order(hosts: &[HostInfo]) -> Vec<usize> {
    let is_host = |n: &str| hosts.iter().any(|h| h.name == n);
    let neigh = |i: usize| -> Vec<usize> { hosts[i].interfaces.iter().filter(|f| f.link != "switch" && is_host(&f.peer)).filter_map(|f| hosts.iter().position(|h| h.name == f.peer)).collect() };
    let mut seen = vec![false; hosts.len()];
    let mut out = Vec::new();
    while out.len() < hosts.len() {
        // An unplaced host with the fewest unplaced neighbours starts the next chain.
        let start = (0..hosts.len()).filter(|i| !seen[*i]).min_by_key(|i| neigh(*i).iter().filter(|n| !seen[**n]).count().min(2)).unwrap();
        let mut at = start;
        loop {
            seen[at] = true;
            out.push(at);
            match neigh(at).into_iter().find(|n| !seen[*n]) {
                Some(n) => at = n,
                None => break,
            }
        }
    }
    out
}

/// The map as lines of at most about `width` columns (boxes wrap to a new row of boxes).
pub fn render(hosts: &[HostInfo], services: &[ServiceInfo], width: usize) -> Vec<Line<'static>> {
    let (boxes, drawn_links) = host_boxes(hosts, services);
    let height = boxes.iter().map(|b| b.lines.len()).max().unwrap_or(0) + 2;

    // Rows of boxes.
    let mut g = Grid::new();
    let mut y0 = 0;
    let mut k = 0;
    let mut undrawn: Vec<String> = Vec::new();
    while k < boxes.len() {
        let mut x = 0;
        let first = k;
        let mut lefts: Vec<usize> = Vec::new();
        while k < boxes.len() {
            let w = boxes[k].inner + 4;
            if k > first && x + w > width {
                break;
            }
            lefts.push(x);
            x += w + GAP;
            k += 1;
        }
        let row = &boxes[first..k];
        draw_row(&mut g, row, &lefts, y0, height);
        if k < boxes.len() && boxes[k - 1].right_row.is_some() {
            let (a, b) = (boxes[k - 1].host, boxes[k].host);
            let f = a.interfaces.iter().find(|f| f.peer == b.name).map_or("?", |f| f.name.as_str());
            let fb = b.interfaces.iter().find(|f| f.peer == a.name).map_or("?", |f| f.name.as_str());
            undrawn.push(format!("{}:{f} ── {}:{fb}", a.name, b.name));
        }
        let bottom = y0 + height - 1;
        let buses = draw_switches(&mut g, row, &lefts, bottom);
        y0 = bottom + 1 + buses + 1;
    }
    undrawn.extend(undrawn_links(hosts, &drawn_links));
    let mut lines = g.lines();
    while lines.last().is_some_and(|l| l.width() == 0) {
        lines.pop();
    }
    if !undrawn.is_empty() {
        lines.push(Line::from(format!("links: {}", undrawn.join("   "))));
    }
    lines
}

/// One box per host in map order, and the links drawn between neighbours. Each box's
/// interface to its left neighbour sits level with the previous box's interface to it.
fn host_boxes<'a>(hosts: &'a [HostInfo], services: &[ServiceInfo]) -> (Vec<HostBox<'a>>, Vec<(String, String)>) {
    let name_st = Style::default().add_modifier(Modifier::BOLD).fg(Color::Cyan);
    let order = order(hosts);
    let mut boxes: Vec<HostBox> = Vec::new();
    let mut drawn_links: Vec<(String, String)> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let h = &hosts[i];
        let left = k.checked_sub(1).map(|p| hosts[order[p]].name.as_str());
        let right = order.get(k + 1).map(|n| hosts[*n].name.as_str());
        let mut lines: Vec<(String, Style)> = vec![(h.name.clone(), name_st)];
        let to = |f: &&drill_core::api::InterfaceInfo, n: Option<&str>| f.link != "switch" && Some(f.peer.as_str()) == n;
        let (mut left_row, mut right_row) = (None, None);
        if let Some(f) = h.interfaces.iter().find(|f| to(f, left)) {
            let want = boxes.last().and_then(|b| b.right_row).unwrap_or(1);
            while lines.len() < want {
                lines.push((String::new(), Style::default()));
            }
            left_row = Some(lines.len());
            lines.extend(iface_lines(f));
            drawn_links.push((h.name.clone(), f.peer.clone()));
        }
        if let Some(f) = h.interfaces.iter().find(|f| to(f, right)) {
            right_row = Some(lines.len());
            lines.extend(iface_lines(f));
            drawn_links.push((h.name.clone(), f.peer.clone()));
        }
        for f in h.interfaces.iter().filter(|f| !to(f, left) && !to(f, right)) {
            let mut l = iface_lines(f);
            if f.link != "switch" {
                // A link to a host that is not beside this box: say where it goes.
                if let Some(first) = l.first_mut() {
                    first.0.push_str(&format!(" → {}", f.peer));
                }
            }
            lines.extend(l);
        }
        for s in services.iter().filter(|s| s.host == h.name) {
            let ok = s.state == "running";
            let st = Style::default().fg(if ok { Color::Green } else { Color::Red });
            lines.push((format!("{} {}", s.name, s.state), st));
        }
        let mut switches: Vec<String> = Vec::new();
        for f in h.interfaces.iter().filter(|f| f.link == "switch") {
            if !switches.contains(&f.peer) {
                switches.push(f.peer.clone());
            }
        }
        let inner = lines.iter().map(|l| l.0.chars().count()).max().unwrap_or(0).clamp(6, MAX_INNER);
        for l in &mut lines {
            l.0 = cut(&l.0, inner);
        }
        boxes.push(HostBox { host: h, lines, left_row, right_row, switches, inner });
    }
    (boxes, drawn_links)
}

/// An interface's lines in a box: its name with its first address, then one line per
/// further address.
fn iface_lines(f: &drill_core::api::InterfaceInfo) -> Vec<(String, Style)> {
    let mut v = Vec::new();
    let tag = if f.link == "vxlan" { " (vxlan)" } else { "" };
    if f.addresses.is_empty() {
        v.push((format!("{}{tag}", f.name), Style::default()));
    }
    for (j, a) in f.addresses.iter().enumerate() {
        let head = if j == 0 { f.name.clone() } else { " ".repeat(f.name.chars().count()) };
        v.push((format!("{head} {a}{}", if j == 0 { tag } else { "" }), Style::default()));
    }
    v
}

/// A row of boxes (left edges `lefts`, top `y0`) and the links between neighbours.
fn draw_row(g: &mut Grid, row: &[HostBox], lefts: &[usize], y0: usize, height: usize) {
    let line_st = Style::default().fg(Color::Yellow);
    for (b, &bx) in row.iter().zip(lefts) {
        let w = b.inner + 4;
        let bottom = y0 + height - 1;
        for dx in 1..w - 1 {
            g.put(bx + dx, y0, '─', Style::default());
            g.put(bx + dx, bottom, '─', Style::default());
        }
        for dy in 1..height - 1 {
            g.put(bx, y0 + dy, '│', Style::default());
            g.put(bx + w - 1, y0 + dy, '│', Style::default());
        }
        g.put(bx, y0, '┌', Style::default());
        g.put(bx + w - 1, y0, '┐', Style::default());
        g.put(bx, bottom, '└', Style::default());
        g.put(bx + w - 1, bottom, '┘', Style::default());
        for (j, (t, st)) in b.lines.iter().enumerate() {
            g.text(bx + 2, y0 + 1 + j, t, *st);
        }
    }
    for j in 1..row.len() {
        let (a, b) = (&row[j - 1], &row[j]);
        let (Some(r), Some(_)) = (a.right_row, b.left_row) else { continue };
        let y = y0 + 1 + r;
        let ax = lefts[j - 1] + a.inner + 3;
        let tunnel = a.host.interfaces.iter().any(|f| f.peer == b.host.name && f.link == "vxlan");
        g.put(ax, y, '├', Style::default());
        for dx in 1..=GAP {
            g.put(ax + dx, y, if tunnel { '╌' } else { '─' }, line_st);
        }
        g.put(lefts[j], y, '┤', Style::default());
    }
}

/// Switches: a bus under the boxes of their members in this row, one line each below
/// `bottom`. Returns how many buses were drawn.
fn draw_switches(g: &mut Grid, row: &[HostBox], lefts: &[usize], bottom: usize) -> usize {
    let line_st = Style::default().fg(Color::Yellow);
    let mut sw: Vec<String> = Vec::new();
    for b in row {
        for s in &b.switches {
            if !sw.contains(s) {
                sw.push(s.clone());
            }
        }
    }
    let cols = |s: &str| -> Vec<usize> { row.iter().zip(lefts).filter_map(|(b, &bx)| b.switches.iter().position(|x| x == s).map(|p| bx + 2 + 2 * p)).collect() };
    for (n, s) in sw.iter().enumerate() {
        let y = bottom + 1 + n;
        let c = cols(s);
        let (lo, hi) = (c[0], *c.last().unwrap());
        for &x in &c {
            g.put(x, bottom, '┬', Style::default());
            // Through the buses drawn above.
            for yy in bottom + 1..y {
                let crossing = g.get(x, yy) == '─';
                g.put(x, yy, if crossing { '┼' } else { '│' }, line_st);
            }
        }
        for x in lo..=hi {
            let ch = if c.contains(&x) {
                if lo == hi || x == lo {
                    '└'
                } else if x == hi {
                    '┘'
                } else {
                    '┴'
                }
            } else {
                '─'
            };
            g.put(x, y, ch, line_st);
        }
        let label_x = if lo == hi { lo + 1 } else { hi + 1 };
        if lo == hi {
            g.text(lo + 1, y, "──", line_st);
        }
        g.text(label_x + if lo == hi { 2 } else { 0 }, y, &format!(" switch {s}"), Style::default().add_modifier(Modifier::BOLD));
    }
    sw.len()
}

/// Links the rows could not draw (hosts not side by side), once each.
fn undrawn_links(hosts: &[HostInfo], drawn: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for h in hosts {
        for f in h.interfaces.iter().filter(|f| f.link != "switch") {
            let is_drawn = drawn.iter().any(|(a, b)| (a == &h.name && b == &f.peer) || (a == &f.peer && b == &h.name));
            if !is_drawn && h.name < f.peer {
                let fb = hosts.iter().find(|x| x.name == f.peer).and_then(|x| x.interfaces.iter().find(|i| i.peer == h.name)).map_or("?", |i| i.name.as_str());
                out.push(format!("{}:{} ── {}:{fb}", h.name, f.name, f.peer));
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use drill_core::api::InterfaceInfo;

    pub fn iface(name: &str, addr: &str, peer: &str, link: &str) -> InterfaceInfo {
        InterfaceInfo { name: name.into(), addresses: vec![addr.into()], peer: peer.into(), link: link.into() }
    }

    pub fn host(name: &str, interfaces: Vec<InterfaceInfo>) -> HostInfo {
        HostInfo { name: name.into(), netns: format!("drill-abc123-{name}"), pid: 1, addresses: Vec::new(), interfaces }
    }

    fn text(lines: &[Line]) -> String {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect::<String>().trim_end().to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_chain_reads_left_to_right_with_its_links_level() {
        // Given in an order that is not the chain's.
        let hosts = vec![
            host("router", vec![iface("lan", "10.77.1.1/24", "client", "veth"), iface("wan", "10.77.2.1/24", "api", "veth")]),
            host("api", vec![iface("eth0", "10.77.2.2/24", "router", "veth")]),
            host("client", vec![iface("eth0", "10.77.1.2/24", "router", "veth")]),
        ];
        let svc = vec![ServiceInfo { host: "api".into(), name: "httpd".into(), kind: "httpd".into(), state: "running".into(), pid: Some(9), restarts: 0, config_path: String::new() }];
        let t = text(&render(&hosts, &svc, 120));
        // It starts from an end (api, the first given) and follows the links.
        let want = "\
┌───────────────────┐     ┌──────────────────┐     ┌───────────────────┐
│ api               │     │ router           │     │ client            │
│ eth0 10.77.2.2/24 ├─────┤ wan 10.77.2.1/24 │     │                   │
│ httpd running     │     │ lan 10.77.1.1/24 ├─────┤ eth0 10.77.1.2/24 │
└───────────────────┘     └──────────────────┘     └───────────────────┘";
        assert_eq!(t, want, "\n{t}");
    }

    #[test]
    fn a_switch_is_a_bus_under_its_members() {
        let hosts = vec![
            host("node", vec![iface("eth0", "10.77.0.2/24", "cluster", "switch")]),
            host("gw", vec![iface("eth0", "10.77.0.1/24", "cluster", "switch")]),
            host("pod-a", vec![iface("eth0", "10.77.0.11/24", "cluster", "switch")]),
        ];
        let t = text(&render(&hosts, &[], 120));
        let want = "\
┌───────────────────┐     ┌───────────────────┐     ┌────────────────────┐
│ node              │     │ gw                │     │ pod-a              │
│ eth0 10.77.0.2/24 │     │ eth0 10.77.0.1/24 │     │ eth0 10.77.0.11/24 │
└─┬─────────────────┘     └─┬─────────────────┘     └─┬──────────────────┘
  └─────────────────────────┴─────────────────────────┘ switch cluster";
        assert_eq!(t, want, "\n{t}");
    }

    #[test]
    fn boxes_wrap_and_say_which_links_they_could_not_draw() {
        let hosts = vec![host("client", vec![iface("eth0", "10.77.1.2/24", "router", "vxlan")]), host("router", vec![iface("lan", "10.77.1.1/24", "client", "vxlan")])];
        let t = text(&render(&hosts, &[], 40));
        assert!(t.contains("links: client:eth0 ── router:lan"), "{t}");
        assert_eq!(t.matches('┌').count(), 2, "{t}");
        let wide = text(&render(&hosts, &[], 120));
        assert!(wide.contains("╌╌╌╌╌"), "a tunnel is dashed: {wide}");
        assert!(!wide.contains("links:"), "{wide}");
    }
}
