//! AccuRate's sans-IO JSON-RPC codec, as CGRateS's clients speak it.
//!
//! - Go's `net/rpc/jsonrpc` (JSON-RPC 1.0 as Go writes it): a stream of
//!   objects `{"method":"Service.Method","params":[ARG],"id":ID}`, no
//!   delimiter needed between them ([`StreamDecoder`]), each answered
//!   `{"id":ID,"result":R,"error":null}` or with `"result":null` and the
//!   error as a string.
//! - JSON-RPC 2.0 (`"jsonrpc":"2.0"`): answered in 2.0 form, the error an
//!   object `{"code","message"}`; a request without `id` is a notification
//!   and gets no reply.
//!
//! Bytes in, [`Request`]s out; replies out as bytes. No I/O, no runtime:
//! the server's transports, and later the agents, drive it.
#![forbid(unsafe_code)]

mod stream;

pub use stream::{StreamDecoder, StreamError};

use serde_json::{Map, Value};

/// Which protocol a request spoke (its reply speaks the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Go's `net/rpc/jsonrpc` (JSON-RPC 1.0 style).
    V1,
    /// JSON-RPC 2.0.
    V2,
}

/// A request, ready to dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `Service.Method`.
    pub method: String,
    /// The one argument: the first element of Go's `params` array (null
    /// when the array is empty), or a 2.0 request's `params` object (or the
    /// first element of its array).
    pub params: Value,
    /// The id, echoed in the reply (null when absent in 1.0).
    pub id: Value,
    /// 1.0 or 2.0.
    pub version: Version,
    /// A 2.0 request without `id`: no reply is sent.
    pub notification: bool,
}

/// An error reply. `code` is used in 2.0 replies only; 1.0 (Go) replies
/// carry just the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// JSON-RPC 2.0 error code.
    pub code: i64,
    /// The message, spelled as CGRateS spells it (`NOT_FOUND`,
    /// `MANDATORY_IE_MISSING: [Account]`...).
    pub message: String,
}

/// JSON-RPC 2.0 error codes.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The arguments do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The method failed (CGRateS's own errors).
    pub const SERVER_ERROR: i64 = -32000;
}

impl RpcError {
    /// An error with a code and message.
    #[must_use]
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// A method's own failure (code -32000).
    #[must_use]
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(code::SERVER_ERROR, message)
    }
}

/// A value that could be a request but is not one: answer `error` to `id`
/// in `version`'s form (the connection goes on).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The id, if one could be read.
    pub id: Value,
    /// The protocol the reply speaks.
    pub version: Version,
    /// What is wrong.
    pub error: RpcError,
}

/// Reads a decoded JSON value as a request.
///
/// Go's codec refuses a request without `params` (`jsonrpc: request body
/// missing params`) and reads the first element of the array as the one
/// argument; a method name without a dot is ill-formed for `net/rpc`.
///
/// # Errors
/// [`Invalid`] with the error reply to send.
pub fn parse_request(value: Value) -> Result<Request, Invalid> {
    let Value::Object(mut obj) = value else {
        return Err(Invalid {
            id: Value::Null,
            version: Version::V2,
            error: RpcError::new(
                code::INVALID_REQUEST,
                "batch requests are not supported: send one object per request",
            ),
        });
    };
    let version = match obj.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => Version::V2,
        _ => Version::V1,
    };
    let notification = version == Version::V2 && !obj.contains_key("id");
    let id = obj.remove("id").unwrap_or(Value::Null);
    let invalid = |code: i64, msg: String| Invalid {
        id: id.clone(),
        version,
        error: RpcError::new(code, msg),
    };
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Err(invalid(
                code::INVALID_REQUEST,
                "rpc: method must be a string".into(),
            ));
        }
        None => {
            return Err(invalid(
                code::INVALID_REQUEST,
                "rpc: service/method request ill-formed: ".into(),
            ));
        }
    };
    if !method.contains('.') {
        return Err(invalid(
            code::METHOD_NOT_FOUND,
            format!("rpc: service/method request ill-formed: {method}"),
        ));
    }
    let params = match (version, obj.remove("params")) {
        (Version::V1, None | Some(Value::Null)) => {
            return Err(invalid(
                code::INVALID_PARAMS,
                "jsonrpc: request body missing params".into(),
            ));
        }
        (_, Some(Value::Array(mut a))) => {
            if a.is_empty() {
                Value::Null
            } else {
                a.swap_remove(0)
            }
        }
        (Version::V2, Some(p @ Value::Object(_))) | (Version::V2, Some(p @ Value::Null)) => p,
        (Version::V2, None) => Value::Null,
        (_, Some(other)) => {
            return Err(invalid(
                code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go value of type [1]interface {{}}",
                    kind(&other)
                ),
            ));
        }
    };
    Ok(Request {
        method,
        params,
        id,
        version,
        notification,
    })
}

/// The JSON kind of a value as Go's decoder names it in errors.
#[must_use]
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Writes a request (what a client sends): the argument goes in a
/// one-element `params` array in both forms.
#[must_use]
pub fn encode_request(req: &Request) -> Vec<u8> {
    let mut obj = Map::new();
    if req.version == Version::V2 {
        obj.insert("jsonrpc".into(), Value::String("2.0".into()));
    }
    obj.insert("method".into(), Value::String(req.method.clone()));
    obj.insert("params".into(), Value::Array(vec![req.params.clone()]));
    if !req.notification {
        obj.insert("id".into(), req.id.clone());
    }
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}

