//! HTTP handlers for `/sessions` (drivers) and `/admin/sessions`, `/admin/charge-points/{id}/…`
//! charger commands (operators).

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use rust_ocpp::v1_6::messages::{
    change_availability::ChangeAvailabilityRequest,
    change_configuration::ChangeConfigurationRequest, clear_cache::ClearCacheRequest,
    data_transfer::DataTransferRequest, get_configuration::GetConfigurationRequest,
    reset::ResetRequest, trigger_message::TriggerMessageRequest,
    unlock_connector::UnlockConnectorRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::queries::{self, MeterValueRow, SessionFilter, SessionStatus};
use super::remote::{self, ChargerAnswer, Requester};
use crate::billing::records::{with_cost, SessionWithCost};
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::ApiError;
use crate::ocpp::commands::{is_secret_key, ocpp_enum, Command};
use crate::state::State;

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
        .service(trigger_message)
        .service(get_configuration)
        .service(change_configuration)
        .service(clear_cache)
        .service(data_transfer)
        .service(operator_remote_start)
        .service(operator_stop)
        .service(force_close)
        .service(stale_sessions);
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
    let id = remote::app_unlock(state.into_inner(), me.id, cp, connector_id).await?;
    Ok(HttpResponse::Accepted().json(StartAccepted {
        id,
        status: "pending",
    }))
}

/// The signed-in driver's sessions, newest first.
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])), params(PageQuery),
    responses((status = 200, body = Page<SessionWithCost>), (status = 401, body = ErrorBody)))]
#[get("/sessions")]
pub async fn list_sessions(
    state: State,
    me: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<SessionWithCost>>, ApiError> {
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
) -> Result<Page<SessionWithCost>, ApiError> {
    let views = state
        .db
        .run(move |conn| {
            let t = now();
            let rows = queries::list_sessions(conn, &filter, page.limit + 1, page.cursor)?;
            rows.into_iter()
                .map(|s| with_cost(conn, s, t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(Page::from_rows(views, page, |v| v.session.id))
}

/// Loads a session the caller may see: the driver's own, or any for an operator.
pub async fn visible_session(
    state: &State,
    me: &AuthUser,
    id: i64,
) -> Result<SessionWithCost, ApiError> {
    let (user, operator) = (me.id, me.is_operator());
    state
        .db
        .run(move |conn| {
            let s = queries::find_session(conn, id)?
                .filter(|s| operator || s.user_id == Some(user))
                .ok_or_else(|| ApiError::not_found("session"))?;
            with_cost(conn, s, now())
        })
        .await
}

/// One session, live or final: energy, power, SoC, charging and idle time, flags.
#[utoipa::path(tag = "sessions", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = SessionWithCost), (status = 404, description = "No such session of yours", body = ErrorBody)))]
#[get("/sessions/{id}")]
pub async fn get_session(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<SessionWithCost>, ApiError> {
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
    let answer = remote::driver_stop(state.into_inner(), me.id, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(answer))
}

/// Filters for the operator's session list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AdminSessionQuery {
    pub user_id: Option<i64>,
    pub charge_point_id: Option<String>,
    /// Only sessions in this state.
    #[param(value_type = Option<SessionStatus>)]
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// All sessions, filterable (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), params(AdminSessionQuery),
    responses((status = 200, body = Page<SessionWithCost>), (status = 403, body = ErrorBody)))]
#[get("/admin/sessions")]
pub async fn admin_sessions(
    state: State,
    _op: Operator,
    q: web::Query<AdminSessionQuery>,
) -> Result<web::Json<Page<SessionWithCost>>, ApiError> {
    let q = q.into_inner();
    let status = q
        .status
        .as_deref()
        .map(str::parse::<SessionStatus>)
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                "status must be pending, active, finished or failed",
            )
        })?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .validate()?;
    let filter = SessionFilter {
        user_id: q.user_id,
        charge_point_id: q.charge_point_id,
        status,
    };
    Ok(web::Json(page_of(&state, filter, page).await?))
}

async fn command(
    state: State,
    op: Operator,
    cp: String,
    command: Command,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    Ok(web::Json(
        remote::send_command(&state, op.0.id, cp, command).await?,
    ))
}

/// Reads an operator's text into an OCPP enum, or answers 422 naming the allowed values.
fn ocpp_field<T: serde::de::DeserializeOwned>(
    field: &str,
    text: &str,
    allowed: &[&str],
) -> Result<T, ApiError> {
    ocpp_enum(text).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be one of {}", allowed.join(", ")),
        )
    })
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
    let kind = ocpp_field("type", &body.kind, &["Soft", "Hard"])?;
    command(
        state,
        op,
        id.into_inner(),
        Command::Reset(ResetRequest { kind }),
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
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
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
    let request = UnlockConnectorRequest {
        connector_id: body.connector_id,
    };
    command(
        state,
        op,
        id.into_inner(),
        Command::UnlockConnector(request),
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
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/change-availability")]
pub async fn change_availability(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<AvailabilityBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let kind = ocpp_field("type", &body.kind, &["Operative", "Inoperative"])?;
    let request = ChangeAvailabilityRequest {
        connector_id: body.connector_id,
        kind,
    };
    command(
        state,
        op,
        id.into_inner(),
        Command::ChangeAvailability(request),
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
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/trigger-message")]
pub async fn trigger_message(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<TriggerBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let requested_message = ocpp_field(
        "requested_message",
        &body.requested_message,
        &[
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
        ],
    )?;
    let request = TriggerMessageRequest {
        requested_message,
        connector_id: body.connector_id,
    };
    command(state, op, id.into_inner(), Command::TriggerMessage(request)).await
}

/// GetConfiguration request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetConfigurationBody {
    /// Keys to read (1–50 characters each, at most 100 keys); absent or empty for all.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// Reads the charger's configuration keys and values (operator). Secret values
/// (`AuthorizationKey`) are redacted in the answer and the audit log.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = GetConfigurationBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, description = "`response.configurationKey` holds `{key, readonly, value}` items, `response.unknownKey` the keys the charger does not know", body = ChargerAnswer),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/get-configuration")]
pub async fn get_configuration(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: Option<web::Json<GetConfigurationBody>>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let keys = body.map(|b| b.into_inner().keys).unwrap_or_default();
    if keys.len() > 100 || keys.iter().any(|k| !(1..=50).contains(&k.chars().count())) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "keys: at most 100 keys of 1 to 50 characters",
        ));
    }
    let request = GetConfigurationRequest {
        key: (!keys.is_empty()).then_some(keys),
    };
    command(
        state,
        op,
        id.into_inner(),
        Command::GetConfiguration(request),
    )
    .await
}

/// ChangeConfiguration request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeConfigurationBody {
    /// 1–50 characters, e.g. HeartbeatInterval.
    pub key: String,
    /// 1–500 characters.
    pub value: String,
}

