//! Named queries on `users`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::DbConn;

/// A user row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub role: String,
    pub status: String,
    pub token_version: i64,
    pub failed_logins: i64,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

/// Account states.
pub const ACTIVE: &str = "active";
pub const BLOCKED: &str = "blocked";
pub const DELETED: &str = "deleted";

/// Fields of a new user.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Inserts a user and returns the stored row.
pub fn insert(conn: &mut DbConn, new: &NewUser<'_>) -> QueryResult<User> {
    let id: i64 = diesel::insert_into(users::table)
        .values(new)
        .returning(users::id)
        .get_result(conn)?;
    users::table.find(id).select(User::as_select()).first(conn)
}

/// Finds a user by id, whatever its state.
pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Finds a user by normalised email.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Takes one password attempt for an account that is not locked at `now`: the attempt is
/// counted as a failure in advance (a success resets the count) and the new count returned.
/// `None` when the account is locked. The conditional update takes the row's write lock, so
/// parallel attempts are counted one after another, and an attempt that comes after a lock
/// was written (in the same transaction as the count that caused it) sees it.
pub fn begin_attempt(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<Option<i64>> {
    let taken = diesel::update(
        users::table.find(id).filter(
            users::locked_until
                .is_null()
                .or(users::locked_until.le(now)),
        ),
    )
    .set((
        users::failed_logins.eq(users::failed_logins + 1),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    users::table
        .find(id)
        .select(users::failed_logins)
        .first(conn)
        .map(Some)
}

/// Locks an account until `until`, never shortening a lock already in place.
pub fn lock_until(conn: &mut DbConn, id: i64, until: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        users::table.find(id).filter(
            users::locked_until
                .is_null()
                .or(users::locked_until.lt(until)),
        ),
    )
    .set(users::locked_until.eq(Some(until)))
    .execute(conn)
    .map(drop)
}

/// Clears the failure count after a successful login.
pub fn reset_failed_logins(conn: &mut DbConn, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(0i64),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(drop)
}

/// Stores a new password hash.
pub fn set_password_hash(
    conn: &mut DbConn,
    id: i64,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
        .map(drop)
}

/// Raises the token version, which invalidates every access token issued before.
pub fn bump_token_version(conn: &mut DbConn, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::token_version.eq(users::token_version + 1))
        .execute(conn)
        .map(drop)
}

/// Changes name and/or email.
pub fn update_profile(
    conn: &mut DbConn,
    id: i64,
    name: Option<&str>,
    email: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(name) = name {
        diesel::update(users::table.find(id))
            .set(users::name.eq(name))
            .execute(conn)?;
    }
    if let Some(email) = email {
        diesel::update(users::table.find(id))
            .set(users::email.eq(email))
            .execute(conn)?;
    }
    diesel::update(users::table.find(id))
        .set(users::updated_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// Sets the account state (active or blocked).
pub fn set_status(
    conn: &mut DbConn,
    id: i64,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id).filter(users::status.ne(DELETED)))
        .set((users::status.eq(status), users::updated_at.eq(now)))
        .execute(conn)
}

/// Erases personal data; the row stays so sessions and invoices keep a (now anonymous) owner.
pub fn erase(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(None::<String>),
            users::name.eq(None::<String>),
            users::password_hash.eq(None::<String>),
            users::status.eq(DELETED),
            users::token_version.eq(users::token_version + 1),
            users::deleted_at.eq(Some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// Whether at least one operator exists.
pub fn count_by_role(conn: &mut DbConn, role: &str) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(role))
        .count()
        .get_result(conn)
}
