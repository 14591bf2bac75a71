//! The driver's pages: sign in/up/out, the live session with stop, starting at a charge point
//! (from a location or the QR short link `/c/{charge_point_id}/{connector_id}`), finding
//! locations, history with CSV, invoices with PDF, RFID cards, preferences, recommendations
//! with occupancy charts, activity and account.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError as _};
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::context::{local_path, redirect, value, Cx, OrPage, Page};
use crate::auth::TokenMode;
use crate::billing::pricing::PriceLine;
use crate::billing::records::SessionWithCost;
use crate::charging::handlers as sessions;
use crate::charging::queries::{self as session_queries, SessionFilter};
use crate::charging::rfid;
use crate::http::auth::DRIVER;
use crate::http::pagination::PageQuery;
use crate::http::time::now;
use crate::http::{client_addr, client_ip, ApiError};
use crate::recommend::{forecast, Forecast};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/register", web::get().to(register_page))
        .route("/register", web::post().to(register))
        .route("/logout", web::post().to(logout))
        .route(
            "/c/{charge_point_id}/{connector_id}",
            web::get().to(start_page),
        )
        .route("/start", web::post().to(start))
        .route("/sessions/{id}", web::get().to(session_page))
        .route("/sessions/{id}/live", web::get().to(session_live))
        .route("/sessions/{id}/stop", web::post().to(stop))
        .route("/locations", web::get().to(locations))
        .route("/locations/{id}", web::get().to(location))
        .route("/history", web::get().to(history))
        .route("/history.csv", web::get().to(history_csv))
        .route("/invoices", web::get().to(invoices))
        .route("/invoices/{id}/pdf", web::get().to(invoice_pdf))
        .route("/cards", web::get().to(cards))
        .route("/cards", web::post().to(add_card))
        .route("/cards/{id}", web::post().to(update_card))
        .route("/preferences", web::get().to(preferences))
        .route("/preferences", web::post().to(save_preferences))
        .route("/recommendations", web::get().to(recommendations))
        .route("/activity", web::get().to(activity))
        .route("/account", web::get().to(account))
        .route("/account/password", web::post().to(change_password))
        .route("/account/delete", web::post().to(delete_account));
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

// --- sign in, sign up, sign out ------------------------------------------------------------

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

fn with_cookie(
    mut res: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = res.add_cookie(&c);
    }
    res
}

async fn login_page(cx: Cx, q: web::Query<Next>) -> Page {
    login_form(&cx, StatusCode::OK, q.into_inner().next, None, "")
}

fn login_form(
    cx: &Cx,
    status: StatusCode,
    next: Option<String>,
    error: Option<String>,
    email: &str,
) -> Page {
    let (token, cookie) = cx.form_token();
    let res = cx.render_status(
        status,
        "login.html",
        context! { form_token => token, next => local_path(next.as_deref()), error, email },
    )?;
    Ok(with_cookie(res, cookie))
}

#[derive(Deserialize)]
struct LoginForm {
    form_token: String,
    email: String,
    password: String,
    next: Option<String>,
}

fn rate_limit(cx: &Cx) -> Result<(), ApiError> {
    cx.state
        .auth_limiter
        .check(client_ip(&cx.req, cx.state.config.trust_proxy))
}

async fn sign_in(
    cx: &Cx,
    email: &str,
    password: String,
    next: &str,
) -> Result<HttpResponse, ApiError> {
    let tokens = crate::auth::login(
        &cx.state,
        email,
        SecretString::from(password),
        TokenMode::Cookie,
        client_addr(&cx.req, cx.state.config.trust_proxy),
    )
    .await?;
    let mut res = redirect(next);
    for c in cx.session_cookies(tokens) {
        let _ = res.add_cookie(&c);
    }
    Ok(res)
}

