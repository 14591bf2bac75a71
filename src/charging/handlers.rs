//! HTTP handlers for `/sessions` (drivers) and `/admin/sessions`, `/admin/charge-points/{id}/…`
//! charger commands (operators).

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::queries::{self, MeterValueRow, NewSession, SessionFilter, ACTIVE, PENDING};
use super::{view, SessionView};
use crate::app::{AppState, State};
use crate::audit::{self, NewEvent};
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::ApiError;
use crate::locations::queries as places;
use crate::ocpp::registry::CallFailure;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(start_session)
        .service(list_sessions)
        .service(get_session)
        .service(session_meter_values)
        .service(stop_session)
        .service(admin_sessions)
        .service(reset)
        .service(unlock_connector)
        .service(change_availability)
        .service(trigger_message);
}

/// Which connector to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[schema(example = "SE-STO-0001")]
    pub charge_point_id: String,
    #[schema(example = 1)]
    pub connector_id: i64,
}

/// A session just requested; follow it at `GET /sessions/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartAccepted {
    pub id: i64,
    #[schema(example = "pending")]
    pub status: &'static str,
}

fn audit_app(
    conn: &mut crate::db::DbConn,
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

/// App unlock: checks the charger, the connector and the driver, asks the charger to start
/// with the driver's app id tag and answers at once. The charger's StartTransaction turns the
/// session active; a refusal or no start within the timeout ends it as failed with a reason.
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])), request_body = StartRequest,
    responses(
        (status = 202, description = "Requested; poll the session", body = StartAccepted),
        (status = 404, description = "No such charge point or connector", body = ErrorBody),
        (status = 409, description = "Connector not available, or the driver already charging", body = ErrorBody),
        (status = 503, description = "The charger is offline", body = ErrorBody),
    ))]
#[post("/sessions")]
pub async fn start_session(
    state: State,
    me: AuthUser,
    body: web::Json<StartRequest>,
) -> Result<HttpResponse, ApiError> {
    let StartRequest {
        charge_point_id: cp,
        connector_id,
    } = body.into_inner();
    let session_id = app_unlock(&state, me.id, cp, connector_id).await?;
    Ok(HttpResponse::Accepted().json(StartAccepted {
        id: session_id,
        status: "pending",
    }))
}

/// App unlock for a driver (the rules of `POST /sessions`, shared with the web portal): the
/// new session's id, pending until the charger starts it.
pub async fn app_unlock(
    state: &State,
    user: i64,
    cp: String,
    connector_id: i64,
) -> Result<i64, ApiError> {
    let online = state.registry.get(&cp).is_some();
    let cp2 = cp.clone();
    // A pending start whose waiting task died with a restart must not block anyone.
    let stale =
        chrono::Duration::from_std(state.config.app_start_timeout + state.config.ocpp_call_timeout)
            .unwrap_or(chrono::Duration::minutes(5));
    let (session_id, id_tag) = state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                queries::fail_stale_pending(conn, t - stale, t)?;
                places::find_charge_point(conn, &cp2)?
                    .ok_or_else(|| ApiError::not_found("charge point"))?;
                let connector = places::find_connector(conn, &cp2, connector_id)?
                    .ok_or_else(|| ApiError::not_found("connector"))?;
                let refuse = |conn: &mut crate::db::DbConn,
                              err: ApiError,
                              reason: &str|
                 -> Result<(i64, String), ApiError> {
                    audit_app(
                        conn,
                        user,
                        "app_unlock",
                        audit::DENIED,
                        &cp2,
                        reason.to_string(),
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
                if !queries::open_for_user(conn, user)?.is_empty() {
                    return refuse(
                        conn,
                        ApiError::conflict(
                            "session_in_progress",
                            "you already have a session in progress",
                        ),
                        "driver already charging",
                    );
                }
                let tag = queries::app_tag_for(conn, user)?;
                let id = queries::insert_session(
                    conn,
                    &NewSession {
                        user_id: Some(user),
                        charge_point_id: &cp2,
                        connector_id,
                        id_tag: &tag,
                        origin: "app",
                        status: PENDING,
                        start_key: None,
                        started_at: None,
                        meter_start_wh: None,
                        created_at: t,
                        updated_at: t,
                    },
                )?;
                audit_app(
                    conn,
                    user,
                    "app_unlock",
                    audit::SUCCESS,
                    &cp2,
                    format!("RemoteStartTransaction requested for session {id}"),
                    t,
                )?;
                Ok((id, tag))
            })
        })
        .await?;
    let state = state.clone().into_inner();
    actix_web::rt::spawn(remote_start(state, cp, connector_id, session_id, id_tag));
    Ok(session_id)
}

