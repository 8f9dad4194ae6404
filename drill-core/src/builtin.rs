//! The built-in scenario pack (`scenarios/`), embedded in the binaries.

/// (file name, text) of every built-in scenario.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("scenarios/close-wait-leak.toml", include_str!("../../scenarios/close-wait-leak.toml")),
    ("scenarios/firewall-drop.toml", include_str!("../../scenarios/firewall-drop.toml")),
    ("scenarios/bind-localhost.toml", include_str!("../../scenarios/bind-localhost.toml")),
    ("scenarios/missing-route.toml", include_str!("../../scenarios/missing-route.toml")),
    ("scenarios/packet-loss.toml", include_str!("../../scenarios/packet-loss.toml")),
    ("scenarios/port-exhaustion.toml", include_str!("../../scenarios/port-exhaustion.toml")),
    ("scenarios/nagle-delayed-ack.toml", include_str!("../../scenarios/nagle-delayed-ack.toml")),
    ("scenarios/wan-latency-504.toml", include_str!("../../scenarios/wan-latency-504.toml")),
    ("scenarios/keepalive-502.toml", include_str!("../../scenarios/keepalive-502.toml")),
    ("scenarios/mtu-blackhole.toml", include_str!("../../scenarios/mtu-blackhole.toml")),
    ("scenarios/tls-expired.toml", include_str!("../../scenarios/tls-expired.toml")),
];

/// Every built-in scenario, validated once per process (a broken one is a build defect
/// the test below catches).
pub fn scenarios() -> Vec<crate::scenario::Scenario> {
    static PARSED: std::sync::OnceLock<Vec<crate::scenario::Scenario>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| SCENARIOS.iter().filter_map(|(f, t)| crate::scenario::parse(f, t).ok()).collect()).clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_scenario_validates() {
        for (file, text) in super::SCENARIOS {
            if let Err(e) = crate::scenario::parse(file, text) {
                panic!("{e}");
            }
        }
    }
}