async fn login(cx: Cx, form: web::Form<LoginForm>) -> Page {
    let form = form.into_inner();
    cx.check_form_token(&form.form_token)?;
    let next = local_path(form.next.as_deref());
    let outcome = match rate_limit(&cx) {
        Ok(()) => sign_in(&cx, &form.email, form.password, &next).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(res) => Ok(res),
        Err(e) => {
            let message = super::i18n::error_message(cx.lang, e.code().as_str(), &e.to_string());
            login_form(&cx, e.status_code(), Some(next), Some(message), &form.email)
        }
    }
}

async fn register_page(cx: Cx) -> Page {
    register_form(&cx, StatusCode::OK, None, "", "")
}

fn register_form(
    cx: &Cx,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    name: &str,
) -> Page {
    let (token, cookie) = cx.form_token();
    let res = cx.render_status(
        status,
        "register.html",
        context! { form_token => token, error, email, name },
    )?;
    Ok(with_cookie(res, cookie))
}

#[derive(Deserialize)]
struct RegisterForm {
    form_token: String,
    email: String,
    name: String,
    password: String,
}

async fn register(cx: Cx, form: web::Form<RegisterForm>) -> Page {
    let form = form.into_inner();
    cx.check_form_token(&form.form_token)?;
    let outcome = async {
        rate_limit(&cx)?;
        crate::auth::register(
            &cx.state,
            &form.email,
            SecretString::from(form.password.clone()),
            &form.name,
            DRIVER,
            client_addr(&cx.req, cx.state.config.trust_proxy),
        )
        .await?;
        sign_in(&cx, &form.email, form.password.clone(), "/").await
    }
    .await;
    match outcome {
        Ok(res) => Ok(res),
        Err(e) => {
            let message = super::i18n::error_message(cx.lang, e.code().as_str(), &e.to_string());
            register_form(&cx, e.status_code(), Some(message), &form.email, &form.name)
        }
    }
}

/// A redirect to `to` that also removes the sign-in cookies (sign-out, a new password, a
/// deleted account).
fn signed_out_redirect(cx: &Cx, to: &str) -> HttpResponse {
    let mut res = redirect(to);
    for c in cx.removal_cookies() {
        let _ = res.add_cookie(&c);
    }
    res
}

async fn logout(cx: Cx, form: web::Form<CsrfForm>) -> Page {
    cx.check_csrf(&form.csrf)?;
    if let Some(token) = cx.req.cookie(crate::http::auth::REFRESH_COOKIE) {
        crate::auth::logout(
            &cx.state,
            token.value(),
            Some(form.csrf.clone()),
            client_addr(&cx.req, cx.state.config.trust_proxy),
        )
        .await
        .or_page(&cx)?;
    }
    Ok(signed_out_redirect(&cx, "/login?done=signed_out"))
}

// --- home and the live session ----------------------------------------------------------------

async fn home(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    if me.is_operator() {
        return Ok(redirect("/operator"));
    }
    let user = me.id;
    let open = cx
        .state
        .db
        .run(move |conn| {
            let t = now();
            session_queries::open_for_user(conn, user)?
                .into_iter()
                .next()
                .map(|s| crate::billing::records::with_cost(conn, s, t))
                .transpose()
        })
        .await
        .or_page(&cx)?;
    let recent = sessions::page_of(
        &cx.state,
        SessionFilter {
            user_id: Some(user),
            ..Default::default()
        },
        PageQuery {
            limit: Some(5),
            cursor: None,
        }
        .validate()
        .or_page(&cx)?,
    )
    .await
    .or_page(&cx)?;
    let recent: Vec<_> = recent.items.iter().map(SessionRow::from).collect();
    cx.render(
        "home.html",
        context! { session => open.as_ref().map(value), recent => value(&recent) },
    )
}

async fn session_page(cx: Cx, id: web::Path<i64>) -> Page {
    let me = cx.signed_in()?;
    let s = sessions::visible_session(&cx.state, &me, id.into_inner())
        .await
        .or_page(&cx)?;
    let row = SessionRow::from(&s);
    cx.render(
        "session.html",
        context! { session => value(&s), row => value(&row) },
    )
}

