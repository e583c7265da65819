//! User potentials typed as formulas, e.g. `(x^2 - 1)^2 + 0.5*y^2`, with exact gradients.
//!
//! Differentiation and evaluation are done by the `exmex` crate (symbolic partial derivatives,
//! then fast flat evaluation). This module adds the front end a user needs:
//!
//! - **standard precedence**: `-x^2` is −(x²) and `2^-x` is 2^(−x). exmex on its own binds the
//!   unary minus tighter than `^` (it would read `-x^2` as (−x)², a silently wrong potential),
//!   and does not read `1e-3`. We parse the formula here and hand exmex a fully parenthesized
//!   string with plain decimal numbers, so what the user wrote is what gets differentiated;
//! - **errors with a position**: an unbalanced parenthesis, a missing operator (`2x`), `**`,
//!   an unknown function or variable is reported with its column and a caret.
//!
//! Grammar (`^` is right-associative and binds tighter than unary minus):
//! ```text
//! expr  := term (('+' | '-') term)*
//! term  := unary (('*' | '/') unary)*
//! unary := ('-' | '+') unary | power
//! power := atom ('^' unary)?
//! atom  := number | name | function '(' expr ')' | '(' expr ')'
//! ```
//! Functions: `sqrt exp ln log (natural) log10 log2 sin cos tan asin acos atan sinh cosh tanh
//! asinh acosh atanh`. Constants: `pi`, `e` (unless declared as variables).

use super::Potential;
use crate::error::{Error, Result};
use exmex::Differentiate;
use exmex::prelude::*;

/// Functions with exact derivatives, and the exmex operator each maps to.
const FUNCTIONS: &[(&str, &str)] = &[
    ("sqrt", "sqrt"),
    ("exp", "exp"),
    ("ln", "ln"),
    ("log", "ln"),
    ("log10", "log10"),
    ("log2", "log2"),
    ("sin", "sin"),
    ("cos", "cos"),
    ("tan", "tan"),
    ("asin", "asin"),
    ("acos", "acos"),
    ("atan", "atan"),
    ("sinh", "sinh"),
    ("cosh", "cosh"),
    ("tanh", "tanh"),
    ("asinh", "asinh"),
    ("acosh", "acosh"),
    ("atanh", "atanh"),
];

/// Functions users try that have no derivative everywhere, with a suggested rewrite.
const NON_DIFFERENTIABLE: &[(&str, &str)] = &[
    ("abs", "write abs(x) as sqrt(x^2) (or sqrt(x^2 + 1e-12) to keep the gradient finite at 0)"),
    ("min", "use a smooth minimum such as -ln(exp(-a) + exp(-b))"),
    ("max", "use a smooth maximum such as ln(exp(a) + exp(b))"),
    ("floor", "the score needs a differentiable energy"),
    ("ceil", "the score needs a differentiable energy"),
    ("round", "the score needs a differentiable energy"),
    ("sign", "the score needs a differentiable energy"),
    ("signum", "the score needs a differentiable energy"),
];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    Open,
    Close,
    End,
}

