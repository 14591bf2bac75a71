//! Named queries on locations, charge points and connectors.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{charge_points, connectors, locations};
use crate::db::DbConn;

/// A location row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = locations)]
pub struct Location {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub created_at: NaiveDateTime,
}

/// A new location.
#[derive(Debug, Insertable)]
#[diesel(table_name = locations)]
pub struct NewLocation {
    pub name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub created_at: NaiveDateTime,
}

/// A charge point row (the key only as a hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = charge_points)]
pub struct ChargePoint {
    pub id: String,
    pub location_id: i64,
    pub key_hash: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub heartbeat_interval: i64,
    pub online: bool,
    pub connected_at: Option<NaiveDateTime>,
    pub last_seen_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub key_rotated_at: NaiveDateTime,
    /// The tariff group that applies here, if any.
    pub tariff_id: Option<i64>,
}

/// A new charge point.
#[derive(Debug, Insertable)]
#[diesel(table_name = charge_points)]
pub struct NewChargePoint<'a> {
    pub id: &'a str,
    pub location_id: i64,
    pub key_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub key_rotated_at: NaiveDateTime,
}

/// A connector row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connectors)]
pub struct Connector {
    pub charge_point_id: String,
    pub connector_id: i64,
    pub standard: String,
    pub max_power_w: i64,
    pub current_type: String,
    pub status: String,
    pub error_code: Option<String>,
    pub status_at: Option<NaiveDateTime>,
}

/// Inserts a location and returns it.
pub fn insert_location(conn: &mut DbConn, new: &NewLocation) -> QueryResult<Location> {
    let id: i64 = diesel::insert_into(locations::table)
        .values(new)
        .returning(locations::id)
        .get_result(conn)?;
    locations::table
        .find(id)
        .select(Location::as_select())
        .first(conn)
}

/// Finds a location.
pub fn find_location(conn: &mut DbConn, id: i64) -> QueryResult<Option<Location>> {
    locations::table
        .find(id)
        .select(Location::as_select())
        .first(conn)
        .optional()
}

/// Locations inside a latitude/longitude box (the caller refines by true distance).
pub fn locations_in_box(
    conn: &mut DbConn,
    lat: (f64, f64),
    lon: (f64, f64),
) -> QueryResult<Vec<Location>> {
    locations::table
        .filter(locations::lat.between(lat.0, lat.1))
        .filter(locations::lon.between(lon.0, lon.1))
        .select(Location::as_select())
        .load(conn)
}

/// All locations, newest first, paginated by id.
pub fn list_locations(
    conn: &mut DbConn,
    limit: i64,
    before: Option<i64>,
) -> QueryResult<Vec<Location>> {
    let mut q = locations::table
        .select(Location::as_select())
        .order(locations::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(locations::id.lt(b));
    }
    q.load(conn)
}

/// Inserts a charge point.
pub fn insert_charge_point(conn: &mut DbConn, new: &NewChargePoint<'_>) -> QueryResult<()> {
    diesel::insert_into(charge_points::table)
        .values(new)
        .execute(conn)
        .map(drop)
}

/// Finds a charge point.
pub fn find_charge_point(conn: &mut DbConn, id: &str) -> QueryResult<Option<ChargePoint>> {
    charge_points::table
        .find(id)
        .select(ChargePoint::as_select())
        .first(conn)
        .optional()
}

/// Charge points of some locations.
pub fn charge_points_at(conn: &mut DbConn, location_ids: &[i64]) -> QueryResult<Vec<ChargePoint>> {
    charge_points::table
        .filter(charge_points::location_id.eq_any(location_ids))
        .order(charge_points::id)
        .select(ChargePoint::as_select())
        .load(conn)
}

