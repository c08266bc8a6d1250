//! A plugin/rules engine embedding isola: each customer's rule is a tenant
//! with its own isolate and limits; one misbehaving rule does not affect the
//! others. Run: `cargo run -p isola-core --example rules_engine`.

use std::time::Duration;

use isola_core::{Engine, EngineConfig, Error, Limits, Output, Tenant, TenantCode, TenantConfig};
use serde_json::json;

fn main() -> Result<(), Error> {
    // One engine per process, created before any other thread.
    let engine = Engine::new(EngineConfig::in_memory())?;
    let limits = Limits {
        cpu: Duration::from_millis(20),
        ..Limits::default()
    };
    let rules = [
        (
            "discounts",
            "export default (order) => order.total > 100 ? { discount: 0.1 } : { discount: 0 };",
        ),
        (
            "fraud",
            "export default (order) => ({ flagged: order.country !== order.card_country });",
        ),
        ("runaway", "export default () => { for (;;) {} };"),
    ];
    let mut tenants = Vec::new();
    for (name, src) in rules {
        let config = TenantConfig::new(name).limits(limits.clone());
        tenants.push(Tenant::new(
            &engine,
            config,
            TenantCode::single(format!("{name}.js"), src),
        )?);
    }
    let order = json!({ "total": 250, "country": "DE", "card_country": "FR" });
    for t in &mut tenants {
        match t.call(vec![order.clone()]) {
            Ok(out) => match out.output {
                Output::Json(v) => println!("{:<10} -> {v} ({:?} CPU)", t.name(), out.cpu),
                other => println!("{:<10} -> {other:?}", t.name()),
            },
            Err(e) => println!("{:<10} -> stopped: {e}", t.name()),
        }
    }
    Ok(())
}