/// The live values of a session, formatted, for the page's script.
#[derive(Serialize)]
struct Live {
    status: String,
    fields: BTreeMap<&'static str, String>,
}

async fn session_live(cx: Cx, id: web::Path<i64>) -> Page {
    let me = cx.signed_in()?;
    let s = sessions::visible_session(&cx.state, &me, id.into_inner())
        .await
        .or_page(&cx)?;
    let lang = cx.lang;
    let mut fields = BTreeMap::new();
    fields.insert("energy", super::format::kwh(lang, s.session.energy_wh));
    fields.insert(
        "power",
        s.session
            .power_w
            .map_or_else(|| "–".into(), |w| super::format::kw(lang, w)),
    );
    fields.insert(
        "soc",
        s.session
            .soc
            .map_or_else(|| "–".into(), |v| format!("{v}\u{a0}%")),
    );
    fields.insert("charging", super::format::clock(s.session.charging_seconds));
    fields.insert("idle", super::format::clock(s.session.idle_seconds));
    fields.insert(
        "cost",
        s.cost
            .as_ref()
            .map_or_else(|| "–".into(), |c| super::format::money(lang, c.money.total)),
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Live {
            status: s.session.status.to_string(),
            fields,
        }))
}

async fn stop(cx: Cx, id: web::Path<i64>, form: web::Form<CsrfForm>) -> Page {
    let me = cx.check_csrf(&form.csrf)?;
    let id = id.into_inner();
    let back = format!("/sessions/{id}");
    crate::charging::remote::driver_stop(cx.state.clone().into_inner(), me.id, id)
        .await
        .or_back(&cx, &back)?;
    Ok(redirect(&format!("{back}?done=stop_requested")))
}

// --- starting --------------------------------------------------------------------------------

async fn start_page(cx: Cx, path: web::Path<(String, i64)>) -> Page {
    let me = cx.signed_in()?;
    let (cp, connector_id) = path.into_inner();
    let lookup = cp.clone();
    let location_id = cx
        .state
        .db
        .run(move |conn| {
            crate::locations::queries::find_charge_point(conn, &lookup)?
                .map(|c| c.location_id)
                .ok_or_else(|| ApiError::not_found("charge point"))
        })
        .await
        .or_page(&cx)?;
    let location = crate::locations::handlers::location(&cx.state, location_id)
        .await
        .or_page(&cx)?;
    let charge_point = location
        .charge_points
        .iter()
        .find(|c| c.id == cp)
        .ok_or_else(|| cx.error(ApiError::not_found("charge point"), None))?;
    let connector = charge_point
        .connectors
        .iter()
        .find(|c| c.connector_id == connector_id)
        .ok_or_else(|| cx.error(ApiError::not_found("connector"), None))?;
    let user = me.id;
    let open = cx
        .state
        .db
        .run(move |conn| Ok(session_queries::open_for_user(conn, user)?))
        .await
        .or_page(&cx)?
        .first()
        .map(|s| s.id);
    cx.render(
        "start.html",
        context! {
            location => value(&location),
            charge_point => value(charge_point),
            connector => value(connector),
            open,
        },
    )
}

#[derive(Deserialize)]
struct StartForm {
    csrf: String,
    charge_point_id: String,
    connector_id: i64,
}

async fn start(cx: Cx, form: web::Form<StartForm>) -> Page {
    let form = form.into_inner();
    let me = cx.check_csrf(&form.csrf)?;
    let back = format!(
        "/c/{}/{}",
        super::context::encode(&form.charge_point_id),
        form.connector_id
    );
    let id = crate::charging::remote::app_unlock(
        cx.state.clone().into_inner(),
        me.id,
        form.charge_point_id,
        form.connector_id,
    )
    .await
    .or_back(&cx, &back)?;
    Ok(redirect(&format!("/sessions/{id}")))
}

