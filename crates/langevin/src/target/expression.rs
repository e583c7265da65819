//! User potentials typed as formulas, e.g. `(x^2 - 1)^2 + 0.5*y^2`, with exact gradients.
//!
//! The formula is parsed here (standard precedence, errors with a position) straight into a
//! tape: a list of operations in evaluation order, constants folded. The energy is one forward
//! pass over the tape and its exact gradient one reverse pass (reverse-mode differentiation), so
//! a gradient costs about two energies whatever the dimension. Nothing recurses over the length
//! of a formula: sums and products are loops, and nesting (parentheses, functions, signs,
//! powers) is limited to 64 levels, so no formula can overflow the stack. (The `exmex` crate did
//! this before; its parser recursed once per term of a sum and overflowed the stack on a sum of
//! 50 terms.)
//!
//! - **standard precedence**: `-x^2` is −(x²) and `2^-x` is 2^(−x); `1e-3` is a number;
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
use std::cell::RefCell;

/// A function with an exact derivative.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Sqrt,
    Exp,
    Ln,
    Log10,
    Log2,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
}

impl Func {
    fn value(self, a: f64) -> f64 {
        match self {
            Func::Sqrt => a.sqrt(),
            Func::Exp => a.exp(),
            Func::Ln => a.ln(),
            Func::Log10 => a.log10(),
            Func::Log2 => a.log2(),
            Func::Sin => a.sin(),
            Func::Cos => a.cos(),
            Func::Tan => a.tan(),
            Func::Asin => a.asin(),
            Func::Acos => a.acos(),
            Func::Atan => a.atan(),
            Func::Sinh => a.sinh(),
            Func::Cosh => a.cosh(),
            Func::Tanh => a.tanh(),
            Func::Asinh => a.asinh(),
            Func::Acosh => a.acosh(),
            Func::Atanh => a.atanh(),
        }
    }
    /// f'(a), given a and v = f(a).
    fn derivative(self, a: f64, v: f64) -> f64 {
        match self {
            Func::Sqrt => 0.5 / v,
            Func::Exp => v,
            Func::Ln => 1.0 / a,
            Func::Log10 => 1.0 / (a * std::f64::consts::LN_10),
            Func::Log2 => 1.0 / (a * std::f64::consts::LN_2),
            Func::Sin => a.cos(),
            Func::Cos => -a.sin(),
            Func::Tan => 1.0 + v * v,
            Func::Asin => 1.0 / (1.0 - a * a).sqrt(),
            Func::Acos => -1.0 / (1.0 - a * a).sqrt(),
            Func::Atan => 1.0 / (1.0 + a * a),
            Func::Sinh => a.cosh(),
            Func::Cosh => a.sinh(),
            Func::Tanh => 1.0 - v * v,
            Func::Asinh => 1.0 / (a * a + 1.0).sqrt(),
            Func::Acosh => 1.0 / (a * a - 1.0).sqrt(),
            Func::Atanh => 1.0 / (1.0 - a * a),
        }
    }
}

