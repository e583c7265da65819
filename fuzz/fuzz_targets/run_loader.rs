//! A trained run's `config.json` and `checkpoint.safetensors`: input = 4 bytes (little-endian
//! length of the config) + config + checkpoint. Loading may fail with a message; it must never
//! panic. Configs asking for networks wider than 4096 are skipped (the memory check for those is
//! a unit test; here they would only spend the fuzzer's time allocating).
#![no_main]
use libfuzzer_sys::fuzz_target;

fn too_big(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|x| x.abs() > 4096.0),
        serde_json::Value::Array(a) => a.len() > 4096 || a.iter().any(too_big),
        serde_json::Value::Object(o) => o.values().any(too_big),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (config, checkpoint) = rest.split_at(n.min(rest.len()));
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(config) {
        let net = &v["net"];
        if too_big(net) || v["dim"].as_u64().is_some_and(|d| d > 4096) {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    std::fs::write(dir.path().join("checkpoint.safetensors"), checkpoint).unwrap();
    let _ = langevin_learn::checkpoint::TrainedModel::load(dir.path(), &candle_core::Device::Cpu);
});