/// Charge points for the operator's fleet list, by id, after `after`, optionally at one
/// location and online or not (the stored connection flag).
pub fn list_charge_points(
    conn: &mut DbConn,
    location_id: Option<i64>,
    online: Option<bool>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ChargePoint>> {
    let mut q = charge_points::table
        .order(charge_points::id)
        .limit(limit)
        .select(ChargePoint::as_select())
        .into_boxed();
    if let Some(l) = location_id {
        q = q.filter(charge_points::location_id.eq(l));
    }
    if let Some(o) = online {
        q = q.filter(charge_points::online.eq(o));
    }
    if let Some(a) = after {
        q = q.filter(charge_points::id.gt(a.to_string()));
    }
    q.load(conn)
}

/// Connectors of some charge points.
pub fn connectors_of(
    conn: &mut DbConn,
    charge_point_ids: &[String],
) -> QueryResult<Vec<Connector>> {
    connectors::table
        .filter(connectors::charge_point_id.eq_any(charge_point_ids))
        .order((connectors::charge_point_id, connectors::connector_id))
        .select(Connector::as_select())
        .load(conn)
}

/// One connector.
pub fn find_connector(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
) -> QueryResult<Option<Connector>> {
    connectors::table
        .find((cp, connector_id))
        .select(Connector::as_select())
        .first(conn)
        .optional()
}

/// Inserts connectors.
pub fn insert_connectors(conn: &mut DbConn, rows: &[Connector]) -> QueryResult<()> {
    // Multi-row VALUES needs each backend's own query builder.
    match conn {
        DbConn::Sqlite(c) => diesel::insert_into(connectors::table)
            .values(rows)
            .execute(c)?,
        DbConn::Postgres(c) => diesel::insert_into(connectors::table)
            .values(rows)
            .execute(c)?,
    };
    Ok(())
}

/// Replaces a charge point's key hash.
pub fn set_key_hash(
    conn: &mut DbConn,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(charge_points::table.find(id))
        .set((
            charge_points::key_hash.eq(hash),
            charge_points::key_rotated_at.eq(now),
        ))
        .execute(conn)
}

/// Records a charger's new live connection on `instance`: online, a new connection epoch
/// (returned), and this instance as its owner. A later connection, on any instance, gets a
/// higher epoch.
pub fn claim_connection(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::update(charge_points::table.find(id))
        .set((
            charge_points::online.eq(true),
            charge_points::connected_at.eq(Some(now)),
            charge_points::last_seen_at.eq(Some(now)),
            charge_points::owner_instance.eq(Some(instance)),
            charge_points::connection_epoch.eq(charge_points::connection_epoch + 1),
        ))
        .returning(charge_points::connection_epoch)
        .get_result(conn)
}

/// Marks a charger offline when its connection `epoch` on `instance` ended, unless it has
/// connected again since (to this or another instance): only the current epoch's owner may.
pub fn release_connection(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    epoch: i64,
) -> QueryResult<bool> {
    diesel::update(
        charge_points::table
            .find(id)
            .filter(charge_points::owner_instance.eq(instance))
            .filter(charge_points::connection_epoch.eq(epoch)),
    )
    .set(charge_points::online.eq(false))
    .execute(conn)
    .map(|n| n == 1)
}

/// The instance holding a charger's live connection, if it is online.
pub fn owner_of(conn: &mut DbConn, id: &str) -> QueryResult<Option<String>> {
    charge_points::table
        .find(id)
        .filter(charge_points::online.eq(true))
        .select(charge_points::owner_instance)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Marks offline the chargers held by instances whose heartbeat lease (each instance's own)
/// has expired at `now`, or that never had one; returns how many.
pub fn release_expired_owners(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    use crate::db::schema::instances;
    let alive = instances::table
        .filter(instances::expires_at.ge(now))
        .select(instances::id.nullable());
    diesel::update(
        charge_points::table
            .filter(charge_points::online.eq(true))
            .filter(charge_points::owner_instance.is_not_null())
            .filter(diesel::dsl::not(
                charge_points::owner_instance.eq_any(alive),
            )),
    )
    .set(charge_points::online.eq(false))
    .execute(conn)
}

/// Marks a charge point connected or disconnected.
pub fn set_online(
    conn: &mut DbConn,
    id: &str,
    online: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if online {
        diesel::update(charge_points::table.find(id))
            .set((
                charge_points::online.eq(true),
                charge_points::connected_at.eq(Some(now)),
                charge_points::last_seen_at.eq(Some(now)),
            ))
            .execute(conn)?;
    } else {
        diesel::update(charge_points::table.find(id))
            .set(charge_points::online.eq(false))
            .execute(conn)?;
    }
    Ok(())
}

/// Records that the charger was heard from.
pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(charge_points::table.find(id))
        .set(charge_points::last_seen_at.eq(Some(now)))
        .execute(conn)
        .map(drop)
}

/// What BootNotification tells about a charger.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = charge_points, treat_none_as_null = true)]
pub struct Boot<'a> {
    pub vendor: Option<&'a str>,
    pub model: Option<&'a str>,
    pub serial_number: Option<&'a str>,
    pub firmware_version: Option<&'a str>,
    pub heartbeat_interval: i64,
    pub last_seen_at: Option<NaiveDateTime>,
}

/// Stores what BootNotification told about the charger.
pub fn record_boot(conn: &mut DbConn, id: &str, boot: &Boot<'_>) -> QueryResult<()> {
    diesel::update(charge_points::table.find(id))
        .set(boot)
        .execute(conn)
        .map(drop)
}

/// Sets a connector's status (connector 0 is the whole charger and has no row).
pub fn set_connector_status(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    status: &str,
    error_code: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        connectors::table
            .find((cp, connector_id))
            // Late messages after an offline period must not overwrite a newer status.
            .filter(
                connectors::status_at
                    .is_null()
                    .or(connectors::status_at.le(at)),
            ),
    )
    .set((
        connectors::status.eq(status),
        connectors::error_code.eq(error_code),
        connectors::status_at.eq(Some(at)),
    ))
    .execute(conn)
}
