//! Named queries of the recommendations domain: preferences, imported history and its
//! reference mapping, batches and their recommendations, and the history the job reads.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{
    charge_points, charging_sessions, connectors, driver_preferences, external_refs,
    imported_sessions, locations, recommendation_batches, recommendations, users,
};
use crate::db::DbConn;

crate::db::text_enum! {
    /// Kinds of [`external_refs`] rows: references of the previous system.
    pub enum RefKind: "external reference kind" {
        /// A driver reference.
        Driver = "driver",
        /// A location reference.
        Location = "location",
    }
}

crate::db::text_enum! {
    /// The state of a recommendation batch (one run of the nightly job).
    pub enum BatchStatus: "batch status" {
        /// Rows may be half written.
        Running = "running",
        /// The batch is whole and visible to the API (only the newest such batch is shown).
        Complete = "complete",
        /// The run failed; its rows, if any, were rolled back.
        Failed = "failed",
    }
}

/// Rows per multi-row INSERT. The widest row here has 14 columns: 1,000 rows use at most
/// 14,000 bind parameters, under SQLite's 32,766 and PostgreSQL's 65,535.
const CHUNK_ROWS: usize = 1000;

/// A driver's stored preferences.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = driver_preferences)]
#[diesel(treat_none_as_null = true)]
pub struct PreferencesRow {
    pub user_id: i64,
    pub preferred_windows: String,
    pub favourite_location_ids: String,
    pub max_price_per_kwh_minor: Option<i64>,
    pub avoid_fast_charging_surcharge: bool,
    pub home_lat: Option<f64>,
    pub home_lon: Option<f64>,
    pub work_lat: Option<f64>,
    pub work_lon: Option<f64>,
    pub updated_at: NaiveDateTime,
}

/// One driver's preferences, if stored.
pub fn find_preferences(conn: &mut DbConn, user_id: i64) -> QueryResult<Option<PreferencesRow>> {
    driver_preferences::table
        .find(user_id)
        .select(PreferencesRow::as_select())
        .first(conn)
        .optional()
}

/// Every stored preference row (the nightly job reads them all).
pub fn all_preferences(conn: &mut DbConn) -> QueryResult<Vec<PreferencesRow>> {
    driver_preferences::table
        .select(PreferencesRow::as_select())
        .load(conn)
}

