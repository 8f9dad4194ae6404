//! Progress on a terminal (indicatif): a spinner while a drill's topology comes up, the
//! bar of `drill pack test`. Only when stderr is a terminal and CI is not set to true;
//! nothing otherwise (pipes, logs and CI get the plain lines they had).

use std::future::Future;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner shows only for waits longer than this.
pub const SPINNER_AFTER: Duration = Duration::from_millis(300);

/// Whether progress may be drawn: stderr is a terminal and `CI` is not true.
pub fn enabled() -> bool {
    allowed(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var("CI").ok().as_deref())
}

/// [`enabled`] of its inputs: a terminal, and CI unset, empty, `0` or `false`.
pub fn allowed(tty: bool, ci: Option<&str>) -> bool {
    tty && ci.is_none_or(|v| v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// The style of a spinner: the frame, the message, the time so far.
pub fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner()).tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

/// Awaits `fut`; if it takes longer than [`SPINNER_AFTER`] and progress is
/// [`enabled`], a spinner saying `msg` turns on stderr until it ends (then is cleared).
pub async fn spin<F: Future>(msg: &str, fut: F) -> F::Output {
    if !enabled() {
        return fut.await;
    }
    spin_on(ProgressDrawTarget::stderr(), msg, SPINNER_AFTER, fut).await
}

/// [`spin`] onto `target` after `after` (tests draw into a hidden target).
pub async fn spin_on<F: Future>(target: ProgressDrawTarget, msg: &str, after: Duration, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    tokio::select! {
        r = &mut fut => return r,
        _ = tokio::time::sleep(after) => {}
    }
    let pb = ProgressBar::with_draw_target(None, target);
    pb.set_style(spinner_style());
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    let r = fut.await;
    pb.finish_and_clear();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_on_a_terminal_and_not_under_ci() {
        assert!(allowed(true, None));
        assert!(allowed(true, Some("false")));
        assert!(allowed(true, Some("")));
        assert!(!allowed(true, Some("true")));
        assert!(!allowed(true, Some("1")));
        assert!(!allowed(false, None));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_quick_wait_draws_nothing_and_a_slow_one_returns_its_value() {
        assert_eq!(spin_on(ProgressDrawTarget::hidden(), "quick", Duration::from_millis(300), async { 7 }).await, 7);
        let slow = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            8
        };
        assert_eq!(spin_on(ProgressDrawTarget::hidden(), "slow", Duration::from_millis(10), slow).await, 8);
    }
}
