//! The OpenAPI document's frame; paths and schemas are collected from the handlers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Title, version, tags and security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "laddkoll",
        description = "Open backend for EV-charging networks: accounts, charging sessions, billing and recommendations.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::http::error::ErrorBody, crate::http::error::ErrorDetail)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Register, log in, refresh and log out"),
        (name = "me", description = "The signed-in driver's account and RFID cards"),
        (name = "locations", description = "Find chargers"),
        (name = "sessions", description = "Start, follow and stop charging sessions"),
        (name = "invoices", description = "The driver's invoices and their PDFs"),
        (name = "admin", description = "Operator tools")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::http::auth::ACCESS_COOKIE,
            ))),
        );
    }
}
