//! Redaction: per-source rules (decoded field paths, header names, regular expressions) that
//! drop values or replace them by a keyed hash, applied at capture before anything is written
//! (so a secret never reaches the lake), or at view time to what search, the event view and
//! exports show.
//!
//! A value is replaced in every form the lake keeps: the decoded JSON, the payload text, and
//! the payload bytes, which are encoded again from the redacted JSON with the source's own
//! type (keeping a Schema Registry frame). When the bytes cannot be made again (a payload that
//! did not decode, a schemaless protobuf tree, a compressed layer), they are not kept at all:
//! an event may lose its bytes, a secret never stays in them. Every redacted event carries a
//! `sluice-redacted` header naming what was done, which replays send on with it.

use hmac::{Hmac, Mac};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use sluice_codec::{Decoded, Decoder};
use sluice_model::{Encoding, Event, Header, Message};

/// The header a redacted event carries: what was redacted, comma-separated.
pub const REDACTED_HEADER: &str = "sluice-redacted";
/// What stands in for a dropped text match or value.
const DROPPED: &str = "[redacted]";
/// Path segments a field rule may have; paths are parsed once, so a walk is bounded by this.
const MAX_PATH_SEGMENTS: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RedactAction {
    /// A keyed hash (`redacted:` and 16 hex digits): equal values stay equal, so searching and
    /// joining by them still work, and nobody without the key can tell what they were.
    #[default]
    Hash,
    /// The value is removed (a field from its object, a header from the event; a text match
    /// becomes `[redacted]`).
    Drop,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum RedactAt {
    /// Before anything is written: the lake never holds the values.
    #[default]
    Capture,
    /// When search, the event view and exports show events: the lake keeps the values.
    View,
}

/// One rule as the config keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RedactRule {
    pub connection: String,
    /// One source (topic, queue, ...); every source of the connection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub source: Option<String>,
    /// Decoded field paths: `customer.email`, `items[*].card`, `lines[0].iban`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Header names (any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Regular expressions over every text value: decoded strings, payload text, header values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub action: RedactAction,
    #[serde(default)]
    pub at: RedactAt,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("field path {path:?}: {why}")]
    Path { path: String, why: String },
    #[error("pattern {pattern:?}: {why}")]
    Pattern { pattern: String, why: String },
    #[error("a redaction rule needs at least one --field, --header or --pattern")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    Every,
}

fn parse_path(path: &str) -> Result<Vec<Segment>, RuleError> {
    let bad = |why: &str| RuleError::Path {
        path: path.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && (out.is_empty() || rest.is_empty()) {
            return Err(bad(
                "an empty name (write it like customer.email or items[*].sku)",
            ));
        }
        if !name.is_empty() {
            out.push(Segment::Key(name.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("a [ without its ]"))?;
            let inner = &r[..end];
            out.push(if inner == "*" {
                Segment::Every
            } else {
                Segment::Index(
                    inner
                        .parse()
                        .map_err(|_| bad("an index is a number or *"))?,
                )
            });
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return Err(bad("text after ]"));
        }
    }
    if out.len() > MAX_PATH_SEGMENTS {
        return Err(bad("more than 32 parts"));
    }
    Ok(out)
}

impl RedactRule {
    /// Checks the rule as `redact add` takes it: paths parse, patterns compile.
    pub fn check(&self) -> Result<(), RuleError> {
        if self.fields.is_empty() && self.headers.is_empty() && self.patterns.is_empty() {
            return Err(RuleError::Empty);
        }
        Redactor::new(std::slice::from_ref(self), &[]).map(|_| ())
    }

    pub fn applies_to(&self, connection: &str, source: &str) -> bool {
        self.connection == connection && self.source.as_deref().is_none_or(|s| s == source)
    }
}

/// The rules that apply to one source, compiled.
#[derive(Debug, Clone)]
pub struct Redactor {
    fields: Vec<(Vec<Segment>, String, RedactAction)>,
    headers: Vec<(String, RedactAction)>,
    patterns: Vec<(Regex, RedactAction)>,
    key: Vec<u8>,
}

/// Every rule of one kind (`at`), with the hash key, compiled per source on first use: a
/// capture's sources are not all known in advance (a collector's clients name theirs, a Redis
/// pattern matches channels).
#[derive(Debug)]
pub struct Redactions {
    rules: Vec<RedactRule>,
    key: Vec<u8>,
    compiled: std::sync::Mutex<PerSource>,
}

type PerSource = std::collections::HashMap<(String, String), Option<std::sync::Arc<Redactor>>>;

impl Redactions {
    /// `None` when no rule is of kind `at`.
    pub fn new(rules: &[RedactRule], at: RedactAt, key: Vec<u8>) -> Option<Redactions> {
        let rules: Vec<RedactRule> = rules.iter().filter(|r| r.at == at).cloned().collect();
        (!rules.is_empty()).then(|| Redactions {
            rules,
            key,
            compiled: Default::default(),
        })
    }

    /// The rules for `connection`'s `source`, compiled; `None` when none applies. Rules are
    /// checked when added, so one edited by hand into something broken is skipped, logged.
    pub fn for_source(&self, connection: &str, source: &str) -> Option<std::sync::Arc<Redactor>> {
        let mut c = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        c.entry((connection.to_string(), source.to_string()))
            .or_insert_with(|| {
                let mine: Vec<RedactRule> = self
                    .rules
                    .iter()
                    .filter(|r| r.applies_to(connection, source))
                    .cloned()
                    .collect();
                match Redactor::new(&mine, &self.key) {
                    Ok(r) if !r.is_empty() => Some(std::sync::Arc::new(r)),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!("redaction rule skipped: {e}");
                        None
                    }
                }
            })
            .clone()
    }
}