/// Sends RemoteStartTransaction and ends the session as failed on refusal or timeout.
async fn remote_start(
    state: std::sync::Arc<AppState>,
    cp: String,
    connector_id: i64,
    session_id: i64,
    id_tag: String,
) {
    let payload = json!({"connectorId": connector_id, "idTag": id_tag});
    let outcome = state
        .registry
        .call(
            &cp,
            "RemoteStartTransaction",
            &payload,
            state.config.ocpp_call_timeout,
        )
        .await;
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
    let _ = state
        .db
        .run(move |conn| {
            let t = now();
            if queries::fail_pending(conn, session_id, failure, t)? {
                let session = queries::find_session(conn, session_id)?;
                if let Some(user) = session.and_then(|s| s.user_id) {
                    audit_app(
                        conn,
                        user,
                        "app_unlock",
                        audit::FAILURE,
                        &cp,
                        format!("session {session_id}: {failure}"),
                        t,
                    )?;
                }
            }
            Ok(())
        })
        .await;
}

/// The signed-in driver's sessions, newest first.
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])), params(PageQuery),
    responses((status = 200, body = Page<SessionView>), (status = 401, body = ErrorBody)))]
#[get("/sessions")]
pub async fn list_sessions(
    state: State,
    me: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<SessionView>>, ApiError> {
    let page = q.validate()?;
    let filter = SessionFilter {
        user_id: Some(me.id),
        ..Default::default()
    };
    Ok(web::Json(page_of(&state, filter, page).await?))
}

/// One page of sessions matching a filter, as views.
pub async fn page_of(
    state: &State,
    filter: SessionFilter,
    page: crate::http::pagination::PageRequest,
) -> Result<Page<SessionView>, ApiError> {
    let views = state
        .db
        .run(move |conn| {
            let t = now();
            let rows = queries::list_sessions(conn, &filter, page.limit + 1, page.cursor)?;
            rows.into_iter()
                .map(|s| view(conn, s, t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(Page::from_rows(views, page, |v| v.id))
}

/// Loads a session the caller may see: the driver's own, or any for an operator.
pub async fn visible_session(
    state: &State,
    me: &AuthUser,
    id: i64,
) -> Result<SessionView, ApiError> {
    let (user, operator) = (me.id, me.is_operator());
    state
        .db
        .run(move |conn| {
            let s = queries::find_session(conn, id)?
                .filter(|s| operator || s.user_id == Some(user))
                .ok_or_else(|| ApiError::not_found("session"))?;
            view(conn, s, now())
        })
        .await
}

/// One session, live or final: energy, power, SoC, charging and idle time, flags.
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 404, description = "No such session of yours", body = ErrorBody)))]
#[get("/sessions/{id}")]
pub async fn get_session(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<SessionView>, ApiError> {
    Ok(web::Json(
        visible_session(&state, &me, id.into_inner()).await?,
    ))
}

/// A sampled value as the charger sent it, with the number normalised.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeterValueView {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub sampled_at: NaiveDateTime,
    pub measurand: String,
    pub phase: Option<String>,
    pub unit: Option<String>,
    pub context: Option<String>,
    pub location: Option<String>,
    /// Raw or SignedData.
    pub format: Option<String>,
    /// Exactly as sent (signed data verbatim).
    pub value: String,
    /// Energy in Wh, power in W, SoC in %, current in mA, voltage in mV.
    pub normalized: Option<i64>,
}

impl From<MeterValueRow> for MeterValueView {
    fn from(r: MeterValueRow) -> Self {
        MeterValueView {
            id: r.id,
            sampled_at: r.sampled_at,
            measurand: r.measurand,
            phase: r.phase,
            unit: r.unit,
            context: r.context,
            location: r.location,
            format: r.format,
            value: r.value,
            normalized: r.normalized,
        }
    }
}

/// A session's meter values in the order received (cursor pagination, oldest first).
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id"), PageQuery),
    responses((status = 200, body = Page<MeterValueView>), (status = 404, body = ErrorBody)))]
