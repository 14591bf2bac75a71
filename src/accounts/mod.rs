//! Accounts: the signed-in user's profile, password change and erasure, and operator user
//! administration.

pub mod handlers;
pub mod queries;

use secrecy::SecretString;

use crate::audit::{self, NewEvent, DENIED, SUCCESS};
use crate::auth::{self, password, queries as refresh_tokens};
use crate::db::write_tx;
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::State;
use queries::User;

/// Loads the signed-in user (404 if it vanished meanwhile).
pub async fn load(state: &State, id: i64) -> Result<User, ApiError> {
    state
        .db
        .run(move |conn| queries::find(conn, id)?.ok_or_else(|| ApiError::not_found("account")))
        .await
}

/// Checks the current password of a signed-in user; a wrong one is audited.
async fn confirm_password(
    state: &State,
    user: &User,
    password: SecretString,
    action: &'static str,
    client: Option<String>,
) -> Result<(), ApiError> {
    // Password checks count against the same per-address limit as logins, so a stolen access
    // token cannot be used to guess the password at full speed.
    state
        .auth_limiter
        .check(client.as_deref().and_then(|c| c.parse().ok()))?;
    let verified = state
        .passwords
        .verify(password, user.password_hash.clone())
        .await?;
    if verified.ok {
        return Ok(());
    }
    let event =
        NewEvent::user(Some(user.id), action, DENIED, client, now()).because("wrong_password");
    state
        .db
        .run(move |conn| Ok(audit::record(conn, &event)?))
        .await?;
    Err(ApiError::forbidden(
        "wrong_password",
        "the current password is wrong",
    ))
}

/// Changes name and/or email; an email change needs the current password.
pub async fn update_profile(
    state: &State,
    user: User,
    name: Option<String>,
    email: Option<String>,
    current_password: Option<SecretString>,
    client: Option<String>,
) -> Result<User, ApiError> {
    let name = name.as_deref().map(auth::normalize_name).transpose()?;
    let email = email.as_deref().map(auth::normalize_email).transpose()?;
    let email = email.filter(|e| user.email.as_deref() != Some(e.as_str()));
    if email.is_some() {
        let password = current_password.ok_or_else(|| {
            ApiError::unprocessable(
                "current_password_required",
                "changing the email needs current_password",
            )
        })?;
        confirm_password(
            state,
            &user,
            password,
            "email_change_refused",
            client.clone(),
        )
        .await?;
    }
    let id = user.id;
    state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                if let Some(email) = &email {
                    if queries::find_by_email(conn, email)?.is_some() {
                        return Err(ApiError::conflict(
                            "email_taken",
                            "an account with this email already exists",
                        ));
                    }
                }
                queries::update_profile(conn, id, name.as_deref(), email.as_deref(), t)?;
                if email.is_some() {
                    audit::record(
                        conn,
                        &NewEvent::user(Some(id), "email_changed", SUCCESS, client, t),
                    )?;
                }
                queries::find(conn, id)?.ok_or_else(|| ApiError::not_found("account"))
            })
        })
        .await
}

/// Changes the password and revokes every token of the account.
pub async fn change_password(
    state: &State,
    user: User,
    current: SecretString,
    new: SecretString,
    client: Option<String>,
) -> Result<(), ApiError> {
    password::check_policy_off_thread(&new, user.email.clone()).await?;
    confirm_password(
        state,
        &user,
        current,
        "password_change_refused",
        client.clone(),
    )
    .await?;
    let hash = state.passwords.hash(new).await?;
    let id = user.id;
    state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                queries::set_password_hash(conn, id, &hash, t)?;
                queries::bump_token_version(conn, id)?;
                refresh_tokens::revoke_all_for_user(conn, id, t)?;
                audit::record(
                    conn,
                    &NewEvent::user(Some(id), "password_changed", SUCCESS, client, t),
                )
                .map_err(ApiError::from)
            })
        })
        .await
}

/// Erases the account's personal data and revokes its tokens. The row, its sessions and
/// invoices stay for bookkeeping, detached from the erased identity.
pub async fn delete(
    state: &State,
    user: User,
    password: SecretString,
    client: Option<String>,
) -> Result<(), ApiError> {
    confirm_password(
        state,
        &user,
        password,
        "account_deletion_refused",
        client.clone(),
    )
    .await?;
    let id = user.id;
    state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                queries::erase(conn, id, t)?;
                refresh_tokens::revoke_all_for_user(conn, id, t)?;
                audit::record(
                    conn,
                    &NewEvent::user(Some(id), "account_deleted", SUCCESS, client, t),
                )
                .map_err(ApiError::from)
            })
        })
        .await
}
