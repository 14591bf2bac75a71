//! The database: one code base over SQLite and PostgreSQL through diesel's `MultiConnection`.

pub mod group;
pub mod introspect;
pub mod text_enum;
#[rustfmt::skip]
pub mod schema;

pub(crate) use text_enum::text_enum;

use std::path::Path;
use std::sync::Arc;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::http::error::ApiError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. Queries are written once against this type.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An error opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("DATABASE_URL must start with sqlite:// or postgres://, got {0:?}")]
    UnknownScheme(String),
    #[error("cannot create the directory for the SQLite file: {0}")]
    Directory(#[from] std::io::Error),
    #[error("cannot open the database: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl Backend {
    /// Picks the backend from the URL scheme and returns the URL diesel expects.
    pub fn from_url(url: &str) -> Result<(Backend, String), DbSetupError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok((Backend::Sqlite, path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_string()))
        } else {
            Err(DbSetupError::UnknownScheme(url.to_string()))
        }
    }
}

/// Turns on WAL, a busy timeout and foreign keys for every SQLite connection.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// A pooled database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConn>>,
    backend: Backend,
    /// Turns for [`Db::write`]. SQLite has one writer at a time; writers that wait for it in
    /// SQLite's busy handler sleep in steps of up to 100 ms and overtake each other, so they
    /// queue here (FIFO, one at a time) instead; the charger writer's batches take the same
    /// turns. On PostgreSQL writes through [`Db::write`] get all but a quarter of the pool, so
    /// reads always find a connection (the charger writer has its own connection).
    writer: Arc<tokio::sync::Semaphore>,
    /// The URL diesel opened, for connections outside the pool (the group writer's own).
    url: Arc<str>,
}

impl Db {
    /// Opens a pool on `url` (creating the SQLite file and its directory if needed).
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, DbSetupError> {
        let (backend, diesel_url) = Backend::from_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(dir) = Path::new(&diesel_url).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        if backend == Backend::Sqlite {
            // Switch to WAL once, before the pool opens its connections in parallel.
            let mut first = DbConn::establish(&diesel_url)
                .map_err(|e| DbSetupError::Migration(format!("cannot open {diesel_url}: {e}")))?;
            SqlitePragmas
                .on_acquire(&mut first)
                .map_err(|e| DbSetupError::Migration(e.to_string()))?;
        }
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_customizer(Box::new(SqlitePragmas))
            .build(ConnectionManager::<DbConn>::new(diesel_url.clone()))?;
        Ok(Db {
            url: diesel_url.clone().into(),
            pool,
            backend,
            writer: Arc::new(tokio::sync::Semaphore::new(match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => (pool_size.max(1) as usize * 3 / 4).max(1),
            })),
        })
    }

    /// The backend behind this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for blocking code (CLI, jobs, tests). Handlers use [`Db::run`].
    pub fn get(&self) -> Result<PooledConnection<ConnectionManager<DbConn>>, ApiError> {
        Ok(self.pool.get()?)
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, DbSetupError> {
        let mut conn = self.pool.get()?;
        run_migrations(&mut conn)
    }

    /// Runs `f` with a connection on the blocking thread pool, never on an async worker.
    pub async fn run<F, T>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        web::block(move || {
            let _entered = span.enter();
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }
}

impl Db {
    /// Like [`Db::run`] for the API's writes that contend with the charger writer: writers
    /// queue in arrival order for a turn (one at a time on SQLite, shared with the charger
    /// writer's batches; at most three quarters of the pool on PostgreSQL) before they take a
    /// connection.
    pub async fn write<F, T>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let _turn = self
            .writer
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("the database is closing".into()))?;
        self.run(f).await
    }
}

impl Db {
    /// A connection of its own, outside the pool (with the same SQLite settings): the group
    /// writer's, so charger writes never wait for a pooled connection the API holds.
    pub fn dedicated(&self) -> Result<DbConn, diesel::ConnectionError> {
        let mut conn = DbConn::establish(&self.url)?;
        SqlitePragmas.on_acquire(&mut conn).map_err(|e| {
            diesel::ConnectionError::BadConnection(format!("cannot set SQLite pragmas: {e}"))
        })?;
        Ok(conn)
    }

    /// A turn at SQLite's single write lock, in arrival order with the API's writes (see
    /// [`Db::write`]); `None` on PostgreSQL, where writers do not exclude each other.
    pub async fn sqlite_write_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.backend {
            Backend::Sqlite => self.writer.clone().acquire_owned().await.ok(),
            Backend::Postgres => None,
        }
    }
}

/// Applies pending migrations of the connection's backend.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, DbSetupError> {
    let result = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    result.map_err(|e| DbSetupError::Migration(e.to_string()))
}

/// Reverts every applied migration (used to check that each `down.sql` works).
pub fn revert_all_migrations(conn: &mut DbConn) -> Result<usize, DbSetupError> {
    let result = match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    result.map_err(|e| DbSetupError::Migration(e.to_string()))
}

/// Runs `f` in a write transaction. On SQLite the transaction takes the write lock at once
/// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of failing with
/// "database is locked" when a read transaction tries to upgrade. Nested transactions inside
/// `f` (diesel's batch inserts use one) become savepoints on both backends.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConn::Sqlite(sqlite) = conn else {
        return conn.transaction(f);
    };
    // Inside a transaction already (a message in the group writer's batch): a savepoint.
    let depth =
        AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()?;
    if depth.is_some() {
        return conn.transaction(f);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let outcome = f(conn);
    let DbConn::Sqlite(sqlite) = conn else {
        unreachable!("the backend of a connection does not change")
    };
    match outcome {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sqlite)?;
            Ok(value)
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(sqlite)?;
            Err(e)
        }
    }
}
