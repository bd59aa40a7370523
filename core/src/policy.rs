//! Policies: the guide's JSON, parsed strictly, checked and indexed.
//!
//! [`Policy::parse`] accepts the guide's policy JSON as written. Unknown keys,
//! wrong types, unknown enum values, dangling term references and bad
//! conditions are all [`PolicyError`]s that name the JSON path and, because
//! the input is text, the line and column. Nothing is dropped silently.
//!
//! A parsed policy is indexed by (subject, action, object) so that finding
//! the relations that apply to a request costs a handful of hash lookups,
//! however many relations there are.

use std::collections::HashMap;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical;
use crate::condition::{Condition, ConditionError};
use crate::hash;

/// Largest policy text accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 16 * 1024 * 1024;
/// Most terms, relations or constraints in one policy.
pub const MAX_ITEMS: usize = 100_000;
/// Longest rate-limit window, in seconds (366 days).
pub const MAX_RATE_WINDOW_SECONDS: u64 = 366 * 24 * 3600;

/// Whether a request nothing permits is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny unless a relation permits (the default).
    #[default]
    Strict,
    /// Allow unless a relation forbids.
    Permissive,
}

impl Mode {
    /// `strict` or `permissive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Permissive => "permissive",
        }
    }
}

/// The kind of a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    /// Who acts (`actor:model`).
    Actor,
    /// What is done (`action:read`).
    Action,
    /// What data is touched (`data:pii`).
    DataClass,
    /// A tool, mapped to an action and data classes.
    Tool,
}

impl TermKind {
    fn noun(self) -> &'static str {
        match self {
            TermKind::Actor => "an actor",
            TermKind::Action => "an action",
            TermKind::DataClass => "a data_class",
            TermKind::Tool => "a tool",
        }
    }
}

/// How sensitive a data class is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Public.
    Low,
    /// Internal.
    Medium,
    /// Confidential.
    High,
    /// Regulated (PII and the like).
    Critical,
}

/// `permits` or `forbids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// Allows what it matches (in strict mode, only what some relation permits is allowed).
    Permits,
    /// Denies what it matches; always beats `permits`.
    Forbids,
}

/// What a constraint does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintAction {
    /// Turn an allow into `escalate`: a person must confirm.
    RequireHumanConfirmation,
    /// Deny beyond `max_calls` allowed decisions per window.
    RateLimit,
    /// Let the decision stand; `else_action` applies when the condition fails.
    Allow,
    /// Turn an allow into a denial.
    Deny,
}

/// What an `allow`/`deny` constraint does when its condition does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElseAction {
    /// Let the decision stand.
    Allow,
    /// Deny.
    Deny,
    /// Escalate to a person.
    RequireHumanConfirmation,
}

/// Whose calls a rate limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePer {
    /// Per resolved actor.
    Actor,
    /// Per resolved tool.
    Tool,
    /// Per `context.user_id`.
    User,
}

// ----- the JSON, exactly as users write it -----

#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a policy (a JSON object)"
)]
struct PolicyDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    terms: Option<Vec<TermDoc>>,
    #[serde(default)]
    relations: Vec<RelationDoc>,
    #[serde(default)]
    constraints: Vec<ConstraintDoc>,
    #[serde(default, deserialize_with = "crate::unique_keys::optional_value")]
    #[allow(dead_code)]
    metadata: Option<Value>,
}
crate::object_only::object_only!(PolicyDoc);

#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a term (a JSON object)"
)]
struct TermDoc {
    id: String,
    #[serde(rename = "type")]
    kind: TermKind,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sensitivity: Option<Sensitivity>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    data_classes: Option<Vec<String>>,
}
crate::object_only::object_only!(TermDoc);

#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a relation (a JSON object)"
)]
struct RelationDoc {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: RelationKind,
    subject: String,
    action: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}
crate::object_only::object_only!(RelationDoc);

#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a constraint (a JSON object)"
)]
struct ConstraintDoc {
    name: String,
    condition: String,
    action: ConstraintAction,
    #[serde(default)]
    parameters: Option<RateLimitDoc>,
    #[serde(default)]
    else_action: Option<ElseAction>,
    #[serde(default)]
    description: Option<String>,
}
crate::object_only::object_only!(ConstraintDoc);

#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a rate limit (a JSON object)"
)]
struct RateLimitDoc {
    max_calls: u32,
    window_seconds: u64,
    #[serde(default)]
    per: Option<RatePer>,
}
crate::object_only::object_only!(RateLimitDoc);

// ----- errors -----

/// A policy that does not load: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// JSON path of the offending value (`relations[1].type`), or `policy`
    /// for the document as a whole.
    pub path: String,
    /// What is wrong, lowercase, user values in backticks.
    pub message: String,
    /// 1-based line in the policy text, where known.
    pub line: Option<usize>,
    /// 1-based column in the policy text, where known.
    pub column: Option<usize>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

// ----- the checked, indexed policy -----

/// A term after loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `actor:model`.
    pub id: String,
    /// `model`.
    pub name: String,
    /// Its kind.
    pub kind: TermKind,
    /// Free text.
    pub description: Option<String>,
    /// How sensitive (data classes).
    pub sensitivity: Option<Sensitivity>,
    /// For a tool: the action it performs.
    pub tool_action: Option<usize>,
    /// For a tool: the data classes it touches.
    pub tool_data_classes: Vec<usize>,
}

