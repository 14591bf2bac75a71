//! Authentication rules: registration, login with lockout, refresh-token rotation with reuse
//! detection, logout. HTTP lives in `handlers`, storage in `queries`.

pub mod handlers;
pub mod password;
pub mod queries;
pub mod tokens;

use chrono::{Duration, NaiveDateTime};
use secrecy::SecretString;

use crate::accounts::queries::{self as users, User};
use actix_web::web;

use crate::audit::{self, NewEvent, DENIED, FAILURE, SUCCESS};
use crate::db::write_tx;
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::AppState;
use queries::NewRefreshToken;

/// The answer every failed login gets, whatever the reason, so it reveals nothing.
pub fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong email or password")
}

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized(
        "invalid_refresh_token",
        "invalid, expired or revoked refresh token",
    )
}

/// Trims and lower-cases an email address and checks its shape. Addresses are ASCII only
/// (an internationalised domain is given in its `xn--` form): a look-alike letter from another
/// script (Cyrillic `а` for Latin `a`) would make a second account that reads like the first.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email.chars().all(|c| c.is_ascii_graphic())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && email.matches('@').count() == 1
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::unprocessable(
            "invalid_email",
            "email is not a valid address (ASCII only; an internationalised domain in its xn-- form)",
        ))
    }
}

/// Checks a display name: 1–100 characters after trimming; no control characters; no format
/// characters (bidi overrides like U+202E, zero-width characters), line separators or private
/// use characters; and no word that mixes scripts (`Аnna` with a Cyrillic `А`), the usual way
/// to make a name look like someone else's. A name in one script (`Анна`, `李小龍`, `Zoë`), or
/// words in different scripts, is fine.
pub fn normalize_name(name: &str) -> Result<String, ApiError> {
    use unicode_security::MixedScript;
    let name = name.trim();
    let len = name.chars().count();
    let invalid = |why: &str| {
        Err(ApiError::unprocessable(
            "invalid_name",
            format!("name must have 1 to 100 characters{why}"),
        ))
    };
    if len == 0 || len > 100 {
        return invalid("");
    }
    let hidden = |c: char| {
        c.is_control()
            || crate::logging::is_format_char(c)
            || matches!(c, '\u{2028}' | '\u{2029}')
            || matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
    };
    if name.chars().any(hidden) {
        return invalid(", without control, format (bidi, zero-width) or private-use characters");
    }
    if name.split_whitespace().any(|word| !word.is_single_script()) {
        return invalid(", each word in one script (no look-alike letters from another)");
    }
    Ok(name.to_string())
}

/// How long an account is locked after `failures` consecutive failed logins.
pub fn lock_duration(state: &AppState, failures: i64) -> Option<std::time::Duration> {
    let threshold = i64::from(state.config.lockout_threshold.max(1));
    if failures < threshold {
        return None;
    }
    let doublings = (failures - threshold).min(20) as u32;
    let lock = state.config.lockout_base.saturating_mul(1u32 << doublings);
    Some(lock.min(state.config.lockout_max))
}

/// A pair of fresh tokens.
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    /// Set in cookie mode.
    pub csrf_token: Option<String>,
}

/// Where the tokens go: the JSON body (app) or cookies (web portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Bearer,
    Cookie,
}

fn issue_tokens(
    state: &AppState,
    conn: &mut crate::db::DbConn,
    user: &User,
    family_id: &str,
    csrf: Option<String>,
    now: NaiveDateTime,
) -> Result<IssuedTokens, ApiError> {
    let refresh_token = tokens::random_token();
    let hash = tokens::token_hash(&refresh_token);
    let csrf_hash = csrf.as_deref().map(tokens::token_hash);
    let ttl = Duration::from_std(state.config.refresh_token_ttl).unwrap_or(Duration::days(30));
    queries::insert(
        conn,
        &NewRefreshToken {
            user_id: user.id,
            family_id,
            token_hash: &hash,
            csrf_hash: csrf_hash.as_deref(),
            issued_at: now,
            expires_at: now + ttl,
        },
    )?;
    let access_token = state.jwt.issue(
        user.id,
        &user.role,
        user.token_version,
        csrf.clone(),
        now.and_utc().timestamp(),
    );
    Ok(IssuedTokens {
        access_token,
        refresh_token,
        expires_in: state.jwt.ttl_secs(),
        csrf_token: csrf,
    })
}

