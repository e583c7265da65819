//! Energy formulas: `variables\nenergy`. Parsing may fail with a message; it must never panic,
//! and a parsed potential must evaluate (to any value, NaN included) without panicking.
#![no_main]
use langevin::block::Block;
use langevin::target::{Boltzmann, ExpressionPotential, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (vars, energy) = text.split_once('\n').unwrap_or(("x,y", &text));
    let variables: Vec<String> = vars.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).take(8).collect();
    let Ok(pot) = ExpressionPotential::parse(energy, &variables) else { return };
    let Ok(target) = Boltzmann::new(pot, 1.0) else { return };
    let d = target.dim();
    let mut x = Block::zeros(d, 4);
    for (k, v) in x.data_mut().iter_mut().enumerate() {
        *v = [0.0, -1.5, 2.0, 1e-30, -0.0, 7.0][k % 6];
    }
    let mut s = Block::zeros(d, 4);
    let mut logp = vec![0.0f32; x.stride()];
    let _ = target.eval(&x, &mut s, Some(&mut logp));
});
