//! OCPP 1.6J onto the charger-event API: decode and validate the message, map its wire types
//! to the domain types of [`crate::central`], run the event through the group writer, map
//! the outcome back to the 1.6 answer. No rules live here; an OCPP 2.0.1 mapping would be a
//! sibling of this file over the same API.

use std::sync::Arc;

use chrono::Utc;
use rust_ocpp::v1_6::messages as msg;
use rust_ocpp::v1_6::types::{
    AuthorizationStatus, ChargePointErrorCode, ChargePointStatus, IdTagInfo, MeterValue,
    RegistrationStatus, SampledValue,
};
use serde::Serialize;
use serde_json::Value;

use crate::central::{
    self, BootInfo, ConnectorStatus, Notice, StatusChange, TransactionStart, TransactionStop,
};
use crate::charging::{AuthStatus, Authorization, MeterSample, Reading};
use crate::db::DbConn;
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::AppState;

use super::frames::{self, CallError, ErrorCode};

/// The time sent to chargers, in whole milliseconds (many charger stacks reject more digits).
fn wall_clock() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

fn to_value<T: Serialize>(v: T) -> Result<Value, CallError> {
    serde_json::to_value(v).map_err(|e| CallError::new(ErrorCode::InternalError, e.to_string()))
}

fn id_tag_info(auth: &Authorization) -> IdTagInfo {
    let status = match auth.status {
        AuthStatus::Accepted => AuthorizationStatus::Accepted,
        AuthStatus::Blocked => AuthorizationStatus::Blocked,
        AuthStatus::Expired => AuthorizationStatus::Expired,
        AuthStatus::ConcurrentTx => AuthorizationStatus::ConcurrentTx,
        AuthStatus::Invalid => AuthorizationStatus::Invalid,
    };
    IdTagInfo {
        expiry_date: None,
        parent_id_tag: None,
        status,
    }
}

fn connector_status(s: &ChargePointStatus) -> ConnectorStatus {
    match s {
        ChargePointStatus::Available => ConnectorStatus::Available,
        ChargePointStatus::Preparing => ConnectorStatus::Preparing,
        ChargePointStatus::Charging => ConnectorStatus::Charging,
        ChargePointStatus::SuspendedEVSE => ConnectorStatus::SuspendedEVSE,
        ChargePointStatus::SuspendedEV => ConnectorStatus::SuspendedEV,
        ChargePointStatus::Finishing => ConnectorStatus::Finishing,
        ChargePointStatus::Reserved => ConnectorStatus::Reserved,
        ChargePointStatus::Unavailable => ConnectorStatus::Unavailable,
        ChargePointStatus::Faulted => ConnectorStatus::Faulted,
    }
}

fn reading(v: &SampledValue) -> Reading {
    Reading {
        value: v.value.clone(),
        measurand: text(&v.measurand),
        unit: text(&v.unit),
        context: text(&v.context),
        phase: text(&v.phase),
        location: text(&v.location),
        format: text(&v.format),
    }
}

/// OCPP 1.6 meter values as domain samples.
pub fn samples(values: &[MeterValue]) -> Vec<MeterSample> {
    values
        .iter()
        .map(|mv| MeterSample {
            at: mv.timestamp,
            readings: mv.sampled_value.iter().map(reading).collect(),
        })
        .collect()
}