#[get("/sessions/{id}/meter-values")]
pub async fn session_meter_values(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<MeterValueView>>, ApiError> {
    let id = id.into_inner();
    let page = q.validate_with(100, 1000)?;
    let (user, operator) = (me.id, me.is_operator());
    let rows = state
        .db
        .run(move |conn| {
            queries::find_session(conn, id)?
                .filter(|s| operator || s.user_id == Some(user))
                .ok_or_else(|| ApiError::not_found("session"))?;
            Ok(queries::meter_values_of(
                conn,
                id,
                page.limit + 1,
                page.cursor,
            )?)
        })
        .await?;
    let page = Page::from_rows(rows, page, |r| r.id);
    Ok(web::Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
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

fn call_error(e: CallFailure) -> ApiError {
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

/// Asks the charger to stop the driver's session (RemoteStopTransaction).
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses(
        (status = 202, description = "The charger accepted; the session finishes when it reports the stop", body = ChargerAnswer),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The session is not active, or the charger refused", body = ErrorBody),
        (status = 503, description = "The charger is offline", body = ErrorBody),
    ))]
#[post("/sessions/{id}/stop")]
pub async fn stop_session(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (status, answer) = remote_stop(&state, me.id, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(ChargerAnswer {
        status,
        response: answer,
    }))
}

/// Remote stop of a driver's own active session (the rules of `POST /sessions/{id}/stop`,
/// shared with the web portal): the charger's status and whole answer once it accepted.
pub async fn remote_stop(state: &State, user: i64, id: i64) -> Result<(String, Value), ApiError> {
    // Only the session's driver may stop it.
    let session = state
        .db
        .run(move |conn| {
            queries::find_session(conn, id)?
                .filter(|s| s.user_id == Some(user))
                .ok_or_else(|| ApiError::not_found("session"))
        })
        .await?;
    if session.status != ACTIVE {
        return Err(ApiError::conflict(
            "session_not_active",
            format!("the session is {}", session.status),
        ));
    }
    let cp = session.charge_point_id.clone();
    let result = state
        .registry
        .call(
            &cp,
            "RemoteStopTransaction",
            &json!({"transactionId": id}),
            state.config.ocpp_call_timeout,
        )
        .await;
    let (outcome, reason) = match &result {
        Ok(a) => (
            if a.get("status").and_then(Value::as_str) == Some("Accepted") {
                audit::SUCCESS
            } else {
                audit::DENIED
            },
            format!("charger answered {a}"),
        ),
        Err(e) => (audit::FAILURE, e.to_string()),
    };
    state
        .db
        .run(move |conn| {
            Ok(audit_app(
                conn,
                user,
                "remote_stop",
                outcome,
                &cp,
                format!("session {id}: {reason}"),
                now(),
            )?)
        })
        .await?;
    let answer = result.map_err(call_error)?;
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if status != "Accepted" {
        return Err(ApiError::conflict(
            "charger_refused",
            format!("the charger answered {status}"),
        ));
    }
    Ok((status, answer))
}

/// Filters for the operator's session list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminSessionQuery {
    pub user_id: Option<i64>,
    pub charge_point_id: Option<String>,
    /// pending, active, finished or failed.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// All sessions, filterable (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), params(AdminSessionQuery),
    responses((status = 200, body = Page<SessionView>), (status = 403, body = ErrorBody)))]