/// What one redaction did, for the `sluice-redacted` header.
#[derive(Default)]
struct Done {
    what: Vec<String>,
}

impl Done {
    fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.what.contains(&what) {
            self.what.push(what);
        }
    }
}

impl Redactor {
    /// Compiles `rules` (all of one source's, of either `at`); `key` keys the hashes.
    pub fn new(rules: &[RedactRule], key: &[u8]) -> Result<Redactor, RuleError> {
        let mut r = Redactor {
            fields: Vec::new(),
            headers: Vec::new(),
            patterns: Vec::new(),
            key: key.to_vec(),
        };
        for rule in rules {
            for f in &rule.fields {
                r.fields.push((parse_path(f)?, f.clone(), rule.action));
            }
            for h in &rule.headers {
                r.headers.push((h.to_ascii_lowercase(), rule.action));
            }
            for p in &rule.patterns {
                let re = regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| RuleError::Pattern {
                        pattern: p.clone(),
                        why: e.to_string(),
                    })?;
                r.patterns.push((re, rule.action));
            }
        }
        Ok(r)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.headers.is_empty() && self.patterns.is_empty()
    }

    fn hash(&self, text: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(text.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("redacted:{hex}")
    }

    /// A text with every pattern match replaced; `None` when nothing matched.
    fn text(&self, text: &str, done: &mut Done) -> Option<String> {
        let mut out: Option<String> = None;
        for (n, (re, action)) in self.patterns.iter().enumerate() {
            let current = out.as_deref().unwrap_or(text);
            if !re.is_match(current) {
                continue;
            }
            let replaced = re
                .replace_all(current, |c: &regex::Captures<'_>| match action {
                    RedactAction::Hash => self.hash(&c[0]),
                    RedactAction::Drop => DROPPED.to_string(),
                })
                .into_owned();
            // The rule's number, not its text: a pattern may spell the secret it removes.
            done.note(format!("pattern:{}", n + 1));
            out = Some(replaced);
        }
        out
    }

    /// Redacts a decoded value in place: its field paths, then patterns over every string.
    /// `typed` is true when the bytes are encoded again from it with a schema, which wants a
    /// hashed field to stay a string: a hashed non-string is dropped instead.
    fn json(&self, v: &mut Value, typed: bool, done: &mut Done) {
        self.json_as(v, typed, false, done)
    }

    /// `json`, with every field rule dropping its value when `drop_all` (what a schema always
    /// takes back).
    fn json_as(&self, v: &mut Value, typed: bool, drop_all: bool, done: &mut Done) {
        for (path, name, action) in &self.fields {
            let action = if drop_all {
                RedactAction::Drop
            } else {
                *action
            };
            if walk(v, path, &mut |parent, last| {
                redact_at(parent, last, action, typed, &|s| self.hash(s))
            }) {
                done.note(name.clone());
            }
        }
        if !self.patterns.is_empty() {
            self.strings(v, done);
        }
    }

    fn strings(&self, v: &mut Value, done: &mut Done) {
        // serde_json refuses input nested deeper than 128, so this recursion is bounded.
        match v {
            Value::String(s) => {
                if let Some(t) = self.text(s, done) {
                    *s = t;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.strings(i, done)),
            Value::Object(m) => m.values_mut().for_each(|i| self.strings(i, done)),
            _ => {}
        }
    }

    fn headers(&self, headers: &mut Vec<Header>, done: &mut Done) {
        headers.retain_mut(|h| {
            let lower = h.key.to_ascii_lowercase();
            if lower == REDACTED_HEADER {
                return true;
            }
            if let Some((_, action)) = self.headers.iter().find(|(n, _)| *n == lower) {
                done.note(format!("header:{}", h.key));
                return match action {
                    RedactAction::Drop => false,
                    RedactAction::Hash => {
                        let text = String::from_utf8_lossy(h.value.as_deref().unwrap_or_default())
                            .into_owned();
                        h.value = Some(self.hash(&text).into_bytes());
                        true
                    }
                };
            }
            if let Some(text) = h.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()) {
                if let Some(t) = self.text(text, done) {
                    h.value = Some(t.into_bytes());
                }
            }
            true
        });
    }

    /// A key's bytes and decoded JSON: a JSON or text key is redacted in place; any other
    /// key a rule changed the decoding of is not kept.
    fn key(&self, key: &mut Option<Vec<u8>>, decoded: &mut Option<String>, done: &mut Done) {
        let before = done.what.len();
        if let Some(k) = decoded.as_mut() {
            if let Ok(mut v) = serde_json::from_str::<Value>(k) {
                self.json(&mut v, false, done);
                if done.what.len() > before {
                    *k = v.to_string();
                }
            }
        }
        let Some(bytes) = key.as_ref() else {
            return;
        };
        let changed_decoding = done.what.len() > before;
        let as_json = serde_json::from_slice::<Value>(bytes)
            .ok()
            .filter(|v| v.is_object() || v.is_array());
        if let Some(mut v) = as_json {
            let mut mine = Done::default();
            self.json(&mut v, false, &mut mine);
            if !mine.what.is_empty() {
                *key = Some(v.to_string().into_bytes());
                mine.what.iter().for_each(|w| done.note(format!("key:{w}")));
            }
        } else if let Ok(text) = std::str::from_utf8(bytes) {
            if let Some(t) = self.text(text, done) {
                *key = Some(t.into_bytes());
            } else if changed_decoding {
                *key = None;
                done.note("key bytes not kept");
            }
        } else if changed_decoding {
            *key = None;
            done.note("key bytes not kept");
        }
    }

    /// The string values of a properties object (routing keys, correlation ids, topics).
    fn properties(&self, props: &mut Option<String>, done: &mut Done) {
        let Some(p) = props.as_mut() else {
            return;
        };
        if self.patterns.is_empty() {
            return;
        }
        if let Ok(mut v) = serde_json::from_str::<Value>(p) {
            let before = done.what.len();
            self.strings(&mut v, done);
            if done.what.len() > before {
                *p = v.to_string();
            }
        }
    }

    /// Redacts a message about to be stored, and what it decoded to, in place. `decoder` is
    /// the source's, used to encode the payload bytes again; `truncated` says the payload
    /// was cut at the size cap.
    pub fn message(
        &self,
        msg: &mut Message,
        decoded: &mut Decoded,
        key_decoded: &mut Option<String>,
        decoder: &Decoder,
        truncated: bool,
    ) {
        let mut done = Done::default();
        self.headers(&mut msg.headers, &mut done);
        self.key(&mut msg.key, key_decoded, &mut done);
        self.properties(&mut msg.properties, &mut done);
        let header = |name: &str| {
            msg.headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value.clone())
        };
        let schema_header = header(crate::VALUE_SCHEMA_HEADER);
        let payload = redact_payload(
            self,
            &msg.payload,
            decoded,
            &mut done,
            |original, json| {
                decoder
                    .encode(original, schema_header.as_deref(), json)
                    .ok()
            },
            truncated,
        );
        if let Some(p) = payload {
            msg.payload = p;
        }
        mark(&mut msg.headers, &done);
    }

    /// Masks an event for showing (view-time rules): the stored event is untouched.
    pub fn event(&self, e: &mut Event) {
        let mut done = Done::default();
        self.headers(&mut e.headers, &mut done);
        self.key(&mut e.key, &mut e.key_decoded, &mut done);
        self.properties(&mut e.properties, &mut done);
        let mut decoded = Decoded {
            encoding: Some(e.encoding),
            schema: e.schema.clone(),
            json: e.decoded.take(),
            text: e.payload_text.take(),
            error: None,
        };
        // Shown bytes are never encoded again: masked, they are not shown at all.
        let truncated = e.truncated;
        if let Some(p) = redact_payload(
            self,
            &e.payload,
            &mut decoded,
            &mut done,
            |_, _| None,
            truncated,
        ) {
            e.payload = p;
        }
        e.decoded = decoded.json;
        e.payload_text = decoded.text;
        mark(&mut e.headers, &done);
    }
}