// --- locations -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct NearForm {
    lat: Option<String>,
    lon: Option<String>,
    radius_km: Option<String>,
}

/// Central Stockholm, where the search starts before the driver gives a point.
const DEFAULT_POINT: (f64, f64) = (59.3326, 18.0649);

fn decimal(s: Option<&str>) -> Option<f64> {
    s.map(|s| s.trim().replace(',', "."))
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

async fn locations(cx: Cx, q: web::Query<NearForm>) -> Page {
    cx.signed_in()?;
    let q = q.into_inner();
    let lat = decimal(q.lat.as_deref()).unwrap_or(DEFAULT_POINT.0);
    let lon = decimal(q.lon.as_deref()).unwrap_or(DEFAULT_POINT.1);
    let radius = decimal(q.radius_km.as_deref()).unwrap_or(15.0);
    let found = crate::locations::handlers::near(
        &cx.state,
        crate::locations::handlers::NearQuery {
            lat,
            lon,
            radius_km: Some(radius),
        },
    )
    .await;
    let (found, error) = match found {
        Ok(v) => (v, None),
        Err(e) => (
            Vec::new(),
            Some(super::i18n::error_message(
                cx.lang,
                e.code().as_str(),
                &e.to_string(),
            )),
        ),
    };
    let free: Vec<usize> = found
        .iter()
        .map(|l| {
            l.charge_points
                .iter()
                .filter(|c| c.online)
                .flat_map(|c| &c.connectors)
                .filter(|c| c.status == "Available")
                .count()
        })
        .collect();
    cx.render(
        "locations.html",
        context! { locations => value(&found), free, lat, lon, radius, error },
    )
}

async fn location(cx: Cx, id: web::Path<i64>) -> Page {
    cx.signed_in()?;
    let id = id.into_inner();
    let location = crate::locations::handlers::location(&cx.state, id)
        .await
        .or_page(&cx)?;
    let f = cx
        .state
        .db
        .run(move |conn| forecast::of_location(conn, id, forecast::DEFAULT_WINDOW_DAYS, now()))
        .await
        .or_page(&cx)?;
    let chart = Chart::of(&f, None);
    cx.render(
        "location.html",
        context! { location => value(&location), chart => value(&chart) },
    )
}

/// A week of expected occupancy as a 7 × 24 grid, ready to draw as SVG.
#[derive(Serialize)]
pub struct Chart {
    pub cells: Vec<Cell>,
    pub days: Vec<&'static str>,
    /// Hours of the week (Monday 00–01 = 0) of the busiest and the quietest hour.
    pub busiest: Option<(usize, usize)>,
    pub quietest: Option<(usize, usize)>,
    pub sessions: u64,
    pub location_id: i64,
}

/// One hour of the chart.
#[derive(Serialize)]
pub struct Cell {
    pub x: usize,
    pub y: usize,
    /// 0 (free) … 4 (full).
    pub level: u8,
    pub day: usize,
    pub hour: u8,
    pub share: f64,
    pub suggested: bool,
}

impl Chart {
    /// Lays out a forecast; `suggested` marks the hour of the week a recommendation names.
    pub fn of(f: &Forecast, suggested: Option<u16>) -> Chart {
        let cells = f
            .slots
            .iter()
            .map(|s| {
                let share = if s.capacity == 0 {
                    0.0
                } else {
                    (s.expected_occupied / f64::from(s.capacity)).clamp(0.0, 1.0)
                };
                Cell {
                    x: 40 + usize::from(s.hour) * 22,
                    y: 24 + usize::from(s.weekday) * 22,
                    level: (share * 4.0).round() as u8,
                    day: usize::from(s.weekday),
                    hour: s.hour,
                    share,
                    suggested: Some(s.hour_of_week) == suggested,
                }
            })
            .collect::<Vec<_>>();
        let pick = |best: &dyn Fn(f64, f64) -> bool| {
            cells
                .iter()
                .fold(None::<&Cell>, |acc, c| match acc {
                    Some(a) if !best(c.share, a.share) => Some(a),
                    _ => Some(c),
                })
                .map(|c| (c.day, usize::from(c.hour)))
        };
        let has_history = f.sessions > 0;
        Chart {
            busiest: has_history.then(|| pick(&|a, b| a > b)).flatten(),
            quietest: has_history.then(|| pick(&|a, b| a < b)).flatten(),
            cells,
            days: vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            sessions: f.sessions,
            location_id: f.location_id,
        }
    }
}

// --- history ---------------------------------------------------------------------------------

/// A session with its cost split by component, as the history shows it.
#[derive(Serialize, Default)]
pub struct SessionRow {
    pub id: i64,
    pub status: String,
    pub charge_point_id: String,
    pub connector_id: i64,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    pub energy_wh: i64,
    pub charging_seconds: i64,
    pub idle_seconds: i64,
    pub energy: i64,
    pub time: i64,
    pub parking_time: i64,
    pub flat: i64,
    pub excl_vat: Option<i64>,
    pub vat: Option<i64>,
    pub total: Option<i64>,
    pub billing: Option<String>,
    pub hold_reason: Option<String>,
}

impl From<&SessionWithCost> for SessionRow {
    fn from(with_cost: &SessionWithCost) -> Self {
        let s = &with_cost.session;
        let mut row = SessionRow {
            id: s.id,
            status: s.status.to_string(),
            charge_point_id: s.charge_point_id.clone(),
            connector_id: s.connector_id,
            started_at: s
                .started_at
                .map(|t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"))),
            stopped_at: s
                .stopped_at
                .map(|t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"))),
            energy_wh: s.energy_wh,
            charging_seconds: s.charging_seconds,
            idle_seconds: s.idle_seconds,
            ..Default::default()
        };
        if let Some(cost) = &with_cost.cost {
            row.excl_vat = Some(cost.money.excl_vat);
            row.vat = Some(cost.money.vat);
            row.total = Some(cost.money.total);
            row.billing = Some(cost.state.to_string());
            row.hold_reason = cost.hold_reason.clone();
            let lines: &[PriceLine] = cost.details.as_ref().map_or(&[], |d| &d.lines);
            for line in lines {
                let slot = match line.kind.ocpi_name() {
                    "ENERGY" => &mut row.energy,
                    "TIME" => &mut row.time,
                    "PARKING_TIME" => &mut row.parking_time,
                    _ => &mut row.flat,
                };
                *slot += line.amount_excl_vat;
            }
        }
        row
    }
}

async fn history(cx: Cx, q: web::Query<PageQuery>) -> Page {
    let me = cx.signed_in()?;
    let page = q.into_inner().validate().or_page(&cx)?;
    let found = sessions::page_of(
        &cx.state,
        SessionFilter {
            user_id: Some(me.id),
            ..Default::default()
        },
        page,
    )
    .await
    .or_page(&cx)?;
    let rows: Vec<SessionRow> = found.items.iter().map(SessionRow::from).collect();
    cx.render(
        "history.html",
        context! { rows => value(&rows), next_cursor => found.next_cursor },
    )
}

fn csv_field(s: &str) -> String {
    // Quote always, double quotes inside, and defuse spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn decimal_minor(v: Option<i64>) -> String {
    v.map(|m| crate::billing::money::to_major(m).to_string())
        .unwrap_or_default()
}

async fn history_csv(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    let mut out = String::from(
        "session_id,started_at,stopped_at,charge_point_id,connector_id,status,energy_kwh,\
         charging_minutes,idle_minutes,energy_sek,time_sek,idle_fee_sek,flat_sek,excl_vat_sek,\
         vat_sek,total_sek,billing\r\n",
    );
    let mut cursor = None;
    // Every session, a page at a time (at most 100 pages of 100).
    for _ in 0..100 {
        let page = PageQuery {
            limit: Some(100),
            cursor,
        }
        .validate()
        .or_page(&cx)?;
        let found = sessions::page_of(
            &cx.state,
            SessionFilter {
                user_id: Some(me.id),
                ..Default::default()
            },
            page,
        )
        .await
        .or_page(&cx)?;
        for s in &found.items {
            let r = SessionRow::from(s);
            let fields = [
                r.id.to_string(),
                r.started_at.clone().unwrap_or_default(),
                r.stopped_at.clone().unwrap_or_default(),
                csv_field(&r.charge_point_id),
                r.connector_id.to_string(),
                r.status.clone(),
                format!("{:.3}", r.energy_wh as f64 / 1000.0),
                (r.charging_seconds / 60).to_string(),
                (r.idle_seconds / 60).to_string(),
                decimal_minor(Some(r.energy)),
                decimal_minor(Some(r.time)),
                decimal_minor(Some(r.parking_time)),
                decimal_minor(Some(r.flat)),
                decimal_minor(r.excl_vat),
                decimal_minor(r.vat),
                decimal_minor(r.total),
                r.billing.clone().unwrap_or_default(),
            ];
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        match found.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"laddkoll-sessions.csv\"",
        ))
        .body(out))
}

// --- invoices --------------------------------------------------------------------------------

async fn invoices(cx: Cx, q: web::Query<PageQuery>) -> Page {
    let me = cx.signed_in()?;
    let found = crate::billing::handlers::invoice_page(&cx.state, Some(me.id), q.into_inner())
        .await
        .or_page(&cx)?;
    cx.render(
        "invoices.html",
        context! { invoices => value(&found.items), next_cursor => found.next_cursor },
    )
}

async fn invoice_pdf(cx: Cx, id: web::Path<i64>) -> Page {
    let me = cx.signed_in()?;
    let invoice = crate::billing::handlers::visible_invoice(&cx.state, &me, id.into_inner())
        .await
        .or_page(&cx)?;
    let (number, bytes) = web::block(move || {
        let bytes = crate::billing::pdf::render(&invoice);
        (invoice.number, bytes)
    })
    .await
    .map_err(ApiError::from)
    .or_page(&cx)?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{number}.pdf\""),
        ))
        .body(bytes))
}