/// Functions with exact derivatives.
const FUNCTIONS: &[(&str, Func)] = &[
    ("sqrt", Func::Sqrt),
    ("exp", Func::Exp),
    ("ln", Func::Ln),
    ("log", Func::Ln),
    ("log10", Func::Log10),
    ("log2", Func::Log2),
    ("sin", Func::Sin),
    ("cos", Func::Cos),
    ("tan", Func::Tan),
    ("asin", Func::Asin),
    ("acos", Func::Acos),
    ("atan", Func::Atan),
    ("sinh", Func::Sinh),
    ("cosh", Func::Cosh),
    ("tanh", Func::Tanh),
    ("asinh", Func::Asinh),
    ("acosh", Func::Acosh),
    ("atanh", Func::Atanh),
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

/// One operation of the tape; operands are indices of earlier operations.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Const(f64),
    Var(usize),
    Neg(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    /// a^c with a constant exponent: defined for negative a when c is whole.
    PowConst(usize, f64),
    Pow(usize, usize),
    Call(Func, usize),
}

/// The value of `op` given the values `v(i)` of the operations before it and `x` (the point).
#[inline]
fn forward(op: Op, v: impl Fn(usize) -> f64, x: &[f64]) -> f64 {
    match op {
        Op::Const(c) => c,
        Op::Var(k) => x[k],
        Op::Neg(a) => -v(a),
        Op::Add(a, b) => v(a) + v(b),
        Op::Sub(a, b) => v(a) - v(b),
        Op::Mul(a, b) => v(a) * v(b),
        Op::Div(a, b) => v(a) / v(b),
        Op::PowConst(a, c) => pow(v(a), c),
        Op::Pow(a, b) => v(a).powf(v(b)),
        Op::Call(f, a) => f.value(v(a)),
    }
}

fn pow(a: f64, c: f64) -> f64 {
    if c == c.trunc() && c.abs() <= i32::MAX as f64 { a.powi(c as i32) } else { a.powf(c) }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    i: usize,
    variables: &'a [String],
    depth: usize,
    tape: Vec<Op>,
}

/// The deepest nesting a formula may have.
const MAX_NESTING: usize = 64;

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
    /// Append `op`, folding it into a constant when all its operands are constants.
    fn emit(&mut self, op: Op) -> usize {
        let is_const = |i: usize| matches!(self.tape[i], Op::Const(_));
        let folds = match op {
            Op::Const(_) | Op::Var(_) => false,
            Op::Neg(a) | Op::PowConst(a, _) | Op::Call(_, a) => is_const(a),
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::Pow(a, b) => is_const(a) && is_const(b),
        };
        let op = if folds {
            let tape = &self.tape;
            Op::Const(forward(op, |i| if let Op::Const(c) = tape[i] { c } else { f64::NAN }, &[]))
        } else {
            op
        };
        self.tape.push(op);
        self.tape.len() - 1
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
    fn expr(&mut self) -> std::result::Result<usize, SyntaxError> {
        let mut lhs = self.term()?;
        while let (Tok::Op(op @ ('+' | '-')), _) = self.peek().clone() {
            self.bump();
            let rhs = self.term()?;
            lhs = self.emit(if op == '+' { Op::Add(lhs, rhs) } else { Op::Sub(lhs, rhs) });
        }
        Ok(lhs)
    }
    fn term(&mut self) -> std::result::Result<usize, SyntaxError> {
        let mut lhs = self.unary()?;
        loop {
            match self.peek().clone() {
                (Tok::Op(op @ ('*' | '/')), _) => {
                    self.bump();
                    let rhs = self.unary()?;
                    lhs = self.emit(if op == '*' { Op::Mul(lhs, rhs) } else { Op::Div(lhs, rhs) });
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
    /// Every recursion of the parser passes here: nesting (parentheses, function calls, signs,
    /// powers) is bounded, so a hostile formula cannot overflow the stack.
    fn unary(&mut self) -> std::result::Result<usize, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(SyntaxError(
                format!(
                    "the expression nests more than {MAX_NESTING} levels deep (parentheses, functions, signs, powers); simplify it"
                ),
                self.peek().1,
            ));
        }
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }
    fn unary_inner(&mut self) -> std::result::Result<usize, SyntaxError> {
        match self.peek().0 {
            Tok::Op('-') => {
                self.bump();
                let a = self.unary()?;
                Ok(self.emit(Op::Neg(a)))
            }
            Tok::Op('+') => {
                self.bump();
                self.unary()
            }
            _ => self.power(),
        }
    }
    fn power(&mut self) -> std::result::Result<usize, SyntaxError> {
        let base = self.atom()?;
        if let (Tok::Op('^'), _) = self.peek() {
            self.bump();
            let exp = self.unary()?;
            return Ok(match self.tape[exp] {
                Op::Const(c) => self.emit(Op::PowConst(base, c)),
                _ => self.emit(Op::Pow(base, exp)),
            });
        }
        Ok(base)
    }
    fn atom(&mut self) -> std::result::Result<usize, SyntaxError> {
        let (tok, pos) = self.bump();
        match tok {
            Tok::Num(v) => Ok(self.emit(Op::Const(v))),
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
                    if let Some(&(_, f)) = FUNCTIONS.iter().find(|(n, _)| *n == name) {
                        self.bump();
                        let arg = self.expr()?;
                        return match self.bump() {
                            (Tok::Close, _) => Ok(self.emit(Op::Call(f, arg))),
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
                    return Ok(self.emit(Op::Var(k)));
                }
                match name.as_str() {
                    "pi" => Ok(self.emit(Op::Const(std::f64::consts::PI))),
                    "e" => Ok(self.emit(Op::Const(std::f64::consts::E))),
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

/// The source with a caret under position `pos`.
fn caret(src: &str, pos: usize) -> String {
    format!("  {src}\n  {}^", " ".repeat(pos))
}

/// A potential energy given as a formula over named variables, differentiated exactly.
#[derive(Clone, Debug)]
pub struct ExpressionPotential {
    source: String,
    variables: Vec<String>,
    /// The operations in evaluation order; the last one is U.
    tape: Vec<Op>,
}

thread_local! {
    /// Values and adjoints of a tape, reused across calls on each thread.
    static SCRATCH: RefCell<(Vec<f64>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
        let mut p = Parser { src: energy, toks, i: 0, variables, depth: 0, tape: Vec::new() };
        p.expr().map_err(syntax)?;
        let (t, pos) = p.peek().clone();
        if t != Tok::End {
            let msg = match t {
                Tok::Close => "')' without a matching '('".to_string(),
                other => format!("unexpected {}", Parser::describe(&other)),
            };
            return Err(syntax(SyntaxError(msg, pos)));
        }
        let tape = p.tape;
        // A declared variable that the energy never uses leaves the density flat along it:
        // exp(−U) cannot be normalized, and every sampler would drift off to infinity there.
        let used = |k: usize| tape.contains(&Op::Var(k));
        if let Some(unused) = (0..variables.len()).find(|&k| !used(k)) {
            return Err(Error::msg(format!(
                "variable '{}' is declared but the energy does not use it: the density would be flat along it \
                 (improper, it cannot be normalized); remove it from the variables or make the energy depend on it",
                variables[unused]
            )));
        }
        Ok(ExpressionPotential { source: energy.to_string(), variables: variables.to_vec(), tape })
    }

    /// The formula as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// U(x) and its gradient: one forward pass over the tape, then one reverse pass that
    /// carries ∂U/∂(each operation) back to the variables.
    fn eval(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        SCRATCH.with(|cell| {
            let (v, adj) = &mut *cell.borrow_mut();
            let n = self.tape.len();
            v.clear();
            for &op in &self.tape {
                let value = forward(op, |i| v[i], x);
                v.push(value);
            }
            adj.clear();
            adj.resize(n, 0.0);
            adj[n - 1] = 1.0;
            grad.fill(0.0);
            for i in (0..n).rev() {
                let g = adj[i];
                if g == 0.0 {
                    continue;
                }
                match self.tape[i] {
                    Op::Const(_) => {}
                    Op::Var(k) => grad[k] += g,
                    Op::Neg(a) => adj[a] -= g,
                    Op::Add(a, b) => {
                        adj[a] += g;
                        adj[b] += g;
                    }
                    Op::Sub(a, b) => {
                        adj[a] += g;
                        adj[b] -= g;
                    }
                    Op::Mul(a, b) => {
                        adj[a] += g * v[b];
                        adj[b] += g * v[a];
                    }
                    Op::Div(a, b) => {
                        adj[a] += g / v[b];
                        adj[b] -= g * v[a] / (v[b] * v[b]);
                    }
                    Op::PowConst(a, c) => {
                        if c != 0.0 {
                            adj[a] += g * c * pow(v[a], c - 1.0);
                        }
                    }
                    Op::Pow(a, b) => {
                        adj[a] += g * v[b] * v[a].powf(v[b] - 1.0);
                        adj[b] += g * v[i] * v[a].ln();
                    }
                    Op::Call(f, a) => adj[a] += g * f.derivative(v[a], v[i]),
                }
            }
            v[n - 1]
        })
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
        self.eval(x, grad)
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
        // A declared variable the energy does not use would make the density improper.
        let e = ExpressionPotential::parse("x^2", &vars(&["x", "y"])).unwrap_err().to_string();
        assert!(e.contains("variable 'y' is declared but the energy does not use it"), "{e}");
    }

    #[test]
    fn standard_precedence_and_scientific_numbers() {
        // Unary minus binds looser than ^: -x^2 = -(x^2).
        let (u, g) = eval("-x^2", &["x"], &[1.5]);
        assert!((u + 2.25).abs() < 1e-12 && (g[0] + 3.0).abs() < 1e-12);
        let (u, _) = eval("2^-x", &["x"], &[1.0]);
        assert!((u - 0.5).abs() < 1e-12);
        let (u, _) = eval("2^3^2 + x", &["x"], &[0.0]);
        assert!((u - 512.0).abs() < 1e-9, "^ is right-associative");
        let (u, g) = eval("1e-3*x + 2.5E2", &["x"], &[2.0]);
        assert!((u - 250.002).abs() < 1e-12 && (g[0] - 1e-3).abs() < 1e-15);
        let (u, _) = eval("x - 2 - 3", &["x"], &[10.0]);
        assert!((u - 5.0).abs() < 1e-12);
        let (u, _) = eval("12 / 3 / 2 + x", &["x"], &[0.0]);
        assert!((u - 2.0).abs() < 1e-12);
        let (u, g) = eval("exp(-x)*sin(y) + sqrt(x^2+1) + log(x) + pi", &["x", "y"], &[1.5, 2.0]);
        let expect = (-1.5f64).exp() * 2.0f64.sin() + (3.25f64).sqrt() + 1.5f64.ln() + std::f64::consts::PI;
        assert!((u - expect).abs() < 1e-12);
        let dx = -(-1.5f64).exp() * 2.0f64.sin() + 1.5 / 3.25f64.sqrt() + 1.0 / 1.5;
        assert!((g[0] - dx).abs() < 1e-12);
        // Variables may shadow the constants.
        let (u, _) = eval("e + E", &["e", "E"], &[1.0, 2.0]);
        assert!((u - 3.0).abs() < 1e-12);
    }

    #[test]
    fn every_function_has_the_derivative_of_central_differences() {
        let f = "sqrt(x^2+1) + exp(y/3) + ln(x+3) + log10(y+4) + log2(x+5) + sin(x*y) + cos(y) + tan(x/4) \
                 + asin(x/3) + acos(y/4) + atan(x*y) + sinh(x/2) + cosh(y/2) + tanh(x-y) + asinh(x) \
                 + acosh(y+3) + atanh(x/2) + (x+2)^y + y^2.5 + 2^x / y";
        let p = ExpressionPotential::parse(f, &vars(&["x", "y"])).unwrap();
        for pt in [[0.3, 1.7], [-0.8, 0.6], [1.1, 2.2]] {
            let mut g = [0.0; 2];
            let u = p.energy_grad(&pt, &mut g);
            assert!(u.is_finite());
            for k in 0..2 {
                let h = 1e-6;
                let (mut a, mut b) = (pt, pt);
                a[k] += h;
                b[k] -= h;
                let mut scratch = [0.0; 2];
                let fd = (p.energy_grad(&a, &mut scratch) - p.energy_grad(&b, &mut scratch)) / (2.0 * h);
                assert!((g[k] - fd).abs() < 1e-6 * (1.0 + fd.abs()), "∂U/∂x{k} at {pt:?}: {} vs {fd}", g[k]);
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_and_long_sums_stay_flat() {
        let deep = format!("{}x{}", "(".repeat(200), ")".repeat(200));
        let e = ExpressionPotential::parse(&deep, &vars(&["x"])).unwrap_err().to_string();
        assert!(e.contains("nests more than 64 levels"), "{e}");
        let signs = format!("sin({}x)", "-".repeat(500));
        assert!(ExpressionPotential::parse(&signs, &vars(&["x"])).is_err());
        // 63 levels are fine, and so is a sum of 5000 terms (one flat list, not 5000 levels).
        let ok = format!("{}x{}", "(".repeat(62), ")".repeat(62));
        assert_eq!(eval(&ok, &["x"], &[2.0]).0, 2.0);
        let sum = vec!["x"; 5000].join(" + ") + " - x*2 - 1/x";
        let (u, g) = eval(&sum, &["x"], &[2.0]);
        assert!((u - (5000.0 * 2.0 - 4.0 - 0.5)).abs() < 1e-9 && (g[0] - (5000.0 - 2.0 + 0.25)).abs() < 1e-9);
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
