//! The persistent code cache: hits across engines, exact invalidation,
//! integrity checks and V8 rejections.

use isola_core::{CacheEvent, CacheKey, Engine, EngineConfig, Tenant, TenantCode};
use serde_json::json;

use crate::util::{call_json, config};

fn open(dir: &std::path::Path) -> Engine {
    Engine::new(EngineConfig::with_data_dir(dir)).unwrap()
}

fn load(engine: &Engine, name: &str, src: &str) -> (Tenant, Vec<CacheEvent>) {
    let t = Tenant::new(engine, config(name), TenantCode::single(name, src)).unwrap();
    let events = t.load_info().cache.iter().map(|(_, e)| *e).collect();
    (t, events)
}

fn key(engine: &Engine, src: &str) -> CacheKey {
    CacheKey::new(
        src,
        "module",
        Engine::v8_version(),
        isola_core::testing::V8_FLAGS,
        engine.snapshot_fingerprint(),
    )
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("isola.db")).unwrap()
}

const SRC: &str = "const table = Array.from({length: 50}, (_, i) => i * i);\nexport default () => table.reduce((a, b) => a + b, 0);";

#[test]
fn a_second_engine_on_the_same_data_dir_hits_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t1, ev1) = load(&open(dir.path()), "m.js", SRC);
    assert_eq!(ev1, vec![CacheEvent::Miss]);
    let (mut t2, ev2) = load(&open(dir.path()), "m.js", SRC);
    assert_eq!(ev2, vec![CacheEvent::Hit]);
    assert_eq!(call_json(&mut t1), call_json(&mut t2));
    let stats = t2.stats();
    assert_eq!((stats.code_cache_hits, stats.code_cache_misses), (1, 0));
    let store = open(dir.path()).code_cache().unwrap().stats().unwrap();
    assert_eq!((store.entries, store.hits, store.misses), (1, 1, 1));
}

#[test]
fn a_same_length_edit_runs_the_new_code() {
    let dir = tempfile::tempdir().unwrap();
    let a = "export default () => 'version-A';";
    let b = "export default () => 'version-B';";
    assert_eq!(a.len(), b.len());
    let (mut ta, _) = load(&open(dir.path()), "same.js", a);
    assert_eq!(call_json(&mut ta), json!("version-A"));
    let (mut tb, ev) = load(&open(dir.path()), "same.js", b);
    assert_eq!(
        ev,
        vec![CacheEvent::Miss],
        "an edit must not hit the old entry"
    );
    assert_eq!(call_json(&mut tb), json!("version-B"));
    let (mut tb2, ev) = load(&open(dir.path()), "same.js", b);
    assert_eq!(ev, vec![CacheEvent::Hit]);
    assert_eq!(call_json(&mut tb2), json!("version-B"));
}

fn corrupt_then_check(what: &str, damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let (mut t, _) = load(&engine, "c.js", SRC);
    let expected = call_json(&mut t);
    let conn = db(dir.path());
    let mut data: Vec<u8> = conn
        .query_row("SELECT data FROM code_cache", [], |r| r.get(0))
        .unwrap();
    damage(&mut data);
    conn.execute("UPDATE code_cache SET data = ?1", [&data])
        .unwrap();
    let (mut t2, ev) = load(&open(dir.path()), "c.js", SRC);
    assert_eq!(ev, vec![CacheEvent::Miss], "{what}");
    assert_eq!(call_json(&mut t2), expected);
    let stats = engine.code_cache().unwrap().stats().unwrap();
    assert_eq!(stats.corrupt, 1, "{what}");
    assert_eq!(stats.entries, 1, "a fresh entry replaces the bad one");
    let (_, ev) = load(&open(dir.path()), "c.js", SRC);
    assert_eq!(ev, vec![CacheEvent::Hit]);
}

#[test]
fn a_corrupted_entry_is_a_miss_then_regenerated() {
    corrupt_then_check("one flipped bit", |d| {
        let mid = d.len() / 2;
        d[mid] ^= 0x01;
    });
}

#[test]
fn a_truncated_entry_is_a_miss_then_regenerated() {
    corrupt_then_check("truncated to a third", |d| d.truncate(d.len() / 3));
}

#[test]
fn an_entry_made_under_another_fingerprint_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let store = engine.code_cache().unwrap().clone();
    // Bytes for this very source, filed under another snapshot fingerprint.
    let (_, _) = load(&engine, "f.js", SRC);
    let bytes = store.get(&key(&engine, SRC)).unwrap().unwrap();
    store.purge().unwrap();
    let other = CacheKey::new(
        SRC,
        "module",
        Engine::v8_version(),
        isola_core::testing::V8_FLAGS,
        "another-snapshot",
    );
    store.put(&other, &bytes).unwrap();
    let (mut t, ev) = load(&open(dir.path()), "f.js", SRC);
    assert_eq!(ev, vec![CacheEvent::Miss]);
    assert_eq!(call_json(&mut t), json!(40425));
    assert!(
        store.get(&key(&engine, SRC)).unwrap().is_some(),
        "a fresh entry under the right key"
    );
}

#[test]
fn bytes_v8_rejects_are_deleted_and_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let store = engine.code_cache().unwrap().clone();
    // Authentic (stored through the store, so the MAC is right) but made for
    // another source and in a plain V8 isolate without isola's snapshot.
    let foreign = isola_core::testing::foreign_code_cache(
        "export default () => 'another source entirely';",
        true,
    )
    .unwrap();
    store.put(&key(&engine, SRC), &foreign).unwrap();
    let (mut t, ev) = load(&engine, "r.js", SRC);
    assert_eq!(ev, vec![CacheEvent::Rejected]);
    assert_eq!(call_json(&mut t), json!(40425));
    let fresh = store.get(&key(&engine, SRC)).unwrap().unwrap();
    assert_ne!(fresh, foreign, "the rejected bytes were replaced");
    assert_eq!(store.stats().unwrap().rejections, 1);
    let (_, ev) = load(&engine, "r.js", SRC);
    assert_eq!(ev, vec![CacheEvent::Hit]);
}

#[test]
fn classic_scripts_use_the_cache_too() {
    let dir = tempfile::tempdir().unwrap();
    let src = "function handler() { return 6 * 7; }";
    let (_, ev) = load(&open(dir.path()), "s.cjs", src);
    assert_eq!(ev, vec![CacheEvent::Miss]);
    let (mut t, ev) = load(&open(dir.path()), "s.cjs", src);
    assert_eq!(ev, vec![CacheEvent::Hit]);
    assert_eq!(call_json(&mut t), json!(42));
}
