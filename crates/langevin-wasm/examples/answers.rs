//! The native library's answers for the playground's presets (web/presets.json), which the
//! browser test (web/test.mjs) compares with the page's:
//!   cargo run --release -p langevin-wasm --example answers -- web/presets.json > answers.json
use langevin_wasm::{Config, Playground};
use serde_json::{Value, json};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "web/presets.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("error: cannot read {path}: {e}");
        std::process::exit(1)
    });
    let presets: Vec<Value> = serde_json::from_str(&text).expect("presets.json is a JSON list");
    let mut out = Vec::new();
    for p in &presets {
        let c: Config = serde_json::from_value(p["config"].clone()).expect("a preset's config");
        let mut g = Playground::new(c).unwrap_or_else(|e| panic!("preset {}: {e}", p["id"]));
        g.advance(p["steps"].as_u64().unwrap_or(0) as usize);
        let mut st = g.stats();
        st["id"] = p["id"].clone();
        out.push(st);
    }
    println!("{}", json!({ "presets": out }));
}
