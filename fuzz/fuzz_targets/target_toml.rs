//! Target TOML files. Loading may fail with a message; a loaded target must evaluate its score
//! at its own default start without panicking.
#![no_main]
use langevin::block::Block;
use langevin::target::load_target_toml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((target, _)) = load_target_toml(text, std::path::Path::new("fuzz.toml")) else { return };
    let d = target.dim();
    if d > 64 {
        return;
    }
    let mut x = Block::zeros(d, 3);
    let init = target.default_init();
    let mut rng = langevin::rng::ParticleRng::new(1, 0, x.stride());
    init.fill(&mut x, 0, &mut rng);
    let mut s = Block::zeros(d, 3);
    let mut logp = vec![0.0f32; x.stride()];
    let _ = target.eval(&x, &mut s, Some(&mut logp));
});
