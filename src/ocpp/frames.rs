//! OCPP-J 1.6 framing: `[2, id, action, payload]` calls, `[3, id, payload]` results and
//! `[4, id, code, description, details]` errors, and the error codes the spec names.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// OCPP 1.6 CALLERROR codes (OCPP-J §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotImplemented,
    NotSupported,
    InternalError,
    ProtocolError,
    SecurityError,
    FormationViolation,
    PropertyConstraintViolation,
    OccurenceConstraintViolation,
    TypeConstraintViolation,
    GenericError,
}

impl ErrorCode {
    /// The code as written on the wire (the spec's spelling, "Occurence" included).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotSupported => "NotSupported",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::SecurityError => "SecurityError",
            ErrorCode::FormationViolation => "FormationViolation",
            ErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            ErrorCode::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            ErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            ErrorCode::GenericError => "GenericError",
        }
    }
}

/// A failure to answer a call, sent back as CALLERROR.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub code: ErrorCode,
    pub description: String,
}

impl CallError {
    /// A call error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        CallError {
            code,
            description: description.into(),
        }
    }
}

/// One parsed frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    Result {
        id: String,
        payload: Value,
    },
    Error {
        id: String,
        code: String,
        description: String,
    },
}

/// A frame that cannot be parsed; `id` is set when the message id could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFrame {
    pub id: Option<String>,
    pub error: CallError,
}

/// Parses a text frame.
pub fn parse(text: &str) -> Result<Frame, BadFrame> {
    let bad = |id: Option<String>, code, msg: &str| BadFrame {
        id,
        error: CallError::new(code, msg),
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            None,
            ErrorCode::FormationViolation,
            &format!("frame is not JSON: {e}"),
        )
    })?;
    let Value::Array(items) = value else {
        return Err(bad(
            None,
            ErrorCode::FormationViolation,
            "frame must be a JSON array",
        ));
    };
    let id = items.get(1).and_then(Value::as_str).map(str::to_string);
    let Some(id_ref) = id.clone().filter(|i| !i.is_empty() && i.len() <= 36) else {
        return Err(bad(
            None,
            ErrorCode::FormationViolation,
            "message id must be a string of 1 to 36 characters",
        ));
    };
    match items.first().and_then(Value::as_u64) {
        Some(2) if items.len() == 4 => {
            let action = items[2].as_str().ok_or_else(|| {
                bad(
                    id.clone(),
                    ErrorCode::FormationViolation,
                    "action must be a string",
                )
            })?;
            if !items[3].is_object() {
                return Err(bad(
                    id,
                    ErrorCode::FormationViolation,
                    "payload must be a JSON object",
                ));
            }
            Ok(Frame::Call {
                id: id_ref,
                action: action.to_string(),
                payload: items[3].clone(),
            })
        }
        Some(3) if items.len() == 3 => Ok(Frame::Result {
            id: id_ref,
            payload: items[2].clone(),
        }),
        Some(4) if items.len() >= 4 => Ok(Frame::Error {
            id: id_ref,
            code: items[2].as_str().unwrap_or("GenericError").to_string(),
            description: items[3].as_str().unwrap_or_default().to_string(),
        }),
        Some(2..=4) => Err(bad(
            id,
            ErrorCode::FormationViolation,
            "wrong number of elements for this message type",
        )),
        _ => Err(bad(id, ErrorCode::ProtocolError, "unknown message type id")),
    }
}

/// Serialises a CALL.
pub fn call(id: &str, action: &str, payload: &Value) -> String {
    json!([2, id, action, payload]).to_string()
}

/// Serialises a CALLRESULT.
pub fn result(id: &str, payload: &Value) -> String {
    json!([3, id, payload]).to_string()
}

/// Serialises a CALLERROR; an unknown id is written as `"-1"`.
pub fn error(id: Option<&str>, err: &CallError) -> String {
    json!(
        [4, id.unwrap_or("-1"), err.code.as_str(), err.description, {
        }]
    )
    .to_string()
}

/// What chrono says about a string that is not a date and time (`chrono::format::ParseError`):
/// a timestamp of the right type with a wrong value.
const CHRONO_PARSE_ERRORS: [&str; 7] = [
    "out of range",
    "no possible date and time matching input",
    "input is not enough for unique date and time",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "bad or unsupported format string",
];

