//! Sessions started and stopped from the central system, and the commands operators send to
//! chargers: the rules behind `POST /sessions` (app unlock), `POST /sessions/{id}/stop`, and
//! the operator's remote start, remote stop and charger commands. Handlers only parse and
//! answer; every decision and its audit event is here.

use std::sync::Arc;

use chrono::NaiveDateTime;
use rust_ocpp::v1_6::messages::remote_start_transaction::RemoteStartTransactionRequest;
use rust_ocpp::v1_6::messages::remote_stop_transaction::RemoteStopTransactionRequest;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::queries::{self, NewSession, Session, SessionOrigin, SessionStatus};
use crate::audit::{self, NewEvent};
use crate::db::{write_tx, DbConn};
use crate::http::time::now;
use crate::http::ApiError;
use crate::locations::queries as places;
use crate::ocpp::commands::Command;
use crate::ocpp::registry::CallFailure;
use crate::state::AppState;

/// Who asks for a remote start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The driver, from the app or the portal.
    Driver(i64),
    /// An operator, on behalf of a driver.
    Operator(i64),
}

impl Requester {
    fn user_id(self) -> i64 {
        match self {
            Requester::Driver(id) | Requester::Operator(id) => id,
        }
    }

    fn start_action(self) -> &'static str {
        match self {
            Requester::Driver(_) => "app_unlock",
            Requester::Operator(_) => "operator_remote_start",
        }
    }

    fn stop_action(self) -> &'static str {
        match self {
            Requester::Driver(_) => "remote_stop",
            Requester::Operator(_) => "operator_remote_stop",
        }
    }
}

/// The charger's answer to a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargerAnswer {
    /// The charger's status field, e.g. Accepted or Rejected.
    pub status: String,
    /// The whole answer payload.
    #[schema(value_type = Object)]
    pub response: Value,
}

impl ChargerAnswer {
    fn of(response: Value) -> Self {
        let status = response
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        ChargerAnswer { status, response }
    }
}

/// The API error for a call that got no usable answer.
pub fn call_error(e: CallFailure) -> ApiError {
    match e {
        CallFailure::Offline => ApiError::Unavailable("the charger is offline".into()),
        CallFailure::Timeout => {
            ApiError::GatewayTimeout("the charger did not answer in time".into())
        }
        CallFailure::Refused { code, description } => {
            ApiError::BadGateway(format!("the charger answered {code}: {description}"))
        }
    }
}

fn audit_event(
    conn: &mut DbConn,
    user_id: i64,
    action: &str,
    outcome: &str,
    cp: &str,
    reason: String,
    t: NaiveDateTime,
) -> diesel::QueryResult<()> {
    let mut event = NewEvent::user(Some(user_id), action, outcome, None, t).because(reason);
    event.charge_point_id = Some(cp.to_string());
    audit::record(conn, &event)
}

