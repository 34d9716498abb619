//! JSON-RPC over HTTP: `POST /jsonrpc` with one request as the body,
//! answered `200` with the reply (`204` for a 2.0 notification),
//! `GET /metrics` (Prometheus text, [`super::metrics`]), and the plain
//! `POST /v1/authorize` and `POST /v1/cdrs` ([`super::httpapi`]). Other paths are
//! `404`, other methods `405`; a body over the limit `413`; a missing or
//! wrong bearer token, when one is configured, `401` (on both paths).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::methods::State;
use super::{Auth, MAX_REQUEST_BYTES, answer, parse_error};

/// The path requests are posted to (CGRateS's `http_jsonrpc`).
pub(crate) const PATH: &str = "/jsonrpc";
/// The Prometheus scrape path.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// Accepts connections until `stop` turns true; then closes them all.
pub(super) async fn run(
    listener: TcpListener,
    state: Arc<State>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let st = Arc::clone(&state);
                    conns.spawn(async move {
                        let svc = service_fn(move |req| {
                            let st = Arc::clone(&st);
                            async move { Ok::<_, Infallible>(handle(req, &st).await) }
                        });
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(idle)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rpc-http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

fn response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn refused(state: &State, status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    state.counters.http_refused.fetch_add(1, Ordering::Relaxed);
    response(status, parse_error_with(msg))
}

fn parse_error_with(msg: &str) -> Vec<u8> {
    jsonrpc::encode_error(
        jsonrpc::Version::V1,
        &serde_json::Value::Null,
        &jsonrpc::RpcError::new(jsonrpc::code::INVALID_REQUEST, msg),
    )
}

fn bearer_ok(req: &Request<Incoming>, state: &State) -> bool {
    if state.auth_token.is_none() {
        return true;
    }
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| state.token_ok(t.trim()))
}

/// `GET /metrics`.
fn metrics(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = refused(
            state,
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: GET only",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if !bearer_ok(req, state) {
        return unauthorized(state);
    }
    let mut r = response(StatusCode::OK, super::metrics::render(state).into_bytes());
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    r
}

fn unauthorized(state: &State) -> Response<Full<Bytes>> {
    let mut r = refused(state, StatusCode::UNAUTHORIZED, super::UNAUTHORIZED);
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The body read whole (within the limit) and parsed as JSON, or the
/// answer refusing it.
async fn json_body(
    req: Request<Incoming>,
    state: &State,
) -> Result<serde_json::Value, Response<Full<Bytes>>> {
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(refused(
                    state,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request larger than {MAX_REQUEST_BYTES} bytes"),
                ));
            }
            return Err(refused(
                state,
                StatusCode::BAD_REQUEST,
                "cannot read the body",
            ));
        }
    };
    serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| {
        state.counters.http_refused.fetch_add(1, Ordering::Relaxed);
        response(
            StatusCode::BAD_REQUEST,
            parse_error(&format!("parse error: {e}")),
        )
    })
}

fn post_only(state: &State) -> Response<Full<Bytes>> {
    let mut r = refused(
        state,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: POST only",
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    r
}

/// `POST /v1/authorize` and `POST /v1/cdrs` ([`super::httpapi`]).
async fn plain(req: Request<Incoming>, state: &Arc<State>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return post_only(state);
    }
    if !bearer_ok(&req, state) {
        return unauthorized(state);
    }
    let authorize = req.uri().path() == super::httpapi::AUTHORIZE_PATH;
    let value = match json_body(req, state).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (status, reply) = if authorize {
        super::httpapi::authorize(state, &value).await
    } else {
        super::httpapi::cdrs(state, &value).await
    };
    // Counted with the JSON-RPC methods, by path: requests, and as
    // errors those not authorized or not stored.
    let path = if authorize {
        super::httpapi::AUTHORIZE_PATH
    } else {
        super::httpapi::CDRS_PATH
    };
    state.counters.count(path, !status.is_success());
    response(status, reply.to_string().into_bytes())
}

async fn handle(req: Request<Incoming>, state: &Arc<State>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == METRICS_PATH {
        return metrics(&req, state);
    }
    if path == super::httpapi::AUTHORIZE_PATH || path == super::httpapi::CDRS_PATH {
        return plain(req, state).await;
    }
    if path != PATH {
        return refused(
            state,
            StatusCode::NOT_FOUND,
            "not found: POST /jsonrpc, /v1/authorize, /v1/cdrs or GET /metrics",
        );
    }
    if req.method() != Method::POST {
        return post_only(state);
    }
    if !bearer_ok(&req, state) {
        return unauthorized(state);
    }
    let value = match json_body(req, state).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // The bearer token (checked above) authenticates the request.
    let mut auth = Auth::Done;
    match answer(state, value, &mut auth).await {
        Some(reply) => response(StatusCode::OK, reply),
        None => response(StatusCode::NO_CONTENT, Vec::new()),
    }
}
