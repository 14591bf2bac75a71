//! HTTP handlers: `/locations` for drivers, `/admin/locations` and `/admin/charge-points` for
//! operators.

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::queries::{self, Connector, NewChargePoint};
use super::{bounding_box, haversine_km, load_views, CreateLocation, LocationView};
use crate::auth::tokens::{random_token, token_hash};
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::State;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(find_locations)
        .service(get_location)
        .service(create_location)
        .service(list_locations)
        .service(create_charge_point)
        .service(list_charge_points)
        .service(get_charge_point)
        .service(rotate_key);
}

/// Connector standards (OCPI ConnectorType) accepted at registration.
pub const STANDARDS: &[&str] = &[
    "IEC_62196_T1",
    "IEC_62196_T1_COMBO",
    "IEC_62196_T2",
    "IEC_62196_T2_COMBO",
    "IEC_62196_T3A",
    "IEC_62196_T3C",
    "CHADEMO",
    "CHAOJI",
    "GBT_AC",
    "GBT_DC",
    "TESLA_R",
    "TESLA_S",
    "NEMA_5_20",
    "DOMESTIC_F",
    "SAE_J3400",
];

/// Where to search.
#[derive(Debug, Deserialize, IntoParams)]
pub struct NearQuery {
    pub lat: f64,
    pub lon: f64,
    /// Search radius in km (0–100, default 5).
    pub radius_km: Option<f64>,
}

/// Locations within a radius, nearest first, with live connector status.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = []), ("cookie" = [])),
    params(NearQuery),
    responses(
        (status = 200, body = Vec<LocationView>),
        (status = 400, description = "Missing or invalid coordinates", body = ErrorBody),
    )
)]
#[get("/locations")]
pub async fn find_locations(
    state: State,
    _me: AuthUser,
    q: web::Query<NearQuery>,
) -> Result<web::Json<Vec<LocationView>>, ApiError> {
    Ok(web::Json(near(&state, q.into_inner()).await?))
}

/// Locations within a radius, nearest first (the rules of `GET /locations`, shared with the
/// web portal).
pub async fn near(state: &State, q: NearQuery) -> Result<Vec<LocationView>, ApiError> {
    let radius = q.radius_km.unwrap_or(5.0);
    let lat_ok = q.lat.is_finite() && (-90.0..=90.0).contains(&q.lat);
    let lon_ok = q.lon.is_finite() && (-180.0..=180.0).contains(&q.lon);
    if !(lat_ok && lon_ok) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "lat must be in [-90, 90] and lon in [-180, 180]",
        ));
    }
    if !radius.is_finite() || !(0.0..=100.0).contains(&radius) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "radius_km must be between 0 and 100",
        ));
    }
    let center = (q.lat, q.lon);
    state
        .db
        .run(move |conn| {
            let (lat, lon) = bounding_box(center, radius);
            let mut found: Vec<_> = queries::locations_in_box(conn, lat, lon)?
                .into_iter()
                .map(|l| {
                    let d = haversine_km(center, (l.lat, l.lon));
                    (l, Some(d))
                })
                .filter(|(_, d)| d.is_some_and(|d| d <= radius))
                .collect();
            found.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
            found.truncate(100);
            load_views(conn, found, now())
        })
        .await
}