// --- cards ----------------------------------------------------------------------------------

async fn cards(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    let cards = rfid::cards_of(&cx.state, me.id).await.or_page(&cx)?;
    cx.render("cards.html", context! { cards => value(&cards) })
}

#[derive(Deserialize)]
struct CardForm {
    csrf: String,
    uid: String,
    label: String,
}

async fn add_card(cx: Cx, form: web::Form<CardForm>) -> Page {
    let form = form.into_inner();
    let me = cx.check_csrf(&form.csrf)?;
    rfid::add(
        &cx.state,
        me.id,
        rfid::NewCard {
            uid: form.uid,
            label: form.label,
            expires_at: None,
        },
    )
    .await
    .or_back(&cx, "/cards")?;
    Ok(redirect("/cards?done=card_added"))
}

#[derive(Deserialize)]
struct CardPatchForm {
    csrf: String,
    label: Option<String>,
    status: Option<String>,
}

async fn update_card(cx: Cx, id: web::Path<i64>, form: web::Form<CardPatchForm>) -> Page {
    let form = form.into_inner();
    let me = cx.check_csrf(&form.csrf)?;
    rfid::update(
        &cx.state,
        me.id,
        id.into_inner(),
        rfid::CardPatch {
            label: form.label,
            status: form.status,
        },
    )
    .await
    .or_back(&cx, "/cards")?;
    Ok(redirect("/cards?done=card_updated"))
}