/// Inserts or replaces a driver's preferences.
pub fn save_preferences(conn: &mut DbConn, row: &PreferencesRow) -> QueryResult<()> {
    // Upserts differ per backend; an update-then-insert is the same on both and runs inside
    // the caller's write transaction.
    let updated = diesel::update(driver_preferences::table.find(row.user_id))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(driver_preferences::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Which of `ids` name existing locations.
pub fn existing_location_ids(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<i64>> {
    locations::table
        .filter(locations::id.eq_any(ids))
        .select(locations::id)
        .load(conn)
}

/// The mapping of one kind of external reference to ids.
pub fn refs_of_kind(conn: &mut DbConn, kind: RefKind) -> QueryResult<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = external_refs::table
        .filter(external_refs::kind.eq(kind.as_str()))
        .select((external_refs::external_ref, external_refs::target_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Records that `external_ref` of `kind` is `target_id`.
pub fn insert_ref(
    conn: &mut DbConn,
    kind: RefKind,
    external_ref: &str,
    target_id: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(external_refs::table)
        .values((
            external_refs::kind.eq(kind.as_str()),
            external_refs::external_ref.eq(external_ref),
            external_refs::target_id.eq(target_id),
            external_refs::created_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// Creates a driver account for imported history: no email and no password, so it cannot
/// sign in. Returns its id.
pub fn insert_imported_driver(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<i64> {
    diesel::insert_into(users::table)
        .values((
            users::role.eq(crate::http::auth::DRIVER),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)
}

/// A session row of the import.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = imported_sessions)]
pub struct NewImportedSession {
    pub import_key: String,
    pub user_id: i64,
    pub location_id: i64,
    pub charge_point_ref: Option<String>,
    pub started_at: NaiveDateTime,
    pub ended_at: NaiveDateTime,
    pub local_start: NaiveDateTime,
    pub energy_wh: i64,
    pub imported_at: NaiveDateTime,
}

/// Inserts imported sessions, skipping those whose `import_key` is already stored; returns how
/// many were new.
pub fn insert_imported_sessions(
    conn: &mut DbConn,
    rows: &[NewImportedSession],
) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK_ROWS) {
        // Multi-row VALUES and the conflict clause need each backend's own query builder.
        inserted += match conn {
            DbConn::Sqlite(c) => diesel::insert_or_ignore_into(imported_sessions::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(imported_sessions::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
    }
    Ok(inserted)
}

/// A session of the history as the recommender reads it.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRow {
    pub user_id: i64,
    pub location_id: i64,
    pub started_at: NaiveDateTime,
    pub ended_at: NaiveDateTime,
    /// Local wall-clock start, when stored (imported rows); else derived from the timezone.
    pub local_start: Option<NaiveDateTime>,
    pub energy_wh: i64,
}

/// Rows read per page when streaming history.
pub const HISTORY_PAGE: i64 = 50_000;

/// Finished OCPP sessions of drivers started at or after `since`, with ids above `after`,
/// `HISTORY_PAGE` at a time; returns the rows and the last id read.
pub fn finished_sessions_page(
    conn: &mut DbConn,
    since: NaiveDateTime,
    location: Option<i64>,
    after: i64,
) -> QueryResult<(Vec<HistoryRow>, Option<i64>)> {
    type Row = (
        i64,
        Option<i64>,
        i64,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<i64>,
        Option<i64>,
    );
    let mut q = charging_sessions::table
        .inner_join(charge_points::table)
        .filter(charging_sessions::status.eq("finished"))
        .filter(charging_sessions::user_id.is_not_null())
        .filter(charging_sessions::started_at.ge(since))
        .filter(charging_sessions::stopped_at.is_not_null())
        .filter(charging_sessions::id.gt(after))
        .order(charging_sessions::id)
        .limit(HISTORY_PAGE)
        .select((
            charging_sessions::id,
            charging_sessions::user_id,
            charge_points::location_id,
            charging_sessions::started_at,
            charging_sessions::stopped_at,
            charging_sessions::meter_start_wh,
            charging_sessions::meter_stop_wh,
        ))
        .into_boxed();
    if let Some(l) = location {
        q = q.filter(charge_points::location_id.eq(l));
    }
    let rows: Vec<Row> = q.load(conn)?;
    let last = rows.last().map(|r| r.0);
    let out = rows
        .into_iter()
        .filter_map(|(_, user, loc, start, stop, m0, m1)| {
            Some(HistoryRow {
                user_id: user?,
                location_id: loc,
                started_at: start?,
                ended_at: stop?,
                local_start: None,
                energy_wh: match (m0, m1) {
                    (Some(a), Some(b)) if b >= a => b - a,
                    _ => 0,
                },
            })
        })
        .collect();
    Ok((out, last))
}

/// Imported sessions started at or after `since`, with ids above `after`, a page at a time.
pub fn imported_sessions_page(
    conn: &mut DbConn,
    since: NaiveDateTime,
    location: Option<i64>,
    after: i64,
) -> QueryResult<(Vec<HistoryRow>, Option<i64>)> {
    let mut q = imported_sessions::table
        .filter(imported_sessions::started_at.ge(since))
        .filter(imported_sessions::id.gt(after))
        .order(imported_sessions::id)
        .limit(HISTORY_PAGE)
        .select((
            imported_sessions::id,
            imported_sessions::user_id,
            imported_sessions::location_id,
            imported_sessions::started_at,
            imported_sessions::ended_at,
            imported_sessions::local_start,
            imported_sessions::energy_wh,
        ))
        .into_boxed();
    if let Some(l) = location {
        q = q.filter(imported_sessions::location_id.eq(l));
    }
    let rows: Vec<(
        i64,
        i64,
        i64,
        NaiveDateTime,
        NaiveDateTime,
        NaiveDateTime,
        i64,
    )> = q.load(conn)?;
    let last = rows.last().map(|r| r.0);
    let out = rows
        .into_iter()
        .map(|(_, user, loc, start, end, local, wh)| HistoryRow {
            user_id: user,
            location_id: loc,
            started_at: start,
            ended_at: end,
            local_start: Some(local),
            energy_wh: wh,
        })
        .collect();
    Ok((out, last))
}

/// A location as the recommender needs it.
#[derive(Debug, Clone)]
pub struct LocationFacts {
    pub id: i64,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    /// Registered connectors.
    pub connectors: u32,
    /// Their OCPI standards, deduplicated.
    pub standards: Vec<String>,
    /// Whether any connector is DC (fast charging).
    pub has_dc: bool,
    /// Distinct charge point references in imported history (capacity of imported places).
    pub imported_charge_points: u32,
}

/// Facts about every location, or only `only`.
pub fn location_facts(conn: &mut DbConn, only: Option<i64>) -> QueryResult<Vec<LocationFacts>> {
    let mut q = locations::table
        .select((
            locations::id,
            locations::name,
            locations::lat,
            locations::lon,
            locations::timezone,
        ))
        .order(locations::id)
        .into_boxed();
    if let Some(id) = only {
        q = q.filter(locations::id.eq(id));
    }
    let locs: Vec<(i64, String, f64, f64, String)> = q.load(conn)?;
    let mut cq = connectors::table
        .inner_join(charge_points::table)
        .select((
            charge_points::location_id,
            connectors::standard,
            connectors::current_type,
        ))
        .into_boxed();
    let mut iq = imported_sessions::table
        .filter(imported_sessions::charge_point_ref.is_not_null())
        .select((
            imported_sessions::location_id,
            imported_sessions::charge_point_ref,
        ))
        .distinct()
        .into_boxed();
    if let Some(id) = only {
        cq = cq.filter(charge_points::location_id.eq(id));
        iq = iq.filter(imported_sessions::location_id.eq(id));
    }
    let conns: Vec<(i64, String, String)> = cq.load(conn)?;
    let cps: Vec<(i64, Option<String>)> = iq.load(conn)?;
    let mut facts: HashMap<i64, LocationFacts> = locs
        .into_iter()
        .map(|(id, name, lat, lon, timezone)| {
            (
                id,
                LocationFacts {
                    id,
                    name,
                    lat,
                    lon,
                    timezone,
                    connectors: 0,
                    standards: Vec::new(),
                    has_dc: false,
                    imported_charge_points: 0,
                },
            )
        })
        .collect();
    for (loc, standard, current) in conns {
        if let Some(f) = facts.get_mut(&loc) {
            f.connectors += 1;
            f.has_dc |= current.eq_ignore_ascii_case("DC");
            if !f.standards.contains(&standard) {
                f.standards.push(standard);
            }
        }
    }
    for (loc, _) in cps {
        if let Some(f) = facts.get_mut(&loc) {
            f.imported_charge_points += 1;
        }
    }
    let mut out: Vec<LocationFacts> = facts.into_values().collect();
    out.sort_by_key(|f| f.id);
    Ok(out)
}

/// `(location, tariff group)` of every charge point that has a tariff.
pub fn charge_point_tariff_groups(conn: &mut DbConn) -> QueryResult<Vec<(i64, i64)>> {
    let rows: Vec<(i64, Option<i64>)> = charge_points::table
        .filter(charge_points::tariff_id.is_not_null())
        .select((charge_points::location_id, charge_points::tariff_id))
        .order((charge_points::location_id, charge_points::id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(loc, group)| Some((loc, group?)))
        .collect())
}

/// A batch (one run of the nightly job).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = recommendation_batches)]
pub struct Batch {
    pub id: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = String)]
    pub status: BatchStatus,
    pub window_days: i64,
    pub seed: i64,
    pub drivers: i64,
    pub sessions: i64,
    pub recommendations: i64,
    pub failures: i64,
    pub error: Option<String>,
}

/// Records the start of a run; returns the batch id.
pub fn start_batch(
    conn: &mut DbConn,
    now: NaiveDateTime,
    window_days: i64,
    seed: i64,
) -> QueryResult<i64> {
    diesel::insert_into(recommendation_batches::table)
        .values((
            recommendation_batches::started_at.eq(now),
            recommendation_batches::status.eq(BatchStatus::Running.as_str()),
            recommendation_batches::window_days.eq(window_days),
            recommendation_batches::seed.eq(seed),
        ))
        .returning(recommendation_batches::id)
        .get_result(conn)
}

/// What a finished run counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchCounts {
    pub drivers: i64,
    pub sessions: i64,
    pub recommendations: i64,
    pub failures: i64,
}

/// Marks a batch complete with its counts (call in the transaction that wrote its rows).
pub fn complete_batch(
    conn: &mut DbConn,
    id: i64,
    counts: BatchCounts,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(recommendation_batches::table.find(id))
        .set((
            recommendation_batches::status.eq(BatchStatus::Complete.as_str()),
            recommendation_batches::finished_at.eq(now),
            recommendation_batches::drivers.eq(counts.drivers),
            recommendation_batches::sessions.eq(counts.sessions),
            recommendation_batches::recommendations.eq(counts.recommendations),
            recommendation_batches::failures.eq(counts.failures),
        ))
        .execute(conn)
        .map(drop)
}

/// Marks a batch failed with the error.
pub fn fail_batch(
    conn: &mut DbConn,
    id: i64,
    counts: BatchCounts,
    error: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(recommendation_batches::table.find(id))
        .set((
            recommendation_batches::status.eq(BatchStatus::Failed.as_str()),
            recommendation_batches::finished_at.eq(now),
            recommendation_batches::drivers.eq(counts.drivers),
            recommendation_batches::sessions.eq(counts.sessions),
            recommendation_batches::failures.eq(counts.failures),
            recommendation_batches::error.eq(error),
        ))
        .execute(conn)
        .map(drop)
}

/// The newest complete batch: the only one the API shows.
pub fn latest_complete_batch(conn: &mut DbConn) -> QueryResult<Option<Batch>> {
    recommendation_batches::table
        .filter(recommendation_batches::status.eq(BatchStatus::Complete.as_str()))
        .order(recommendation_batches::id.desc())
        .select(Batch::as_select())
        .first(conn)
        .optional()
}

/// The start of the newest session the recommender could read (finished OCPP sessions of
/// drivers and imported sessions), whatever its age.
pub fn newest_session_start(conn: &mut DbConn) -> QueryResult<Option<NaiveDateTime>> {
    use diesel::dsl::max;
    let ocpp: Option<NaiveDateTime> = charging_sessions::table
        .filter(charging_sessions::status.eq("finished"))
        .filter(charging_sessions::user_id.is_not_null())
        .filter(charging_sessions::stopped_at.is_not_null())
        .select(max(charging_sessions::started_at))
        .first::<Option<NaiveDateTime>>(conn)?;
    let imported: Option<NaiveDateTime> = imported_sessions::table
        .select(max(imported_sessions::started_at))
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok(ocpp.max(imported))
}

/// Every batch, newest first.
pub fn list_batches(conn: &mut DbConn) -> QueryResult<Vec<Batch>> {
    recommendation_batches::table
        .order(recommendation_batches::id.desc())
        .select(Batch::as_select())
        .load(conn)
}

/// A stored recommendation.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recommendations)]
pub struct RecommendationRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub batch_id: i64,
    pub user_id: i64,
    pub kind: String,
    pub sentence: String,
    pub numbers: String,
    pub location_id: i64,
    pub from_location_id: i64,
    pub weekday: i64,
    pub start_hour: i64,
    pub end_hour: i64,
    pub hour_of_week: i64,
    pub from_hour_of_week: i64,
    pub score: f64,
    /// The weekdays the advice is about, bit 0 = Monday (0 in rows from before spans: the
    /// `weekday` alone).
    pub days: i64,
}

/// Inserts a batch's recommendations.
pub fn insert_recommendations(conn: &mut DbConn, rows: &[RecommendationRow]) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        // Multi-row VALUES needs each backend's own query builder.
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(recommendations::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(recommendations::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Removes the rows of batches older than `batch_id` (they can no longer be shown); the batch
/// rows themselves stay as the record of each run.
pub fn delete_recommendations_before(conn: &mut DbConn, batch_id: i64) -> QueryResult<usize> {
    diesel::delete(recommendations::table.filter(recommendations::batch_id.lt(batch_id)))
        .execute(conn)
}

/// A driver's recommendations in a batch, best first, with the suggested location's name.
pub fn recommendations_for(
    conn: &mut DbConn,
    batch_id: i64,
    user_id: i64,
) -> QueryResult<Vec<(RecommendationRow, String)>> {
    recommendations::table
        .inner_join(locations::table.on(locations::id.eq(recommendations::location_id)))
        .filter(recommendations::batch_id.eq(batch_id))
        .filter(recommendations::user_id.eq(user_id))
        .order((recommendations::score.desc(), recommendations::id))
        .select((RecommendationRow::as_select(), locations::name))
        .load(conn)
}

/// How many rows a batch holds.
pub fn count_recommendations(conn: &mut DbConn, batch_id: i64) -> QueryResult<i64> {
    recommendations::table
        .filter(recommendations::batch_id.eq(batch_id))
        .count()
        .get_result(conn)
}