/// Creates a driver account.
pub async fn register(
    state: &AppState,
    email: &str,
    password: SecretString,
    name: &str,
    role: &'static str,
    client: Option<String>,
) -> Result<User, ApiError> {
    let email = normalize_email(email)?;
    let name = normalize_name(name)?;
    password::check_policy_off_thread(&password, Some(email.clone())).await?;
    let hash = state.passwords.hash(password).await?;
    state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                if users::find_by_email(conn, &email)?.is_some() {
                    return Err(ApiError::conflict(
                        "email_taken",
                        "an account with this email already exists",
                    ));
                }
                let user = users::insert(
                    conn,
                    &users::NewUser {
                        email: &email,
                        name: &name,
                        password_hash: &hash,
                        role,
                        created_at: t,
                        updated_at: t,
                    },
                )?;
                audit::record(
                    conn,
                    &NewEvent::user(Some(user.id), "account_registered", SUCCESS, client, t),
                )?;
                Ok(user)
            })
        })
        .await
}

/// Logs in with email and password. Every failure answers [`invalid_credentials`].
pub async fn login(
    state: &web::Data<AppState>,
    email: &str,
    password: SecretString,
    mode: TokenMode,
    client: Option<String>,
) -> Result<IssuedTokens, ApiError> {
    let email = email.trim().to_lowercase();
    let user = {
        let email = email.clone();
        state
            .db
            .run(move |conn| Ok(users::find_by_email(conn, &email)?))
            .await?
    };
    let t = now();
    let Some(user) = user else {
        // Verify against the dummy hash so the answer takes as long as for a real account.
        state.passwords.verify(password, None).await?;
        let event =
            NewEvent::user(None, "login_failed", FAILURE, client, t).because("unknown_account");
        state
            .db
            .run(move |conn| Ok(audit::record(conn, &event)?))
            .await?;
        return Err(invalid_credentials());
    };
    // The lock decision and the attempt are one write: the attempt is counted before the
    // password is checked, and the attempt that reaches the threshold locks the account before
    // its own check. However many guesses arrive at once, at most the threshold of them are
    // checked against the real hash in a lock window; the others are refused as locked.
    let attempt = {
        let state_ref = state.clone();
        state
            .db
            .write(move |conn| {
                write_tx(conn, |conn| {
                    let Some(failures) = users::begin_attempt(conn, user.id, t)? else {
                        return Ok(None);
                    };
                    let lock = lock_duration(&state_ref, failures)
                        .map(|d| t + Duration::from_std(d).unwrap_or(Duration::hours(1)));
                    if let Some(until) = lock {
                        users::lock_until(conn, user.id, until)?;
                    }
                    Ok::<_, ApiError>(Some((failures, lock)))
                })
            })
            .await?
    };
    let Some((failures, lock)) = attempt else {
        // Locked: the password is not checked; the dummy hash keeps the timing uniform.
        state.passwords.verify(password, None).await?;
        let event = NewEvent::user(Some(user.id), "login_refused", DENIED, client, t)
            .because("account_locked");
        state
            .db
            .run(move |conn| Ok(audit::record(conn, &event)?))
            .await?;
        return Err(invalid_credentials());
    };
    let verified = state
        .passwords
        .verify(password, user.password_hash.clone())
        .await?;
    if !verified.ok {
        let user_id = user.id;
        state
            .db
            .write(move |conn| {
                write_tx(conn, |conn| {
                    audit::record(
                        conn,
                        &NewEvent::user(Some(user_id), "login_failed", FAILURE, client.clone(), t)
                            .because("wrong_password"),
                    )?;
                    if let Some(until) = lock {
                        audit::record(
                            conn,
                            &NewEvent::user(Some(user_id), "account_locked", DENIED, client, t)
                                .because(format!(
                                    "{failures} failed logins; locked until {}Z",
                                    until.format("%Y-%m-%dT%H:%M:%S")
                                )),
                        )?;
                    }
                    Ok::<_, ApiError>(())
                })
            })
            .await?;
        return Err(invalid_credentials());
    }
    if user.status != users::ACTIVE {
        let event = NewEvent::user(Some(user.id), "login_refused", DENIED, client, t)
            .because("account_blocked");
        state
            .db
            .run(move |conn| Ok(audit::record(conn, &event)?))
            .await?;
        return Err(ApiError::forbidden(
            "account_blocked",
            "this account is blocked; contact the operator",
        ));
    }
    let csrf = (mode == TokenMode::Cookie).then(tokens::random_token);
    let state_ref = state.clone();
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                users::reset_failed_logins(conn, user.id)?;
                if let Some(hash) = &verified.rehashed {
                    // Parameters rose since this hash was made: keep one at today's strength.
                    users::set_password_hash(conn, user.id, hash, t)?;
                }
                let family = uuid::Uuid::new_v4().to_string();
                let issued = issue_tokens(&state_ref, conn, &user, &family, csrf, t)?;
                audit::record(
                    conn,
                    &NewEvent::user(Some(user.id), "login_succeeded", SUCCESS, client, t),
                )?;
                Ok(issued)
            })
        })
        .await
}