/// Text that may hold JSON fields: a JSON document cut short or too deep to parse.
fn looks_structured(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// The payload bytes to store (or show) after redacting `decoded`; `None` when they stay.
fn redact_payload(
    r: &Redactor,
    original: &[u8],
    decoded: &mut Decoded,
    done: &mut Done,
    encode: impl Fn(&[u8], &str) -> Option<Vec<u8>>,
    truncated: bool,
) -> Option<Vec<u8>> {
    let not_kept = |done: &mut Done, why: &str| {
        done.note(format!("payload bytes not kept ({why})"));
        Some(Vec::new())
    };
    let fields = !r.fields.is_empty();
    // A field-number tree: no field path can name what is in it, nor can it be encoded back.
    if fields && decoded.encoding == Some(Encoding::ProtobufRaw) {
        decoded.json = None;
        decoded.text = None;
        return not_kept(
            done,
            "schemaless protobuf, its fields could not be redacted",
        );
    }
    if let Some(json) = decoded.json.take() {
        let typed = matches!(
            decoded.encoding,
            Some(Encoding::Protobuf) | Some(Encoding::Avro)
        ) && decoded.schema.is_some();
        let Ok(mut v) = serde_json::from_str::<Value>(&json) else {
            decoded.json = Some(json);
            return None;
        };
        let before = done.what.len();
        r.json(&mut v, typed, done);
        if done.what.len() == before {
            decoded.json = Some(json);
            return None;
        }
        let mut text = v.to_string();
        let bytes = match decoded.encoding {
            Some(Encoding::Json) => Some(text.clone().into_bytes()),
            _ if typed => encode(original, &text).or_else(|| {
                // The type refused a hashed value (an int64 or enum field is text in JSON):
                // the fields are dropped instead, which every schema takes.
                let mut dropped: Value = serde_json::from_str(&json).ok()?;
                r.json_as(&mut dropped, typed, true, &mut Done::default());
                let t = dropped.to_string();
                let b = encode(original, &t)?;
                text = t;
                Some(b)
            }),
            _ => None,
        };
        decoded.json = Some(text);
        // What else was shown of the payload (the base64 text of an encoded layer) goes too.
        if decoded.encoding != Some(Encoding::Json) {
            decoded.text = None;
        }
        return bytes.or_else(|| not_kept(done, "it could not be encoded again"));
    }
    if let Some(text) = decoded.text.clone() {
        if fields && (truncated || looks_structured(&text)) {
            decoded.text = None;
            return not_kept(done, "its fields could not be redacted");
        }
        let t = r.text(&text, done)?;
        let bytes =
            matches!(decoded.encoding, Some(Encoding::Text)).then(|| t.clone().into_bytes());
        decoded.text = Some(t);
        return bytes.or_else(|| not_kept(done, "it could not be written again"));
    }
    // Bytes that decoded to nothing a rule can look into: fields may be inside, so with
    // field rules they are not kept; patterns still apply to them as bytes.
    if original.is_empty() {
        return None;
    }
    if fields {
        return not_kept(done, "not decoded, so its fields could not be redacted");
    }
    let mut out: Option<Vec<u8>> = None;
    for (n, (re, action)) in r.patterns.iter().enumerate() {
        let Ok(bytes_re) = regex::bytes::Regex::new(re.as_str()) else {
            continue;
        };
        let current = out.as_deref().unwrap_or(original);
        if !bytes_re.is_match(current) {
            continue;
        }
        let replaced = bytes_re
            .replace_all(current, |c: &regex::bytes::Captures<'_>| match action {
                RedactAction::Hash => r.hash(&String::from_utf8_lossy(&c[0])).into_bytes(),
                RedactAction::Drop => DROPPED.as_bytes().to_vec(),
            })
            .into_owned();
        done.note(format!("pattern:{}", n + 1));
        out = Some(replaced);
    }
    out
}

