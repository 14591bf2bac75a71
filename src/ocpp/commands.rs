//! Typed calls from the central system to a charger (OCPP 1.6 Core, plus TriggerMessage).
//!
//! Each command is the rust-ocpp request type of its action, so a payload can only be built
//! with the fields and enum values the specification allows; [`Command::action`] names the
//! action on the wire. Operator input arrives as text (`"Soft"`, `"Inoperative"`) and is read
//! into the specification's enums with [`ocpp_enum`], which refuses any other value.

use rust_ocpp::v1_6::messages::{
    change_availability::ChangeAvailabilityRequest,
    change_configuration::ChangeConfigurationRequest, clear_cache::ClearCacheRequest,
    data_transfer::DataTransferRequest, get_configuration::GetConfigurationRequest,
    remote_start_transaction::RemoteStartTransactionRequest,
    remote_stop_transaction::RemoteStopTransactionRequest, reset::ResetRequest,
    trigger_message::TriggerMessageRequest, unlock_connector::UnlockConnectorRequest,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A call the central system makes to a charger.
#[derive(Debug, Clone)]
pub enum Command {
    RemoteStartTransaction(RemoteStartTransactionRequest),
    RemoteStopTransaction(RemoteStopTransactionRequest),
    Reset(ResetRequest),
    UnlockConnector(UnlockConnectorRequest),
    ChangeAvailability(ChangeAvailabilityRequest),
    TriggerMessage(TriggerMessageRequest),
    GetConfiguration(GetConfigurationRequest),
    ChangeConfiguration(ChangeConfigurationRequest),
    ClearCache(ClearCacheRequest),
    DataTransfer(DataTransferRequest),
}

impl Command {
    /// The OCPP action name.
    pub fn action(&self) -> &'static str {
        match self {
            Command::RemoteStartTransaction(_) => "RemoteStartTransaction",
            Command::RemoteStopTransaction(_) => "RemoteStopTransaction",
            Command::Reset(_) => "Reset",
            Command::UnlockConnector(_) => "UnlockConnector",
            Command::ChangeAvailability(_) => "ChangeAvailability",
            Command::TriggerMessage(_) => "TriggerMessage",
            Command::GetConfiguration(_) => "GetConfiguration",
            Command::ChangeConfiguration(_) => "ChangeConfiguration",
            Command::ClearCache(_) => "ClearCache",
            Command::DataTransfer(_) => "DataTransfer",
        }
    }

    /// The CALL payload.
    pub fn payload(&self) -> Value {
        let v = match self {
            Command::RemoteStartTransaction(r) => serde_json::to_value(r),
            Command::RemoteStopTransaction(r) => serde_json::to_value(r),
            Command::Reset(r) => serde_json::to_value(r),
            Command::UnlockConnector(r) => serde_json::to_value(r),
            Command::ChangeAvailability(r) => serde_json::to_value(r),
            Command::TriggerMessage(r) => serde_json::to_value(r),
            Command::GetConfiguration(r) => serde_json::to_value(r),
            Command::ChangeConfiguration(r) => serde_json::to_value(r),
            Command::ClearCache(r) => serde_json::to_value(r),
            Command::DataTransfer(r) => serde_json::to_value(r),
        };
        // Plain structs of strings, numbers and enums: serialisation cannot fail.
        v.unwrap_or(Value::Null)
    }

    /// The payload as the audit log shows it: the value of ChangeConfiguration's
    /// `AuthorizationKey` (a charger's password) is never written anywhere.
    pub fn audit_payload(&self) -> Value {
        match self {
            Command::ChangeConfiguration(r) if is_secret_key(&r.key) => {
                serde_json::json!({"key": r.key, "value": "[redacted]"})
            }
            _ => self.payload(),
        }
    }
}

/// Configuration keys whose values are secrets (OCPP 1.6 security whitepaper).
pub fn is_secret_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("AuthorizationKey")
}

/// Reads operator text into one of OCPP's enums (`"Soft"` → `ResetRequestStatus::Soft`);
/// `None` for any value the specification does not define.
pub fn ocpp_enum<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(Value::String(text.to_string())).ok()
}

/// Decodes a charger's answer into the response type of its action.
pub fn decode_answer<T: DeserializeOwned>(answer: &Value) -> Result<T, String> {
    serde_json::from_value(answer.clone()).map_err(|e| format!("unexpected answer {answer}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_ocpp::v1_6::types::{ResetRequestStatus, TriggerMessageStatus};

    #[test]
    fn payloads_use_the_wire_names_and_enum_values() {
        let reset = Command::Reset(ResetRequest {
            kind: ResetRequestStatus::Soft,
        });
        assert_eq!(reset.action(), "Reset");
        assert_eq!(reset.payload(), serde_json::json!({"type": "Soft"}));
        let get = Command::GetConfiguration(GetConfigurationRequest { key: None });
        assert_eq!(get.payload(), serde_json::json!({}));
        let clear = Command::ClearCache(ClearCacheRequest {});
        assert_eq!(clear.action(), "ClearCache");
        assert_eq!(clear.payload(), serde_json::json!({}));
    }

    #[test]
    fn operator_text_maps_only_to_defined_enum_values() {
        assert_eq!(
            ocpp_enum::<ResetRequestStatus>("Hard"),
            Some(ResetRequestStatus::Hard)
        );
        assert_eq!(ocpp_enum::<ResetRequestStatus>("hard"), None);
        assert_eq!(ocpp_enum::<ResetRequestStatus>("Reboot"), None);
        assert_eq!(
            ocpp_enum::<TriggerMessageStatus>("Accepted"),
            Some(TriggerMessageStatus::Accepted)
        );
    }

    #[test]
    fn an_authorization_key_never_reaches_the_audit_payload() {
        let c = Command::ChangeConfiguration(ChangeConfigurationRequest {
            key: "AuthorizationKey".into(),
            value: "secret-value-0123456789".into(),
        });
        assert!(c.payload().to_string().contains("secret-value"));
        assert!(!c.audit_payload().to_string().contains("secret-value"));
    }
}
