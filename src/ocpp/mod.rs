//! The OCPP 1.6J endpoint `/ocpp/{charge_point_id}`: HTTP Basic checked before the upgrade,
//! subprotocol `ocpp1.6`, every Core-profile message from chargers answered, malformed frames
//! answered with the CALLERROR the spec names while the connection stays up.

pub mod admission;
pub mod commands;
pub mod frames;
pub mod registry;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use futures_util::StreamExt;
use rust_ocpp::v1_6::messages as msg;
use rust_ocpp::v1_6::types::{AuthorizationStatus, IdTagInfo, RegistrationStatus};
use serde::Serialize;
use serde_json::Value;

use crate::app::{AppState, State};
use crate::audit::{self, NewEvent};
use crate::charging::{self, queries as sessions, Authorization};
use crate::http::auth::constant_time_eq;
use crate::http::time::now;
use crate::http::{client_addr, ApiError};
use crate::locations::queries as places;
use frames::{CallError, ErrorCode, Frame};
use registry::Link;

/// The only subprotocol spoken.
pub const SUBPROTOCOL: &str = "ocpp1.6";

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn offers_ocpp16(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

use admission::refuse;

/// `GET /ocpp/{charge_point_id}`: authenticates the charger and upgrades to WebSocket.
pub async fn connect(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let cp = path.into_inner();
    if let Some(refused) = admission::check_id(&state, &req, &cp).await? {
        return Ok(refused);
    }
    let Some((user, key)) = basic_credentials(&req) else {
        return refuse(&state, &req, &cp, "no HTTP Basic credentials").await;
    };
    if user != cp {
        return refuse(
            &state,
            &req,
            &cp,
            "Basic username differs from the charge point id",
        )
        .await;
    }
    let lookup = cp.clone();
    let known = state
        .db
        .run(move |conn| Ok(places::find_charge_point(conn, &lookup)?))
        .await?;
    let Some(charger) = known else {
        return refuse(&state, &req, &cp, "unknown charge point").await;
    };
    if !constant_time_eq(&crate::auth::tokens::token_hash(&key), &charger.key_hash) {
        return refuse(&state, &req, &cp, "wrong key").await;
    }
    if !offers_ocpp16(&req) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            "the WebSocket must offer the ocpp1.6 subprotocol",
        ));
    }
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::bad_request(
            "websocket_required",
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        header::HeaderValue::from_static(SUBPROTOCOL),
    );
    let (link, replaced) = state.registry.register(&cp, session);
    if let Some(old) = replaced {
        old.close().await;
    }
    let client = client_addr(&req, state.config.trust_proxy);
    let id = cp.clone();
    let instance = state.config.instance_id.clone();
    let epoch = state
        .db
        .write(move |conn| {
            let t = now();
            let mut event = NewEvent::user(None, "charger_connected", audit::SUCCESS, client, t);
            event.actor = format!("charger:{id}");
            event.charge_point_id = Some(id.clone());
            Ok(crate::db::write_tx(conn, |conn| {
                let epoch = places::claim_connection(conn, &id, &instance, t)?;
                audit::record(conn, &event)?;
                Ok::<_, diesel::result::Error>(epoch)
            })?)
        })
        .await?;
    let max = state.config.ocpp_max_frame_bytes;
    actix_web::rt::spawn(run(
        state.into_inner(),
        cp,
        epoch,
        link,
        stream
            .max_frame_size(max)
            .aggregate_continuations()
            .max_continuation_size(max),
    ));
    Ok(response)
}

