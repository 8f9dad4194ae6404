//! The nginx drills from the outside: the real nginx in a drill host, seen with the
//! learner's tools (curl, openssl s_client, ps, the host's nginx logs) from the
//! machine through `ip netns exec`, fixed as an engineer would (edit nginx.conf, `nginx
//! -t`, `svc reload nginx`), healed, stopped, nothing left.

mod common;

use std::path::PathBuf;

use common::*;

fn ns(id: &str, host: &str) -> String {
    format!("drill-{id}-{host}")
}

/// A file of a host's /etc as the machine sees it (the overlay's upper layer).
fn etc(d: &TestDaemon, id: &str, host: &str, rel: &str) -> PathBuf {
    d.state.join("drills").join(id).join("hosts").join(host).join("etc-upper").join(rel)
}

/// A host's log file (under its /var/log).
fn log(d: &TestDaemon, id: &str, host: &str, rel: &str) -> String {
    host_file(d, id, host, &format!("/var/log/{rel}"))
}

/// Runs a shell line inside a host (its mount namespace: its /etc, its svc).
fn exec(d: &TestDaemon, id: &str, host: &str, cmd: &str) -> String {
    let out = d.drill(&["exec", "--drill", id, host, "--", "sh", "-c", cmd]);
    assert!(out.status.success(), "{host}: {cmd}: {} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn wan_latency_504_on_nginx_is_fixed_by_proxy_read_timeout_and_a_reload() {
    if !privileged_or_skip("wan_latency_504_on_nginx_is_fixed_by_proxy_read_timeout_and_a_reload") {
        return;
    }
    let d = TestDaemon::start("ngx504");
    let id = d.start_scenario("wan-latency-504");
    let curl = || in_ns(&ns(&id, "client"), "curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' http://10.77.0.2/");
    // 504 after a connect (one 300 ms round trip) plus the 250 ms read timeout.
    let r = curl();
    let (code, secs) = r.split_once(' ').unwrap();
    assert_eq!(code, "504", "{r}");
    let secs: f64 = secs.parse().unwrap();
    assert!((0.5..1.0).contains(&secs), "504 after {secs} s");
    assert!(log(&d, &id, "lb", "nginx/error.log").contains("upstream timed out (110: Connection timed out) while reading response header from upstream"));
    let ps = exec(&d, &id, "lb", "ps -eo args");
    assert!(ps.contains("nginx: master process") && ps.contains("nginx: worker process"), "{ps}");
    assert!(ps.lines().filter(|l| l.starts_with("nginx")).all(|l| !l.contains("drill")), "{ps}");
    let conf = std::fs::read_to_string(etc(&d, &id, "lb", "nginx/nginx.conf")).unwrap();
    assert!(conf.contains("proxy_read_timeout 250ms;") && !conf.to_lowercase().contains("drill"), "{conf}");

    // The fix: the directive, tested, applied with a reload (same master process).
    let master = exec(&d, &id, "lb", "cat /run/nginx.pid");
    exec(&d, &id, "lb", "sed -i 's/proxy_read_timeout .*;/proxy_read_timeout 2s;/' /etc/nginx/nginx.conf && nginx -t 2>&1 && svc reload nginx");
    assert_eq!(exec(&d, &id, "lb", "cat /run/nginx.pid"), master, "a reload keeps the master");
    let r = curl();
    assert!(r.starts_with("200 "), "{r}");
    // A broken edit is refused by `svc reload` and nginx keeps serving.
    let out = d.drill(&["exec", "--drill", &id, "lb", "--", "sh", "-c", "echo 'proxy_read_timeout' >> /etc/nginx/nginx.conf; svc reload nginx"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("test failed"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(curl().starts_with("200 "));
    d.stop_clean(&id);
}

#[test]
fn tls_incomplete_chain_shows_one_certificate_until_the_full_chain_is_served() {
    if !privileged_or_skip("tls_incomplete_chain_shows_one_certificate_until_the_full_chain_is_served") {
        return;
    }
    let d = TestDaemon::start("ngxchain");
    let id = d.start_scenario("tls-incomplete-chain");
    // The client trusts only the root: the drill's CA, as the client host has it.
    let ca = etc(&d, &id, "client", "ssl/internal/ca.pem");
    let client = ns(&id, "client");
    let curl = || in_ns(&client, &format!("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} --resolve shop.example:443:10.77.0.2 https://shop.example/; echo \" rc=$?\"", ca.display()));
    let sent = || in_ns(&client, &format!("openssl s_client -connect 10.77.0.2:443 -servername shop.example -CAfile {} -showcerts </dev/null 2>&1", ca.display()));
    let r = curl();
    assert!(r.contains("rc=60"), "curl: unable to get local issuer certificate (60): {r}");
    let s = sent();
    assert_eq!(s.matches("-----BEGIN CERTIFICATE-----").count(), 1, "{s}");
    assert!(s.contains("unable to get local issuer certificate") || s.contains("unable to verify the first certificate"), "{s}");

    exec(&d, &id, "lb", "sed -i 's|shop.example/cert.pem|shop.example/fullchain.pem|' /etc/nginx/nginx.conf && svc reload nginx");
    assert!(curl().starts_with("200"), "{}", curl());
    let s = sent();
    assert_eq!(s.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{s}");
    assert!(s.contains("Verify return code: 0 (ok)"), "{s}");
    d.stop_clean(&id);
}

#[test]
fn sni_mismatch_serves_the_default_certificate_until_the_server_block_is_back() {
    if !privileged_or_skip("sni_mismatch_serves_the_default_certificate_until_the_server_block_is_back") {
        return;
    }
    let d = TestDaemon::start("ngxsni");
    let id = d.start_scenario("sni-mismatch");
    let client = ns(&id, "client");
    let subject = |name: &str| in_ns(&client, &format!("openssl s_client -connect 10.77.0.2:443 -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -subject"));
    assert!(subject("shop.example").contains("CN = www.example"), "{}", subject("shop.example"));
    assert!(subject("www.example").contains("CN = www.example"));
    // curl inside the client host: the name resolves through its own /etc/hosts.
    let out = d.drill(&["exec", "--drill", &id, "client", "--", "curl", "-sS", "https://shop.example/"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no alternative certificate subject name matches target host name 'shop.example'"), "{}", String::from_utf8_lossy(&out.stderr));

    let block = "    server {\n        listen 443 ssl;\n        server_name shop.example;\n        ssl_certificate /etc/ssl/internal/shop.example/fullchain.pem;\n        ssl_certificate_key /etc/ssl/internal/shop.example/privkey.pem;\n        location / {\n            proxy_pass http://web;\n        }\n    }\n}\n";
    exec(&d, &id, "lb", &format!("sed -i '$d' /etc/nginx/nginx.conf && printf '%s' '{block}' >> /etc/nginx/nginx.conf && nginx -t 2>&1 && svc reload nginx"));
    assert!(subject("shop.example").contains("CN = shop.example"), "{}", subject("shop.example"));
    assert!(subject("www.example").contains("CN = www.example"));
    assert_eq!(exec(&d, &id, "client", "curl -sS https://shop.example/"), "ok\n");
    d.stop_clean(&id);
}