/// A successful reply. `result` is JSON text written by the method (so
/// amounts keep their exact decimal digits); it is copied verbatim.
#[must_use]
pub fn encode_result(version: Version, id: &Value, result: &str) -> Vec<u8> {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "null".into());
    let text = match version {
        Version::V1 => format!("{{\"id\":{id},\"result\":{result},\"error\":null}}"),
        Version::V2 => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}"),
    };
    text.into_bytes()
}

/// An error reply.
#[must_use]
pub fn encode_error(version: Version, id: &Value, error: &RpcError) -> Vec<u8> {
    let reply = match version {
        Version::V1 => serde_json::json!({"id": id, "result": null, "error": error.message}),
        Version::V2 => serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": error.code, "message": error.message},
        }),
    };
    serde_json::to_vec(&reply).unwrap_or_default()
}

/// A reply as a client reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The id it answers.
    pub id: Value,
    /// The result, or the error message (2.0: with its code).
    pub outcome: Result<Value, RpcError>,
}

/// Reads a reply in either form (what `accurate console` does).
///
/// # Errors
/// A message when the value is not a reply.
pub fn parse_reply(value: Value) -> Result<Reply, String> {
    let Value::Object(mut obj) = value else {
        return Err(format!("expected a reply object, got {}", kind(&value)));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let outcome = match obj.remove("error") {
        None | Some(Value::Null) => Ok(obj.remove("result").unwrap_or(Value::Null)),
        Some(Value::String(m)) => Err(RpcError::server(m)),
        Some(Value::Object(e)) => Err(RpcError::new(
            e.get("code").and_then(Value::as_i64).unwrap_or(0),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )),
        Some(other) => Err(RpcError::server(other.to_string())),
    };
    Ok(Reply { id, outcome })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn go_request_takes_the_first_param() {
        let r = parse_request(
            json!({"method":"APIerSv2.GetAccount","params":[{"Account":"1001"}],"id":1}),
        )
        .unwrap();
        assert_eq!(r.method, "APIerSv2.GetAccount");
        assert_eq!(r.params, json!({"Account":"1001"}));
        assert_eq!(r.id, json!(1));
        assert_eq!(r.version, Version::V1);
        assert!(!r.notification);
    }

    #[test]
    fn go_request_without_params_is_refused_as_go_does() {
        let e = parse_request(json!({"method":"CoreSv1.Ping","id":"x"})).unwrap_err();
        assert_eq!(e.error.message, "jsonrpc: request body missing params");
        assert_eq!(e.id, json!("x"));
        let e = parse_request(json!({"method":"CoreSv1.Ping","params":5,"id":1})).unwrap_err();
        assert!(e.error.message.contains("cannot unmarshal number"), "{e:?}");
        let e = parse_request(json!({"method":"Ping","params":[],"id":1})).unwrap_err();
        assert_eq!(
            e.error.message,
            "rpc: service/method request ill-formed: Ping"
        );
    }

    #[test]
    fn v2_params_object_and_notification() {
        let r = parse_request(json!({"jsonrpc":"2.0","method":"CoreSv1.Ping","params":{"a":1}}))
            .unwrap();
        assert_eq!(r.version, Version::V2);
        assert!(r.notification);
        assert_eq!(r.params, json!({"a":1}));
        let r = parse_request(json!({"jsonrpc":"2.0","method":"CoreSv1.Ping","id":null})).unwrap();
        assert!(!r.notification);
        assert_eq!(r.params, Value::Null);
    }

    #[test]
    fn replies_in_both_forms() {
        let ok = encode_result(Version::V1, &json!(1), "{\"Cost\":0.65}");
        assert_eq!(ok, br#"{"id":1,"result":{"Cost":0.65},"error":null}"#);
        let ok = encode_result(Version::V2, &json!("a"), "\"Pong\"");
        assert_eq!(ok, br#"{"jsonrpc":"2.0","id":"a","result":"Pong"}"#);
        let e = RpcError::server("NOT_FOUND");
        let v: Value = serde_json::from_slice(&encode_error(Version::V1, &json!(2), &e)).unwrap();
        assert_eq!(v, json!({"id":2,"result":null,"error":"NOT_FOUND"}));
        let v: Value = serde_json::from_slice(&encode_error(Version::V2, &json!(2), &e)).unwrap();
        assert_eq!(v["error"], json!({"code":-32000,"message":"NOT_FOUND"}));
        let r = parse_reply(v).unwrap();
        assert_eq!(r.outcome, Err(e));
    }

    #[test]
    fn request_round_trips() {
        for v in [
            json!({"method":"A.B","params":[{"x":[1,2]}],"id":9}),
            json!({"jsonrpc":"2.0","method":"A.B","params":{"x":1},"id":"q"}),
            json!({"jsonrpc":"2.0","method":"A.B","params":[]}),
        ] {
            let r = parse_request(v).unwrap();
            let mut d = StreamDecoder::new(1 << 20);
            d.feed(&encode_request(&r));
            let again = parse_request(d.next_value().unwrap().unwrap()).unwrap();
            assert_eq!(again, r);
        }
    }
}