/// Changes one configuration key on the charger (operator). The charger answers Accepted,
/// Rejected, RebootRequired or NotSupported. `AuthorizationKey` is refused here: rotate the
/// key with `POST /admin/charge-points/{id}/rotate-key`, which keeps the database in step.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = ChangeConfigurationBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/change-configuration")]
pub async fn change_configuration(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<ChangeConfigurationBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let ChangeConfigurationBody { key, value } = body.into_inner();
    if !(1..=50).contains(&key.chars().count()) || !(1..=500).contains(&value.chars().count()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "key must be 1 to 50 characters and value 1 to 500",
        ));
    }
    if is_secret_key(&key) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "AuthorizationKey is changed by rotating the key (POST /admin/charge-points/{id}/rotate-key)",
        ));
    }
    let request = ChangeConfigurationRequest { key, value };
    command(
        state,
        op,
        id.into_inner(),
        Command::ChangeConfiguration(request),
    )
    .await
}

/// Clears the charger's authorization cache (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, body = ChargerAnswer), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/clear-cache")]
pub async fn clear_cache(
    state: State,
    op: Operator,
    id: web::Path<String>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    command(
        state,
        op,
        id.into_inner(),
        Command::ClearCache(ClearCacheRequest {}),
    )
    .await
}

/// DataTransfer request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataTransferBody {
    /// 1–255 characters.
    pub vendor_id: String,
    /// 1–50 characters.
    pub message_id: Option<String>,
    /// Text of up to 255 characters (the limit of rust-ocpp's type).
    pub data: Option<String>,
}

/// Sends a vendor-specific DataTransfer to the charger (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = DataTransferBody,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 200, description = "`status` is Accepted, Rejected, UnknownMessageId or UnknownVendorId; `response.data` the charger's data", body = ChargerAnswer),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
#[post("/admin/charge-points/{id}/data-transfer")]
pub async fn data_transfer(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<DataTransferBody>,
) -> Result<web::Json<ChargerAnswer>, ApiError> {
    let DataTransferBody {
        vendor_id,
        message_id,
        data,
    } = body.into_inner();
    let len = |s: &str| s.chars().count();
    if !(1..=255).contains(&len(&vendor_id))
        || message_id
            .as_deref()
            .is_some_and(|m| !(1..=50).contains(&len(m)))
        || data.as_deref().is_some_and(|d| len(d) > 255)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "vendor_id must be 1 to 255 characters, message_id 1 to 50, data at most 255",
        ));
    }
    let request = DataTransferRequest {
        vendor_string: vendor_id,
        message_id,
        data,
    };
    command(state, op, id.into_inner(), Command::DataTransfer(request)).await
}

