//! HTTP handlers: `/locations` for drivers, `/admin/locations` and `/admin/charge-points` for
//! operators.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::queries::{self, Connector, NewChargePoint};
use super::{bounding_box, haversine_km, load_views, CreateLocation, LocationView};
use crate::app::State;
use crate::auth::tokens::{random_token, token_hash};
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::ApiError;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(find_locations)
        .service(get_location)
        .service(create_location)
        .service(list_locations)
        .service(create_charge_point)
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

/// A new key for a charger.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    /// The new HTTP Basic password; the old one stops working now.
    pub password: String,
}

/// Replaces a charger's key (operator). The live connection stays up; the next connect needs
/// the new key.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Charge point id")),
    responses(
        (status = 200, body = RotatedKey),
        (status = 404, description = "No such charge point", body = ErrorBody),
    )
)]
#[post("/admin/charge-points/{id}/rotate-key")]
pub async fn rotate_key(
    state: State,
    _op: Operator,
    id: web::Path<String>,
) -> Result<web::Json<RotatedKey>, ApiError> {
    let id = id.into_inner();
    let key = random_token();
    let hash = token_hash(&key);
    let cp = id.clone();
    state
        .db
        .run(
            move |conn| match queries::set_key_hash(conn, &cp, &hash, now())? {
                0 => Err(ApiError::not_found("charge point")),
                _ => Ok(()),
            },
        )
        .await?;
    Ok(web::Json(RotatedKey { id, password: key }))
}
