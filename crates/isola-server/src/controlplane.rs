//! The control plane: deploy, roll back, configure and delete a tenant.
//!
//! Each operation holds the tenant's lock ([`crate::control`]) from its
//! checks to the registry switch, writes the store first and switches the
//! serving registry (and the dispatcher's isolates) last, so the registry
//! always ends on the store's current version. The admin API's handlers
//! only parse requests and call these; anything else that manages tenants
//! (an embedding program, a future cluster node) calls the same functions.

use std::sync::Arc;

use isola_core::{HttpRequest, TenantCode};

use crate::config::TenantSettings;
use crate::errors::ApiError;
use crate::store::{StoreError, TenantStore};
use crate::AppState;

pub(crate) async fn store_call<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&dyn TenantStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(st.store.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(format!("store task: {e}")))?
        .map_err(ApiError::from)
}

/// Validates `code` in a scratch isolate (and runs `smoke`), stores it as
/// the tenant's next version and switches to it; returns the version.
pub async fn deploy(
    state: &Arc<AppState>,
    id: &str,
    code: TenantCode,
    smoke: Option<HttpRequest>,
) -> Result<u64, ApiError> {
    // One deploy of a tenant at a time, from the size check to the registry switch.
    let _tenant = state.control.tenant(id).await;
    let limit = state
        .registry
        .settings(id)
        .map(|s| s.limits.code_size_bytes)
        .unwrap_or_else(|| TenantSettings::default().limits.code_size_bytes);
    if code.size() > limit {
        return Err(ApiError::Invalid(format!(
            "code is {} bytes; the tenant's code size limit is {limit} bytes",
            code.size()
        )));
    }
    // Compile, load and smoke-test before anything is stored or switched.
    let candidate = state.registry.candidate(id, code.clone());
    let smoke = smoke.map(|mut r| {
        if r.url.starts_with('/') {
            r.url = format!("http://{id}.{}{}", state.config.base_domain, r.url);
        }
        r
    });
    state
        .pool
        .validate(candidate, smoke)
        .await
        .map_err(ApiError::Invalid)?;
    let (sid, stored) = (id.to_string(), code.clone());
    let version = store_call(state, move |st| st.deploy(&sid, &stored)).await?;
    if state.registry.settings(id).is_none() {
        if let Some(t) = state.store.get(id)? {
            state.registry.put_settings(id, t.settings);
        }
    }
    state.registry.set_current(id, version, code);
    tracing::info!(tenant = %id, version, "deployed");
    Ok(version)
}

/// Switches the tenant to `version`, or to the newest version before the
/// current one; returns the version it serves now.
pub async fn rollback(
    state: &Arc<AppState>,
    id: &str,
    version: Option<u64>,
) -> Result<u64, ApiError> {
    let _tenant = state.control.tenant(id).await;
    let t = state
        .store
        .get(id)?
        .ok_or_else(|| ApiError::UnknownTenant(id.to_string()))?;
    let target = match version {
        Some(v) => v,
        None => {
            let current = t.current.ok_or_else(|| ApiError::NoCode(id.to_string()))?;
            state
                .store
                .versions(id)?
                .iter()
                .map(|v| v.version)
                .filter(|v| *v < current)
                .max()
                .ok_or_else(|| {
                    ApiError::NotFound(format!("tenant \"{id}\" has no version before {current}"))
                })?
        }
    };
    let code = state
        .store
        .code(id, target)?
        .ok_or_else(|| ApiError::NotFound(format!("tenant \"{id}\" has no version {target}")))?;
    let sid = id.to_string();
    store_call(state, move |st| st.set_current(&sid, target)).await?;
    state.registry.set_current(id, target, code);
    tracing::info!(tenant = %id, version = target, "rolled back");
    Ok(target)
}

/// Stores validated `settings` for the tenant (creating it) and serves with
/// them from its next request; returns them.
pub async fn put_settings(
    state: &Arc<AppState>,
    id: &str,
    settings: TenantSettings,
) -> Result<TenantSettings, ApiError> {
    let _tenant = state.control.tenant(id).await;
    let _routes = state.control.routes().await;
    check_routes(state, id, &settings)?;
    let (sid, stored) = (id.to_string(), settings.clone());
    store_call(state, move |st| st.put_settings(&sid, &stored)).await?;
    state.registry.put_settings(id, settings.clone());
    Ok(settings)
}

/// Deletes the tenant: store, registry, isolates, logs and metrics.
pub async fn delete(state: &Arc<AppState>, id: &str) -> Result<(), ApiError> {
    let _tenant = state.control.tenant(id).await;
    let sid = id.to_string();
    if !store_call(state, move |st| st.delete(&sid)).await? {
        return Err(ApiError::UnknownTenant(id.to_string()));
    }
    state.registry.remove(id);
    state.pool.evict(id);
    state.logs.remove(id);
    state.metrics.remove(id);
    Ok(())
}

fn check_routes(state: &AppState, id: &str, settings: &TenantSettings) -> Result<(), ApiError> {
    let base = &state.config.base_domain;
    let own = format!("{id}.{base}");
    for r in &settings.routes {
        if *r == own {
            continue;
        }
        if let Some(owner) = state.registry.route(r).filter(|o| o != id) {
            return Err(ApiError::Conflict {
                field: "routes".into(),
                message: format!("route \"{r}\" belongs to tenant \"{owner}\""),
                owner,
            });
        }
        let label = r
            .strip_suffix(base.as_str())
            .and_then(|x| x.strip_suffix('.'));
        if r == base || label.is_some() {
            if let Some(owner) = label.filter(|l| state.registry.settings(l).is_some()) {
                return Err(ApiError::Conflict {
                    field: "routes".into(),
                    message: format!("route \"{r}\" is the address of tenant \"{owner}\""),
                    owner: owner.to_string(),
                });
            }
            return Err(ApiError::InvalidField {
                field: "routes".into(),
                message: format!(
                    "route \"{r}\" is under the base domain {base}, whose names are reserved for tenants"
                ),
            });
        }
    }
    Ok(())
}
