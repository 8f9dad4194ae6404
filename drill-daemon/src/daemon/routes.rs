//! The route table of the API.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::Daemon;
use super::drills::*;
use super::error::Api;
use super::machine::*;
use super::records::*;

pub fn router(d: Arc<Daemon>) -> Router {
    let r = Router::new()
        .route("/v1/info", get(info_h))
        .route("/v1/scenarios", get(scenarios_h))
        .route("/v1/drills", get(list_h).post(start_h))
        .route("/v1/drills/{id}", get(status_h).delete(stop_h))
        .route("/v1/drills/{id}/submit", post(submit_h))
        .route("/v1/drills/{id}/exec", post(exec_h))
        .route("/v1/drills/{id}/hosts/{host}/shell", get(crate::relay::handler))
        .route("/v1/drills/{id}/solve", post(solve_h))
        .route("/v1/drills/{id}/hint", post(hint_h))
        .route("/v1/drills/{id}/counters", get(counters_h))
        .route("/v1/drills/{id}/faults/ebpf/{n}", post(tune_h))
        .route("/v1/drills/{id}/ack", post(ack_h))
        .route("/v1/drills/{id}/record", get(record_h))
        .route("/v1/history", get(history_h))
        .route("/v1/history/{id}", get(record_h))
        .route("/v1/reset", post(reset_h))
        .route("/v1/doctor", get(crate::doctor::handler));
    // A request that panics, for the test that proves the daemon serves on after one;
    // only in a daemon started with DRILLD_TEST_HOOKS=1.
    let r = if std::env::var_os("DRILLD_TEST_HOOKS").is_some_and(|v| v == "1") { r.route("/v1/test/panic", post(panic_h)) } else { r };
    r.with_state(d).layer(axum::extract::DefaultBodyLimit::max(crate::api_guard::MAX_BODY)).layer(tower_http::catch_panic::CatchPanicLayer::custom(crate::api_guard::panic_response))
}

async fn panic_h() -> Api<()> {
    panic!("a request that panics (DRILLD_TEST_HOOKS)")
}