/// Requests a remote start for `driver` at a connector: checks the charger, the connector and
/// the driver, records a pending session, sends RemoteStartTransaction with the driver's app id
/// tag in the background and returns the session id at once. The charger's StartTransaction
/// turns the session active; a refusal, a disconnect or no start within the timeout ends it as
/// failed with the reason.
pub async fn request_start(
    state: Arc<AppState>,
    requester: Requester,
    driver: i64,
    cp: String,
    connector_id: i64,
) -> Result<i64, ApiError> {
    let local = state.registry.get(&cp).is_some();
    let shared = crate::cluster::is_shared(&state);
    let stale_after = state.stale_after();
    // A pending start whose waiting task died with a restart must not block anyone.
    let pending_for =
        chrono::Duration::from_std(state.config.app_start_timeout + state.config.ocpp_call_timeout)
            .unwrap_or(chrono::Duration::minutes(5));
    let cp2 = cp.clone();
    let actor = requester.user_id();
    let action = requester.start_action();
    let (session_id, id_tag) = state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                queries::fail_stale_pending(conn, t - pending_for, t)?;
                places::find_charge_point(conn, &cp2)?
                    .ok_or_else(|| ApiError::not_found("charge point"))?;
                let connector = places::find_connector(conn, &cp2, connector_id)?
                    .ok_or_else(|| ApiError::not_found("connector"))?;
                // Connected here, or (several instances) to another instance.
                let online = local || (shared && places::owner_of(conn, &cp2)?.is_some());
                let refuse =
                    |conn: &mut DbConn, err: ApiError, reason: &str| -> Result<_, ApiError> {
                        audit_event(
                            conn,
                            actor,
                            action,
                            audit::DENIED,
                            &cp2,
                            format!("driver {driver}: {reason}"),
                            t,
                        )?;
                        Err(err)
                    };
                if !online {
                    return refuse(
                        conn,
                        ApiError::Unavailable("the charger is offline".into()),
                        "charger offline",
                    );
                }
                if !matches!(
                    connector.status.as_str(),
                    "Available" | "Preparing" | "Unknown"
                ) {
                    return refuse(
                        conn,
                        ApiError::conflict(
                            "connector_unavailable",
                            format!("the connector is {}", connector.status),
                        ),
                        "connector not available",
                    );
                }
                if !queries::open_on_connector(conn, &cp2, connector_id)?.is_empty() {
                    return refuse(
                        conn,
                        ApiError::conflict(
                            "connector_busy",
                            "the connector has a session in progress",
                        ),
                        "connector busy",
                    );
                }
                if !queries::running_for_user(conn, driver, t - stale_after)?.is_empty() {
                    return refuse(
                        conn,
                        ApiError::conflict(
                            "session_in_progress",
                            "the driver already has a session in progress",
                        ),
                        "driver already charging",
                    );
                }
                match crate::accounts::queries::find(conn, driver)? {
                    Some(u) if u.status == crate::accounts::queries::ACTIVE => {}
                    _ => {
                        return refuse(conn, ApiError::not_found("driver"), "no such active driver")
                    }
                }
                let tag = queries::app_tag_for(conn, driver)?;
                let id = queries::insert_session(
                    conn,
                    NewSession {
                        user_id: Some(driver),
                        charge_point_id: &cp2,
                        connector_id,
                        id_tag: &tag,
                        origin: SessionOrigin::App,
                        status: SessionStatus::Pending,
                        start_key: None,
                        started_at: None,
                        meter_start_wh: None,
                        created_at: t,
                        updated_at: t,
                    },
                )?;
                audit_event(
                    conn,
                    actor,
                    action,
                    audit::SUCCESS,
                    &cp2,
                    format!("RemoteStartTransaction requested for session {id} of driver {driver}"),
                    t,
                )?;
                Ok((id, tag))
            })
        })
        .await?;
    actix_web::rt::spawn(remote_start(
        state,
        requester,
        cp,
        connector_id,
        session_id,
        id_tag,
    ));
    Ok(session_id)
}

/// App unlock for a driver (`POST /sessions`, the portal's start page): [`request_start`] for
/// the driver themself.
pub async fn app_unlock(
    state: Arc<AppState>,
    driver: i64,
    cp: String,
    connector_id: i64,
) -> Result<i64, ApiError> {
    request_start(state, Requester::Driver(driver), driver, cp, connector_id).await
}

/// A driver's stop of their own active session (`POST /sessions/{id}/stop`, the portal's stop
/// button); another driver's session answers 404.
pub async fn driver_stop(
    state: Arc<AppState>,
    driver: i64,
    session_id: i64,
) -> Result<ChargerAnswer, ApiError> {
    let session = state
        .db
        .run(move |conn| {
            queries::find_session(conn, session_id)?
                .filter(|s| s.user_id == Some(driver))
                .ok_or_else(|| ApiError::not_found("session"))
        })
        .await?;
    request_stop(state, Requester::Driver(driver), session).await
}