/// A relation's condition (`user_approved`, `purpose=support`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationCondition {
    /// `context.KEY` is `true`.
    Flag(String),
    /// `context.KEY` is the string `VALUE`.
    Equals(String, String),
}

impl fmt::Display for RelationCondition {
    /// As the policy writes it: `KEY` or `KEY=VALUE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(key) => f.write_str(key),
            Self::Equals(key, value) => write!(f, "{key}={value}"),
        }
    }
}

impl RelationCondition {
    /// Whether it holds for a request context.
    pub fn holds(&self, context: &serde_json::Map<String, Value>) -> bool {
        match self {
            Self::Flag(key) => context.get(key) == Some(&Value::Bool(true)),
            Self::Equals(key, want) => {
                context.get(key).and_then(Value::as_str) == Some(want.as_str())
            }
        }
    }
}

/// A relation after loading; `None` in a slot is the wildcard `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// The relation's `id`, or `relations[N]`.
    pub id: String,
    /// `permits` or `forbids`.
    pub kind: RelationKind,
    /// Actor term, or any.
    pub subject: Option<usize>,
    /// Action term, or any.
    pub action: Option<usize>,
    /// Data-class term, or any (also when absent).
    pub object: Option<usize>,
    /// All must hold.
    pub conditions: Vec<RelationCondition>,
    /// Free text.
    pub description: Option<String>,
}

/// Rate-limit parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Allowed decisions per window.
    pub max_calls: u32,
    /// Window length.
    pub window_ms: u64,
    /// Grouping key; `None` counts globally.
    pub per: Option<RatePer>,
}

/// A constraint after loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// Its `name`, used as its id in reasons.
    pub name: String,
    /// The parsed condition.
    pub condition: Condition,
    /// What it does.
    pub action: ConstraintAction,
    /// For `rate_limit`.
    pub rate_limit: Option<RateLimit>,
    /// For `allow`/`deny` when the condition fails.
    pub else_action: Option<ElseAction>,
    /// Free text.
    pub description: Option<String>,
}

type Slot = Option<u32>;

/// Term ids and names to term indexes, one map per kind, so a request's
/// name is looked up as it is, without building a key. Every key comes from
/// the policy (a request only looks up), so the fast unkeyed Fx hash is safe
/// here: nobody outside the policy's author chooses what collides.
#[derive(Debug, Clone, Default)]
struct TermLookup([FxHashMap<String, usize>; 4]);

impl TermLookup {
    /// Where in the array `kind`'s map is.
    fn slot(kind: TermKind) -> usize {
        match kind {
            TermKind::Actor => 0,
            TermKind::Action => 1,
            TermKind::DataClass => 2,
            TermKind::Tool => 3,
        }
    }

    fn get(&self, kind: TermKind, key: &str) -> Option<usize> {
        self.0.get(Self::slot(kind))?.get(key).copied()
    }

    fn contains(&self, kind: TermKind, key: &str) -> bool {
        self.get(kind, key).is_some()
    }

    fn insert(&mut self, kind: TermKind, key: String, at: usize) {
        if let Some(map) = self.0.get_mut(Self::slot(kind)) {
            map.insert(key, at);
        }
    }
}

/// A loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its `name` (`unnamed` when absent).
    pub name: String,
    /// Its `version` (empty when absent).
    pub version: String,
    /// Its mode (strict when absent).
    pub mode: Mode,
    /// Its description.
    pub description: Option<String>,
    /// Lowercase-hex SHA-256 of the canonical policy JSON.
    pub hash: String,
    /// The policy document, canonical, as stored in the ledger.
    pub canonical: Vec<u8>,
    /// Whether the policy had no `terms` and its terms were implied by use.
    pub implicit_terms: bool,
    terms: Vec<Term>,
    lookup: TermLookup,
    relations: Vec<Relation>,
    index: FxHashMap<(Slot, Slot, Slot), Vec<u32>>,
    constraints: Vec<Constraint>,
}

/// Sizes of a loaded policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PolicyCounts {
    /// Number of terms.
    pub terms: usize,
    /// Number of relations.
    pub relations: usize,
    /// Number of constraints.
    pub constraints: usize,
}

/// What a policy is, in brief: how the CLI, the server's `GET /policies`
/// and the packages describe the active policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `strict` or `permissive`.
    pub mode: Mode,
    /// Its hash (`policy_version_hash` of the decisions it makes).
    pub policy_hash: String,
    /// Number of terms.
    pub terms: usize,
    /// Number of relations.
    pub relations: usize,
    /// Number of constraints.
    pub constraints: usize,
}

