//! The score as a flow (seed 002): stagnation points and their type, and the stiffness that
//! bounds the Langevin step, for the Müller–Brown potential.
//!
//! `cargo run --release --example analyze_field -p langevin`
use langevin::analysis::{self, Field, Region};
use langevin::target::builtin;

fn main() -> langevin::Result<()> {
    let t = builtin::build("muller-brown", &[])?;
    let f = Field::new(t.as_ref());
    let region = Region { lo: vec![-1.5, -0.5], hi: vec![1.2, 2.0] };
    for p in analysis::stagnation_points(&f, &region, 400, 1, None)? {
        println!("{:?} at ({:.4}, {:.4}), eigenvalues {:?}", p.kind, p.x[0], p.x[1], p.eigenvalues);
    }
    let pts = analysis::typical_samples(t.as_ref(), 1000, 2)?;
    let s = analysis::stiffness(&pts, &f.jacobians(&pts)?)?;
    println!(
        "λ_max = {:.4e}: ULA is stable below τ = {:.3e}; recommended τ = {:.3e}",
        s.lambda_max, s.max_stable_step, s.recommended_step
    );
    Ok(())
}