// --- preferences and recommendations ---------------------------------------------------------

async fn preferences(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    let prefs = crate::recommend::handlers::preferences_of(&cx.state, me.id)
        .await
        .or_page(&cx)?;
    let window = prefs.preferred_windows.first().cloned();
    let max_price = prefs.max_price_per_kwh_minor.map(|m| {
        super::format::money(cx.lang, m)
            .replace("\u{a0}kr", "")
            .replace("SEK\u{a0}", "")
    });
    let coord = |c: Option<crate::recommend::preferences::LatLon>| {
        c.map(|c| format!("{}, {}", c.lat, c.lon))
            .unwrap_or_default()
    };
    cx.render(
        "preferences.html",
        context! {
            prefs => value(&prefs),
            window => window.as_ref().map(value),
            max_price,
            home => coord(prefs.home),
            work => coord(prefs.work),
            days => crate::recommend::preferences::WEEKDAYS,
            hours => (0..=24).collect::<Vec<u8>>(),
        },
    )
}

#[derive(Deserialize)]
struct PreferencesForm {
    csrf: String,
    day_mon: Option<String>,
    day_tue: Option<String>,
    day_wed: Option<String>,
    day_thu: Option<String>,
    day_fri: Option<String>,
    day_sat: Option<String>,
    day_sun: Option<String>,
    start_hour: Option<String>,
    end_hour: Option<String>,
    max_price: Option<String>,
    avoid_fast: Option<String>,
    home: Option<String>,
    work: Option<String>,
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::unprocessable("invalid_field", format!("{field}: {message}"))
}