async fn run(
    state: Arc<AppState>,
    cp: String,
    epoch: i64,
    link: Arc<Link>,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(actix_ws::AggregatedMessage::Text(text)) => {
                if let Some(reply) = on_text(&state, &cp, &link, &text).await {
                    if !link.send(reply).await {
                        break;
                    }
                }
            }
            Ok(actix_ws::AggregatedMessage::Binary(_)) => {
                let err = CallError::new(ErrorCode::FormationViolation, "OCPP-J frames are text");
                if !link.send(frames::error(None, &err)).await {
                    break;
                }
            }
            Ok(actix_ws::AggregatedMessage::Ping(bytes)) => {
                let mut session = link.session();
                if session.pong(&bytes).await.is_err() {
                    break;
                }
            }
            Ok(actix_ws::AggregatedMessage::Pong(_)) => {}
            Ok(actix_ws::AggregatedMessage::Close(reason)) => {
                // Echo the charger's close code, then stop.
                let _ = link.session().close(reason).await;
                break;
            }
            Err(e) if matches!(e, actix_ws::ProtocolError::Io(_)) && !is_oversized(&e) => {
                // The charger's connection went away (power cut, network): nothing to answer.
                tracing::info!(charge_point = %cp, error = %e, "charger connection lost");
                break;
            }
            Err(e) => {
                // An oversized or broken frame: tell the charger, then close the connection,
                // because the stream cannot resynchronise after a protocol error. The close
                // code says which (RFC 6455 §7.4.1): 1009 for too big, 1002 otherwise.
                tracing::warn!(charge_point = %cp, error = %e, "WebSocket protocol error");
                let err =
                    CallError::new(ErrorCode::FormationViolation, format!("frame refused: {e}"));
                link.send(frames::error(None, &err)).await;
                let code = if is_oversized(&e) {
                    actix_ws::CloseCode::Size
                } else {
                    actix_ws::CloseCode::Protocol
                };
                let reason = actix_ws::CloseReason {
                    code,
                    description: Some("frame refused".into()),
                };
                let _ = link.session().close(Some(reason)).await;
                break;
            }
        }
    }
    // Close first: a command waiting for this charger's answer fails now as offline.
    link.close().await;
    if state.registry.unregister(&cp, link.conn_id) {
        let id = cp.clone();
        let instance = state.config.instance_id.clone();
        let _ = state
            .db
            .write(move |conn| {
                let t = now();
                // Only the owner of this connection's epoch: a charger that has reconnected
                // meanwhile (here or to another instance) stays online.
                if !places::release_connection(conn, &id, &instance, epoch)? {
                    return Ok(());
                }
                let mut event =
                    NewEvent::user(None, "charger_disconnected", audit::SUCCESS, None, t);
                event.actor = format!("charger:{id}");
                event.charge_point_id = Some(id);
                Ok(audit::record(conn, &event)?)
            })
            .await;
    }
}

/// Whether a WebSocket error is a frame (or a message of continuation frames) over the limit.
fn is_oversized(e: &actix_ws::ProtocolError) -> bool {
    match e {
        actix_ws::ProtocolError::Overflow => true,
        actix_ws::ProtocolError::Io(io) => io.to_string().contains("maximum continuation size"),
        _ => false,
    }
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

/// Handles one text frame and returns the reply to send, if any.
async fn on_text(state: &Arc<AppState>, cp: &str, link: &Link, text: &str) -> Option<String> {
    match frames::parse(text) {
        Err(bad) => Some(frames::error(bad.id.as_deref(), &bad.error)),
        Ok(Frame::Result { id, payload }) => {
            link.resolve(&id, Ok(payload));
            None
        }
        Ok(Frame::Error {
            id,
            code,
            description,
        }) => {
            link.resolve(
                &id,
                Err(registry::CallFailure::Refused { code, description }),
            );
            None
        }
        Ok(Frame::Call {
            id,
            action,
            payload,
        }) => Some(match handle_call(state, cp, &action, payload).await {
            Ok(reply) => frames::result(&id, &reply),
            Err(err) => frames::error(Some(&id), &err),
        }),
    }
}

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
        charging::ACCEPTED => AuthorizationStatus::Accepted,
        charging::BLOCKED => AuthorizationStatus::Blocked,
        charging::EXPIRED => AuthorizationStatus::Expired,
        charging::CONCURRENT_TX => AuthorizationStatus::ConcurrentTx,
        _ => AuthorizationStatus::Invalid,
    };
    IdTagInfo {
        expiry_date: None,
        parent_id_tag: None,
        status,
    }
}

/// How long an offline charger's silence makes its active sessions stale.
pub fn stale_after(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.config.stale_session_after).unwrap_or(chrono::Duration::MAX)
}

