//! Constraint conditions: the guide's small expression language.
//!
//! `risk_level >= 4`, `tool == 'web_search'`,
//! `time.hour >= 9 and time.hour <= 17`, `'pii' in data_classes`,
//! `context.purpose == "support" or not context.user_approved`.
//!
//! Grammar (`or` binds loosest):
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | compare
//! compare := operand (("=="|"!="|"<"|"<="|">"|">="|"in"|"not in") operand)?
//! operand := number | string | true | false | null | name | "[" list "]" | "(" expr ")"
//! name    := actor | tool | action | proposed_action | user_intent | risk_level
//!          | data_classes | context.KEY | time.hour | time.minute | time.weekday
//! ```
//! Expressions are parsed once, when the policy loads; an error names the
//! column. Evaluation is total: comparing values of different types is
//! `false` (`!=` is `true`), a missing `context` key is `null`, and `in`
//! tests list membership only (never substrings).

use std::fmt;

use serde_json::{Map, Value};

use crate::time::CivilTime;

/// Longest condition accepted, in bytes.
pub const MAX_CONDITION_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 64;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Lit),
    Name(Name),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Name {
    Actor,
    Tool,
    Action,
    ProposedAction,
    UserIntent,
    RiskLevel,
    DataClasses,
    Context(String),
    TimeHour,
    TimeMinute,
    TimeWeekday,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

/// A condition that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// 1-based character column in the condition string.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

impl std::error::Error for ConditionError {}

/// A term as a condition sees it: equal to a string that is its id or its
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermValue<'a> {
    /// The term id (`actor:model`), or the raw request value when no term
    /// matched.
    pub id: &'a str,
    /// The term name (`model`), or the raw request value.
    pub name: &'a str,
}

/// What a condition can read about one request.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The resolved actor.
    pub actor: TermValue<'a>,
    /// The resolved tool.
    pub tool: TermValue<'a>,
    /// The resolved action.
    pub action: TermValue<'a>,
    /// The request's free-text `proposed_action`.
    pub proposed_action: &'a str,
    /// The request's `user_intent`.
    pub user_intent: &'a str,
    /// Risk 1–5.
    pub risk_level: u8,
    /// The resolved data classes.
    pub data_classes: &'a [TermValue<'a>],
    /// The request's `context` object.
    pub context: &'a Map<String, Value>,
    /// The decision time, UTC.
    pub time: CivilTime,
}