/// Reads `lat, lon` as typed into one field.
fn lat_lon(
    field: &str,
    s: Option<&str>,
) -> Result<Option<crate::recommend::preferences::LatLon>, ApiError> {
    let s = s.unwrap_or_default().trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (lat, lon) = s
        .split_once([',', ';', ' '])
        .ok_or_else(|| field_error(field, "write latitude, longitude"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| field_error(field, "write latitude, longitude"))
    };
    Ok(Some(crate::recommend::preferences::LatLon {
        lat: parse(lat)?,
        lon: parse(lon)?,
    }))
}

/// Reads a price typed in kronor (`2,50` or `2.50`) as öre.
fn kronor(field: &str, s: Option<&str>) -> Result<Option<i64>, ApiError> {
    let s = s.unwrap_or_default().trim().replace(',', ".");
    if s.is_empty() {
        return Ok(None);
    }
    let d: rust_decimal::Decimal = s
        .parse()
        .map_err(|_| field_error(field, "write a price such as 2,50"))?;
    crate::billing::money::to_minor(d)
        .map(Some)
        .map_err(|_| field_error(field, "out of range"))
}

async fn save_preferences(cx: Cx, form: web::Form<PreferencesForm>) -> Page {
    let f = form.into_inner();
    let me = cx.check_csrf(&f.csrf)?;
    let outcome = async {
        // Favourites are not edited here; keep them.
        let mut prefs = crate::recommend::handlers::preferences_of(&cx.state, me.id).await?;
        let days: Vec<String> = [
            (&f.day_mon, "mon"),
            (&f.day_tue, "tue"),
            (&f.day_wed, "wed"),
            (&f.day_thu, "thu"),
            (&f.day_fri, "fri"),
            (&f.day_sat, "sat"),
            (&f.day_sun, "sun"),
        ]
        .into_iter()
        .filter(|(v, _)| v.is_some())
        .map(|(_, d)| d.to_string())
        .collect();
        let hour = |field: &str, v: &Option<String>| -> Result<Option<u8>, ApiError> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| field_error(field, "an hour 0–24")),
            }
        };
        let start = hour("start_hour", &f.start_hour)?;
        let end = hour("end_hour", &f.end_hour)?;
        let first = match (days.is_empty(), start, end) {
            (true, _, _) => None,
            (false, Some(start_hour), Some(end_hour)) => {
                Some(crate::recommend::preferences::PreferredWindow {
                    days,
                    start_hour,
                    end_hour,
                })
            }
            _ => return Err(field_error("preferred_windows", "give both hours")),
        };
        let rest: Vec<_> = prefs.preferred_windows.iter().skip(1).cloned().collect();
        prefs.preferred_windows = first.into_iter().chain(rest).collect();
        prefs.max_price_per_kwh_minor = kronor("max_price_per_kwh_minor", f.max_price.as_deref())?;
        prefs.avoid_fast_charging_surcharges = f.avoid_fast.is_some();
        prefs.home = lat_lon("home", f.home.as_deref())?;
        prefs.work = lat_lon("work", f.work.as_deref())?;
        crate::recommend::handlers::save(&cx.state, me.id, prefs).await
    }
    .await;
    outcome.or_back(&cx, "/preferences")?;
    Ok(redirect("/preferences?done=preferences_saved"))
}