/// Decodes a payload into an OCPP message type, mapping serde's complaints to the spec's codes.
pub fn decode<T: DeserializeOwned>(payload: Value) -> Result<T, CallError> {
    T::deserialize(&payload).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.starts_with("missing field") {
            ErrorCode::OccurenceConstraintViolation
        } else if msg.starts_with("invalid type") {
            ErrorCode::TypeConstraintViolation
        } else if msg.starts_with("invalid number") {
            // serde_json with `arbitrary_precision` (rust_decimal turns it on) says only this
            // for a number the field's integer type cannot hold. No field of a charger's
            // message is fractional, so a fraction is a wrong type and a whole number is out
            // of range.
            if has_fraction(&payload) {
                ErrorCode::TypeConstraintViolation
            } else {
                ErrorCode::PropertyConstraintViolation
            }
        } else if msg.starts_with("unknown variant")
            || msg.starts_with("invalid value")
            || CHRONO_PARSE_ERRORS.iter().any(|m| msg.contains(m))
        {
            ErrorCode::PropertyConstraintViolation
        } else {
            ErrorCode::FormationViolation
        };
        CallError::new(code, msg)
    })
}

/// Whether a number written with a fraction or an exponent occurs anywhere in `v`.
fn has_fraction(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.to_string().contains(['.', 'e', 'E']),
        Value::Array(items) => items.iter().any(has_fraction),
        Value::Object(fields) => fields.values().any(has_fraction),
        _ => false,
    }
}

/// Decodes and checks the field constraints (string lengths) the message type declares.
pub fn decode_valid<T: DeserializeOwned + validator::Validate>(
    payload: Value,
) -> Result<T, CallError> {
    let value: T = decode(payload)?;
    value.validate().map_err(|e| {
        CallError::new(
            ErrorCode::PropertyConstraintViolation,
            e.to_string().replace('\n', "; "),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_ocpp::v1_6::messages::start_transaction::StartTransactionRequest;

    #[test]
    fn frames_parse_and_malformed_ones_get_the_named_codes() {
        assert_eq!(
            parse(r#"[2,"1","Heartbeat",{}]"#).unwrap(),
            Frame::Call {
                id: "1".into(),
                action: "Heartbeat".into(),
                payload: json!({})
            }
        );
        assert!(matches!(
            parse(r#"[3,"9",{"status":"Accepted"}]"#).unwrap(),
            Frame::Result { .. }
        ));
        let code = |t: &str| parse(t).unwrap_err().error.code;
        assert_eq!(code("not json"), ErrorCode::FormationViolation);
        assert_eq!(code(r#"{"a":1}"#), ErrorCode::FormationViolation);
        assert_eq!(
            code(r#"[2,"1","Heartbeat"]"#),
            ErrorCode::FormationViolation
        );
        assert_eq!(
            code(r#"[2,"1","Heartbeat",[]]"#),
            ErrorCode::FormationViolation
        );
        assert_eq!(code(r#"[7,"1","Heartbeat",{}]"#), ErrorCode::ProtocolError);
        assert_eq!(
            parse(r#"[2,"abc","X",5]"#).unwrap_err().id.as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn payload_errors_map_to_occurence_type_and_property_violations() {
        let code = |v: Value| decode_valid::<StartTransactionRequest>(v).unwrap_err().code;
        assert_eq!(
            code(json!({"idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})),
            ErrorCode::OccurenceConstraintViolation
        );
        assert_eq!(
            code(
                json!({"connectorId": "one", "idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
            ),
            ErrorCode::TypeConstraintViolation
        );
        assert_eq!(
            code(
                json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "yesterday"})
            ),
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            code(
                json!({"connectorId": 1, "idTag": "X".repeat(21), "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
            ),
            ErrorCode::PropertyConstraintViolation
        );
        assert_eq!(
            code(
                json!({"connectorId": 1.5, "idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
            ),
            ErrorCode::TypeConstraintViolation
        );
        for out_of_range in [json!(-1), json!(1u64 << 32), json!(u64::MAX)] {
            assert_eq!(
                code(
                    json!({"connectorId": out_of_range, "idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})
                ),
                ErrorCode::PropertyConstraintViolation,
                "{out_of_range}"
            );
        }
        for impossible in ["2026-02-30T10:00:00Z", "2026-11-24T10:00:00"] {
            assert_eq!(
                code(
                    json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": impossible})
                ),
                ErrorCode::PropertyConstraintViolation,
                "{impossible}"
            );
        }
        assert!(decode_valid::<StartTransactionRequest>(json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"})).is_ok());
    }
}
