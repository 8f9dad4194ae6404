//! `svc` inside a host: status, start, stop, restart and logs of its services,
//! through the init's control socket.

use super::*;

/// `svc`: manage the services of the drill host you are in.
pub fn svc_main(args: Vec<String>) -> i32 {
    let usage = "usage: svc status | svc start|stop|restart|reload SERVICE | svc logs SERVICE [-n LINES] [-f]";
    let sock = Path::new(INIT_SOCK);
    if !sock.exists() {
        eprintln!("svc: this is not a drill host ({INIT_SOCK} is missing). Enter one with `drill shell HOST`.");
        return 2;
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let req = match args.as_slice() {
        [] | ["status"] => Request::Status,
        ["start", s] => Request::Start { service: s.to_string() },
        ["stop", s] => Request::Stop { service: s.to_string() },
        ["restart", s] => Request::Restart { service: s.to_string() },
        ["reload", s] => Request::Reload { service: s.to_string() },
        ["logs", s, rest @ ..] => return svc_logs(s, rest),
        ["-h" | "--help" | "help"] => {
            println!("{usage}");
            return 0;
        }
        _ => {
            eprintln!("{usage}");
            return 2;
        }
    };
    match request(sock, &req, Duration::from_secs(15)) {
        Ok(resp) => {
            if !resp.message.is_empty() {
                if resp.ok {
                    println!("{}", resp.message);
                } else {
                    eprintln!("svc: {}", resp.message);
                }
            }
            if matches!(req, Request::Status) {
                println!("{:<12} {:<8} {:<22} {:<8} {:<9} CONFIG", "SERVICE", "KIND", "STATE", "PID", "RESTARTS");
                for s in &resp.services {
                    let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                    println!("{:<12} {:<8} {:<22} {:<8} {:<9} {}", s.name, s.kind, s.state, pid, s.restarts, s.config_path);
                }
            }
            if resp.ok { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("svc: {e:#}");
            2
        }
    }
}

fn svc_logs(service: &str, rest: &[&str]) -> i32 {
    // A built-in workload's log, or a packaged daemon's own (/var/log/nginx/error.log).
    let mut path = drill_core::workload::log_path(service);
    let own = format!("/var/log/{service}/error.log");
    if !Path::new(&path).exists() && Path::new(&own).exists() {
        path = own;
    }
    let mut cmd = std::process::Command::new("tail");
    let mut n = "50".to_string();
    let mut follow = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "-f" => follow = true,
            "-n" => n = it.next().map_or(n.clone(), |v| v.to_string()),
            _ => {}
        }
    }
    cmd.args(["-n", &n]);
    if follow {
        cmd.arg("-f");
    }
    if !Path::new(&path).exists() {
        eprintln!("svc: no log for `{service}` ({path} does not exist); `svc status` lists the services");
        return 1;
    }
    let err = cmd.arg(&path).exec();
    eprintln!("svc: running tail: {err}");
    2
}