#[get("/admin/sessions")]
pub async fn admin_sessions(
    state: State,
    _op: Operator,
    q: web::Query<AdminSessionQuery>,
) -> Result<web::Json<Page<SessionView>>, ApiError> {
    let q = q.into_inner();
    if q.status
        .as_deref()
        .is_some_and(|s| ![PENDING, ACTIVE, queries::FINISHED, queries::FAILED].contains(&s))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status must be pending, active, finished or failed",
        ));
    }
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .validate()?;
    let filter = SessionFilter {
        user_id: q.user_id,
        charge_point_id: q.charge_point_id,
        status: q.status,
    };
    Ok(web::Json(page_of(&state, filter, page).await?))
}

async fn command(
    state: State,
    op: Operator,
    cp: String,
    action: &'static str,
    payload: Value,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let lookup = cp.clone();
    state
        .db
        .run(move |conn| {
            places::find_charge_point(conn, &lookup)?
                .ok_or_else(|| ApiError::not_found("charge point"))
        })
        .await?;
    let result = state
        .registry
        .call(&cp, action, &payload, state.config.ocpp_call_timeout)
        .await;
    let reason = match &result {
        Ok(a) => format!("{action} {payload}: charger answered {a}"),
        Err(e) => format!("{action} {payload}: {e}"),
    };
    let outcome = if result.is_ok() {
        audit::SUCCESS
    } else {
        audit::FAILURE
    };
    state
        .db
        .run(move |conn| {
            let mut event = NewEvent::user(Some(op.0.id), "charger_command", outcome, None, now())
                .because(reason);
            event.charge_point_id = Some(cp);
            Ok(audit::record(conn, &event)?)
        })
        .await?;
    let answer = result.map_err(call_error)?;
    let status = answer
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(web::Json(ChargerAnswer {
        status,
        response: answer,
    }))
}

/// Reset request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// Soft or Hard.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Resets a charger (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = ResetBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, description = "The charger answered with an error", body = ErrorBody),
        (status = 503, description = "The charger is offline", body = ErrorBody),
        (status = 504, description = "The charger did not answer", body = ErrorBody)))]
#[post("/admin/charge-points/{id}/reset")]
pub async fn reset(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<ResetBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    if !matches!(body.kind.as_str(), "Soft" | "Hard") {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "type must be Soft or Hard",
        ));
    }
    command(
        state,
        op,
        id.into_inner(),
        "Reset",
        json!({"type": body.kind}),
    )
    .await
}

/// Connector request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorBody {
    pub connector_id: u32,
}

/// Unlocks a connector (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = ConnectorBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/unlock-connector")]
pub async fn unlock_connector(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<ConnectorBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    if body.connector_id == 0 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "connector_id must be 1 or more",
        ));
    }
    command(
        state,
        op,
        id.into_inner(),
        "UnlockConnector",
        json!({"connectorId": body.connector_id}),
    )
    .await
}

/// Availability request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityBody {
    /// 0 for the whole charger.
    pub connector_id: u32,
    /// Operative or Inoperative.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Makes a connector (or the charger) operative or inoperative (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = AvailabilityBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/change-availability")]
pub async fn change_availability(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<AvailabilityBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    if !matches!(body.kind.as_str(), "Operative" | "Inoperative") {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "type must be Operative or Inoperative",
        ));
    }
    command(
        state,
        op,
        id.into_inner(),
        "ChangeAvailability",
        json!({"connectorId": body.connector_id, "type": body.kind}),
    )
    .await
}

/// Trigger request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// BootNotification, DiagnosticsStatusNotification, FirmwareStatusNotification, Heartbeat,
    /// MeterValues or StatusNotification.
    pub requested_message: String,
    pub connector_id: Option<u32>,
}

/// Asks the charger to send a message now (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = TriggerBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/trigger-message")]
pub async fn trigger_message(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<TriggerBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    const MESSAGES: &[&str] = &[
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    ];
    if !MESSAGES.contains(&body.requested_message.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("requested_message must be one of {}", MESSAGES.join(", ")),
        ));
    }
    let mut payload = json!({"requestedMessage": body.requested_message});
    if let Some(c) = body.connector_id {
        payload["connectorId"] = json!(c);
    }
    command(state, op, id.into_inner(), "TriggerMessage", payload).await
}