/// Sends RemoteStartTransaction and ends the session as failed on refusal or timeout.
async fn remote_start(
    state: Arc<AppState>,
    requester: Requester,
    cp: String,
    connector_id: i64,
    session_id: i64,
    id_tag: String,
) {
    let command = Command::RemoteStartTransaction(RemoteStartTransactionRequest {
        connector_id: u32::try_from(connector_id).ok(),
        id_tag,
        charging_profile: None,
    });
    let outcome = crate::cluster::send(&state, &cp, &command, state.config.ocpp_call_timeout).await;
    let failure = match outcome {
        Ok(answer) if answer.get("status").and_then(Value::as_str) == Some("Accepted") => {
            tokio::time::sleep(state.config.app_start_timeout).await;
            "the charger did not start the session in time"
        }
        Ok(_) => "the charger refused to start",
        Err(CallFailure::Timeout) => "the charger did not answer",
        Err(CallFailure::Offline) => "the charger went offline",
        Err(CallFailure::Refused { .. }) => "the charger answered with an error",
    };
    let action = requester.start_action();
    let _ = state
        .db
        .run(move |conn| {
            let t = now();
            if queries::fail_pending(conn, session_id, failure, t)? {
                audit_event(
                    conn,
                    requester.user_id(),
                    action,
                    audit::FAILURE,
                    &cp,
                    format!("session {session_id}: {failure}"),
                    t,
                )?;
            }
            Ok(())
        })
        .await;
}

/// Asks the charger to stop an active session (RemoteStopTransaction), audited for the
/// requester. A driver may stop only their own session: the handler checks that before.
pub async fn request_stop(
    state: Arc<AppState>,
    requester: Requester,
    session: Session,
) -> Result<ChargerAnswer, ApiError> {
    if session.status != SessionStatus::Active {
        return Err(ApiError::conflict(
            "session_not_active",
            format!("the session is {}", session.status),
        ));
    }
    let id = session.id;
    let transaction_id = i32::try_from(id)
        .map_err(|_| ApiError::conflict("session_not_active", "not an OCPP transaction id"))?;
    let cp = session.charge_point_id.clone();
    let command = Command::RemoteStopTransaction(RemoteStopTransactionRequest { transaction_id });
    let result = crate::cluster::send(&state, &cp, &command, state.config.ocpp_call_timeout).await;
    let (outcome, reason) = match &result {
        Ok(a) if a.get("status").and_then(Value::as_str) == Some("Accepted") => {
            (audit::SUCCESS, format!("charger answered {a}"))
        }
        Ok(a) => (audit::DENIED, format!("charger answered {a}")),
        Err(e) => (audit::FAILURE, e.to_string()),
    };
    let user = requester.user_id();
    let action = requester.stop_action();
    state
        .db
        .run(move |conn| {
            Ok(audit_event(
                conn,
                user,
                action,
                outcome,
                &cp,
                format!("session {id}: {reason}"),
                now(),
            )?)
        })
        .await?;
    let answer = ChargerAnswer::of(result.map_err(call_error)?);
    if answer.status != "Accepted" {
        return Err(ApiError::conflict(
            "charger_refused",
            format!("the charger answered {}", answer.status),
        ));
    }
    Ok(answer)
}

/// 404 unless the charge point is registered.
async fn ensure_charge_point(state: &AppState, cp: &str) -> Result<(), ApiError> {
    let lookup = cp.to_string();
    state
        .db
        .run(move |conn| {
            places::find_charge_point(conn, &lookup)?
                .ok_or_else(|| ApiError::not_found("charge point"))
        })
        .await
        .map(drop)
}

/// Sends a command to a charger for an operator, audited with the payload (secrets redacted)
/// and the answer.
pub async fn send_command(
    state: &AppState,
    operator: i64,
    cp: String,
    command: Command,
) -> Result<ChargerAnswer, ApiError> {
    ensure_charge_point(state, &cp).await?;
    let result = crate::cluster::send(state, &cp, &command, state.config.ocpp_call_timeout).await;
    let (action, shown) = (command.action(), command.audit_payload());
    let reason = match &result {
        Ok(a) => format!("{action} {shown}: charger answered {}", redact_answer(a)),
        Err(e) => format!("{action} {shown}: {e}"),
    };
    let outcome = if result.is_ok() {
        audit::SUCCESS
    } else {
        audit::FAILURE
    };
    state
        .db
        .run(move |conn| {
            let mut event = NewEvent::user(Some(operator), "charger_command", outcome, None, now())
                .because(reason);
            event.charge_point_id = Some(cp);
            Ok(audit::record(conn, &event)?)
        })
        .await?;
    Ok(ChargerAnswer::of(redact_answer(
        &result.map_err(call_error)?,
    )))
}