/// Runs a database step for a charger message; storage failures become InternalError so the
/// charger retries rather than losing the message.
async fn db<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut crate::db::DbConn) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, CallError> {
    state.db.write(f).await.map_err(|e| {
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
    let t = now();
    match action {
        "BootNotification" => {
            let req: msg::boot_notification::BootNotificationRequest =
                frames::decode_valid(payload)?;
            let interval = state.config.ocpp_heartbeat_secs;
            db(state, move |conn| {
                let serial = req
                    .charge_point_serial_number
                    .as_deref()
                    .or(req.charge_box_serial_number.as_deref());
                let boot = places::Boot {
                    vendor: Some(&req.charge_point_vendor),
                    model: Some(&req.charge_point_model),
                    serial_number: serial,
                    firmware_version: req.firmware_version.as_deref(),
                    heartbeat_interval: i64::from(interval),
                    last_seen_at: Some(t),
                };
                Ok(places::record_boot(conn, &cp, &boot)?)
            })
            .await?;
            to_value(msg::boot_notification::BootNotificationResponse {
                current_time: wall_clock(),
                interval,
                status: RegistrationStatus::Accepted,
            })
        }
        "Heartbeat" => {
            let _: msg::heart_beat::HeartbeatRequest = frames::decode(payload)?;
            db(state, move |conn| Ok(places::touch(conn, &cp, t)?)).await?;
            to_value(msg::heart_beat::HeartbeatResponse {
                current_time: wall_clock(),
            })
        }
        "StatusNotification" => {
            let req: msg::status_notification::StatusNotificationRequest =
                frames::decode_valid(payload)?;
            let at = req.timestamp.map_or(t, |ts| ts.naive_utc());
            let status = enum_text(&req.status);
            let error = enum_text(&req.error_code);
            let connector = i64::from(req.connector_id);
            db(state, move |conn| {
                let error = (error != "NoError").then_some(error.as_str());
                // One transaction: one commit instead of three.
                crate::db::write_tx(conn, |conn| {
                    sessions::insert_status_event(conn, &cp, connector, &status, error, at, t)?;
                    places::set_connector_status(conn, &cp, connector, &status, error, at)?;
                    places::touch(conn, &cp, t)
                })?;
                Ok(())
            })
            .await?;
            to_value(msg::status_notification::StatusNotificationResponse {})
        }
        "Authorize" => {
            let req: msg::authorize::AuthorizeRequest = frames::decode_valid(payload)?;
            let auth = db(state, move |conn| {
                let auth = charging::authorize_tag(conn, &req.id_tag, t)?;
                charging::audit_decision(conn, "rfid_authorize", &cp, &auth, t)?;
                Ok(auth)
            })
            .await?;
            to_value(msg::authorize::AuthorizeResponse {
                id_tag_info: id_tag_info(&auth),
            })
        }
        "StartTransaction" => {
            let req: msg::start_transaction::StartTransactionRequest =
                frames::decode_valid(payload)?;
            let stale_before = t - stale_after(state);
            let started = db(state, move |conn| {
                crate::db::write_tx(conn, |conn| {
                    let started = charging::start_transaction(
                        conn,
                        &cp,
                        req.connector_id,
                        &req.id_tag,
                        req.meter_start,
                        req.timestamp,
                        t,
                        stale_before,
                    )?;
                    if !started.replay {
                        charging::audit_decision(
                            conn,
                            "transaction_start",
                            &cp,
                            &started.authorization,
                            t,
                        )?;
                    }
                    Ok::<_, ApiError>(started)
                })
            })
            .await?;
            let transaction_id = i32::try_from(started.transaction_id).map_err(|_| {
                CallError::new(ErrorCode::InternalError, "transaction id space exhausted")
            })?;
            to_value(msg::start_transaction::StartTransactionResponse {
                id_tag_info: id_tag_info(&started.authorization),
                transaction_id,
            })
        }
        "MeterValues" => {
            let req: msg::meter_values::MeterValuesRequest = frames::decode(payload)?;
            db(state, move |conn| {
                crate::db::write_tx(conn, |conn| {
                    let foreign = charging::store_meter_values(
                        conn,
                        &cp,
                        req.connector_id,
                        req.transaction_id,
                        &req.meter_value,
                        t,
                    )?;
                    audit_foreign(conn, &cp, &foreign, "MeterValues", t)?;
                    Ok::<_, ApiError>(())
                })
            })
            .await?;
            to_value(msg::meter_values::MeterValuesResponse {})
        }
        "StopTransaction" => {
            let req: msg::stop_transaction::StopTransactionRequest = frames::decode_valid(payload)?;
            let (info, finished) = db(state, move |conn| {
                crate::db::write_tx(conn, |conn| {
                    let reason = req.reason.as_ref().map(enum_text);
                    let data = req.transaction_data.clone().unwrap_or_default();
                    // A transaction of another charger is not this charger's to stop.
                    if let Some(s) = sessions::find_session(conn, i64::from(req.transaction_id))? {
                        if s.charge_point_id != cp {
                            audit_foreign(conn, &cp, &[s.id], "StopTransaction", t)?;
                            charging::store_meter_values(conn, &cp, 0, None, &data, t)?;
                            return Ok::<_, ApiError>((None, None));
                        }
                    }
                    let stopped = charging::stop_transaction(
                        conn,
                        &cp,
                        req.transaction_id,
                        req.meter_stop,
                        req.timestamp,
                        reason.as_deref(),
                        &data,
                        t,
                    )?;
                    // A replayed stop prices too: its first pricing may have been cut short
                    // (pricing a priced session changes nothing).
                    let finished = match stopped {
                        charging::Stopped::Finished(id)
                        | charging::Stopped::AlreadyFinished(id) => Some(id),
                        charging::Stopped::Unknown => None,
                    };
                    let info = match &req.id_tag {
                        Some(tag) => Some(charging::authorize_tag(conn, tag, t)?),
                        None => None,
                    };
                    Ok((info, finished))
                })
            })
            .await?;
            // Pricing runs after the stop is committed: whatever it does, the stop and its
            // meter data are stored and the charger gets its answer. A session that cannot
            // be priced is held with the reason; should the pricing write itself fail, the
            // record stays open and the next invoice run prices it.
            if let Some(id) = finished {
                let priced = state
                    .db
                    .write(move |conn| crate::billing::records::price_finished(conn, id, t))
                    .await;
                if let Err(e) = priced {
                    tracing::error!(session = id, error = %e, "pricing a finished session failed");
                }
            }
            to_value(msg::stop_transaction::StopTransactionResponse {
                id_tag_info: info.map(|a| id_tag_info(&a)),
            })
        }
        "DataTransfer" => {
            let req: DataTransferRequest = frames::decode(payload)?;
            check_length("vendorId", &req.vendor_id, 255)?;
            if let Some(id) = &req.message_id {
                check_length("messageId", id, 50)?;
            }
            tracing::info!(charge_point = %cp, vendor = %req.vendor_id, message_id = ?req.message_id, "DataTransfer from charger (no vendor extensions supported)");
            Ok(serde_json::json!({"status": "UnknownVendorId"}))
        }
        "FirmwareStatusNotification" | "DiagnosticsStatusNotification" => {
            let status = if action.starts_with("Firmware") {
                let req: msg::firmware_status_notification::FirmwareStatusNotificationRequest =
                    frames::decode(payload)?;
                enum_text(&req.status)
            } else {
                let req: msg::diagnostics_status_notification::DiagnosticsStatusNotificationRequest =
                    frames::decode(payload)?;
                enum_text(&req.status)
            };
            let action = action.to_string();
            db(state, move |conn| {
                let mut event = NewEvent::user(
                    None,
                    &format!(
                        "charger_{}",
                        if action.starts_with("Firmware") {
                            "firmware_status"
                        } else {
                            "diagnostics_status"
                        }
                    ),
                    audit::SUCCESS,
                    None,
                    t,
                )
                .because(status);
                event.actor = format!("charger:{cp}");
                event.charge_point_id = Some(cp);
                Ok(audit::record(conn, &event)?)
            })
            .await?;
            Ok(serde_json::json!({}))
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

fn audit_foreign(
    conn: &mut crate::db::DbConn,
    cp: &str,
    foreign: &[i64],
    what: &str,
    t: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    for id in foreign {
        let mut event = NewEvent::user(None, "foreign_transaction_refused", audit::DENIED, None, t)
            .because(format!(
                "{what} for transaction {id} of another charger; data kept unlinked"
            ));
        event.actor = format!("charger:{cp}");
        event.charge_point_id = Some(cp.to_string());
        audit::record(conn, &event)?;
    }
    Ok(())
}

fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