/// Walks `path` in `v`, calling `at(parent, last)` for every place it reaches; true when it
/// changed something.
fn walk(v: &mut Value, path: &[Segment], at: &mut dyn FnMut(&mut Value, &Segment) -> bool) -> bool {
    let Some((last, init)) = path.split_last() else {
        return false;
    };
    let mut changed = false;
    let mut parents: Vec<&mut Value> = vec![v];
    for seg in init {
        let mut next = Vec::new();
        for p in parents {
            match (seg, p) {
                (Segment::Key(k), Value::Object(m)) => next.extend(m.get_mut(k)),
                (Segment::Index(i), Value::Array(a)) => next.extend(a.get_mut(*i)),
                (Segment::Every, Value::Array(a)) => next.extend(a.iter_mut()),
                _ => {}
            }
        }
        parents = next;
    }
    for p in parents {
        changed |= at(p, last);
    }
    changed
}

/// Redacts `parent`'s child `last` (one key, one index, or every item).
fn redact_at(
    parent: &mut Value,
    last: &Segment,
    action: RedactAction,
    typed: bool,
    hash: &dyn Fn(&str) -> String,
) -> bool {
    let hashed = |v: &Value| -> Option<Value> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other if typed => {
                // A schema keeps its field's type: a number cannot hold a hash.
                let _ = other;
                return None;
            }
            other => other.to_string(),
        };
        Some(Value::String(hash(&text)))
    };
    match (last, parent) {
        (Segment::Key(k), Value::Object(m)) => {
            let Some(v) = m.get(k) else {
                return false;
            };
            match (action, hashed(v)) {
                (RedactAction::Hash, Some(h)) => {
                    m.insert(k.clone(), h);
                }
                _ => {
                    m.remove(k);
                }
            }
            true
        }
        (Segment::Index(i), Value::Array(a)) => match a.get_mut(*i) {
            Some(item) => {
                *item = match (action, hashed(item)) {
                    (RedactAction::Hash, Some(h)) => h,
                    _ => Value::Null,
                };
                true
            }
            None => false,
        },
        (Segment::Every, Value::Array(a)) => {
            if a.is_empty() {
                return false;
            }
            if action == RedactAction::Drop || typed {
                a.clear();
            } else {
                for item in a.iter_mut() {
                    if let Some(h) = hashed(item) {
                        *item = h;
                    }
                }
            }
            true
        }
        _ => false,
    }
}

