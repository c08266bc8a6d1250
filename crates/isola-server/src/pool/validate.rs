//! Deploy-time validation: a new version is compiled, loaded and optionally
//! smoke-tested in a scratch isolate before it is switched to.

use std::sync::Arc;

use isola_core::{Engine, HttpRequest, Invoked, Output, Tenant, TenantConfig};

use super::{Deployment, FetchClient};
use crate::logs::Logs;

/// The core's view of a deployment: its limits, env, log sink and fetch policy.
pub(super) fn tenant_config(
    dep: &Deployment,
    logs: &Arc<Logs>,
    outbound: Option<&FetchClient>,
) -> TenantConfig {
    let config = TenantConfig::new(&dep.id)
        .limits(dep.settings.limits.clone())
        .env(dep.settings.env_json())
        .console(logs.sink(&dep.id))
        .webassembly(dep.settings.webassembly);
    match outbound {
        Some(client) => config.fetch(dep.settings.fetch.clone(), client.0.clone()),
        None => config,
    }
}

pub(super) fn validate(
    engine: &Engine,
    config: TenantConfig,
    dep: &Deployment,
    smoke: Option<HttpRequest>,
) -> Result<(), String> {
    let mut t = Tenant::new(engine, config, (*dep.code).clone()).map_err(|e| e.to_string())?;
    if let Some(req) = smoke {
        match t.fetch(req) {
            Ok(Invoked {
                output: Output::Response(r),
                ..
            }) if r.status < 500 => {}
            Ok(Invoked {
                output: Output::Response(r),
                ..
            }) => return Err(format!("smoke request answered {}", r.status)),
            Ok(other) => return Err(format!("smoke request returned {:?}", other.output)),
            Err(e) => return Err(format!("smoke request failed: {e}")),
        }
    }
    Ok(())
}
