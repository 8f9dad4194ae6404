//! The built-in scenario pack, embedded in the binary.

/// (file name, text) of every built-in scenario.
pub const SCENARIOS: &[(&str, &str)] = &[("scenarios/close-wait-leak.toml", include_str!("../../scenarios/close-wait-leak.toml"))];

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_scenario_validates() {
        for (file, text) in super::SCENARIOS {
            if let Err(e) = drill_core::scenario::parse(file, text) {
                panic!("{e}");
            }
        }
    }
}
