//! RFID cards: drivers register, label, block, unblock and delete their cards.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queries::RfidCard;
use super::{mask_uid, normalize_uid};
use crate::db::schema::rfid_cards;
use crate::db::write_tx;
use crate::http::auth::AuthUser;
use crate::http::error::ErrorBody;
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::State;

pub use super::queries::CardStatus;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(list_cards)
        .service(add_card)
        .service(update_card)
        .service(delete_card);
}

/// A card as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardView {
    pub id: i64,
    /// Normalised uid: upper-case hex without separators.
    #[schema(example = "04A1B2C3D4E5F6")]
    pub uid: String,
    pub label: String,
    pub status: CardStatus,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub expires_at: Option<NaiveDateTime>,
}

impl From<RfidCard> for CardView {
    fn from(c: RfidCard) -> Self {
        CardView {
            id: c.id,
            uid: c.uid,
            label: c.label,
            status: c.status,
            expires_at: c.expires_at,
        }
    }
}

/// A card to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCard {
    /// The card's uid in hex; spaces, colons and dashes are ignored.
    #[schema(example = "04:A1:B2:C3:D4:E5:F6")]
    pub uid: String,
    #[schema(example = "Work car")]
    pub label: String,
    /// Optional expiry; the card answers Expired afterwards.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Changes to a card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPatch {
    pub label: Option<String>,
    /// active (unblock) or blocked (block).
    #[schema(value_type = Option<CardStatus>)]
    pub status: Option<String>,
}

fn label(raw: &str) -> Result<String, ApiError> {
    let l = raw.trim();
    if l.is_empty() || l.chars().count() > 50 || l.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "label must have 1 to 50 characters",
        ));
    }
    Ok(l.to_string())
}

fn own_card(conn: &mut crate::db::DbConn, user_id: i64, id: i64) -> Result<RfidCard, ApiError> {
    rfid_cards::table
        .find(id)
        .filter(rfid_cards::user_id.eq(user_id))
        .select(RfidCard::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("card"))
}

/// The signed-in driver's cards.
#[utoipa::path(tag = "me", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<CardView>), (status = 401, body = ErrorBody)))]
#[get("/me/rfid-cards")]
pub async fn list_cards(state: State, me: AuthUser) -> Result<web::Json<Vec<CardView>>, ApiError> {
    Ok(web::Json(cards_of(&state, me.id).await?))
}

/// A driver's cards, oldest first.
pub async fn cards_of(state: &State, user: i64) -> Result<Vec<CardView>, ApiError> {
    let cards = state
        .db
        .run(move |conn| {
            Ok(rfid_cards::table
                .filter(rfid_cards::user_id.eq(user))
                .order(rfid_cards::id)
                .select(RfidCard::as_select())
                .load(conn)?)
        })
        .await?;
    Ok(cards.into_iter().map(Into::into).collect())
}

/// Registers a card. Uids are unique across all drivers.
#[utoipa::path(tag = "me", security(("bearer" = []), ("cookie" = [])), request_body = NewCard,
    responses(
        (status = 201, body = CardView),
        (status = 409, description = "The uid is registered already", body = ErrorBody),
        (status = 422, description = "Invalid uid or label", body = ErrorBody),
    ))]
#[post("/me/rfid-cards")]
pub async fn add_card(
    state: State,
    me: AuthUser,
    body: web::Json<NewCard>,
) -> Result<HttpResponse, ApiError> {
    let card = add(&state, me.id, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(card))
}