/// A GetConfiguration answer without the values of secret keys.
fn redact_answer(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(keys) = answer
        .get_mut("configurationKey")
        .and_then(Value::as_array_mut)
    {
        for kv in keys {
            let secret = kv
                .get("key")
                .and_then(Value::as_str)
                .is_some_and(crate::ocpp::commands::is_secret_key);
            if secret {
                if let Some(v) = kv.get_mut("value") {
                    *v = Value::String("[redacted]".into());
                }
            }
        }
    }
    answer
}

/// A new charger key: 20 random bytes as 40 hex digits, the form the OCPP 1.6 security
/// whitepaper gives for `AuthorizationKey` (Basic-auth passwords of security profiles 1 and 2).
pub fn new_charger_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a charger's new key reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyDelivery {
    /// Sent with ChangeConfiguration `AuthorizationKey` and accepted by the charger.
    Charger,
    /// Set by the operator without telling the charger (the charger is configured by hand).
    Manual,
}

/// Rotates a charger's key (operator). By default the new key is sent to the connected
/// charger with ChangeConfiguration `AuthorizationKey`; it replaces the stored key only when
/// the charger answers Accepted, and then the connection opened with the old key is closed so
/// the charger reconnects with the new one. A refusal or no answer leaves the old key in force.
/// `manual` sets the key without the charger (offline, or not supporting the key): the live
/// connection, if any, is closed at once, so the old key stops working everywhere.
pub async fn rotate_key(
    state: &AppState,
    operator: i64,
    cp: String,
    manual: bool,
) -> Result<(String, KeyDelivery), ApiError> {
    ensure_charge_point(state, &cp).await?;
    let key = new_charger_key();
    let old_link = state.registry.get(&cp);
    let delivery = if manual {
        KeyDelivery::Manual
    } else {
        if !crate::cluster::is_connected(state, &cp).await {
            return Err(ApiError::Unavailable(
                "the charger is offline; rotate with ?manual=true to set a key configured by hand"
                    .into(),
            ));
        }
        let command = Command::ChangeConfiguration(
            rust_ocpp::v1_6::messages::change_configuration::ChangeConfigurationRequest {
                key: "AuthorizationKey".into(),
                value: key.clone(),
            },
        );
        let answer = send_command(state, operator, cp.clone(), command).await?;
        if answer.status != "Accepted" {
            return Err(ApiError::conflict(
                "key_change_refused",
                format!(
                    "the charger answered {}; the old key stays in force",
                    answer.status
                ),
            ));
        }
        KeyDelivery::Charger
    };
    let hash = crate::auth::tokens::token_hash(&key);
    let id = cp.clone();
    state
        .db
        .write(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                places::set_key_hash(conn, &id, &hash, t)?;
                let mut event =
                    NewEvent::user(Some(operator), "charger_key_rotated", audit::SUCCESS, None, t)
                        .because(match delivery {
                            KeyDelivery::Charger => "new key accepted by the charger (ChangeConfiguration AuthorizationKey); old connection closed",
                            KeyDelivery::Manual => "new key set by hand; any live connection closed",
                        });
                event.charge_point_id = Some(id.clone());
                audit::record(conn, &event)
            })?;
            Ok(())
        })
        .await?;
    // The connection authenticated with the old key ends, on whichever instance holds it; the
    // charger reconnects with the new one.
    crate::cluster::disconnect(state, &cp, old_link).await;
    Ok((key, delivery))
}
