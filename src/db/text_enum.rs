//! States, flags and kinds stored as text.
//!
//! A state kept as a `&str` constant lets a typo or a forgotten case through; an enum makes the
//! compiler find every place a new state must be handled and lets the OpenAPI list the values.
//! The database keeps plain text (both backends, readable in `psql`/`sqlite3`, no migration
//! per new value): rows load the column as `String` and convert with `TryFrom<String>`
//! (`#[diesel(deserialize_as = String)]`), inserts convert back with `From<_> for String`
//! (`#[diesel(serialize_as = String)]`), and filters compare with [`as_str`](UnknownText).
//! A value the code does not know fails the load with [`UnknownText`] instead of being
//! silently mapped to some default.

/// A stored text that names no variant of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownText {
    pub kind: &'static str,
    pub value: String,
}

/// Defines an enum stored as text: serde and OpenAPI use the same snake_case names as the
/// database (each `= "text"` must be its variant in snake_case), `as_str`/`FromStr`/`Display` convert, `ALL` lists the variants in order.
///
/// ```ignore
/// text_enum! {
///     /// A session's state.
///     pub enum SessionStatus: "session status" {
///         /// Started remotely, waiting for the charger.
///         Pending = "pending",
///         Active = "active",
///     }
/// }
/// ```
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        // The stored names are the variants in snake_case (utoipa does not read a per-variant
        // `serde(rename)` written through a macro; a test checks the two agree).
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and serialized) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::db::text_enum::UnknownText;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::db::text_enum::UnknownText {
                        kind: $kind,
                        value: s.to_string(),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::db::text_enum::UnknownText;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        /// A test enum.
        pub enum Light: "light" {
            Red = "red",
            /// Documented variant.
            AmberBlink = "amber_blink",
        }
    }

    #[test]
    fn names_round_trip_through_text_serde_and_parse() {
        for &v in Light::ALL {
            assert_eq!(v.as_str().parse::<Light>(), Ok(v));
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
            assert_eq!(String::from(v), v.to_string());
        }
        assert_eq!(Light::AmberBlink.as_str(), "amber_blink");
    }

    #[test]
    fn a_variant_of_several_words_is_stored_in_snake_case() {
        assert_eq!(
            serde_json::to_value(Light::AmberBlink).unwrap(),
            Light::AmberBlink.as_str()
        );
    }

    #[test]
    fn an_unknown_stored_value_is_an_error_naming_it() {
        let err = Light::try_from("green".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "unknown light \"green\"");
        assert!(serde_json::from_str::<Light>("\"Red\"").is_err());
    }
}
