//! The one place where the libraries' API terms become the command line's flags.
//!
//! Library errors name API fields in backticks (`` `sigma_min` ``) and carry typed suggestions
//! (`` `step_size` = 1.0e-3 ``); the binary prints them with its flags (`--sigma-min`,
//! `--step-size 1.0e-3`). A field is its flag with `_` → `-`, except for the few listed in
//! [`SPECIAL`].

/// Phrases whose flag is not the field's name.
const SPECIAL: &[(&str, &str)] =
    &[("`denoise` = false", "--no-denoise"), ("`adapt`", "--target-accept (or --no-adapt)"), ("`init`", "--init")];

/// Rewrite API field names in `message` as command-line flags.
pub fn translate(message: &str) -> String {
    let mut s = message.to_string();
    for (from, to) in SPECIAL {
        s = s.replace(from, to);
    }
    // `field` = value (a suggestion or a bad value) → --field value / --field = value.
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else { break };
        let name = &rest[start + 1..start + 1 + len];
        out.push_str(&rest[..start]);
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            out.push_str("--");
            out.push_str(&name.replace('_', "-"));
            let after = &rest[start + 2 + len..];
            // "try `step_size` = 1e-3" reads "try --step-size 1e-3" on the command line.
            if out.ends_with(&format!("try --{}", name.replace('_', "-"))) && after.starts_with(" = ") {
                rest = &after[2..];
                continue;
            }
        } else {
            out.push('`');
            out.push_str(name);
            out.push('`');
        }
        rest = &rest[start + 2 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn fields_become_flags() {
        assert_eq!(translate("`sigma_min` = 0 must be positive"), "--sigma-min = 0 must be positive");
        assert_eq!(
            translate("too large: try `step_size` = 1.000e-1 (a tenth)"),
            "too large: try --step-size 1.000e-1 (a tenth)"
        );
        assert_eq!(translate("try a smaller `eps` or `denoise` = false"), "try a smaller --eps or --no-denoise");
        assert_eq!(translate("a `Weird Thing` stays"), "a `Weird Thing` stays");
        assert_eq!(translate("unclosed `tick"), "unclosed `tick");
    }
}
