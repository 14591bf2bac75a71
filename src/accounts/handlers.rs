//! HTTP handlers for `/me` and `/admin/users`.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queries::{self, User};
use crate::audit::{self, NewEvent, SUCCESS};
use crate::db::schema::users;
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::{client_addr, ApiError};
use crate::state::State;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_me)
        .service(patch_me)
        .service(delete_me)
        .service(change_password)
        .service(list_users)
        .service(block_user)
        .service(unblock_user);
}

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    #[schema(example = "driver")]
    pub role: String,
    #[schema(example = "active")]
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub created_at: NaiveDateTime,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        UserResponse {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
        }
    }
}

/// Fields to change; an email change needs `current_password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    pub name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<String>)]
    pub current_password: Option<SecretString>,
}

/// The current and the new password.
#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

/// Confirms an irreversible action with the password.
#[derive(Deserialize, ToSchema)]
pub struct ConfirmPassword {
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// The signed-in account.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
#[get("/me")]
pub async fn get_me(state: State, me: AuthUser) -> Result<web::Json<UserResponse>, ApiError> {
    Ok(web::Json(super::load(&state, me.id).await?.into()))
}

/// Changes name or email.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    request_body = PatchMe,
    responses(
        (status = 200, body = UserResponse),
        (status = 403, description = "Wrong current password", body = ErrorBody),
        (status = 409, description = "Email taken", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
#[patch("/me")]
pub async fn patch_me(
    state: State,
    req: HttpRequest,
    me: AuthUser,
    body: web::Json<PatchMe>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let body = body.into_inner();
    let user = super::load(&state, me.id).await?;
    let user = super::update_profile(
        &state,
        user,
        body.name,
        body.email,
        body.current_password,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(web::Json(user.into()))
}

/// Erases the account: personal data removed, tokens revoked; sessions and invoices are kept
/// for bookkeeping without the identity.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ConfirmPassword,
    responses(
        (status = 204, description = "Account erased"),
        (status = 403, description = "Wrong password", body = ErrorBody),
    )
)]
#[delete("/me")]
pub async fn delete_me(
    state: State,
    req: HttpRequest,
    me: AuthUser,
    body: web::Json<ConfirmPassword>,
) -> Result<HttpResponse, ApiError> {
    let user = super::load(&state, me.id).await?;
    super::delete(
        &state,
        user,
        body.into_inner().password,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the password. Every session of the account ends; sign in again.
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Password changed; all tokens revoked"),
        (status = 403, description = "Wrong current password", body = ErrorBody),
        (status = 422, description = "New password too weak", body = ErrorBody),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: State,
    req: HttpRequest,
    me: AuthUser,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = super::load(&state, me.id).await?;
    super::change_password(
        &state,
        user,
        body.current_password,
        body.new_password,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// All accounts, newest first (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<UserResponse>),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
#[get("/admin/users")]
pub async fn list_users(
    state: State,
    _op: Operator,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<UserResponse>>, ApiError> {
    let page = query.validate()?;
    let rows = state
        .db
        .run(move |conn| {
            let mut q = users::table
                .select(User::as_select())
                .order(users::id.desc())
                .limit(page.limit + 1)
                .into_boxed();
            if let Some(before) = page.cursor {
                q = q.filter(users::id.lt(before));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let page = Page::from_rows(rows, page, |u| u.id);
    Ok(web::Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn set_status(
    state: State,
    req: HttpRequest,
    op: Operator,
    id: i64,
    status: &'static str,
) -> Result<web::Json<UserResponse>, ApiError> {
    let client = client_addr(&req, state.config.trust_proxy);
    let operator = op.0.id;
    let user = state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                if queries::set_status(conn, id, status, t)? == 0 {
                    return Err(ApiError::not_found("account"));
                }
                if status == queries::BLOCKED {
                    // Tokens issued before the block must not come back with an unblock.
                    queries::bump_token_version(conn, id)?;
                    crate::auth::queries::revoke_all_for_user(conn, id, t)?;
                }
                let mut event =
                    NewEvent::user(Some(id), &format!("account_{status}"), SUCCESS, client, t)
                        .because(format!("by operator {operator}"));
                event.actor = format!("user:{operator}");
                audit::record(conn, &event)?;
                queries::find(conn, id)?.ok_or_else(|| ApiError::not_found("account"))
            })
        })
        .await?;
    Ok(web::Json(user.into()))
}

/// Blocks an account: it can no longer sign in or charge (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, body = UserResponse),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
#[post("/admin/users/{id}/block")]
pub async fn block_user(
    state: State,
    req: HttpRequest,
    op: Operator,
    id: web::Path<i64>,
) -> Result<web::Json<UserResponse>, ApiError> {
    set_status(state, req, op, id.into_inner(), queries::BLOCKED).await
}

/// Unblocks an account (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, body = UserResponse),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
#[post("/admin/users/{id}/unblock")]
pub async fn unblock_user(
    state: State,
    req: HttpRequest,
    op: Operator,
    id: web::Path<i64>,
) -> Result<web::Json<UserResponse>, ApiError> {
    set_status(state, req, op, id.into_inner(), queries::ACTIVE).await
}