/// Exchanges a refresh token for a new pair. The old token is spent; presenting a spent token
/// again revokes its whole family. In cookie mode the CSRF token sent must be the family's.
pub async fn refresh(
    state: &web::Data<AppState>,
    refresh_token: &str,
    csrf_sent: Option<String>,
    client: Option<String>,
) -> Result<IssuedTokens, ApiError> {
    let hash = tokens::token_hash(refresh_token);
    let state_ref = state.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                let Some(token) = queries::find_by_hash(conn, &hash)? else {
                    return Ok(Err(invalid_refresh()));
                };
                if let Some(expected) = &token.csrf_hash {
                    let ok = csrf_sent.as_deref().is_some_and(|sent| {
                        crate::http::auth::constant_time_eq(&tokens::token_hash(sent), expected)
                    });
                    if !ok {
                        return Ok(Err(ApiError::forbidden(
                            "csrf_failed",
                            "missing or wrong X-CSRF-Token header",
                        )));
                    }
                }
                if token.revoked_at.is_some() || token.expires_at <= t {
                    return Ok(Err(invalid_refresh()));
                }
                if token.used_at.is_some() || !queries::mark_used(conn, token.id, t)? {
                    // A spent token came back: someone holds a copy. End the whole family.
                    queries::revoke_family(conn, &token.family_id, t)?;
                    audit::record(
                        conn,
                        &NewEvent::user(
                            Some(token.user_id),
                            "refresh_token_reused",
                            DENIED,
                            client,
                            t,
                        )
                        .because("a spent refresh token was presented; its family is revoked"),
                    )?;
                    return Ok(Err(ApiError::unauthorized(
                        "refresh_token_reused",
                        "this refresh token was already used; sign in again",
                    )));
                }
                let user = users::find(conn, token.user_id)?.ok_or_else(invalid_refresh)?;
                if user.status != users::ACTIVE {
                    queries::revoke_family(conn, &token.family_id, t)?;
                    return Ok(Err(invalid_refresh()));
                }
                // Keep the family's CSRF token: the portal still holds it in its cookie.
                let csrf = token
                    .csrf_hash
                    .is_some()
                    .then(|| csrf_sent.clone())
                    .flatten();
                Ok(Ok(issue_tokens(
                    &state_ref,
                    conn,
                    &user,
                    &token.family_id,
                    csrf,
                    t,
                )?))
            })
        })
        .await?;
    // Errors above are answers, not failures: the reuse revocation must commit.
    outcome
}

/// Revokes the refresh token's family. Unknown tokens are ignored (logout is idempotent).
/// `csrf_sent` is the `X-CSRF-Token` of a cookie-mode logout (`None` when the token came in the
/// body): a known token is only revoked when it is the family's.
pub async fn logout(
    state: &web::Data<AppState>,
    refresh_token: &str,
    csrf_sent: Option<String>,
    client: Option<String>,
) -> Result<(), ApiError> {
    let hash = tokens::token_hash(refresh_token);
    state
        .db
        .run(move |conn| {
            let t = now();
            write_tx(conn, |conn| {
                let token = queries::find_by_hash(conn, &hash)?;
                if let (Some(sent), Some(token)) = (&csrf_sent, &token) {
                    let ok = token.csrf_hash.as_deref().is_some_and(|expected| {
                        crate::http::auth::constant_time_eq(&tokens::token_hash(sent), expected)
                    });
                    if !ok {
                        return Err(ApiError::forbidden(
                            "csrf_failed",
                            "missing or wrong X-CSRF-Token header",
                        ));
                    }
                }
                if let Some(token) = token {
                    queries::revoke_family(conn, &token.family_id, t)?;
                    audit::record(
                        conn,
                        &NewEvent::user(Some(token.user_id), "logout", SUCCESS, client, t),
                    )?;
                }
                Ok(())
            })
        })
        .await
}
