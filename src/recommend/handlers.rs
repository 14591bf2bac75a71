//! HTTP handlers: `/me/preferences`, `/me/recommendations` and `/locations/{id}/forecast`.

use actix_web::{get, put, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::preferences::PreferencesBody;
use super::{forecast, queries, Forecast, RecommendationsView};
use crate::db::write_tx;
use crate::http::auth::AuthUser;
use crate::http::error::ErrorBody;
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::State;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_preferences)
        .service(put_preferences)
        .service(get_recommendations)
        .service(get_forecast);
}

/// The signed-in driver's charging preferences (defaults when never set).
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PreferencesBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
#[get("/me/preferences")]
pub async fn get_preferences(
    state: State,
    me: AuthUser,
) -> Result<web::Json<PreferencesBody>, ApiError> {
    let row = state
        .db
        .run(move |conn| Ok(queries::find_preferences(conn, me.id)?))
        .await?;
    Ok(web::Json(
        row.as_ref()
            .map(PreferencesBody::from_row)
            .unwrap_or_default(),
    ))
}

/// Replaces the signed-in driver's charging preferences; the next nightly run uses them.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    request_body = PreferencesBody,
    responses(
        (status = 200, body = PreferencesBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid field (the message names it)", body = ErrorBody),
    )
)]
#[put("/me/preferences")]
pub async fn put_preferences(
    state: State,
    me: AuthUser,
    body: web::Json<PreferencesBody>,
) -> Result<web::Json<PreferencesBody>, ApiError> {
    Ok(web::Json(save(&state, me.id, body.into_inner()).await?))
}

/// A driver's preferences, defaults when never set.
pub async fn preferences_of(state: &State, user: i64) -> Result<PreferencesBody, ApiError> {
    let row = state
        .db
        .run(move |conn| Ok(queries::find_preferences(conn, user)?))
        .await?;
    Ok(row
        .as_ref()
        .map(PreferencesBody::from_row)
        .unwrap_or_default())
}

/// Validates and stores a driver's preferences (the rules of `PUT /me/preferences`, shared
/// with the web portal).
pub async fn save(
    state: &State,
    user: i64,
    body: PreferencesBody,
) -> Result<PreferencesBody, ApiError> {
    body.validate()?;
    let stored = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let existing = queries::existing_location_ids(conn, &body.favourite_location_ids)?;
                body.check_favourites_exist(&existing)?;
                queries::save_preferences(conn, &body.to_row(user, now()))?;
                Ok(body)
            })
        })
        .await?;
    Ok(stored)
}

/// The signed-in driver's recommendations from the newest complete nightly batch, best first.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = RecommendationsView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
#[get("/me/recommendations")]
pub async fn get_recommendations(
    state: State,
    me: AuthUser,
) -> Result<web::Json<RecommendationsView>, ApiError> {
    let view = state
        .db
        .run(move |conn| super::recommendations_of(conn, me.id))
        .await?;
    Ok(web::Json(view))
}

/// How much history the forecast averages.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ForecastQuery {
    /// Days of history to average, 7–730 (default 182).
    pub window_days: Option<u32>,
}

/// Expected occupancy of a location for each of the 168 hours of the week (local time,
/// Monday 00–01 first), computed from its charging history.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Location id"), ForecastQuery),
    responses(
        (status = 200, body = Forecast),
        (status = 400, description = "Invalid window", body = ErrorBody),
        (status = 404, description = "No such location", body = ErrorBody),
    )
)]
#[get("/locations/{id}/forecast")]
pub async fn get_forecast(
    state: State,
    _me: AuthUser,
    id: web::Path<i64>,
    q: web::Query<ForecastQuery>,
) -> Result<web::Json<Forecast>, ApiError> {
    let id = id.into_inner();
    let days = q.window_days.unwrap_or(forecast::DEFAULT_WINDOW_DAYS);
    if !(7..=730).contains(&days) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "window_days must be between 7 and 730",
        ));
    }
    let f = state
        .db
        .run(move |conn| forecast::of_location(conn, id, days, now()))
        .await?;
    Ok(web::Json(f))
}
