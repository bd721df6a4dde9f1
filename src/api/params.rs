//! Request parameters as Prometheus' API reads them: from the query string
//! and, for POST, from a form-encoded body, with repeated keys (`match[]`).

use super::api_error;
use crate::model::time::parse_time;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// All parameters of one request, in order.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Self {
        let mut v: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(v)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A refused or failed request: Prometheus' `errorType`, the HTTP status it
/// goes with, and the message clients show.
#[derive(Debug, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self.status, self.error_type, self.message)
    }
}

pub(crate) fn bad_data(msg: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_type: "bad_data",
        message: msg.into(),
    }
}

/// Prometheus' `invalidParamError`: the parameter's name leads the message.
pub(crate) fn invalid_param(name: &str, msg: impl std::fmt::Display) -> ApiError {
    bad_data(format!("invalid parameter {name:?}: {msg}"))
}

/// A time parameter that has a default when absent (`time`), worded like
/// Prometheus' `parseTimeParam`.
pub(crate) fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s)
            .map_err(|e| invalid_param(name, format!("Invalid time value for '{name}': {e}"))),
    }
}

/// The 3.x `limit` parameter: 0 or absent means no limit.
pub(crate) fn limit_param(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 0 => Err(invalid_param("limit", "limit must be non-negative")),
            Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(_) => Err(invalid_param(
                "limit",
                format!("strconv.Atoi: parsing {s:?}: invalid syntax"),
            )),
        },
    }
}