/// An operator's remote start for a driver.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorStartRequest {
    /// The driver the session is for (and billed to).
    pub user_id: i64,
    #[schema(example = 1)]
    pub connector_id: i64,
}

/// Starts a session for a driver at a connector (operator): the same checks and flow as the
/// driver's app unlock, audited as the operator's action. Follow it at `GET /sessions/{id}`.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = OperatorStartRequest,
    params(("id" = String, Path, description = "Charge point id")),
    responses(
        (status = 202, description = "Requested; the session is pending", body = StartAccepted),
        (status = 404, description = "No such charge point, connector or active driver", body = ErrorBody),
        (status = 409, description = "Connector not available, or the driver already charging", body = ErrorBody),
        (status = 503, description = "The charger is offline", body = ErrorBody),
    ))]
#[post("/admin/charge-points/{id}/remote-start")]
pub async fn operator_remote_start(
    state: State,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<OperatorStartRequest>,
) -> Result<HttpResponse, ApiError> {
    let OperatorStartRequest {
        user_id,
        connector_id,
    } = body.into_inner();
    let session = remote::request_start(
        state.into_inner(),
        Requester::Operator(op.0.id),
        user_id,
        id.into_inner(),
        connector_id,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(StartAccepted {
        id: session,
        status: "pending",
    }))
}

/// Asks the charger to stop any active session (operator, RemoteStopTransaction).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses(
        (status = 202, description = "The charger accepted; the session finishes when it reports the stop", body = ChargerAnswer),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The session is not active, or the charger refused", body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, description = "The charger is offline", body = ErrorBody),
        (status = 504, body = ErrorBody),
    ))]
#[post("/admin/sessions/{id}/stop")]
pub async fn operator_stop(
    state: State,
    op: Operator,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let session = state
        .db
        .run(move |conn| {
            queries::find_session(conn, id)?.ok_or_else(|| ApiError::not_found("session"))
        })
        .await?;
    let answer =
        remote::request_stop(state.into_inner(), Requester::Operator(op.0.id), session).await?;
    Ok(HttpResponse::Accepted().json(answer))
}

/// Why an operator force-closes a session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceCloseRequest {
    /// 1–500 characters, kept in the flag and the audit log.
    pub reason: String,
}

/// Ends an active session whose charger will never report the stop (operator): billed from
/// the last meter value, flagged `force_closed`, audited. A StopTransaction the charger sends
/// later is still stored and logged.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = ForceCloseRequest,
    params(("id" = i64, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session, finished", body = SessionWithCost),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The session is not active", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
#[post("/admin/sessions/{id}/force-close")]
pub async fn force_close(
    state: State,
    op: Operator,
    id: web::Path<i64>,
    body: web::Json<ForceCloseRequest>,
) -> Result<web::Json<SessionWithCost>, ApiError> {
    let id = id.into_inner();
    let reason = body.into_inner().reason;
    if !(1..=500).contains(&reason.trim().chars().count()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "reason must be 1 to 500 characters",
        ));
    }
    let operator = op.0.id;
    let view = state
        .db
        .write(move |conn| {
            let t = now();
            let closed = write_tx(conn, |conn| {
                let s = queries::find_session(conn, id)?
                    .ok_or_else(|| ApiError::not_found("session"))?;
                if s.status != SessionStatus::Active {
                    return Err(ApiError::conflict(
                        "session_not_active",
                        format!("the session is {}", s.status),
                    ));
                }
                super::force_close(conn, id, operator, reason.trim(), t)?.ok_or_else(|| {
                    ApiError::conflict("session_not_active", "the session just ended")
                })
            })?;
            // Priced after the stored fact, as a charger's stop is.
            crate::central::session_finished(conn, closed.session_id, t)?;
            let s =
                queries::find_session(conn, id)?.ok_or_else(|| ApiError::not_found("session"))?;
            with_cost(conn, s, t)
        })
        .await?;
    Ok(web::Json(view))
}

/// Stale sessions: active, with the charger offline and silent for longer than
/// `LADDKOLL_STALE_SESSION_AFTER_SECS` (operator). They no longer block their driver's other
/// cards; stop or force-close them here.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<SessionWithCost>), (status = 403, body = ErrorBody)))]
#[get("/admin/sessions/stale")]
pub async fn stale_sessions(
    state: State,
    _op: Operator,
) -> Result<web::Json<Vec<SessionWithCost>>, ApiError> {
    let stale_after = state.stale_after();
    let views = state
        .db
        .run(move |conn| {
            let t = now();
            queries::stale_sessions(conn, t - stale_after, 500)?
                .into_iter()
                .map(|s| with_cost(conn, s, t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(web::Json(views))
}
