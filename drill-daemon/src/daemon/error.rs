//! Errors as the API answers them (docs/API.md, "Errors").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drill_core::api::ErrorBody;

use crate::error::DrillError;

/// An error as the API answers it: the kind's HTTP status and an [`ErrorBody`] with
/// its stable code, the object it is about and what to do (docs/API.md, "Errors").
#[derive(Debug)]
pub struct ApiError(pub DrillError);

impl ApiError {
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.0.to_string(), code: self.0.code().to_string(), about: self.0.about(), hint: self.0.hint().map(String::from) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

impl From<DrillError> for ApiError {
    fn from(e: DrillError) -> Self {
        ApiError(e)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError(DrillError::Internal(e))
    }
}

pub(super) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(DrillError::BadRequest(msg.into()))
}

pub(super) type Api<T> = Result<Json<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;
    #[test]
    fn errors_answer_with_their_kind_s_status_and_code() {
        let e = ApiError(DrillError::DrillNotFound { id: "abc123".into(), running: "no drills are running".into() });
        let b = e.body();
        assert_eq!((b.code.as_str(), b.about.as_deref()), ("drill_not_found", Some("drill abc123")));
        assert!(b.hint.is_some(), "says what to do");
        assert_eq!(e.into_response().status(), StatusCode::NOT_FOUND);
        // A retune of a fault that does not exist is a 404 for the fault, a bad
        // figure a 400: the kind decides, never the message.
        let nf = ApiError(DrillError::FaultNotFound { drill: "abc123".into(), kind: "eBPF", index: 2, count: 1 });
        assert_eq!(nf.into_response().status(), StatusCode::NOT_FOUND);
        assert_eq!(bad("percent 200 is impossible").into_response().status(), StatusCode::BAD_REQUEST);
        let internal = ApiError::from(anyhow!("journal unwritable"));
        assert_eq!((internal.body().code.as_str(), internal.into_response().status()), ("internal", StatusCode::INTERNAL_SERVER_ERROR));
    }

    #[test]
    fn an_invalid_scenario_is_400_and_names_the_file_position() {
        let errs = drill_core::scenario::parse("bad.toml", "id = 3\n[[faults]]\nkind = \"nope\"\n").expect_err("invalid");
        let e = ApiError(DrillError::InvalidScenario(errs));
        let b = e.body();
        assert_eq!(b.code, "invalid_scenario");
        assert!(b.about.as_deref().is_some_and(|a| a.starts_with("bad.toml:")), "{:?}", b.about);
        assert_eq!(e.into_response().status(), StatusCode::BAD_REQUEST);
    }
}