/// One location with its charge points, connectors and live status.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Location id")),
    responses(
        (status = 200, body = LocationView),
        (status = 404, description = "No such location", body = ErrorBody),
    )
)]
#[get("/locations/{id}")]
pub async fn get_location(
    state: State,
    _me: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<LocationView>, ApiError> {
    Ok(web::Json(location(&state, id.into_inner()).await?))
}

/// One location with its charge points, connectors and live status.
pub async fn location(state: &State, id: i64) -> Result<LocationView, ApiError> {
    state
        .db
        .run(move |conn| {
            let location =
                queries::find_location(conn, id)?.ok_or_else(|| ApiError::not_found("location"))?;
            Ok(load_views(conn, vec![(location, None)], now())?.remove(0))
        })
        .await
}

/// Creates a location (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateLocation,
    responses(
        (status = 201, body = LocationView),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
#[post("/admin/locations")]
pub async fn create_location(
    state: State,
    _op: Operator,
    body: web::Json<CreateLocation>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().validate(now())?;
    let view = state
        .db
        .run(move |conn| {
            let location = queries::insert_location(conn, &new)?;
            Ok(load_views(conn, vec![(location, None)], now())?.remove(0))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// All locations (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<LocationView>), (status = 403, body = ErrorBody))
)]
#[get("/admin/locations")]
pub async fn list_locations(
    state: State,
    _op: Operator,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<LocationView>>, ApiError> {
    let page = q.validate()?;
    let views = state
        .db
        .run(move |conn| {
            let rows = queries::list_locations(conn, page.limit + 1, page.cursor)?;
            load_views(conn, rows.into_iter().map(|l| (l, None)).collect(), now())
        })
        .await?;
    Ok(web::Json(Page::from_rows(views, page, |v| v.id)))
}

/// A connector at registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnector {
    /// 1, 2, … as the charger numbers them in OCPP.
    pub connector_id: i64,
    #[schema(example = "IEC_62196_T2")]
    pub standard: String,
    #[schema(example = 22.0)]
    pub power_kw: f64,
    #[schema(example = "AC")]
    pub current_type: String,
}

/// A charge point to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChargePoint {
    /// The charger's OCPP identity: 1–48 characters of letters, digits, `-`, `_`, `.`.
    #[schema(example = "SE-STO-0001")]
    pub id: String,
    pub location_id: i64,
    /// The tariff that prices sessions here (billing).
    pub tariff_id: Option<i64>,
    pub connectors: Vec<NewConnector>,
}

/// A registered charge point with its key. The key is shown only here and at rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargePointCreated {
    pub id: String,
    pub location_id: i64,
    pub connectors: Vec<super::ConnectorView>,
    /// The charger's HTTP Basic password for `/ocpp/{id}`. Store it now: it is not shown again.
    pub password: String,
}

/// Checks a charge point identity.
pub fn valid_charge_point_id(id: &str) -> bool {
    (1..=48).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_connectors(cp: &str, input: &[NewConnector]) -> Result<Vec<Connector>, ApiError> {
    let invalid = |i: usize, field: &str, msg: &str| {
        ApiError::unprocessable("invalid_field", format!("connectors[{i}].{field}: {msg}"))
    };
    if input.is_empty() || input.len() > 32 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "connectors: give 1 to 32 connectors",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    input
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !(1..=99).contains(&c.connector_id) || !seen.insert(c.connector_id) {
                return Err(invalid(
                    i,
                    "connector_id",
                    "must be unique and between 1 and 99",
                ));
            }
            if !STANDARDS.contains(&c.standard.as_str()) {
                return Err(invalid(
                    i,
                    "standard",
                    &format!("must be one of {}", STANDARDS.join(", ")),
                ));
            }
            if !c.power_kw.is_finite() || c.power_kw <= 0.0 || c.power_kw > 1000.0 {
                return Err(invalid(i, "power_kw", "must be above 0 and at most 1000"));
            }
            if !matches!(c.current_type.as_str(), "AC" | "DC") {
                return Err(invalid(i, "current_type", "must be AC or DC"));
            }
            Ok(Connector {
                charge_point_id: cp.to_string(),
                connector_id: c.connector_id,
                standard: c.standard.clone(),
                max_power_w: (c.power_kw * 1000.0).round() as i64,
                current_type: c.current_type.clone(),
                status: "Unknown".into(),
                error_code: None,
                status_at: None,
            })
        })
        .collect()
}

