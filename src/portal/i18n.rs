//! Swedish and English: the language of a request (a chosen cookie, else `Accept-Language`)
//! and the portal's texts. Error answers of the domain are shown by their stable code.

/// A language of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sv,
    En,
}

/// Cookie that keeps the language a visitor chose.
pub const LANG_COOKIE: &str = "laddkoll_lang";

impl Lang {
    /// The BCP 47 code, as `<html lang>` wants it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// A code as stored in the cookie or given in a link.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best of the two for an `Accept-Language` header (English when neither is asked for).
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.unwrap_or_default().split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let lang = match primary {
                "sv" => Lang::Sv,
                "en" => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// `(key, English, Swedish)`.
const TEXTS: &[(&str, &str, &str)] = &[
    ("app", "laddkoll", "laddkoll"),
    ("skip", "Skip to content", "Hoppa till innehållet"),
    ("nav.main", "Main", "Huvudmeny"),
    ("nav.home", "Charging", "Laddning"),
    ("nav.locations", "Find a charger", "Hitta laddare"),
    ("nav.history", "History", "Historik"),
    ("nav.invoices", "Invoices", "Fakturor"),
    ("nav.cards", "RFID cards", "RFID-brickor"),
    ("nav.preferences", "Preferences", "Önskemål"),
    ("nav.recommendations", "Recommendations", "Rekommendationer"),
    ("nav.activity", "Activity", "Aktivitet"),
    ("nav.account", "Account", "Konto"),
    ("nav.chargers", "Chargers", "Laddare"),
    ("nav.held", "Held sessions", "Spärrade sessioner"),
    ("nav.op_invoices", "Invoicing", "Fakturering"),
    ("nav.audit", "Audit log", "Händelselogg"),
    ("nav.tariffs", "Tariffs", "Taxor"),
    ("lang.switch", "Language", "Språk"),
    ("sign_out", "Sign out", "Logga ut"),
    ("sign_in", "Sign in", "Logga in"),
    ("sign_up", "Create account", "Skapa konto"),
    ("email", "Email", "E-post"),
    ("password", "Password", "Lösenord"),
    ("name", "Name", "Namn"),
    ("password.hint", "8 to 128 characters; not a common password.", "8 till 128 tecken; inte ett vanligt lösenord."),
    ("login.new", "New here?", "Ny här?"),
    ("login.have", "Already have an account?", "Har du redan ett konto?"),
    ("error.title", "Something went wrong", "Något gick fel"),
    ("back", "Back", "Tillbaka"),
    ("refresh.title", "Signing you in again…", "Loggar in dig igen…"),
    ("refresh.manual", "Continue to sign in", "Fortsätt till inloggningen"),
    ("home.none", "You are not charging right now.", "Du laddar inte just nu."),
    ("home.find", "Find a charger near you, or scan the QR code on the charger.", "Hitta en laddare nära dig, eller skanna QR-koden på laddaren."),
    ("home.recent", "Recent sessions", "Senaste sessionerna"),
    ("session", "Session", "Session"),
    ("session.status", "Status", "Status"),
    ("status.pending", "Waiting for the charger to start…", "Väntar på att laddaren startar…"),
    ("status.active", "Charging", "Laddar"),
    ("status.finished", "Finished", "Avslutad"),
    ("status.failed", "Failed", "Misslyckades"),
    ("session.energy", "Energy", "Energi"),
    ("session.power", "Power", "Effekt"),
    ("session.soc", "Battery", "Batteri"),
    ("session.charging", "Charging time", "Laddtid"),
    ("session.idle", "Idle time", "Stilleståndstid"),
    ("session.cost", "Cost so far", "Kostnad hittills"),
    ("session.total", "Total", "Totalt"),
    ("session.stop", "Stop charging", "Stoppa laddningen"),
    ("session.stopping", "The charger was asked to stop; this page updates when it has.", "Laddaren har ombetts att stoppa; sidan uppdateras när den har gjort det."),
    ("session.failed_because", "Could not start", "Kunde inte starta"),
    ("session.where", "Charger", "Laddare"),
    ("session.started", "Started", "Startad"),
    ("session.stopped", "Stopped", "Stoppad"),
    ("session.flags", "Checks", "Kontroller"),
    ("session.live_note", "Updates by itself while you watch.", "Uppdateras av sig själv medan du tittar."),
    ("start.title", "Start charging", "Starta laddning"),
    ("start.connector", "Connector", "Uttag"),
    ("start.button", "Start charging", "Starta laddning"),
    ("start.open", "You have a session in progress.", "Du har en pågående session."),
    ("start.see", "See it", "Visa den"),
    ("price", "Price", "Pris"),
    ("price.none", "No price set", "Inget pris satt"),
    ("online", "Online", "Ansluten"),
    ("offline", "Offline", "Frånkopplad"),
    ("locations.title", "Find a charger", "Hitta laddare"),
    ("locations.lat", "Latitude", "Latitud"),
    ("locations.lon", "Longitude", "Longitud"),
    ("locations.radius", "Radius (km)", "Radie (km)"),
    ("locations.search", "Search", "Sök"),
    ("locations.here", "Use my location", "Använd min position"),
    ("locations.none", "No chargers within this radius.", "Inga laddare inom denna radie."),
    ("locations.free", "free connectors", "lediga uttag"),
    ("locations.km", "km away", "km bort"),
    ("location.occupancy", "Expected occupancy over the week", "Förväntad beläggning under veckan"),
    ("chart.desc", "Each cell is one hour; darker means more connectors in use.", "Varje ruta är en timme; mörkare betyder fler uttag upptagna."),
    ("chart.legend", "Legend", "Förklaring"),
    ("chart.free", "free", "ledigt"),
    ("chart.busy", "busy", "upptaget"),
    ("chart.suggested", "suggested time", "föreslagen tid"),
    ("chart.empty", "Not enough history for a forecast yet.", "Ännu för lite historik för en prognos."),
    ("chart.busiest", "Busiest", "Mest upptaget"),
    ("chart.quietest", "Quietest", "Lugnast"),
    ("history.title", "Charging history", "Laddhistorik"),
    ("history.csv", "Download as CSV", "Ladda ner som CSV"),
    ("history.none", "No sessions yet.", "Inga sessioner än."),
    ("history.date", "Date", "Datum"),
    ("history.place", "Charger", "Laddare"),
    ("history.breakdown", "Cost", "Kostnad"),
    ("history.more", "Older sessions", "Äldre sessioner"),
    ("cost.energy", "Energy", "Energi"),
    ("cost.time", "Time", "Tid"),
    ("cost.parking_time", "Idle fee", "Avgift för stillestånd"),
    ("cost.flat", "Start fee", "Startavgift"),
    ("cost.excl_vat", "Excl. VAT", "Exkl. moms"),
    ("cost.vat", "VAT", "Moms"),
    ("cost.state", "Billing", "Debitering"),
    ("cost.live", "running", "pågår"),
    ("cost.priced", "priced", "prissatt"),
    ("cost.held", "held for review", "spärrad för granskning"),
    ("cost.billed", "invoiced", "fakturerad"),
    ("cost.pricing", "being priced", "prissätts"),
    ("cost.unpriced", "cannot be priced", "kan inte prissättas"),
    ("invoices.title", "Invoices", "Fakturor"),
    ("invoices.none", "No invoices yet.", "Inga fakturor än."),
    ("invoices.number", "Number", "Nummer"),
    ("invoices.period", "Period", "Period"),
    ("invoices.issued", "Issued", "Utfärdad"),
    ("invoices.amount", "Amount", "Belopp"),
    ("invoices.pdf", "Download PDF", "Ladda ner PDF"),
    ("invoices.credit_note", "Credit note", "Kreditnota"),
    ("invoices.lines", "Sessions", "Sessioner"),
    ("invoices.customer", "Customer", "Kund"),
    ("cards.title", "RFID cards", "RFID-brickor"),
    ("cards.none", "No cards yet.", "Inga brickor än."),
    ("cards.uid", "Card number (hex)", "Kortnummer (hex)"),
    ("cards.label", "Label", "Namn"),
    ("cards.add", "Add card", "Lägg till bricka"),
    ("cards.rename", "Rename", "Byt namn"),
    ("cards.block", "Block", "Spärra"),
    ("cards.unblock", "Unblock", "Häv spärr"),
    ("cards.active", "active", "aktiv"),
    ("cards.blocked", "blocked", "spärrad"),
    ("prefs.title", "Charging preferences", "Önskemål för laddning"),
    ("prefs.intro", "The nightly recommendations respect these.", "Nattens rekommendationer tar hänsyn till dessa."),
    ("prefs.window", "Preferred time to charge", "Önskad tid för laddning"),
    ("prefs.days", "Days", "Dagar"),
    ("prefs.from", "From hour", "Från timme"),
    ("prefs.to", "To hour", "Till timme"),
    ("prefs.max_price", "Highest energy price (kr/kWh incl. VAT)", "Högsta energipris (kr/kWh inkl. moms)"),
    ("prefs.avoid_fast", "Avoid fast-charging surcharges", "Undvik tillägg för snabbladdning"),
    ("prefs.home", "Home (lat, lon)", "Hem (lat, lon)"),
    ("prefs.work", "Work (lat, lon)", "Arbete (lat, lon)"),
    ("prefs.save", "Save preferences", "Spara önskemål"),
    ("day.mon", "Mon", "Mån"),
    ("day.tue", "Tue", "Tis"),
    ("day.wed", "Wed", "Ons"),
    ("day.thu", "Thu", "Tor"),
    ("day.fri", "Fri", "Fre"),
    ("day.sat", "Sat", "Lör"),
    ("day.sun", "Sun", "Sön"),
    ("recs.title", "Recommendations", "Rekommendationer"),
    ("recs.none", "No recommendations yet: they come from the nightly run once you have some history.", "Inga rekommendationer än: de kommer från nattkörningen när du har lite historik."),
    ("recs.computed", "Computed", "Beräknad"),
    ("recs.where", "Where", "Var"),
    ("activity.title", "Your activity", "Din aktivitet"),
    ("activity.none", "Nothing yet.", "Inget än."),
    ("activity.when", "When", "När"),
    ("activity.what", "What", "Vad"),
    ("activity.outcome", "Outcome", "Utfall"),
    ("activity.reason", "Details", "Detaljer"),
    ("account.title", "Your account", "Ditt konto"),
    ("account.change_password", "Change password", "Byt lösenord"),
    ("account.current", "Current password", "Nuvarande lösenord"),
    ("account.new", "New password", "Nytt lösenord"),
    ("account.delete", "Delete account", "Radera konto"),
    ("account.delete_note", "Your personal data is erased; sessions and invoices are kept for bookkeeping without your name.", "Dina personuppgifter raderas; sessioner och fakturor sparas för bokföringen utan ditt namn."),
    ("account.delete_confirm", "Password to confirm", "Lösenord för att bekräfta"),
    ("done.card_added", "The card was added.", "Brickan lades till."),
    ("done.card_updated", "The card was updated.", "Brickan uppdaterades."),
    ("done.preferences_saved", "Your preferences were saved.", "Dina önskemål sparades."),
    ("done.password_changed", "Password changed. Sign in with the new one.", "Lösenordet är bytt. Logga in med det nya."),
    ("done.account_deleted", "Your account was deleted.", "Ditt konto raderades."),
    ("done.signed_out", "You are signed out.", "Du är utloggad."),
    ("done.released", "The session was released for invoicing.", "Sessionen släpptes för fakturering."),
    ("done.stop_requested", "The charger accepted the stop.", "Laddaren accepterade stoppet."),
    ("op.chargers", "Chargers", "Laddare"),
    ("op.location", "Location", "Plats"),
    ("op.charge_point", "Charge point", "Laddpunkt"),
    ("op.connectors", "Connectors", "Uttag"),
    ("op.tariff", "Tariff", "Taxa"),
    ("op.model", "Model", "Modell"),
    ("op.held", "Sessions held for review", "Sessioner spärrade för granskning"),
    ("op.held_none", "No session is held.", "Ingen session är spärrad."),
    ("op.reason", "Reason", "Anledning"),
    ("op.release", "Release for invoicing", "Släpp för fakturering"),
    ("op.driver", "Driver", "Förare"),
    ("op.run", "Run invoicing", "Kör fakturering"),
    ("op.run_period", "Month (YYYY-MM)", "Månad (ÅÅÅÅ-MM)"),
    ("op.run_result", "Result", "Resultat"),
    ("op.run_issued", "invoices issued", "fakturor utfärdade"),
    ("op.run_billed", "sessions billed", "sessioner fakturerade"),
    ("op.run_held", "sessions held", "sessioner spärrade"),
    ("op.audit", "Audit log", "Händelselogg"),
    ("op.filter", "Filter", "Filtrera"),
    ("op.user_id", "User id", "Användar-id"),
    ("op.action", "Action", "Händelse"),
    ("op.actor", "Actor", "Aktör"),
    ("op.tariffs", "Tariffs", "Taxor"),
    ("op.version", "Version", "Version"),
    ("op.vat", "VAT", "Moms"),
    ("op.summary", "Summary", "Sammanfattning"),
    ("op.not_operator", "This page is for operators.", "Den här sidan är för operatörer."),
    ("err.csrf_failed", "The form was out of date. Reload the page and try again.", "Formuläret var inaktuellt. Ladda om sidan och försök igen."),
    ("err.invalid_credentials", "Wrong email or password.", "Fel e-post eller lösenord."),
    ("err.account_blocked", "This account is blocked; contact the operator.", "Kontot är spärrat; kontakta operatören."),
    ("err.rate_limited", "Too many attempts; wait a minute and try again.", "För många försök; vänta en minut och försök igen."),
    ("err.email_taken", "An account with this email already exists.", "Det finns redan ett konto med den e-posten."),
    ("err.service_unavailable", "The charger is offline or the service is busy; try again soon.", "Laddaren är frånkopplad eller tjänsten upptagen; försök snart igen."),
    ("err.connector_unavailable", "The connector is not available right now.", "Uttaget är inte tillgängligt just nu."),
    ("err.connector_busy", "Someone is already charging at this connector.", "Någon laddar redan vid det här uttaget."),
    ("err.session_in_progress", "You already have a session in progress.", "Du har redan en pågående session."),
    ("err.session_not_active", "The session is not charging.", "Sessionen laddar inte."),
    ("err.charger_refused", "The charger refused.", "Laddaren vägrade."),
    ("err.charger_error", "The charger answered with an error.", "Laddaren svarade med ett fel."),
    ("err.charger_timeout", "The charger did not answer in time.", "Laddaren svarade inte i tid."),
    ("err.not_found", "Not found.", "Hittades inte."),
    ("err.uid_taken", "This card is registered already.", "Brickan är redan registrerad."),
    ("err.invalid_uid", "The card number must be 4 to 20 hexadecimal digits.", "Kortnumret ska vara 4 till 20 hexadecimala tecken."),
    ("err.wrong_password", "The current password is wrong.", "Nuvarande lösenord är fel."),
    ("err.not_held", "The session is not held.", "Sessionen är inte spärrad."),
    ("err.not_priceable", "The session could not be priced; credit or correct it instead.", "Sessionen kunde inte prissättas; kreditera eller rätta den i stället."),
    ("err.operator_only", "This page is for operators.", "Den här sidan är för operatörer."),
    ("err.internal_error", "Something went wrong on our side.", "Något gick fel hos oss."),
];

/// The text of `key` in `lang`; an unknown key shows as itself (a test keeps templates and
/// this table in step).
pub fn text(lang: Lang, key: &str) -> String {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, en, sv)| match lang {
            Lang::En => *en,
            Lang::Sv => *sv,
        })
        .unwrap_or(key)
        .to_string()
}

/// Whether the table has `key`.
pub fn has(key: &str) -> bool {
    TEXTS.iter().any(|(k, _, _)| *k == key)
}

/// A message for an error answer of the domain: the portal's text for its code, else the
/// domain's own (English) message, which names the field or the reason.
pub fn error_message(lang: Lang, code: &str, message: &str) -> String {
    // Field and policy errors carry their detail in the message; keep it.
    let key = format!("err.{code}");
    if has(&key) && !matches!(code, "invalid_field" | "weak_password" | "invalid_email") {
        text(lang, &key)
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_the_two() {
        assert_eq!(Lang::negotiate(Some("sv-SE,sv;q=0.9,en;q=0.8")), Lang::Sv);
        assert_eq!(Lang::negotiate(Some("de-DE,en;q=0.5,sv;q=0.4")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.2, sv;q=0.7")), Lang::Sv);
        assert_eq!(Lang::negotiate(Some("fr")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }

    #[test]
    fn every_text_key_is_unique() {
        for (i, (k, _, _)) in TEXTS.iter().enumerate() {
            assert!(!TEXTS[i + 1..].iter().any(|(o, _, _)| o == k), "{k}");
        }
    }
}