async fn recommendations(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    let user = me.id;
    let (recs, forecasts) = cx
        .state
        .db
        .run(move |conn| {
            let recs = crate::recommend::recommendations_of(conn, user)?;
            let t = now();
            let mut forecasts = BTreeMap::new();
            for r in &recs.items {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    forecasts.entry(r.location.id)
                {
                    slot.insert(forecast::of_location(
                        conn,
                        r.location.id,
                        forecast::DEFAULT_WINDOW_DAYS,
                        t,
                    )?);
                }
            }
            Ok((recs, forecasts))
        })
        .await
        .or_page(&cx)?;
    let charts: Vec<Chart> = recs
        .items
        .iter()
        .filter_map(|r| {
            forecasts
                .get(&r.location.id)
                .map(|f| Chart::of(f, Some(r.time_window.hour_of_week)))
        })
        .collect();
    cx.render(
        "recommendations.html",
        context! { recs => value(&recs), charts => value(&charts) },
    )
}

// --- activity and account ----------------------------------------------------------------------

async fn activity(cx: Cx, q: web::Query<PageQuery>) -> Page {
    let me = cx.signed_in()?;
    let found = crate::audit::handlers::page_of(
        &cx.state,
        crate::audit::EventFilter {
            user_id: Some(me.id),
            ..Default::default()
        },
        q.into_inner(),
    )
    .await
    .or_page(&cx)?;
    cx.render(
        "activity.html",
        context! { events => value(&found.items), next_cursor => found.next_cursor },
    )
}

async fn account(cx: Cx) -> Page {
    let me = cx.signed_in()?;
    let user = crate::accounts::load(&cx.state, me.id).await.or_page(&cx)?;
    cx.render(
        "account.html",
        context! { name => user.name, email => user.email, role => user.role },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
}

async fn change_password(cx: Cx, form: web::Form<PasswordForm>) -> Page {
    let form = form.into_inner();
    let me = cx.check_csrf(&form.csrf)?;
    let user = crate::accounts::load(&cx.state, me.id).await.or_page(&cx)?;
    crate::accounts::change_password(
        &cx.state,
        user,
        SecretString::from(form.current),
        SecretString::from(form.new),
        client_addr(&cx.req, cx.state.config.trust_proxy),
    )
    .await
    .or_back(&cx, "/account")?;
    Ok(signed_out_redirect(&cx, "/login?done=password_changed"))
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf: String,
    password: String,
}

async fn delete_account(cx: Cx, form: web::Form<DeleteForm>) -> Page {
    let form = form.into_inner();
    let me = cx.check_csrf(&form.csrf)?;
    let user = crate::accounts::load(&cx.state, me.id).await.or_page(&cx)?;
    crate::accounts::delete(
        &cx.state,
        user,
        SecretString::from(form.password),
        client_addr(&cx.req, cx.state.config.trust_proxy),
    )
    .await
    .or_back(&cx, "/account")?;
    Ok(signed_out_redirect(&cx, "/login?done=account_deleted"))
}