impl Policy {
    /// Parses, checks and indexes a policy from JSON text.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the JSON path, line and column.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                path: "policy".into(),
                message: format!("policy is larger than {MAX_POLICY_BYTES} bytes"),
                line: None,
                column: None,
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let doc: PolicyDoc =
            serde_path_to_error::deserialize(&mut de).map_err(|e| serde_error(&e, text))?;
        de.end().map_err(|e| PolicyError {
            path: "policy".into(),
            message: "unexpected characters after the policy object".into(),
            line: Some(e.line()),
            column: Some(char_column(text, e.line(), e.column())),
        })?;
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError {
            path: "policy".into(),
            message: e.to_string(),
            line: Some(e.line()),
            column: Some(char_column(text, e.line(), e.column())),
        })?;
        Builder::new(text).build(doc, &value)
    }

    /// Parses a policy given as a JSON value (no line/column in errors).
    ///
    /// The value is already in memory (a policy restored from the ledger, or
    /// nested in a request body), so [`MAX_POLICY_BYTES`] does not apply;
    /// [`MAX_ITEMS`] still does.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the JSON path.
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let doc: PolicyDoc =
            serde_path_to_error::deserialize(value).map_err(|e| serde_error(&e, ""))?;
        Builder::new("").build(doc, value)
    }

    /// Its name, version, mode, hash and sizes.
    pub fn info(&self) -> PolicyInfo {
        let counts = self.counts();
        PolicyInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            mode: self.mode,
            policy_hash: self.hash.clone(),
            terms: counts.terms,
            relations: counts.relations,
            constraints: counts.constraints,
        }
    }

    /// How many terms, relations and constraints it has.
    pub fn counts(&self) -> PolicyCounts {
        PolicyCounts {
            terms: self.terms.len(),
            relations: self.relations.len(),
            constraints: self.constraints.len(),
        }
    }

    /// The term at `index`.
    pub fn term(&self, index: usize) -> Option<&Term> {
        self.terms.get(index)
    }

    /// The term of `kind` whose id or name is exactly `key`.
    pub fn resolve(&self, kind: TermKind, key: &str) -> Option<usize> {
        self.lookup.get(kind, key)
    }

    /// All relations, in policy order.
    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// All constraints, in policy order.
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    /// Indexes (into [`Policy::relations`]) of the relations whose subject,
    /// action and object match, in policy order. Conditions are not checked.
    pub fn candidates(
        &self,
        actor: Option<usize>,
        action: Option<usize>,
        data_classes: &[usize],
    ) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        let subjects = [actor.map(|a| a as u32), None];
        let actions = [action.map(|a| a as u32), None];
        let subjects = if actor.is_some() {
            &subjects[..]
        } else {
            &subjects[1..]
        };
        let actions = if action.is_some() {
            &actions[..]
        } else {
            &actions[1..]
        };
        for s in subjects {
            for a in actions {
                if let Some(v) = self.index.get(&(*s, *a, None)) {
                    found.extend_from_slice(v);
                }
                for class in data_classes {
                    if let Some(v) = self.index.get(&(*s, *a, Some(*class as u32))) {
                        found.extend_from_slice(v);
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// `text` is the policy's JSON text (empty when parsed from a value: no
/// line or column then).
// The names each enum field takes, as serde words them; a unit test holds
// them to the types (asking serde at run time would add ~10 KB of wasm).
const MODES: &str = "expected `strict` or `permissive`";
const TERM_KINDS: &str = "expected one of `actor`, `action`, `data_class`, `tool`";
const SENSITIVITIES: &str = "expected one of `low`, `medium`, `high`, `critical`";
const RELATION_KINDS: &str = "expected `permits` or `forbids`";
const CONSTRAINT_ACTIONS: &str =
    "expected one of `require_human_confirmation`, `rate_limit`, `allow`, `deny`";
const ELSE_ACTIONS: &str = "expected one of `allow`, `deny`, `require_human_confirmation`";
const RATE_PERS: &str = "expected one of `actor`, `tool`, `user`";

fn serde_error(e: &serde_path_to_error::Error<serde_json::Error>, text: &str) -> PolicyError {
    let inner = e.inner();
    let path = crate::object_only::named_path(e.path());
    let path = if path == "." || path.is_empty() {
        "policy".to_string()
    } else {
        path
    };
    let mut message = inner.to_string();
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_string();
    }
    let last = path.rsplit('.').next().unwrap_or_default();
    // The enum fields: what they are called, and the names they take (in
    // serde's words, from the type itself, so the list cannot go stale).
    let choice: Option<(&str, &str)> = match last {
        "type" if path.starts_with("relations") => Some(("relation type", RELATION_KINDS)),
        "type" => Some(("term type", TERM_KINDS)),
        "mode" => Some(("mode", MODES)),
        "action" if path.starts_with("constraints") => {
            Some(("constraint action", CONSTRAINT_ACTIONS))
        }
        "else_action" => Some(("else_action", ELSE_ACTIONS)),
        "sensitivity" => Some(("sensitivity", SENSITIVITIES)),
        "per" => Some(("rate limit `per`", RATE_PERS)),
        _ => None,
    };
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let noun = choice.map_or("value", |(noun, _)| noun);
        message = format!("unknown {noun} {rest}");
    } else if message == "expected value"
        && let Some((noun, names)) = choice
    {
        // serde_json says only "expected value" when an enum is given
        // something other than a string.
        let got = text
            .lines()
            .nth(inner.line().saturating_sub(1))
            .and_then(|l| l.get(inner.column().saturating_sub(1)..))
            .map_or("", str::trim_start);
        let kind = match got.chars().next() {
            Some('0'..='9' | '-') => "a number",
            Some('t' | 'f') => "a boolean",
            Some('n') => "null",
            Some('[') => "an array",
            Some('{') => "an object",
            _ => "something else",
        };
        message = format!("the {noun} must be a string: {names}, got {kind}");
    }
    let (line, column) = if inner.line() == 0 {
        (None, None)
    } else {
        (
            Some(inner.line()),
            Some(char_column(text, inner.line(), inner.column()).max(1)),
        )
    };
    PolicyError {
        path,
        message,
        line,
        column,
    }
}

// ----- building -----

struct Builder<'t> {
    text: &'t str,
    terms: Vec<Term>,
    lookup: TermLookup,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            terms: Vec::new(),
            lookup: TermLookup::default(),
        }
    }

    fn error(&self, path: &str, message: impl Into<String>) -> PolicyError {
        let (line, column) =
            locate(self.text, path).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        PolicyError {
            path: path.to_string(),
            message: message.into(),
            line,
            column,
        }
    }

    fn build(mut self, doc: PolicyDoc, value: &Value) -> Result<Policy, PolicyError> {
        for (what, n) in [
            ("terms", doc.terms.as_ref().map_or(0, Vec::len)),
            ("relations", doc.relations.len()),
            ("constraints", doc.constraints.len()),
        ] {
            if n > MAX_ITEMS {
                return Err(self.error(what, format!("more than {MAX_ITEMS} entries")));
            }
        }
        let implicit_terms = doc.terms.is_none();
        match doc.terms {
            Some(terms) => self.declare_terms(terms)?,
            None => self.imply_terms(&doc.relations),
        }

        let mut relations = Vec::with_capacity(doc.relations.len());
        let mut index: FxHashMap<(Slot, Slot, Slot), Vec<u32>> = FxHashMap::default();
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (i, r) in doc.relations.into_iter().enumerate() {
            let at = format!("relations[{i}]");
            let id = r.id.clone().unwrap_or_else(|| at.clone());
            if let Some(prev) = ids.insert(id.clone(), i) {
                return Err(self.error(
                    &format!("{at}.id"),
                    format!("duplicate relation id `{id}` (also relations[{prev}])"),
                ));
            }
            let subject = self.reference(&format!("{at}.subject"), &r.subject, TermKind::Actor)?;
            let action = self.reference(&format!("{at}.action"), &r.action, TermKind::Action)?;
            let object = match &r.object {
                Some(o) => self.reference(&format!("{at}.object"), o, TermKind::DataClass)?,
                None => None,
            };
            let mut conditions = Vec::with_capacity(r.conditions.len());
            for (j, c) in r.conditions.iter().enumerate() {
                conditions.push(self.relation_condition(&format!("{at}.conditions[{j}]"), c)?);
            }
            index
                .entry((
                    subject.map(|s| s as u32),
                    action.map(|a| a as u32),
                    object.map(|o| o as u32),
                ))
                .or_default()
                .push(i as u32);
            relations.push(Relation {
                id,
                kind: r.kind,
                subject,
                action,
                object,
                conditions,
                description: r.description,
            });
        }

        let mut constraints = Vec::with_capacity(doc.constraints.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, c) in doc.constraints.into_iter().enumerate() {
            let at = format!("constraints[{i}]");
            // Reasons name the constraint that decided.
            if c.name.trim().is_empty() {
                return Err(self.error(
                    &format!("{at}.name"),
                    "a constraint needs a non-blank name (reasons name it)",
                ));
            }
            if let Some(prev) = names.insert(c.name.clone(), i) {
                return Err(self.error(
                    &format!("{at}.name"),
                    format!(
                        "duplicate constraint name `{}` (also constraints[{prev}])",
                        c.name
                    ),
                ));
            }
            let condition = Condition::parse(&c.condition)
                .map_err(|e| self.condition_error(&format!("{at}.condition"), &c.name, &e))?;
            let rate_limit = match (c.action, c.parameters) {
                (ConstraintAction::RateLimit, Some(p)) => {
                    if p.max_calls == 0 || p.window_seconds == 0 {
                        return Err(self.error(
                            &format!("{at}.parameters"),
                            "`max_calls` and `window_seconds` must be at least 1",
                        ));
                    }
                    if p.window_seconds > MAX_RATE_WINDOW_SECONDS {
                        return Err(self.error(
                            &format!("{at}.parameters.window_seconds"),
                            format!("`window_seconds` must be at most {MAX_RATE_WINDOW_SECONDS} (366 days)"),
                        ));
                    }
                    Some(RateLimit {
                        max_calls: p.max_calls,
                        window_ms: p.window_seconds.saturating_mul(1000),
                        per: p.per,
                    })
                }
                (ConstraintAction::RateLimit, None) => {
                    return Err(self.error(&at, "a `rate_limit` constraint needs `parameters` with `max_calls` and `window_seconds`"));
                }
                (_, Some(_)) => {
                    return Err(self.error(
                        &format!("{at}.parameters"),
                        "only `rate_limit` constraints take `parameters`",
                    ));
                }
                (_, None) => None,
            };
            if c.else_action.is_some()
                && !matches!(c.action, ConstraintAction::Allow | ConstraintAction::Deny)
            {
                return Err(self.error(
                    &format!("{at}.else_action"),
                    "only `allow` and `deny` constraints take `else_action`",
                ));
            }
            constraints.push(Constraint {
                name: c.name,
                condition,
                action: c.action,
                rate_limit,
                else_action: c.else_action,
                description: c.description,
            });
        }

        let canonical = canonical::to_vec(value);
        Ok(Policy {
            name: doc.name.unwrap_or_else(|| "unnamed".to_string()),
            version: doc.version.unwrap_or_default(),
            mode: doc.mode.unwrap_or_default(),
            description: doc.description,
            hash: hash::sha256_hex(&canonical),
            canonical,
            implicit_terms,
            terms: self.terms,
            lookup: self.lookup,
            relations,
            index,
            constraints,
        })
    }

    fn add_term(&mut self, path: &str, term: Term) -> Result<usize, PolicyError> {
        let at = self.terms.len();
        for key in [&term.id, &term.name] {
            if let Some(other) = self.lookup.get(term.kind, key)
                && other != at
            {
                let prev = self
                    .terms
                    .get(other)
                    .map(|t| t.id.clone())
                    .unwrap_or_default();
                return Err(self.error(path, format!("`{key}` already names term `{prev}`; term ids and names must be unique within a type")));
            }
            self.lookup.insert(term.kind, key.clone(), at);
        }
        self.terms.push(term);
        Ok(at)
    }

    fn declare_terms(&mut self, terms: Vec<TermDoc>) -> Result<(), PolicyError> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (i, t) in terms.iter().enumerate() {
            if let Some(prev) = ids.insert(t.id.clone(), i) {
                return Err(self.error(
                    &format!("terms[{i}].id"),
                    format!("duplicate term id `{}` (also terms[{prev}])", t.id),
                ));
            }
            if t.id.trim().is_empty() || t.id == "*" {
                return Err(self.error(
                    &format!("terms[{i}].id"),
                    "a term id must be a non-blank string other than `*`",
                ));
            }
            // A name is matched as an id is: `*` would shadow the wildcard.
            if t.name
                .as_deref()
                .is_some_and(|n| n.trim().is_empty() || n == "*")
            {
                return Err(self.error(
                    &format!("terms[{i}].name"),
                    "a term name must be a non-blank string other than `*`",
                ));
            }
        }
        for (i, t) in terms.iter().enumerate() {
            let at = format!("terms[{i}]");
            if t.kind != TermKind::Tool && t.action.is_some() {
                return Err(self.error(
                    &format!("{at}.action"),
                    "only `tool` terms map to an action",
                ));
            }
            if t.kind != TermKind::Tool && t.data_classes.is_some() {
                return Err(self.error(
                    &format!("{at}.data_classes"),
                    "only `tool` terms map to data classes",
                ));
            }
            if t.kind == TermKind::Tool && t.action.is_none() {
                return Err(self.error(
                    &at,
                    "a `tool` term needs `action`: the action the tool performs",
                ));
            }
            let name = t
                .name
                .clone()
                .unwrap_or_else(|| default_name(&t.id).to_string());
            self.add_term(
                &at,
                Term {
                    id: t.id.clone(),
                    name,
                    kind: t.kind,
                    description: t.description.clone(),
                    sensitivity: t.sensitivity,
                    tool_action: None,
                    tool_data_classes: Vec::new(),
                },
            )?;
        }
        // Tool mappings refer to other terms, so resolve them once all exist.
        for (i, t) in terms.iter().enumerate() {
            if t.kind != TermKind::Tool {
                continue;
            }
            let at = format!("terms[{i}]");
            let action = match &t.action {
                Some(a) => self.reference_exact(&format!("{at}.action"), a, TermKind::Action)?,
                None => None,
            };
            let mut classes = Vec::new();
            for (j, c) in t.data_classes.iter().flatten().enumerate() {
                if let Some(c) = self.reference_exact(
                    &format!("{at}.data_classes[{j}]"),
                    c,
                    TermKind::DataClass,
                )? {
                    classes.push(c);
                }
            }
            let slot = self.lookup.get(TermKind::Tool, &t.id);
            if let Some(term) = slot.and_then(|s| self.terms.get_mut(s)) {
                term.tool_action = action;
                term.tool_data_classes = classes;
            }
        }
        Ok(())
    }

    /// A policy without `terms` declares its terms by using them.
    fn imply_terms(&mut self, relations: &[RelationDoc]) {
        for r in relations {
            let refs = [
                (Some(&r.subject), TermKind::Actor),
                (Some(&r.action), TermKind::Action),
                (r.object.as_ref(), TermKind::DataClass),
            ];
            for (key, kind) in refs {
                let Some(key) = key else { continue };
                if key == "*" || self.lookup.contains(kind, key) {
                    continue;
                }
                let name = default_name(key).to_string();
                if self.lookup.contains(kind, &name) {
                    continue;
                }
                let at = self.terms.len();
                self.lookup.insert(kind, key.clone(), at);
                self.lookup.insert(kind, name.clone(), at);
                self.terms.push(Term {
                    id: key.clone(),
                    name,
                    kind,
                    description: None,
                    sensitivity: None,
                    tool_action: None,
                    tool_data_classes: Vec::new(),
                });
            }
        }
    }

    /// Resolves a relation's reference: `*`, or a term id or name of `kind`.
    fn reference(
        &self,
        path: &str,
        key: &str,
        kind: TermKind,
    ) -> Result<Option<usize>, PolicyError> {
        if key == "*" {
            return Ok(None);
        }
        self.reference_exact(path, key, kind)
    }

    fn reference_exact(
        &self,
        path: &str,
        key: &str,
        kind: TermKind,
    ) -> Result<Option<usize>, PolicyError> {
        if let Some(i) = self.lookup.get(kind, key) {
            return Ok(Some(i));
        }
        let other = [
            TermKind::Actor,
            TermKind::Action,
            TermKind::DataClass,
            TermKind::Tool,
        ]
        .into_iter()
        .find(|k| self.lookup.contains(*k, key));
        let message = match other {
            Some(k) => format!("`{key}` is {} term, expected {}", k.noun(), kind.noun()),
            None if key == "*" => format!("`*` is not allowed here, expected {}", kind.noun()),
            None => format!(
                "`{key}` is not a declared term; declare it in `terms` (expected {})",
                kind.noun()
            ),
        };
        Err(self.error(path, message))
    }

    fn relation_condition(&self, path: &str, text: &str) -> Result<RelationCondition, PolicyError> {
        let valid_key = |k: &str| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        match text.split_once('=') {
            Some((k, v)) if valid_key(k.trim()) && !v.trim().is_empty() => Ok(
                RelationCondition::Equals(k.trim().to_string(), v.trim().to_string()),
            ),
            None if valid_key(text.trim()) => Ok(RelationCondition::Flag(text.trim().to_string())),
            _ => Err(self.error(
                path,
                format!("condition `{text}` must be `KEY` (context.KEY is true) or `KEY=VALUE`"),
            )),
        }
    }

    fn condition_error(&self, path: &str, name: &str, e: &ConditionError) -> PolicyError {
        let mut err = self.error(path, format!("constraint `{name}`: {e}"));
        // Point at the character inside the JSON string (for one-line strings).
        if let Some(c) = err.column.as_mut() {
            *c += e.column;
        }
        err
    }
}

