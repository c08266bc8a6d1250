//! The admin API's OpenAPI document, generated from the handlers'
//! annotations (`utoipa`) and served at `/v1/openapi.json`.
//!
//! `crates/isola-server/openapi.json` is a copy for readers of the
//! repository; a test fails when it differs from [`document`]
//! (`ISOLA_WRITE_OPENAPI=1 cargo test -p isola-server openapi` rewrites it).

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable error kind (`unknown_tenant`, `invalid`, `limit_exceeded`, ...).
    pub error: String,
    /// What went wrong, in words.
    pub message: String,
    /// The JSON path of the field at fault (422), when there is one.
    pub field: Option<String>,
    /// The tenant that owns a route in conflict (409).
    pub owner: Option<String>,
}

/// A tenant and the version it serves.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct VersionBody {
    /// Tenant id.
    pub id: String,
    /// The version now served.
    pub version: u64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "isola admin API",
        version = "1",
        description = "Deploy and manage tenants of an isola server. Every route except /healthz and /v1/openapi.json, including /metrics, needs `Authorization: Bearer <token>` (the token is in DATA_DIR/admin-token unless set with --admin-token; at least 16 printable characters). With --metrics-listen ADDR, /metrics is also served without auth on that address. Settings out of bounds get 422 with `field` naming the JSON path (bounds: docs/LIMITS.md)."
    ),
    paths(
        crate::admin::list_tenants,
        crate::admin::put_tenant,
        crate::admin::get_tenant,
        crate::admin::delete_tenant,
        crate::admin::put_code,
        crate::admin::rollback,
        crate::admin::logs,
        crate::admin::workers,
        crate::admin::metrics,
        crate::admin::openapi,
        crate::admin::healthz,
    ),
    components(schemas(
        ErrorBody,
        VersionBody,
        crate::config::TenantSettings,
        isola_core::Limits,
        isola_core::FetchPolicy,
        crate::admin::Upload,
        crate::admin::RollbackBody,
    )),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty-printed JSON (built once).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"openapi: {e}\"}}"))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_openapi_json_is_the_generated_document() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = format!("{}\n", super::document());
        if std::env::var_os("ISOLA_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap();
        assert!(
            on_disk == generated,
            "{path} differs from the generated document; rerun with ISOLA_WRITE_OPENAPI=1"
        );
    }
}