/// Adds (or extends) the `sluice-redacted` header when something was done.
fn mark(headers: &mut Vec<Header>, done: &Done) {
    if done.what.is_empty() {
        return;
    }
    let list = done.what.join(",");
    match headers.iter_mut().find(|h| h.key == REDACTED_HEADER) {
        Some(h) => {
            let mut v = h.value.take().unwrap_or_default();
            if !v.is_empty() {
                v.push(b',');
            }
            v.extend_from_slice(list.as_bytes());
            h.value = Some(v);
        }
        None => headers.push(Header {
            key: REDACTED_HEADER.into(),
            value: Some(list.into_bytes()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        fields: &[&str],
        headers: &[&str],
        patterns: &[&str],
        action: RedactAction,
    ) -> RedactRule {
        RedactRule {
            connection: "c".into(),
            source: None,
            fields: fields.iter().map(|s| s.to_string()).collect(),
            headers: headers.iter().map(|s| s.to_string()).collect(),
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            action,
            at: RedactAt::Capture,
        }
    }

    fn message(payload: &[u8], headers: Vec<Header>) -> Message {
        crate::event::test_message(headers, payload)
    }

    /// The `sluice-redacted` header's text.
    fn marker(msg: &Message) -> String {
        let h = msg
            .headers
            .iter()
            .find(|h| h.key == REDACTED_HEADER)
            .unwrap();
        String::from_utf8_lossy(h.value.as_ref().unwrap()).into_owned()
    }

    fn json_message(payload: &str) -> (Message, Decoded) {
        let msg = message(
            payload.as_bytes(),
            vec![
                Header {
                    key: "Authorization".into(),
                    value: Some(b"Bearer abc.def".to_vec()),
                },
                Header {
                    key: "trace".into(),
                    value: Some(b"call 555-0100 now".to_vec()),
                },
            ],
        );
        let decoded = Decoded {
            encoding: Some(Encoding::Json),
            json: Some(payload.to_string()),
            ..Decoded::default()
        };
        (msg, decoded)
    }

    #[test]
    fn paths_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_path("items[*].card[0]").unwrap(),
            vec![
                Segment::Key("items".into()),
                Segment::Every,
                Segment::Key("card".into()),
                Segment::Index(0)
            ]
        );
        for bad in ["", "a..b", "a[", "a[x]", "a[1]b"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(rule(&[], &[], &["("], RedactAction::Hash).check().is_err());
        assert!(matches!(
            rule(&[], &[], &[], RedactAction::Hash).check(),
            Err(RuleError::Empty)
        ));
    }

    #[test]
    fn a_json_payload_loses_the_values_in_every_form_it_is_kept() {
        let r = Redactor::new(
            &[
                rule(
                    &["customer.email", "cards[*]"],
                    &["authorization"],
                    &[],
                    RedactAction::Hash,
                ),
                rule(&["note"], &[], &[r"\d{3}-\d{4}"], RedactAction::Drop),
            ],
            b"k",
        )
        .unwrap();
        let (mut msg, mut d) = json_message(
            r#"{"customer":{"email":"ada@example.com","id":7},"cards":["4111","5500"],"note":"x","n":"ring 555-0100"}"#,
        );
        r.message(&mut msg, &mut d, &mut None, &Decoder::sniffing(), false);
        let json = d.json.unwrap();
        let payload = String::from_utf8(msg.payload.clone()).unwrap();
        assert_eq!(json, payload, "bytes and decoded JSON agree");
        for secret in ["ada@example.com", "4111", "5500", "555-0100", "Bearer"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["customer"]["id"], 7);
        assert!(v["customer"]["email"]
            .as_str()
            .unwrap()
            .starts_with("redacted:"));
        assert!(v.get("note").is_none());
        assert_eq!(v["n"], "ring [redacted]");
        let auth = &msg.headers[0];
        assert!(String::from_utf8_lossy(auth.value.as_ref().unwrap()).starts_with("redacted:"));
        assert_eq!(
            msg.headers[1].value.as_deref(),
            Some(&b"call [redacted] now"[..])
        );
        let marker = marker(&msg);
        assert!(
            marker.contains("customer.email") && marker.contains("header:Authorization"),
            "{marker}"
        );
    }

    #[test]
    fn equal_values_hash_alike_and_the_key_matters() {
        let a = Redactor::new(&[rule(&["e"], &[], &[], RedactAction::Hash)], b"one").unwrap();
        let b = Redactor::new(&[rule(&["e"], &[], &[], RedactAction::Hash)], b"two").unwrap();
        assert_eq!(a.hash("x@y"), a.hash("x@y"));
        assert_ne!(a.hash("x@y"), a.hash("x@z"));
        assert_ne!(a.hash("x@y"), b.hash("x@y"));
    }

    #[test]
    fn bytes_that_did_not_decode_are_not_kept_when_fields_are_to_be_redacted() {
        let r = Redactor::new(&[rule(&["secret"], &[], &[], RedactAction::Drop)], b"k").unwrap();
        let mut msg = message(&[0xff, 0x00, 0x13], vec![]);
        let mut d = Decoded {
            encoding: Some(Encoding::Binary),
            ..Decoded::default()
        };
        r.message(&mut msg, &mut d, &mut None, &Decoder::sniffing(), false);
        assert!(msg.payload.is_empty());
        assert!(msg.headers.iter().any(|h| h.key == REDACTED_HEADER));
        // Untouched when no rule finds anything.
        let mut quiet = message(br#"{"other":1}"#, vec![]);
        let mut d = Decoded {
            encoding: Some(Encoding::Json),
            json: Some(r#"{"other":1}"#.into()),
            ..Decoded::default()
        };
        r.message(&mut quiet, &mut d, &mut None, &Decoder::sniffing(), false);
        assert_eq!(quiet.payload, br#"{"other":1}"#);
        assert!(quiet.headers.is_empty());
    }

    #[test]
    fn keys_properties_and_every_other_form_of_the_payload_lose_the_values_too() {
        let r = Redactor::new(
            &[rule(
                &["email"],
                &[],
                &[r"ada@example\.com"],
                RedactAction::Hash,
            )],
            b"k",
        )
        .unwrap();
        // A JSON key, a text key and the properties object.
        let mut msg = message(br#"{"n":1}"#, vec![]);
        msg.key = Some(br#"{"email":"eve@example.com"}"#.to_vec());
        msg.properties = Some(r#"{"reply_to":"ada@example.com"}"#.into());
        let mut d = Decoded {
            encoding: Some(Encoding::Json),
            json: Some(r#"{"n":1}"#.into()),
            ..Decoded::default()
        };
        let mut key_decoded = Some(r#"{"email":"eve@example.com"}"#.to_string());
        r.message(
            &mut msg,
            &mut d,
            &mut key_decoded,
            &Decoder::sniffing(),
            false,
        );
        let key = String::from_utf8(msg.key.clone().unwrap()).unwrap();
        assert!(!key.contains("eve@") && key.contains("redacted:"), "{key}");
        assert!(!key_decoded.unwrap().contains("eve@"));
        assert!(!msg.properties.as_ref().unwrap().contains("ada@"));
        let marker = marker(&msg);
        assert!(
            marker.contains("pattern:1") && !marker.contains("example"),
            "{marker}"
        );

        // JSON cut at the size cap sniffs as text: with field rules it is not kept.
        let mut cut = message(br#"{"email":"bob@example.org","pad":"#, vec![]);
        let mut d = Decoded {
            encoding: Some(Encoding::Text),
            text: Some(r#"{"email":"bob@example.org","pad":"#.into()),
            ..Decoded::default()
        };
        r.message(&mut cut, &mut d, &mut None, &Decoder::sniffing(), true);
        assert!(cut.payload.is_empty() && d.text.is_none());

        // A base64 layer: the JSON is redacted, and the base64 text shown beside it goes.
        let mut b64 = message(b"eyJlbWFpbCI6ImJvYkBleGFtcGxlLm9yZyJ9", vec![]);
        let mut d = Decoded {
            encoding: Some(Encoding::Base64),
            json: Some(r#"{"email":"bob@example.org"}"#.into()),
            text: Some("eyJlbWFpbCI6ImJvYkBleGFtcGxlLm9yZyJ9".into()),
            ..Decoded::default()
        };
        r.message(&mut b64, &mut d, &mut None, &Decoder::sniffing(), false);
        assert!(b64.payload.is_empty() && d.text.is_none());
        assert!(!d.json.unwrap().contains("bob@"));

        // A schemaless protobuf tree: field names cannot reach into it, so it is not kept.
        let mut raw = message(&[0x0a, 0x03, b'b', b'o', b'b'], vec![]);
        let mut d = Decoded {
            encoding: Some(Encoding::ProtobufRaw),
            json: Some(r##"{"#1":"bob"}"##.into()),
            ..Decoded::default()
        };
        r.message(&mut raw, &mut d, &mut None, &Decoder::sniffing(), false);
        assert!(raw.payload.is_empty() && d.json.is_none());
    }

    #[test]
    fn a_typed_field_the_schema_cannot_hold_a_hash_in_is_dropped_not_the_payload() {
        let set = sluice_codec::SchemaSet::from_proto_source(
            "p.proto",
            r#"syntax = "proto3"; message P { string id = 1; int64 n = 2; string email = 3; }"#,
        )
        .unwrap();
        let decoder = Decoder::typed(set.type_codec("P").unwrap());
        let original = decoder
            .encode(&[], None, r#"{"id":"a","n":"42","email":"x@y"}"#)
            .unwrap();
        let mut msg = message(&original, vec![]);
        let mut d = decoder.decode(&original, true);
        let r =
            Redactor::new(&[rule(&["n", "email"], &[], &[], RedactAction::Hash)], b"k").unwrap();
        r.message(&mut msg, &mut d, &mut None, &decoder, false);
        assert!(!msg.payload.is_empty(), "the bytes are kept");
        let back = decoder.decode(&msg.payload, true).json.unwrap();
        assert!(!back.contains("42") && !back.contains("x@y"), "{back}");
        assert!(back.contains(r#""id":"a""#), "{back}");
    }
}
