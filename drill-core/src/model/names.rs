//! Names of things in a scenario: ids, hosts, switches, services.

/// Longest host name: keeps `drill-<id>-<host>` readable and the hostname legal.
pub const MAX_HOST_NAME: usize = 20;
/// Longest scenario id.
pub const MAX_ID: usize = 40;

/// Lowercase letters, digits and '-', starting with a letter, not ending with '-'.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase()) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !s.ends_with('-')
}