#[derive(Clone, Debug)]
enum Node {
    Num(f64),
    Var(usize),
    Neg(Box<Node>),
    Bin(char, Box<Node>, Box<Node>),
    Call(&'static str, Box<Node>),
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    i: usize,
    variables: &'a [String],
}

/// A syntax error: message and 0-based character position.
struct SyntaxError(String, usize);

fn lex(src: &str) -> std::result::Result<Vec<(Tok, usize)>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v: f64 = text.parse().map_err(|_| SyntaxError(format!("'{text}' is not a number"), start))?;
            out.push((Tok::Num(v), start));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), start));
        } else if c == '*' && chars.get(i + 1) == Some(&'*') {
            return Err(SyntaxError("'**' is not an operator here; write powers with '^' (x^2)".into(), i));
        } else if "+-*/^".contains(c) {
            out.push((Tok::Op(c), i));
            i += 1;
        } else if c == '(' {
            out.push((Tok::Open, i));
            i += 1;
        } else if c == ')' {
            out.push((Tok::Close, i));
            i += 1;
        } else {
            return Err(SyntaxError(format!("unexpected character '{c}'"), i));
        }
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &(Tok, usize) {
        &self.toks[self.i]
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn describe(t: &Tok) -> String {
        match t {
            Tok::Num(v) => format!("the number {v}"),
            Tok::Name(n) => format!("'{n}'"),
            Tok::Op(c) => format!("'{c}'"),
            Tok::Open => "'('".into(),
            Tok::Close => "')'".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
    fn expr(&mut self) -> std::result::Result<Node, SyntaxError> {
        let mut lhs = self.term()?;
        while let (Tok::Op(op @ ('+' | '-')), _) = self.peek().clone() {
            self.bump();
            let rhs = self.term()?;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn term(&mut self) -> std::result::Result<Node, SyntaxError> {
        let mut lhs = self.unary()?;
        loop {
            match self.peek().clone() {
                (Tok::Op(op @ ('*' | '/')), _) => {
                    self.bump();
                    let rhs = self.unary()?;
                    lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
                }
                (t @ (Tok::Num(_) | Tok::Name(_) | Tok::Open), pos) => {
                    let prev = self.src.chars().take(pos).collect::<String>();
                    let prev = prev.trim_end();
                    return Err(SyntaxError(
                        format!(
                            "missing operator before {}; write the product explicitly, e.g. '{}*{}'",
                            Self::describe(&t),
                            prev.chars().last().map(String::from).unwrap_or_default(),
                            match &t {
                                Tok::Num(v) => v.to_string(),
                                Tok::Name(n) => n.clone(),
                                _ => "(".into(),
                            }
                        ),
                        pos,
                    ));
                }
                _ => return Ok(lhs),
            }
        }
    }
    fn unary(&mut self) -> std::result::Result<Node, SyntaxError> {
        match self.peek().0 {
            Tok::Op('-') => {
                self.bump();
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Tok::Op('+') => {
                self.bump();
                self.unary()
            }
            _ => self.power(),
        }
    }
    fn power(&mut self) -> std::result::Result<Node, SyntaxError> {
        let base = self.atom()?;
        if let (Tok::Op('^'), _) = self.peek() {
            self.bump();
            let exp = self.unary()?;
            return Ok(Node::Bin('^', Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn atom(&mut self) -> std::result::Result<Node, SyntaxError> {
        let (tok, pos) = self.bump();
        match tok {
            Tok::Num(v) => Ok(Node::Num(v)),
            Tok::Open => {
                let inner = self.expr()?;
                match self.bump() {
                    (Tok::Close, _) => Ok(inner),
                    (t, p) => Err(SyntaxError(
                        format!("expected ')' to close the '(' at position {}, found {}", pos + 1, Self::describe(&t)),
                        p,
                    )),
                }
            }
            Tok::Name(name) => {
                if let (Tok::Open, _) = self.peek() {
                    if let Some((_, op)) = FUNCTIONS.iter().find(|(f, _)| *f == name) {
                        self.bump();
                        let arg = self.expr()?;
                        return match self.bump() {
                            (Tok::Close, _) => Ok(Node::Call(op, Box::new(arg))),
                            (t, p) => Err(SyntaxError(
                                format!("expected ')' to close {name}(, found {}", Self::describe(&t)),
                                p,
                            )),
                        };
                    }
                    if let Some((_, hint)) = NON_DIFFERENTIABLE.iter().find(|(f, _)| *f == name) {
                        return Err(SyntaxError(
                            format!("function '{name}' has no derivative everywhere, which the score needs; {hint}"),
                            pos,
                        ));
                    }
                    let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
                    return Err(SyntaxError(
                        format!("unknown function '{name}'; known functions: {}", known.join(", ")),
                        pos,
                    ));
                }
                if let Some(k) = self.variables.iter().position(|v| *v == name) {
                    return Ok(Node::Var(k));
                }
                match name.as_str() {
                    "pi" => Ok(Node::Num(std::f64::consts::PI)),
                    "e" => Ok(Node::Num(std::f64::consts::E)),
                    _ => Err(SyntaxError(
                        format!(
                            "unknown variable '{name}'; declared variables: {}",
                            if self.variables.is_empty() { "(none)".to_string() } else { self.variables.join(", ") }
                        ),
                        pos,
                    )),
                }
            }
            Tok::End => Err(SyntaxError("the expression ends too early: a value is missing".into(), pos)),
            Tok::Close => Err(SyntaxError("')' without a matching '('".into(), pos)),
            Tok::Op(c) => Err(SyntaxError(format!("a value is missing before '{c}'"), pos)),
        }
    }
}

/// Render for exmex: fully parenthesized, variables as `{v<i>}`, numbers in plain decimal.
fn render(n: &Node, out: &mut String) {
    match n {
        Node::Num(v) => out.push_str(&format!("{}", v)),
        Node::Var(k) => out.push_str(&format!("{{v{k}}}")),
        Node::Neg(a) => {
            out.push_str("(-(");
            render(a, out);
            out.push_str("))");
        }
        Node::Bin(op, a, b) => {
            out.push('(');
            render(a, out);
            out.push(*op);
            render(b, out);
            out.push(')');
        }
        Node::Call(f, a) => {
            out.push_str(f);
            out.push('(');
            render(a, out);
            out.push(')');
        }
    }
}

fn caret(src: &str, pos: usize) -> String {
    format!("  {src}\n  {}^", " ".repeat(pos))
}

/// A potential energy given as a formula over named variables, differentiated exactly.
#[derive(Clone, Debug)]
pub struct ExpressionPotential {
    source: String,
    variables: Vec<String>,
    energy: FlatEx<f64>,
    /// ∂U/∂xᵢ for each declared variable (None when U does not depend on it).
    partials: Vec<Option<FlatEx<f64>>>,
    /// For each exmex variable (alphabetical order of `v<i>`), the declared index.
    order: Vec<usize>,
}

impl ExpressionPotential {
    /// Parse `energy` over the declared `variables` (their order is the coordinate order).
    pub fn parse(energy: &str, variables: &[String]) -> Result<Self> {
        if variables.is_empty() {
            return Err(Error::msg("a potential needs at least one variable (variables = [\"x\", ...])"));
        }
        for (i, v) in variables.iter().enumerate() {
            let valid = v.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::msg(format!(
                    "variable {i} is named '{v}'; names start with a letter or '_' and contain only letters, digits and '_'"
                )));
            }
            if FUNCTIONS.iter().any(|(f, _)| f == v) {
                return Err(Error::msg(format!("variable '{v}' has the name of a function; rename it")));
            }
            if variables[..i].contains(v) {
                return Err(Error::msg(format!("variable '{v}' is declared twice")));
            }
        }
        let syntax = |e: SyntaxError| {
            Error::msg(format!(
                "could not parse the energy expression: {} at position {}\n{}",
                e.0,
                e.1 + 1,
                caret(energy, e.1)
            ))
        };
        let toks = lex(energy).map_err(syntax)?;
        let mut p = Parser { src: energy, toks, i: 0, variables };
        let tree = p.expr().map_err(syntax)?;
        let (t, pos) = p.peek().clone();
        if t != Tok::End {
            let msg = match t {
                Tok::Close => "')' without a matching '('".to_string(),
                other => format!("unexpected {}", Parser::describe(&other)),
            };
            return Err(syntax(SyntaxError(msg, pos)));
        }
        let mut text = String::new();
        render(&tree, &mut text);
        let internal = |e: exmex::ExError| {
            Error::msg(format!("could not prepare the energy expression '{energy}' for differentiation: {}", e.msg()))
        };
        let flat = FlatEx::<f64>::parse(&text).map_err(internal)?;
        let order: Vec<usize> = flat
            .var_names()
            .iter()
            .map(|n| n.trim_start_matches('{').trim_end_matches('}').trim_start_matches('v').parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::msg(format!("internal error: unexpected variable names {:?}", flat.var_names())))?;
        let mut partials = vec![None; variables.len()];
        for (ex_idx, &decl) in order.iter().enumerate() {
            partials[decl] = Some(flat.clone().partial(ex_idx).map_err(internal)?);
        }
        Ok(ExpressionPotential {
            source: energy.to_string(),
            variables: variables.to_vec(),
            energy: flat,
            partials,
            order,
        })
    }

    /// The formula as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn values(&self, x: &[f64]) -> Vec<f64> {
        self.order.iter().map(|&k| x[k]).collect()
    }
}

impl Potential for ExpressionPotential {
    fn dim(&self) -> usize {
        self.variables.len()
    }
    fn name(&self) -> String {
        format!("U = {}", self.source)
    }
    fn energy_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let vals = self.values(x);
        for (g, p) in grad.iter_mut().zip(&self.partials) {
            *g = match p {
                Some(p) => p.eval(&vals).unwrap_or(f64::NAN),
                None => 0.0,
            };
        }
        self.energy.eval(&vals).unwrap_or(f64::NAN)
    }
    fn coordinate_names(&self) -> Vec<String> {
        self.variables.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn eval(src: &str, v: &[&str], x: &[f64]) -> (f64, Vec<f64>) {
        let p = ExpressionPotential::parse(src, &vars(v)).unwrap();
        let mut g = vec![0.0; x.len()];
        let u = p.energy_grad(x, &mut g);
        (u, g)
    }

    #[test]
    fn values_and_exact_gradients() {
        let (u, g) = eval("(x^2 - 1)^2 + 0.5*y^2", &["x", "y"], &[1.5, 2.0]);
        assert!((u - (1.25f64.powi(2) + 2.0)).abs() < 1e-12);
        assert!((g[0] - 4.0 * 1.5 * 1.25).abs() < 1e-12);
        assert!((g[1] - 2.0).abs() < 1e-12);
        // Variables declared in non-alphabetical order keep their declared order.
        let (u, g) = eval("3*b + a^2", &["b", "a"], &[1.0, 2.0]);
        assert!((u - 7.0).abs() < 1e-12 && (g[0] - 3.0).abs() < 1e-12 && (g[1] - 4.0).abs() < 1e-12);
        // A declared variable the energy does not use has zero gradient.
        let (_, g) = eval("x^2", &["x", "y"], &[3.0, 5.0]);
        assert_eq!(g, vec![6.0, 0.0]);
    }

    #[test]
    fn standard_precedence_and_scientific_numbers() {
        // Unary minus binds looser than ^: -x^2 = -(x^2).
        let (u, g) = eval("-x^2", &["x"], &[1.5]);
        assert!((u + 2.25).abs() < 1e-12 && (g[0] + 3.0).abs() < 1e-12);
        let (u, _) = eval("2^-x", &["x"], &[1.0]);
        assert!((u - 0.5).abs() < 1e-12);
        let (u, _) = eval("2^3^2", &["x"], &[0.0]);
        assert!((u - 512.0).abs() < 1e-9, "^ is right-associative");
        let (u, g) = eval("1e-3*x + 2.5E2", &["x"], &[2.0]);
        assert!((u - 250.002).abs() < 1e-12 && (g[0] - 1e-3).abs() < 1e-15);
        let (u, _) = eval("x - 2 - 3", &["x"], &[10.0]);
        assert!((u - 5.0).abs() < 1e-12);
        let (u, _) = eval("12 / 3 / 2", &["x"], &[0.0]);
        assert!((u - 2.0).abs() < 1e-12);
        let (u, g) = eval("exp(-x)*sin(y) + sqrt(x^2+1) + log(x) + pi", &["x", "y"], &[1.5, 2.0]);
        let expect = (-1.5f64).exp() * 2.0f64.sin() + (3.25f64).sqrt() + 1.5f64.ln() + std::f64::consts::PI;
        assert!((u - expect).abs() < 1e-12);
        let dx = -(-1.5f64).exp() * 2.0f64.sin() + 1.5 / 3.25f64.sqrt() + 1.0 / 1.5;
        assert!((g[0] - dx).abs() < 1e-12);
        // Variables may shadow constants and exmex's own names.
        let (u, _) = eval("e + E", &["e", "E"], &[1.0, 2.0]);
        assert!((u - 3.0).abs() < 1e-12);
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = |src: &str| ExpressionPotential::parse(src, &vars(&["x", "y"])).unwrap_err().to_string();
        let e = err("(x^2 - 1");
        assert!(e.contains("expected ')'") && e.contains("position 9"), "{e}");
        let e = err("x^2 + z");
        assert!(e.contains("unknown variable 'z'") && e.contains("position 7") && e.contains("x, y"), "{e}");
        let e = err("2x");
        assert!(e.contains("missing operator") && e.contains("position 2") && e.contains("2*x"), "{e}");
        let e = err("x**2");
        assert!(e.contains("'^'") && e.contains("position 2"), "{e}");
        let e = err("foo(x)");
        assert!(e.contains("unknown function 'foo'"), "{e}");
        let e = err("abs(x)");
        assert!(e.contains("sqrt(x^2)"), "{e}");
        let e = err("x +* 2");
        assert!(e.contains("position 4"), "{e}");
        let e = err("x)");
        assert!(e.contains("without a matching '('") && e.contains("position 2"), "{e}");
        let e = err("x # y");
        assert!(e.contains("unexpected character '#'"), "{e}");
        let e = err("");
        assert!(e.contains("ends too early"), "{e}");
        assert!(e.contains('^'), "a caret points at the position: {e}");
    }

    #[test]
    fn bad_variable_declarations() {
        let e = ExpressionPotential::parse("x", &[]).unwrap_err().to_string();
        assert!(e.contains("at least one variable"));
        let e = ExpressionPotential::parse("x", &vars(&["x", "x"])).unwrap_err().to_string();
        assert!(e.contains("declared twice"));
        let e = ExpressionPotential::parse("x", &vars(&["2x"])).unwrap_err().to_string();
        assert!(e.contains("start with a letter"));
        let e = ExpressionPotential::parse("x", &vars(&["sin"])).unwrap_err().to_string();
        assert!(e.contains("name of a function"));
    }
}
