//! Log output: one line per event whatever the fields hold. Field values can come from requests
//! (a charge point id, a path, a method, a header), so every value is escaped — control
//! characters (CR, LF, ESC, …) and Unicode format characters (bidi overrides, zero-width
//! characters) become `\r`, `\n`, `\u{1b}`, `\u{202e}` — and cut after [`MAX_FIELD_CHARS`].

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::Writer;

/// The most characters of one field value a log line shows.
pub const MAX_FIELD_CHARS: usize = 1024;

/// Whether a character is a Unicode format character (general category Cf): bidi controls,
/// zero-width characters, the soft hyphen, tags. They change how text around them displays.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Writes `text` with control and format characters escaped and at most [`MAX_FIELD_CHARS`]
/// characters (the rest counted).
pub fn write_escaped(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let mut chars = text.chars();
    for (shown, c) in chars.by_ref().enumerate() {
        if shown == MAX_FIELD_CHARS {
            let rest = 1 + chars.count();
            return write!(out, "…(+{rest} chars)");
        }
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() || is_format_char(c) || c == '\u{2028}' || c == '\u{2029}' => {
                write!(out, "\\u{{{:x}}}", c as u32)?
            }
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// `text` escaped as log lines show it.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_FIELD_CHARS));
    let _ = write_escaped(&mut out, text);
    out
}

/// The field formatter of every log line: `message` as is, others as `name=value`, each value
/// escaped (see the module documentation).
pub fn fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            if field.name() != "message" {
                write!(w, "{}=", field.name())?;
            }
            write_escaped(w, &text)
        },
    )
    .delimited(" ")
}

/// The subscriber of the `laddkoll` binary: `filter`, escaped fields, written to `writer`,
/// with colours only when `ansi` (a terminal).
pub fn subscriber<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(fields())
        .with_ansi(ansi)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_format_characters_are_escaped_and_long_values_cut() {
        assert_eq!(
            escaped("SE-1\r\n2026-12-01 INFO forged\u{1b}[31m\u{202e}x"),
            "SE-1\\r\\n2026-12-01 INFO forged\\u{1b}[31m\\u{202e}x"
        );
        assert_eq!(escaped("Götgatan 1 – 118 46"), "Götgatan 1 – 118 46");
        let long = escaped(&"A".repeat(60_000));
        assert!(long.starts_with(&"A".repeat(MAX_FIELD_CHARS)));
        assert!(long.ends_with("…(+58976 chars)"));
    }
}