fn default_name(id: &str) -> &str {
    id.split_once(':').map_or(id, |(_, rest)| rest)
}

// ----- locating a JSON path in the text -----

/// The 1-based column, in characters, of serde_json's `byte_column` (which
/// counts bytes: `"é"` is two) on 1-based `line` of `text`, as [`locate`]
/// and editors count. Past the line's end, bytes count as characters.
fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    let Some(l) = text.split('\n').nth(line.saturating_sub(1)) else {
        return byte_column;
    };
    let before = byte_column.saturating_sub(1);
    let chars = l.char_indices().take_while(|(i, _)| *i < before).count();
    chars + before.saturating_sub(l.len()) + 1
}

/// The 1-based line and column of the value at `path` in `text`.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = skip_ws(bytes, 0);
    for seg in split_path(path)? {
        match seg {
            Seg::Key(key) => {
                if bytes.get(i) != Some(&b'{') {
                    return None;
                }
                i += 1;
                loop {
                    i = skip_ws(bytes, i);
                    if bytes.get(i) != Some(&b'"') {
                        return None;
                    }
                    let end = skip_string(bytes, i)?;
                    let found: String = serde_json::from_str(text.get(i..end)?).ok()?;
                    i = skip_ws(bytes, end);
                    if bytes.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_ws(bytes, i + 1);
                    if found == key {
                        break;
                    }
                    i = skip_ws(bytes, skip_value(bytes, i)?);
                    if bytes.get(i) != Some(&b',') {
                        return None;
                    }
                    i += 1;
                }
            }
            Seg::Index(n) => {
                if bytes.get(i) != Some(&b'[') {
                    return None;
                }
                i = skip_ws(bytes, i + 1);
                for _ in 0..n {
                    i = skip_ws(bytes, skip_value(bytes, i)?);
                    if bytes.get(i) != Some(&b',') {
                        return None;
                    }
                    i = skip_ws(bytes, i + 1);
                }
            }
        }
    }
    let before = text.get(..i)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Option<Vec<Seg<'_>>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            segs.push(Seg::Key(key));
        }
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            segs.push(Seg::Index(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(segs)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GUIDE_POLICY: &str = include_str!("../../examples/policies/ai_assistant.json");

    #[test]
    fn arrays_are_not_policies_terms_relations_or_constraints() {
        // serde's derive would fill the fields by position.
        for (text, path) in [
            (r#"["Seq", "2.0", "permissive"]"#, "policy"),
            ("[]", "policy"),
            (r#"{"terms": [["actor:model", "actor"]]}"#, "terms[0]"),
            (
                r#"{"relations": [["r1", "permits", "actor:model", "action:read"]]}"#,
                "relations[0]",
            ),
            (
                r#"{"constraints": [["c1", "risk_level >= 4", "deny"]]}"#,
                "constraints[0]",
            ),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
            assert!(e.message.contains("invalid type: sequence"), "{text}: {e}");
            assert!(e.message.contains("a JSON object"), "{text}: {e}");
            assert!(e.line.is_some(), "{text}: {e}");
            let value: Value = serde_json::from_str(text).unwrap();
            let e = Policy::from_value(&value).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
        }
    }

    #[test]
    fn the_guides_policy_loads() {
        let p = Policy::parse(GUIDE_POLICY).unwrap();
        assert_eq!(p.name, "AI Assistant Policy");
        assert_eq!(p.mode, Mode::Strict);
        assert_eq!(p.counts().relations, 4);
        assert_eq!(p.counts().constraints, 2);
        assert_eq!(p.hash.len(), 64);
    }

    #[test]
    fn from_value_matches_parse_and_reports_paths_without_positions() {
        let value: Value = serde_json::from_str(GUIDE_POLICY).unwrap();
        let from_value = Policy::from_value(&value).unwrap();
        assert_eq!(from_value.hash, Policy::parse(GUIDE_POLICY).unwrap().hash);

        let bad = serde_json::json!({"name": "p", "relations": [{"type": "permitz", "subject": "*", "action": "*"}]});
        let e = Policy::from_value(&bad).unwrap_err();
        assert_eq!(e.path, "relations[0].type");
        assert_eq!((e.line, e.column), (None, None));
        let dangling = serde_json::json!({"name": "p", "terms": [], "relations": [{"type": "permits", "subject": "actor:x", "action": "*"}]});
        let e = Policy::from_value(&dangling).unwrap_err();
        assert_eq!(e.path, "relations[0].subject");
        assert_eq!(e.line, None);
    }

    #[test]
    fn from_value_does_not_apply_the_text_size_limit() {
        // Restoring from the ledger must accept what `parse` accepted: the
        // limit is on the text, and a compact text just under it would have
        // been over it once pretty-printed.
        let relations: Vec<Value> = (0..20_000)
            .map(|i| serde_json::json!({"type": "permits", "subject": format!("actor:a{i}"), "action": "action:read", "description": "x".repeat(1_000)}))
            .collect();
        let value = serde_json::json!({"name": "big", "relations": relations});
        assert!(serde_json::to_string(&value).unwrap().len() > MAX_POLICY_BYTES);
        assert_eq!(
            Policy::from_value(&value).unwrap().counts().relations,
            20_000
        );
    }

    #[test]
    fn unknown_relation_type_names_path_line_and_column() {
        let text = "{\n  \"name\": \"p\",\n  \"relations\": [\n    {\"type\": \"permits\", \"subject\": \"*\", \"action\": \"*\"},\n    {\"type\": \"permitz\", \"subject\": \"*\", \"action\": \"*\"}\n  ]\n}";
        let e = Policy::parse(text).unwrap_err();
        assert_eq!(e.path, "relations[1].type");
        assert_eq!(
            e.message,
            "unknown relation type `permitz`, expected `permits` or `forbids`"
        );
        assert_eq!(e.line, Some(5));
        assert!(
            e.to_string()
                .starts_with("relations[1].type: unknown relation type `permitz`")
        );
    }

    #[test]
    fn a_key_given_twice_in_metadata_is_refused_at_any_depth() {
        for text in [
            r#"{"name": "p", "metadata": {"owner": "a", "owner": "b"}}"#,
            r#"{"name": "p", "metadata": [{"tags": {"x": 1, "x": 2}}]}"#,
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.path.starts_with("metadata"), "{e}");
            assert!(e.message.starts_with("duplicate key `"), "{e}");
            assert_eq!(e.line, Some(1), "{e}");
        }
        for ok in [
            r#"{"name": "p", "metadata": {"owner": "a", "tags": [1, 2.5, null]}}"#,
            r#"{"name": "p", "metadata": null}"#,
            r#"{"name": "p", "metadata": 30e80}"#,
        ] {
            Policy::parse(ok).unwrap();
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "é" is two bytes; the column is where an editor puts the cursor.
        let e = Policy::parse(r#"{"name": "éééé", "mode": "lax"}"#).unwrap_err();
        assert_eq!(e.path, "mode");
        assert_eq!((e.line, e.column), (Some(1), Some(30)), "{e}");
        let ascii = Policy::parse(r#"{"name": "eeee", "mode": "lax"}"#).unwrap_err();
        assert_eq!(ascii.column, Some(30));
        // A syntax error after multi-byte text, and one at the end of the text.
        let e = Policy::parse("{\n  \"name\": \"日本\",\n  \"mode\" \"strict\"}").unwrap_err();
        assert_eq!((e.line, e.column), (Some(3), Some(10)), "{e}");
        let e = Policy::parse("{\"name\": \"日本\"").unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(13)), "{e}");
        assert_eq!(e.path, "policy", "no `?` segments: {e}");
    }

    #[test]
    fn meaningless_names_and_windows_are_errors() {
        let term = |t: &str| format!(r#"{{"name": "p", "terms": [{t}]}}"#);
        let e =
            Policy::parse(&term(r#"{"id": "actor:x", "type": "actor", "name": "*"}"#)).unwrap_err();
        assert_eq!(e.path, "terms[0].name", "{e}");
        let e = Policy::parse(&term(r#"{"id": " ", "type": "actor"}"#)).unwrap_err();
        assert_eq!(e.path, "terms[0].id", "{e}");
        let e = Policy::parse(r#"{"name": "p", "constraints": [{"name": "", "condition": "true", "action": "deny"}]}"#).unwrap_err();
        assert_eq!(e.path, "constraints[0].name", "{e}");
        let e = Policy::parse(r#"{"name": "p", "constraints": [{"name": "rl", "condition": "true", "action": "rate_limit", "parameters": {"max_calls": 1, "window_seconds": 1000000000000000000}}]}"#).unwrap_err();
        assert_eq!(e.path, "constraints[0].parameters.window_seconds", "{e}");
        assert!(Policy::parse(r#"{"name": "p", "constraints": [{"name": "rl", "condition": "true", "action": "rate_limit", "parameters": {"max_calls": 1, "window_seconds": 31622400}}]}"#).is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Policy::parse(r#"{"name": "p", "relation": []}"#).unwrap_err();
        assert_eq!(e.path, "relation");
        assert!(e.message.contains("unknown field `relation`"), "{e}");
        let e = Policy::parse(r#"{"name": "p", "relations": [{"type": "permits", "subject": "*", "action": "*", "objet": "x"}]}"#).unwrap_err();
        assert_eq!(e.path, "relations[0].objet");
    }

    /// serde's list of the names an enum takes, from the error for a name
    /// it does not take.
    fn expected_names<T: serde::de::DeserializeOwned>() -> String {
        let e = serde_json::from_str::<T>("\"\"").err().unwrap().to_string();
        let e = e.split(" at line ").next().unwrap();
        e.get(e.find("expected ").unwrap()..).unwrap().to_string()
    }

    #[test]
    fn the_enum_names_in_errors_are_the_types_own() {
        assert_eq!(MODES, expected_names::<Mode>());
        assert_eq!(TERM_KINDS, expected_names::<TermKind>());
        assert_eq!(SENSITIVITIES, expected_names::<Sensitivity>());
        assert_eq!(RELATION_KINDS, expected_names::<RelationKind>());
        assert_eq!(CONSTRAINT_ACTIONS, expected_names::<ConstraintAction>());
        assert_eq!(ELSE_ACTIONS, expected_names::<ElseAction>());
        assert_eq!(RATE_PERS, expected_names::<RatePer>());
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = Policy::parse(r#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert_eq!(e.path, "name");
        assert!(e.message.contains("invalid type"), "{e}");
        let e = Policy::parse(r#"{"name": "p", "mode": "lenient"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "unknown mode `lenient`, expected `strict` or `permissive`"
        );
        let e = Policy::parse("{\"name\": \"p\",").unwrap_err();
        assert!(e.line.is_some());
        // An enum given something other than a string: serde_json says only
        // "expected value"; the error says what the field takes.
        for (text, path, message) in [
            (
                r#"{"name": "p", "mode": 5}"#,
                "mode",
                "the mode must be a string: expected `strict` or `permissive`, got a number",
            ),
            (
                r#"{"name": "p", "relations": [{"type": true, "subject": "a", "action": "b", "object": "c"}]}"#,
                "relations[0].type",
                "the relation type must be a string: expected `permits` or `forbids`, got a boolean",
            ),
            (
                r#"{"name": "p", "constraints": [{"name": "c", "action": [], "condition": "risk_level >= 4"}]}"#,
                "constraints[0].action",
                "the constraint action must be a string: expected one of `require_human_confirmation`, `rate_limit`, `allow`, `deny`, got an array",
            ),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert_eq!((e.path.as_str(), e.message.as_str()), (path, message));
            assert_eq!(e.line, Some(1));
        }
    }

    #[test]
    fn dangling_references_are_errors() {
        let text = r#"{"name": "p", "terms": [{"id": "actor:model", "type": "actor", "name": "model"}],
            "relations": [{"type": "permits", "subject": "actor:modle", "action": "*"}]}"#;
        let e = Policy::parse(text).unwrap_err();
        assert_eq!(e.path, "relations[0].subject");
        assert!(
            e.message.contains("`actor:modle` is not a declared term"),
            "{e}"
        );
        assert_eq!(e.line, Some(2));
        let text = r#"{"name": "p", "terms": [{"id": "actor:model", "type": "actor", "name": "model"}],
            "relations": [{"type": "permits", "subject": "*", "action": "actor:model"}]}"#;
        let e = Policy::parse(text).unwrap_err();
        assert_eq!(
            e.message,
            "`actor:model` is an actor term, expected an action"
        );
    }

    #[test]
    fn bad_conditions_name_constraint_and_column() {
        let text = r#"{"name": "p", "constraints": [{"name": "c1", "condition": "risk_level >> 4", "action": "deny"}]}"#;
        let e = Policy::parse(text).unwrap_err();
        assert_eq!(e.path, "constraints[0].condition");
        assert!(e.message.contains("constraint `c1`"), "{e}");
        assert!(e.message.contains("column 13"), "{e}");
    }

    #[test]
    fn rate_limit_needs_parameters() {
        let text = r#"{"name": "p", "constraints": [{"name": "r", "condition": "true", "action": "rate_limit"}]}"#;
        assert!(
            Policy::parse(text)
                .unwrap_err()
                .message
                .contains("needs `parameters`")
        );
        let text = r#"{"name": "p", "constraints": [{"name": "r", "condition": "true", "action": "rate_limit", "parameters": {"max_calls": 1, "window_seconds": 5, "per": "team"}}]}"#;
        let e = Policy::parse(text).unwrap_err();
        assert_eq!(e.path, "constraints[0].parameters.per");
    }

    #[test]
    fn implicit_terms_when_terms_are_absent() {
        let text = r#"{"name": "Read-Only Policy", "relations": [
            {"type": "permits", "subject": "actor:model", "action": "action:read", "object": "*"},
            {"type": "forbids", "subject": "actor:model", "action": "action:write", "object": "*"}]}"#;
        let p = Policy::parse(text).unwrap();
        assert!(p.implicit_terms);
        assert_eq!(
            p.resolve(TermKind::Actor, "model"),
            p.resolve(TermKind::Actor, "actor:model")
        );
        assert!(p.resolve(TermKind::Actor, "mode").is_none());
    }

    #[test]
    fn canonical_form_reloads_to_the_same_hash() {
        // Fuzz finding: without correctly rounded float parsing, 30e80 came
        // back as 2.9999999999999996e+81 and changed the hash.
        for text in [
            r#"{"metadata":30e80}"#,
            r#"{"metadata":[3e81, 0.1, 444444444444444444444440.5]}"#,
        ] {
            let p = Policy::parse(text).unwrap();
            let again = Policy::parse(std::str::from_utf8(&p.canonical).unwrap()).unwrap();
            assert_eq!(p.hash, again.hash, "{text}");
        }
        assert_eq!(Policy::parse("").unwrap_err().column, Some(1));
    }

    #[test]
    fn hash_ignores_whitespace_and_key_order() {
        let a = Policy::parse(r#"{"name":"p","mode":"strict"}"#).unwrap();
        let b = Policy::parse("{ \"mode\" : \"strict\",\n \"name\": \"p\" }").unwrap();
        assert_eq!(a.hash, b.hash);
    }

    #[test]
    fn locate_finds_nested_values() {
        let text = "{\"a\": [1, {\"b\": \"x\"}]}";
        assert_eq!(locate(text, "a[1].b"), Some((1, 17)));
        assert_eq!(locate(text, "a[5]"), None);
    }
}