/// Runs a charger message's write in the group writer; storage failures become InternalError
/// so the charger retries rather than losing the message.
async fn write<T: Send + 'static>(
    state: &Arc<AppState>,
    cp: String,
    f: impl FnMut(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, CallError> {
    state.charger_writes.submit(&cp, f).await.map_err(|e| {
        tracing::error!(error = %e, "storing a charger message failed");
        CallError::new(
            ErrorCode::InternalError,
            "the central system could not store the message; retry",
        )
    })
}

/// Answers one CALL from a charger.
pub async fn handle_call(
    state: &Arc<AppState>,
    cp: &str,
    action: &str,
    payload: Value,
) -> Result<Value, CallError> {
    let cp = cp.to_string();
    match action {
        "BootNotification" => boot_notification(state, cp, payload).await,
        "Heartbeat" => heartbeat(state, cp, payload).await,
        "StatusNotification" => status_notification(state, cp, payload).await,
        "Authorize" => authorize(state, cp, payload).await,
        "StartTransaction" => start_transaction(state, cp, payload).await,
        "MeterValues" => meter_values(state, cp, payload).await,
        "StopTransaction" => stop_transaction(state, cp, payload).await,
        "DataTransfer" => data_transfer(&cp, payload),
        "FirmwareStatusNotification" => {
            let req: msg::firmware_status_notification::FirmwareStatusNotificationRequest =
                frames::decode(payload)?;
            notice(state, cp, Notice::Firmware, enum_text(&req.status)).await
        }
        "DiagnosticsStatusNotification" => {
            let req: msg::diagnostics_status_notification::DiagnosticsStatusNotificationRequest =
                frames::decode(payload)?;
            notice(state, cp, Notice::Diagnostics, enum_text(&req.status)).await
        }
        "RemoteStartTransaction"
        | "RemoteStopTransaction"
        | "Reset"
        | "UnlockConnector"
        | "ChangeAvailability"
        | "TriggerMessage"
        | "ChangeConfiguration"
        | "GetConfiguration"
        | "ClearCache" => Err(CallError::new(
            ErrorCode::NotSupported,
            format!("{action} is sent by the central system, not to it"),
        )),
        other => Err(CallError::new(
            ErrorCode::NotImplemented,
            format!("unknown action {other:?}"),
        )),
    }
}

async fn boot_notification(
    state: &Arc<AppState>,
    cp: String,
    payload: Value,
) -> Result<Value, CallError> {
    let req: msg::boot_notification::BootNotificationRequest = frames::decode_valid(payload)?;
    let interval = state.config.ocpp_heartbeat_secs;
    let boot = BootInfo {
        vendor: req.charge_point_vendor,
        model: req.charge_point_model,
        serial_number: req
            .charge_point_serial_number
            .or(req.charge_box_serial_number),
        firmware_version: req.firmware_version,
    };
    let t = now();
    write(state, cp.clone(), move |conn| {
        Ok(central::booted(conn, &cp, &boot, interval, t)?)
    })
    .await?;
    to_value(msg::boot_notification::BootNotificationResponse {
        current_time: wall_clock(),
        interval,
        status: RegistrationStatus::Accepted,
    })
}

async fn heartbeat(state: &Arc<AppState>, cp: String, payload: Value) -> Result<Value, CallError> {
    let _: msg::heart_beat::HeartbeatRequest = frames::decode(payload)?;
    let t = now();
    write(state, cp.clone(), move |conn| {
        Ok(central::heartbeat(conn, &cp, t)?)
    })
    .await?;
    to_value(msg::heart_beat::HeartbeatResponse {
        current_time: wall_clock(),
    })
}

async fn status_notification(
    state: &Arc<AppState>,
    cp: String,
    payload: Value,
) -> Result<Value, CallError> {
    let req: msg::status_notification::StatusNotificationRequest = frames::decode_valid(payload)?;
    let t = now();
    let change = StatusChange {
        connector_id: i64::from(req.connector_id),
        status: connector_status(&req.status),
        error_code: (req.error_code != ChargePointErrorCode::NoError)
            .then(|| enum_text(&req.error_code)),
        at: req.timestamp.map_or(t, |ts| ts.naive_utc()),
    };
    // A report that changes nothing is answered from a read, without a write. One charger's
    // messages come one at a time, so nothing of its own can be queued ahead of it.
    let (id, same) = (cp.clone(), change.clone());
    let unchanged = state
        .db
        .run(move |conn| Ok(central::status_unchanged(conn, &id, &same)?))
        .await
        .unwrap_or(false);
    if !unchanged {
        write(state, cp.clone(), move |conn| {
            Ok(central::status_changed(conn, &cp, &change, t)?)
        })
        .await?;
    }
    to_value(msg::status_notification::StatusNotificationResponse {})
}

async fn authorize(state: &Arc<AppState>, cp: String, payload: Value) -> Result<Value, CallError> {
    let req: msg::authorize::AuthorizeRequest = frames::decode_valid(payload)?;
    let t = now();
    let auth = write(state, cp.clone(), move |conn| {
        Ok(central::authorize(conn, &cp, &req.id_tag, t)?)
    })
    .await?;
    to_value(msg::authorize::AuthorizeResponse {
        id_tag_info: id_tag_info(&auth),
    })
}

async fn start_transaction(
    state: &Arc<AppState>,
    cp: String,
    payload: Value,
) -> Result<Value, CallError> {
    let req: msg::start_transaction::StartTransactionRequest = frames::decode_valid(payload)?;
    let t = now();
    let stale_before = t - state.stale_after();
    let start = TransactionStart {
        connector_id: req.connector_id,
        id_tag: req.id_tag,
        meter_start: req.meter_start,
        at: req.timestamp,
    };
    let started = write(state, cp.clone(), move |conn| {
        Ok(central::transaction_started(
            conn,
            &cp,
            &start,
            t,
            stale_before,
        )?)
    })
    .await?;
    let transaction_id = i32::try_from(started.transaction_id)
        .map_err(|_| CallError::new(ErrorCode::InternalError, "transaction id space exhausted"))?;
    to_value(msg::start_transaction::StartTransactionResponse {
        id_tag_info: id_tag_info(&started.authorization),
        transaction_id,
    })
}

async fn meter_values(
    state: &Arc<AppState>,
    cp: String,
    payload: Value,
) -> Result<Value, CallError> {
    let req: msg::meter_values::MeterValuesRequest = frames::decode(payload)?;
    let t = now();
    let samples = samples(&req.meter_value);
    write(state, cp.clone(), move |conn| {
        Ok(central::meter_values(
            conn,
            &cp,
            req.connector_id,
            req.transaction_id,
            &samples,
            t,
        )?)
    })
    .await?;
    to_value(msg::meter_values::MeterValuesResponse {})
}

async fn stop_transaction(
    state: &Arc<AppState>,
    cp: String,
    payload: Value,
) -> Result<Value, CallError> {
    let req: msg::stop_transaction::StopTransactionRequest = frames::decode_valid(payload)?;
    let t = now();
    let stop = TransactionStop {
        transaction_id: req.transaction_id,
        meter_stop: req.meter_stop,
        at: req.timestamp,
        reason: req.reason.as_ref().map(enum_text),
        id_tag: req.id_tag,
        data: samples(req.transaction_data.as_deref().unwrap_or_default()),
    };
    let charger = cp.clone();
    let outcome = write(state, cp.clone(), move |conn| {
        Ok(central::transaction_stopped(conn, &cp, &stop, t)?)
    })
    .await?;
    // Billing runs after the stop is committed, in a write of its own: whatever it does, the
    // stop and its meter data are stored and the charger gets its answer.
    if let Some(id) = outcome.finished {
        let settled = state
            .charger_writes
            .submit(&charger, move |conn| central::session_finished(conn, id, t))
            .await;
        if let Err(e) = settled {
            tracing::error!(session = id, error = %e, "pricing a finished session failed");
        }
    }
    to_value(msg::stop_transaction::StopTransactionResponse {
        id_tag_info: outcome.authorization.as_ref().map(id_tag_info),
    })
}

/// DataTransfer.req as OCPP 1.6 defines it: `vendorId` up to 255 characters, `messageId` up
/// to 50, `data` text of any length (rust-ocpp's type caps `data` at 255 and leaves `vendorId`
/// unchecked).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataTransferRequest {
    vendor_id: String,
    message_id: Option<String>,
    #[expect(
        dead_code,
        reason = "decoded to check its type; no vendor extension reads it"
    )]
    data: Option<String>,
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), CallError> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(CallError::new(
            ErrorCode::PropertyConstraintViolation,
            format!("{field} must be 1 to {max} characters, not {n}"),
        ));
    }
    Ok(())
}

fn data_transfer(cp: &str, payload: Value) -> Result<Value, CallError> {
    let req: DataTransferRequest = frames::decode(payload)?;
    check_length("vendorId", &req.vendor_id, 255)?;
    if let Some(id) = &req.message_id {
        check_length("messageId", id, 50)?;
    }
    tracing::info!(charge_point = %cp, vendor = %req.vendor_id, message_id = ?req.message_id, "DataTransfer from charger (no vendor extensions supported)");
    Ok(serde_json::json!({"status": "UnknownVendorId"}))
}

async fn notice(
    state: &Arc<AppState>,
    cp: String,
    kind: Notice,
    status: String,
) -> Result<Value, CallError> {
    let t = now();
    write(state, cp.clone(), move |conn| {
        Ok(central::notice(conn, &cp, kind, &status, t)?)
    })
    .await?;
    Ok(serde_json::json!({}))
}

/// The wire name of an OCPP enum value (its serde representation).
fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn text<T: Serialize>(x: &Option<T>) -> Option<String> {
    x.as_ref().map(enum_text)
}