/// Registers a card for a driver (the rules of `POST /me/rfid-cards`, shared with the portal).
pub async fn add(state: &State, user: i64, body: NewCard) -> Result<CardView, ApiError> {
    let uid = normalize_uid(&body.uid).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_uid",
            "uid must be an OCPP idTag: 1 to 20 characters without control characters",
        )
    })?;
    let label = label(&body.label)?;
    let expires_at = body.expires_at.map(|e| e.naive_utc());
    let card = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let taken: i64 = rfid_cards::table
                    .filter(rfid_cards::uid.eq(&uid))
                    .count()
                    .get_result(conn)?;
                if taken > 0 {
                    return Err(ApiError::conflict(
                        "uid_taken",
                        "this card is registered already",
                    ));
                }
                let t = now();
                let id: i64 = diesel::insert_into(rfid_cards::table)
                    .values((
                        rfid_cards::user_id.eq(user),
                        rfid_cards::uid.eq(&uid),
                        rfid_cards::label.eq(&label),
                        rfid_cards::status.eq(CardStatus::Active.as_str()),
                        rfid_cards::expires_at.eq(expires_at),
                        rfid_cards::created_at.eq(t),
                    ))
                    .returning(rfid_cards::id)
                    .get_result(conn)?;
                let event = crate::audit::NewEvent::user(
                    Some(user),
                    "rfid_card_added",
                    crate::audit::SUCCESS,
                    None,
                    t,
                )
                .because(format!("card {}", mask_uid(&uid)));
                crate::audit::record(conn, &event)?;
                own_card(conn, user, id)
            })
        })
        .await?;
    Ok(CardView::from(card))
}

/// Relabels, blocks or unblocks a card.
#[utoipa::path(tag = "me", security(("bearer" = []), ("cookie" = [])), request_body = CardPatch,
    params(("id" = i64, Path, description = "Card id")),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/me/rfid-cards/{id}")]
pub async fn update_card(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
    body: web::Json<CardPatch>,
) -> Result<web::Json<CardView>, ApiError> {
    let card = update(&state, me.id, id.into_inner(), body.into_inner()).await?;
    Ok(web::Json(card))
}

/// Relabels, blocks or unblocks a driver's card (the rules of `PATCH /me/rfid-cards/{id}`).
pub async fn update(
    state: &State,
    user: i64,
    id: i64,
    body: CardPatch,
) -> Result<CardView, ApiError> {
    let new_label = body.label.as_deref().map(label).transpose()?;
    let status = body
        .status
        .as_deref()
        .map(str::parse::<CardStatus>)
        .transpose()
        .map_err(|_| {
            ApiError::unprocessable("invalid_field", "status must be active or blocked")
        })?;
    let card = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let card = own_card(conn, user, id)?;
                if let Some(l) = &new_label {
                    diesel::update(rfid_cards::table.find(id))
                        .set(rfid_cards::label.eq(l))
                        .execute(conn)?;
                }
                if let Some(s) = status {
                    diesel::update(rfid_cards::table.find(id))
                        .set(rfid_cards::status.eq(s.as_str()))
                        .execute(conn)?;
                    if s != card.status {
                        let event = crate::audit::NewEvent::user(
                            Some(user),
                            &format!(
                                "rfid_card_{}",
                                match s {
                                    CardStatus::Blocked => "blocked",
                                    CardStatus::Active => "unblocked",
                                }
                            ),
                            crate::audit::SUCCESS,
                            None,
                            now(),
                        )
                        .because(format!("card {}", mask_uid(&card.uid)));
                        crate::audit::record(conn, &event)?;
                    }
                }
                own_card(conn, user, id)
            })
        })
        .await?;
    Ok(card.into())
}

/// Deletes a card; it is refused at chargers from then on.
#[utoipa::path(tag = "me", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Card id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
#[delete("/me/rfid-cards/{id}")]
pub async fn delete_card(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let card = own_card(conn, me.id, id)?;
                diesel::delete(rfid_cards::table.find(id)).execute(conn)?;
                let event = crate::audit::NewEvent::user(
                    Some(me.id),
                    "rfid_card_deleted",
                    crate::audit::SUCCESS,
                    None,
                    now(),
                )
                .because(format!("card {}", mask_uid(&card.uid)));
                crate::audit::record(conn, &event).map_err(ApiError::from)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
