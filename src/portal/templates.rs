//! The templates, compiled into the binary, and the filters they format with. HTML escaping is
//! on for every template (they all end in `.html`).

use std::sync::LazyLock;

use minijinja::{Environment, State, Value};

use super::format;
use super::i18n::{self, Lang};

/// Every template: name and source.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("live.html", include_str!("templates/live.html")),
    ("chart.html", include_str!("templates/chart.html")),
    ("cost.html", include_str!("templates/cost.html")),
    ("error.html", include_str!("templates/error.html")),
    ("refresh.html", include_str!("templates/refresh.html")),
    ("login.html", include_str!("templates/login.html")),
    ("register.html", include_str!("templates/register.html")),
    ("home.html", include_str!("templates/home.html")),
    ("session.html", include_str!("templates/session.html")),
    ("start.html", include_str!("templates/start.html")),
    ("locations.html", include_str!("templates/locations.html")),
    ("location.html", include_str!("templates/location.html")),
    ("history.html", include_str!("templates/history.html")),
    ("invoices.html", include_str!("templates/invoices.html")),
    ("cards.html", include_str!("templates/cards.html")),
    (
        "preferences.html",
        include_str!("templates/preferences.html"),
    ),
    (
        "recommendations.html",
        include_str!("templates/recommendations.html"),
    ),
    ("activity.html", include_str!("templates/activity.html")),
    ("account.html", include_str!("templates/account.html")),
    (
        "op_chargers.html",
        include_str!("templates/op_chargers.html"),
    ),
    ("op_held.html", include_str!("templates/op_held.html")),
    (
        "op_invoices.html",
        include_str!("templates/op_invoices.html"),
    ),
    ("op_audit.html", include_str!("templates/op_audit.html")),
    ("op_tariffs.html", include_str!("templates/op_tariffs.html")),
];

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or(Lang::En)
}

fn tz_of(state: &State) -> chrono_tz::Tz {
    state
        .lookup("tz")
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(chrono_tz::Europe::Stockholm)
}

fn int(v: &Value) -> Option<i64> {
    i64::try_from(v.clone()).ok()
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env.add_function("t", |state: &State, key: &str| {
        i18n::text(lang_of(state), key)
    });
    env.add_filter("money", |state: &State, v: Value| {
        int(&v).map_or_else(String::new, |m| format::money(lang_of(state), m))
    });
    env.add_filter("kwh", |state: &State, v: Value| {
        int(&v).map_or_else(String::new, |wh| format::kwh(lang_of(state), wh))
    });
    env.add_filter("kw", |state: &State, v: Value| {
        int(&v).map_or_else(|| "–".to_string(), |w| format::kw(lang_of(state), w))
    });
    env.add_filter("pct", |v: Value| {
        f64::try_from(v).map_or_else(|_| String::new(), format::percent)
    });
    env.add_filter("clock", |v: Value| {
        int(&v).map_or_else(String::new, format::clock)
    });
    env.add_filter("duration", |v: Value| {
        int(&v).map_or_else(String::new, format::duration)
    });
    env.add_filter("local", |state: &State, v: Value| {
        v.as_str()
            .map_or_else(String::new, |s| format::local_time(s, tz_of(state)))
    });
    env
});

/// Renders a template.
pub fn render(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_every_text_key_exists() {
        LazyLock::force(&ENV);
        for (name, source) in TEMPLATES {
            for piece in source.split("t(\"").skip(1) {
                let key = piece.split('"').next().unwrap_or_default();
                assert!(i18n::has(key), "{name} uses the unknown text key {key:?}");
            }
        }
    }
}