/// Registers a charge point and returns its key once (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateChargePoint,
    responses(
        (status = 201, body = ChargePointCreated),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such location", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
#[post("/admin/charge-points")]
pub async fn create_charge_point(
    state: State,
    _op: Operator,
    body: web::Json<CreateChargePoint>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if !valid_charge_point_id(&body.id) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "id: 1 to 48 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    let connectors = validate_connectors(&body.id, &body.connectors)?;
    let key = random_token();
    let hash = token_hash(&key);
    let tariff_id = body.tariff_id;
    let (id, location_id) = (body.id, body.location_id);
    let created = state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                queries::find_location(conn, location_id)?
                    .ok_or_else(|| ApiError::not_found("location"))?;
                if queries::find_charge_point(conn, &id)?.is_some() {
                    return Err(ApiError::conflict(
                        "charge_point_exists",
                        "a charge point with this id exists",
                    ));
                }
                queries::insert_charge_point(
                    conn,
                    &NewChargePoint {
                        id: &id,
                        location_id,
                        key_hash: &hash,
                        created_at: t,
                        key_rotated_at: t,
                    },
                )?;
                queries::insert_connectors(conn, &connectors)?;
                crate::locations::set_tariff_hook(conn, &id, tariff_id)?;
                Ok(ChargePointCreated {
                    id: id.clone(),
                    location_id,
                    connectors: connectors.into_iter().map(Into::into).collect(),
                    password: key,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// A connector as operators see it: with the charger's error code.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminConnectorView {
    pub connector_id: i64,
    pub standard: String,
    pub power_kw: f64,
    pub current_type: String,
    /// The charger's last OCPP status (Available, Preparing, Charging, …, Faulted, Unknown).
    pub status: String,
    /// The OCPP error code of the last status, absent for NoError.
    pub error_code: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub status_at: Option<NaiveDateTime>,
}

/// A charge point as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminChargePointView {
    pub id: String,
    pub location_id: i64,
    /// Connected now and heard from within two heartbeat intervals.
    pub online: bool,
    /// When the current (or last) connection was opened.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub connected_at: Option<NaiveDateTime>,
    /// The last message from the charger (connect, boot, heartbeat, status).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub last_seen_at: Option<NaiveDateTime>,
    /// From BootNotification.
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub heartbeat_interval: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub key_rotated_at: NaiveDateTime,
    /// The tariff group that prices sessions here.
    pub tariff_id: Option<i64>,
    pub connectors: Vec<AdminConnectorView>,
}

/// Filters of the fleet list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct FleetQuery {
    pub location_id: Option<i64>,
    /// online or offline.
    pub state: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (a charge point id).
    pub cursor: Option<String>,
}

fn fleet_views(
    conn: &mut crate::db::DbConn,
    rows: Vec<queries::ChargePoint>,
    t: NaiveDateTime,
) -> Result<Vec<AdminChargePointView>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|c| c.id.clone()).collect();
    let mut connectors = queries::connectors_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|cp| {
            let mine = connectors
                .extract_if(.., |c| c.charge_point_id == cp.id)
                .map(|c| AdminConnectorView {
                    connector_id: c.connector_id,
                    standard: c.standard,
                    power_kw: c.max_power_w as f64 / 1000.0,
                    current_type: c.current_type,
                    status: c.status,
                    error_code: c.error_code,
                    status_at: c.status_at,
                })
                .collect();
            AdminChargePointView {
                online: super::is_online(&cp, t),
                id: cp.id,
                location_id: cp.location_id,
                connected_at: cp.connected_at,
                last_seen_at: cp.last_seen_at,
                vendor: cp.vendor,
                model: cp.model,
                serial_number: cp.serial_number,
                firmware_version: cp.firmware_version,
                heartbeat_interval: cp.heartbeat_interval,
                key_rotated_at: cp.key_rotated_at,
                tariff_id: cp.tariff_id,
                connectors: mine,
            }
        })
        .collect())
}