#[cfg(any(test, feature = "conformance"))]
impl<'a> Facts<'a> {
    /// The guide's running example — `model` calls `web_search` (which
    /// reads) to "Research", on Tuesday 2026-11-24 at 13:08 UTC — with the
    /// given risk, data classes and context: a fixture for tests and fuzz
    /// targets that evaluate conditions.
    pub fn example(
        risk_level: u8,
        data_classes: &'a [TermValue<'a>],
        context: &'a Map<String, Value>,
    ) -> Self {
        Self {
            actor: TermValue {
                id: "actor:model",
                name: "model",
            },
            tool: TermValue {
                id: "tool:web_search",
                name: "web_search",
            },
            action: TermValue {
                id: "action:read",
                name: "read",
            },
            proposed_action: "Execute web_search",
            user_intent: "Research",
            risk_level,
            data_classes,
            context,
            time: CivilTime::from_unix_ms(1_795_525_681_123),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Term(TermValue<'a>),
    List(Vec<Val<'a>>),
}

impl Condition {
    /// Parses `source`.
    ///
    /// # Errors
    /// [`ConditionError`] with the column of the first problem.
    pub fn parse(source: &str) -> Result<Self, ConditionError> {
        if source.len() > MAX_CONDITION_LEN {
            return Err(ConditionError {
                column: 1,
                message: format!("condition is longer than {MAX_CONDITION_LEN} bytes"),
            });
        }
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
            end_column: source.chars().count() + 1,
        };
        let expr = p.expr()?;
        if let Some(tok) = p.tokens.get(p.pos) {
            return Err(ConditionError {
                column: tok.column,
                message: format!(
                    "unexpected {} after the end of the expression",
                    tok.kind.describe()
                ),
            });
        }
        Ok(Self { expr })
    }

    /// Whether the condition holds for `facts`.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        matches!(eval(&self.expr, facts), Val::Bool(true))
    }
}

// ----- lexer -----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number `{n}`"),
            Tok::Str(s) => format!("string `{s}`"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Op(op) => format!("`{}`", op_text(*op)),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "==",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::In => "in",
        Op::NotIn => "not in",
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    column: usize,
}

fn lex(source: &str) -> Result<Vec<Token>, ConditionError> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| ConditionError { column, message };
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' | ',' => {
                out.push(Token {
                    kind: match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        _ => Tok::Comma,
                    },
                    column,
                });
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    ('=', _) => {
                        return Err(err(column, "unexpected `=`, use `==` to compare".into()));
                    }
                    _ => return Err(err(column, "unexpected `!`, use `not` or `!=`".into())),
                };
                out.push(Token {
                    kind: Tok::Op(op),
                    column,
                });
                i += len;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(column, "unterminated string".into())),
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&e @ ('\\' | '\'' | '"')) => s.push(e),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                _ => return Err(err(i + 1, "unknown escape in string".into())),
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token {
                    kind: Tok::Str(s),
                    column,
                });
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    i += 1;
                }
                let text: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let n: f64 = text
                    .parse()
                    .map_err(|_| err(column, format!("`{text}` is not a number")))?;
                out.push(Token {
                    kind: Tok::Num(n),
                    column,
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars.get(i).is_some_and(|d| {
                    d.is_ascii_alphanumeric() || *d == '_' || *d == '.' || *d == '-'
                }) {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let kind = match word.as_str() {
                    "in" => Tok::Op(Op::In),
                    _ => Tok::Ident(word),
                };
                out.push(Token { kind, column });
            }
            other => return Err(err(column, format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

// ----- parser -----

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.end_column, |t| t.column)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ConditionError> {
        Err(ConditionError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn enter(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("expression nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ConditionError> {
        self.enter()?;
        let mut left = self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.unary()?;
        while self.is_word("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ConditionError> {
        if self.is_word("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, ConditionError> {
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            Some(Tok::Ident(w)) if w == "not" => {
                if matches!(
                    self.tokens.get(self.pos + 1).map(|t| &t.kind),
                    Some(Tok::Op(Op::In))
                ) {
                    self.pos += 1;
                    Op::NotIn
                } else {
                    return self.error("expected `in` after `not` here");
                }
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.operand()?;
        if matches!(op, Op::In | Op::NotIn) && !can_be_list(&right) {
            return self.error(
                "the right side of `in` must be a list, `data_classes` or a `context` value",
            );
        }
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn operand(&mut self) -> Result<Expr, ConditionError> {
        let column = self.column();
        let Some(tok) = self.peek().cloned() else {
            return self.error("expression ends too early");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(Lit::Num(n))),
            Tok::Str(s) => Ok(Expr::Lit(Lit::Str(s))),
            Tok::LParen => {
                let inner = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error("expected `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if self.peek() == Some(&Tok::RBracket) {
                    self.pos += 1;
                    return Ok(Expr::List(items));
                }
                loop {
                    items.push(self.operand()?);
                    match self.peek() {
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::RBracket) => {
                            self.pos += 1;
                            return Ok(Expr::List(items));
                        }
                        _ => return self.error("expected `,` or `]` in list"),
                    }
                }
            }
            Tok::Ident(word) => match word.as_str() {
                "true" | "True" => Ok(Expr::Lit(Lit::Bool(true))),
                "false" | "False" => Ok(Expr::Lit(Lit::Bool(false))),
                "null" | "None" => Ok(Expr::Lit(Lit::Null)),
                _ => name(&word).map(Expr::Name).ok_or_else(|| ConditionError {
                    column,
                    message: format!(
                        "unknown name `{word}`; expected actor, tool, action, proposed_action, \
                         user_intent, risk_level, data_classes, context.KEY, time.hour, \
                         time.minute or time.weekday"
                    ),
                }),
            },
            other => Err(ConditionError {
                column,
                message: format!("unexpected {}", other.describe()),
            }),
        }
    }
}

fn can_be_list(e: &Expr) -> bool {
    matches!(
        e,
        Expr::List(_) | Expr::Name(Name::DataClasses | Name::Context(_))
    )
}

fn name(word: &str) -> Option<Name> {
    Some(match word {
        "actor" => Name::Actor,
        "tool" => Name::Tool,
        "action" => Name::Action,
        "proposed_action" => Name::ProposedAction,
        "user_intent" => Name::UserIntent,
        "risk_level" => Name::RiskLevel,
        "data_classes" => Name::DataClasses,
        "time.hour" => Name::TimeHour,
        "time.minute" => Name::TimeMinute,
        "time.weekday" => Name::TimeWeekday,
        _ => {
            let key = word.strip_prefix("context.")?;
            if key.is_empty() {
                return None;
            }
            Name::Context(key.to_string())
        }
    })
}

// ----- evaluation -----

fn json_val(v: &Value) -> Val<'_> {
    match v {
        Value::Null | Value::Object(_) => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Val::Str(s),
        Value::Array(items) => Val::List(items.iter().map(json_val).collect()),
    }
}

fn eval<'a>(e: &'a Expr, f: &Facts<'a>) -> Val<'a> {
    match e {
        Expr::Lit(Lit::Null) => Val::Null,
        Expr::Lit(Lit::Bool(b)) => Val::Bool(*b),
        Expr::Lit(Lit::Num(n)) => Val::Num(*n),
        Expr::Lit(Lit::Str(s)) => Val::Str(s),
        Expr::List(items) => Val::List(items.iter().map(|i| eval(i, f)).collect()),
        Expr::Name(n) => match n {
            Name::Actor => Val::Term(f.actor),
            Name::Tool => Val::Term(f.tool),
            Name::Action => Val::Term(f.action),
            Name::ProposedAction => Val::Str(f.proposed_action),
            Name::UserIntent => Val::Str(f.user_intent),
            Name::RiskLevel => Val::Num(f64::from(f.risk_level)),
            Name::DataClasses => Val::List(f.data_classes.iter().map(|t| Val::Term(*t)).collect()),
            Name::Context(key) => f.context.get(key).map_or(Val::Null, json_val),
            Name::TimeHour => Val::Num(f64::from(f.time.hour)),
            Name::TimeMinute => Val::Num(f64::from(f.time.minute)),
            Name::TimeWeekday => Val::Num(f64::from(f.time.weekday)),
        },
        Expr::Not(inner) => Val::Bool(!matches!(eval(inner, f), Val::Bool(true))),
        Expr::And(a, b) => Val::Bool(
            matches!(eval(a, f), Val::Bool(true)) && matches!(eval(b, f), Val::Bool(true)),
        ),
        Expr::Or(a, b) => Val::Bool(
            matches!(eval(a, f), Val::Bool(true)) || matches!(eval(b, f), Val::Bool(true)),
        ),
        Expr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, f), eval(b, f));
            Val::Bool(match op {
                Op::Eq => equal(&a, &b),
                Op::Ne => !equal(&a, &b),
                Op::In => member(&a, &b),
                Op::NotIn => !member(&a, &b),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => order(*op, &a, &b),
            })
        }
    }
}

fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Term(t), Val::Str(s)) | (Val::Str(s), Val::Term(t)) => t.id == *s || t.name == *s,
        (Val::Term(x), Val::Term(y)) => x.id == y.id,
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        _ => false,
    }
}

fn member(item: &Val<'_>, list: &Val<'_>) -> bool {
    match list {
        Val::List(items) => items.iter().any(|i| equal(item, i)),
        _ => false,
    }
}

fn order(op: Op, a: &Val<'_>, b: &Val<'_>) -> bool {
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(src: &str) -> bool {
        let ctx = serde_json::json!({"purpose": "support", "user_approved": true, "n": 3, "tags": ["a", "b"]});
        let ctx = ctx.as_object().unwrap().clone();
        let classes = [TermValue {
            id: "data:pii",
            name: "pii",
        }];
        Condition::parse(src)
            .unwrap()
            .holds(&Facts::example(4, &classes, &ctx))
    }

    #[test]
    fn the_guides_conditions() {
        assert!(holds("risk_level >= 4"));
        assert!(!holds("risk_level > 4"));
        assert!(holds("tool == 'web_search'"));
        assert!(holds("tool == \"tool:web_search\""));
        assert!(holds("time.hour >= 9 and time.hour <= 17"));
        assert!(!holds("time.hour < 9 or time.hour > 17"));
    }

    #[test]
    fn boolean_logic_and_precedence() {
        assert!(holds("not risk_level < 4"));
        assert!(holds(
            "risk_level == 1 or risk_level == 4 and tool == 'web_search'"
        ));
        assert!(!holds(
            "(risk_level == 1 or risk_level == 4) and tool == 'x'"
        ));
        assert!(holds("context.user_approved"));
        assert!(holds(
            "context.user_approved == true and context.purpose == 'support'"
        ));
        assert!(!holds("context.missing"));
        assert!(holds("context.missing == null"));
    }

    #[test]
    fn membership_is_exact() {
        assert!(holds("'pii' in data_classes"));
        assert!(holds("'data:pii' in data_classes"));
        assert!(!holds("'pi' in data_classes"));
        assert!(holds("tool in ['web_search', 'read_file']"));
        assert!(holds("tool not in ['shell']"));
        assert!(holds("'a' in context.tags"));
        assert!(!holds("'x' in context.purpose"), "no substring matching");
        assert!(!holds("actor == 'mod'"));
    }

    #[test]
    fn mixed_types_are_false() {
        assert!(!holds("risk_level == '4'"));
        assert!(!holds("context.purpose > 3"));
        assert!(holds("context.purpose != 3"));
    }

    #[test]
    fn errors_name_the_column() {
        let e = Condition::parse("risk_level >= ").unwrap_err();
        assert_eq!(e.column, 15);
        let e = Condition::parse("risk_levl >= 4").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown name `risk_levl`"));
        let e = Condition::parse("risk_level = 4").unwrap_err();
        assert_eq!(e.column, 12);
        let e = Condition::parse("tool in 'abc'").unwrap_err();
        assert!(e.message.contains("must be a list"));
        let e = Condition::parse("(risk_level > 1").unwrap_err();
        assert!(e.message.contains("expected `)`"));
        let e = Condition::parse("risk_level > 1 2").unwrap_err();
        assert_eq!(e.column, 16);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}risk_level > 1{}", "(".repeat(200), ")".repeat(200));
        assert!(
            Condition::parse(&deep)
                .unwrap_err()
                .message
                .contains("deeper")
        );
        let nots = format!("{}true", "not ".repeat(200));
        assert!(Condition::parse(&nots).is_err());
    }
}