/// The fleet (operator): charge points with online state, last message, vendor, model and
/// firmware from BootNotification, and each connector's status and error code; filterable by
/// location and state, ordered by id.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(FleetQuery),
    responses(
        (status = 200, body = Page<AdminChargePointView>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
#[get("/admin/charge-points")]
pub async fn list_charge_points(
    state: State,
    _op: Operator,
    q: web::Query<FleetQuery>,
) -> Result<web::Json<Page<AdminChargePointView>>, ApiError> {
    let q = q.into_inner();
    let online = match q.state.as_deref() {
        None => None,
        Some("online") => Some(true),
        Some("offline") => Some(false),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "state must be online or offline",
            ))
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 500",
        ));
    }
    let (location, after) = (q.location_id, q.cursor);
    let mut views = state
        .db
        .run(move |conn| {
            let t = now();
            // The stored flag pre-filters; the heartbeat grace decides (a charger that went
            // silent without closing its socket counts as offline).
            let rows = queries::list_charge_points(
                conn,
                location,
                online.filter(|o| *o),
                after.as_deref(),
                limit + 1,
            )?;
            let more = rows.len() as i64 > limit;
            let mut views = fleet_views(conn, rows, t)?;
            if more {
                views.truncate(limit as usize);
            }
            Ok((views, more))
        })
        .await?;
    let next_cursor = views
        .1
        .then(|| views.0.last().map(|v| v.id.clone()))
        .flatten();
    if let Some(o) = online {
        views.0.retain(|v| v.online == o);
    }
    Ok(web::Json(Page {
        items: views.0,
        next_cursor,
    }))
}

/// One charge point (operator), as in the fleet list.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Charge point id")),
    responses(
        (status = 200, body = AdminChargePointView),
        (status = 404, description = "No such charge point", body = ErrorBody),
    )
)]
#[get("/admin/charge-points/{id}")]
pub async fn get_charge_point(
    state: State,
    _op: Operator,
    id: web::Path<String>,
) -> Result<web::Json<AdminChargePointView>, ApiError> {
    let id = id.into_inner();
    let view = state
        .db
        .run(move |conn| {
            let cp = queries::find_charge_point(conn, &id)?
                .ok_or_else(|| ApiError::not_found("charge point"))?;
            fleet_views(conn, vec![cp], now())?
                .pop()
                .ok_or_else(|| ApiError::not_found("charge point"))
        })
        .await?;
    Ok(web::Json(view))
}

/// A new key for a charger.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    /// The new HTTP Basic password (40 hex digits); the old one stops working now.
    pub password: String,
    /// How the key reached the charger.
    pub delivered: crate::charging::remote::KeyDelivery,
}

/// How to rotate.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RotateQuery {
    /// Set the key without telling the charger (default false: send it with ChangeConfiguration).
    #[serde(default)]
    pub manual: bool,
}

/// Replaces a charger's key (operator). By default the new key is sent to the connected charger
/// with ChangeConfiguration `AuthorizationKey` (OCPP 1.6 security whitepaper) and takes effect
/// only when the charger accepts it; the connection opened with the old key is then closed and
/// the charger reconnects with the new one. With `manual=true` the key is set without the
/// charger (configure it by hand) and any live connection is closed.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Charge point id"), RotateQuery),
    responses(
        (status = 200, body = RotatedKey),
        (status = 404, description = "No such charge point", body = ErrorBody),
        (status = 409, description = "The charger refused the new key; the old one stays", body = ErrorBody),
        (status = 502, description = "The charger answered with an error", body = ErrorBody),
        (status = 503, description = "The charger is offline (use manual=true)", body = ErrorBody),
        (status = 504, description = "The charger did not answer; the old key stays", body = ErrorBody),
    )
)]
#[post("/admin/charge-points/{id}/rotate-key")]
pub async fn rotate_key(
    state: State,
    op: Operator,
    id: web::Path<String>,
    q: web::Query<RotateQuery>,
) -> Result<web::Json<RotatedKey>, ApiError> {
    let id = id.into_inner();
    let (password, delivered) =
        crate::charging::remote::rotate_key(&state, op.0.id, id.clone(), q.manual).await?;
    Ok(web::Json(RotatedKey {
        id,
        password,
        delivered,
    }))
}
