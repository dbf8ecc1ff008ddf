//! A parser for the NATS configuration syntax.
//!
//! Supported: `key: value`, `key = value` and `key value`; `{ … }` maps (also without a
//! separator: `key { … }`); `[ … ]` arrays; `#` and `//` comments; `;` and `,` terminators;
//! double-quoted strings with `\t \n \r \" \\ \xHH` escapes, single-quoted raw strings and
//! unquoted strings; booleans `true/false/yes/no/on/off`; integers with size suffixes (`1K` is
//! 1000, `1KB` is 1024, up to `E`/`EB`); floats; `$name` variables (looked up in the enclosing
//! maps, then in the environment); `include "file"` (relative to the including file).
//! Keys are matched case-insensitively by [`Map::get`].

use std::path::{Path, PathBuf};

use super::ConfError;
use crate::settings::units::size_multiplier;

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `true`, `yes`, `on`, `false`, `no`, `off` (any case).
    Bool(bool),
    /// An integer, size suffix applied. `raw` keeps the text as written (`1m`, `10`).
    Int {
        /// The value.
        value: i64,
        /// The text as written.
        raw: String,
    },
    /// A floating-point number.
    Float(f64),
    /// A quoted or unquoted string.
    Str(String),
    /// `[ … ]`.
    Array(Vec<Item>),
    /// `{ … }`.
    Map(Map),
}

impl Value {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Int { .. } => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }
}

/// A value and the line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The value.
    pub value: Value,
    /// 1-based line number.
    pub line: usize,
}

/// A map: keys in file order; a repeated key replaces the earlier value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    /// Keys as written, with their values.
    pub entries: Vec<(String, Item)>,
}

impl Map {
    /// The value of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    fn insert(&mut self, key: String, item: Item) {
        self.entries.retain(|(k, _)| k != &key);
        self.entries.push((key, item));
    }
}

/// Reads and parses a configuration file.
pub fn parse_file(path: &Path) -> Result<Map, ConfError> {
    parse_file_nested(path, 0)
}

fn parse_file_nested(path: &Path, depth: usize) -> Result<Map, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    Parser::new(&text, path, depth).parse_document()
}

/// Parses configuration text; `file` is used in error messages and to resolve includes.
///
/// ```
/// use stan_broker::conf::parser::{parse_str, Value};
/// let map = parse_str("port: 4222\nstreaming { id = \"c1\" }", "x.conf".as_ref()).unwrap();
/// assert!(matches!(map.get("PORT").unwrap().value, Value::Int { value: 4222, .. }));
/// ```
pub fn parse_str(text: &str, file: &Path) -> Result<Map, ConfError> {
    Parser::new(text, file, 0).parse_document()
}

const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep maps and arrays may nest (the parser recurses once a level).
const MAX_NESTING: usize = 100;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    file: &'a Path,
    depth: usize,
    /// Maps and arrays open around the current value.
    nesting: usize,
    /// Maps being built, outermost first (for `$variable` lookups).
    scopes: Vec<Map>,
}

impl<'a> Parser<'a> {
    fn new(text: &str, file: &'a Path, depth: usize) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            file,
            depth,
            nesting: 0,
            scopes: Vec::new(),
        }
    }

    fn err<T>(&self, line: usize, message: impl Into<String>) -> Result<T, ConfError> {
        Err(ConfError::at(self.file, line, message))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || (self.peek() == Some('/') && self.peek_at(1) == Some('/'))
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Skips spaces, tabs and comments, not newlines.
    fn skip_inline(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    /// Skips whitespace (including newlines), comments and the given separators.
    fn skip_blank(&mut self, separators: &[char]) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || separators.contains(&c) => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn parse_document(mut self) -> Result<Map, ConfError> {
        self.scopes.push(Map::default());
        self.skip_blank(&[]);
        if self.peek() == Some('{') {
            // A JSON-style file: the whole document is one map.
            let line = self.line;
            self.bump();
            self.parse_entries(Some(('}', line)))?;
            self.skip_blank(&[';', ',']);
            if let Some(c) = self.peek() {
                return self.err(
                    self.line,
                    format!("unexpected '{c}' after the closing '}}'"),
                );
            }
            return Ok(self.scopes.pop().unwrap_or_default());
        }
        self.parse_entries(None)?;
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// Parses `key value` entries into the innermost scope until `end` (or end of input).
    fn parse_entries(&mut self, end: Option<(char, usize)>) -> Result<(), ConfError> {
        loop {
            self.skip_blank(&[';', ',']);
            match (self.peek(), end) {
                (None, None) => return Ok(()),
                (None, Some((_, open_line))) => {
                    return self.err(
                        self.line,
                        format!(
                        "unexpected end of file: the map opened on line {open_line} is not closed"
                    ),
                    )
                }
                (Some(c), Some((close, _))) if c == close => {
                    self.bump();
                    return Ok(());
                }
                (Some(c @ ('}' | ']')), _) => {
                    return self.err(self.line, format!("unexpected '{c}'"));
                }
                _ => {}
            }
            self.parse_entry(end.map(|(c, _)| c))?;
        }
    }

    fn parse_entry(&mut self, end: Option<char>) -> Result<(), ConfError> {
        let key_line = self.line;
        let key = self.parse_key()?;
        self.skip_inline();
        if key == "include" && !matches!(self.peek(), Some('=' | ':' | '{' | '[') | None) {
            return self.parse_include(key_line, end);
        }
        match self.peek() {
            Some('=' | ':') => {
                self.bump();
                self.skip_inline();
            }
            Some('\n') | None => {
                return self.err(key_line, format!("key {key:?} has no value"));
            }
            _ => {}
        }
        let item = self.parse_value()?;
        self.end_of_value(end)?;
        self.scopes
            .last_mut()
            .expect("a scope is always open while parsing entries")
            .insert(key, item);
        Ok(())
    }

    /// After a value: only blanks, a comment, a terminator, a newline or the closing bracket.
    fn end_of_value(&mut self, end: Option<char>) -> Result<(), ConfError> {
        self.skip_inline();
        match self.peek() {
            None | Some('\n' | ';' | ',') => Ok(()),
            Some(c) if Some(c) == end => Ok(()),
            Some(c) => self.err(
                self.line,
                format!("expected a new line, ';' or ',' after a value, found '{c}'"),
            ),
        }
    }

    fn parse_key(&mut self) -> Result<String, ConfError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let line = self.line;
                let key = self.parse_quoted(q, line)?;
                if key.is_empty() {
                    return self.err(line, "empty key");
                }
                Ok(key)
            }
            Some('=' | ':') => self.err(self.line, "expected a key before the separator"),
            _ => {
                let mut key = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace()
                        || matches!(c, '=' | ':' | '{' | '[' | '}' | ']' | ',' | ';' | '#')
                    {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                if key.is_empty() {
                    let found = self
                        .peek()
                        .map_or("end of file".into(), |c| format!("'{c}'"));
                    return self.err(self.line, format!("expected a key, found {found}"));
                }
                Ok(key)
            }
        }
    }

    fn parse_include(&mut self, line: usize, end: Option<char>) -> Result<(), ConfError> {
        let target = match self.peek() {
            Some(q @ ('"' | '\'')) => self.parse_quoted(q, line)?,
            _ => self.parse_bare_token(),
        };
        self.end_of_value(end)?;
        if self.depth >= MAX_INCLUDE_DEPTH {
            return self.err(line, "includes are nested too deeply");
        }
        let path = self
            .file
            .parent()
            .map_or_else(|| PathBuf::from(&target), |dir| dir.join(&target));
        let included =
            parse_file_nested(&path, self.depth + 1).map_err(|e| ConfError::Include {
                file: self.file.to_path_buf(),
                line,
                source: Box::new(e),
            })?;
        let scope = self
            .scopes
            .last_mut()
            .expect("a scope is always open while parsing entries");
        for (k, v) in included.entries {
            scope.insert(k, v);
        }
        Ok(())
    }

    fn parse_value(&mut self) -> Result<Item, ConfError> {
        let line = self.line;
        let value = match self.peek() {
            None => return self.err(line, "expected a value, found end of file"),
            Some('\n') => return self.err(line, "expected a value, found a new line"),
            Some('{' | '[') if self.nesting >= MAX_NESTING => {
                return self.err(
                    line,
                    format!("maps and arrays are nested more than {MAX_NESTING} deep"),
                );
            }
            Some('{') => {
                self.bump();
                self.scopes.push(Map::default());
                self.nesting += 1;
                let result = self.parse_entries(Some(('}', line)));
                self.nesting -= 1;
                let map = self.scopes.pop().unwrap_or_default();
                result?;
                Value::Map(map)
            }
            Some('[') => {
                self.bump();
                self.nesting += 1;
                let result = self.parse_array(line);
                self.nesting -= 1;
                Value::Array(result?)
            }
            Some(q @ ('"' | '\'')) => Value::Str(self.parse_quoted(q, line)?),
            Some(c @ ('}' | ']' | ',' | ';' | '=' | ':')) => {
                return self.err(line, format!("expected a value, found '{c}'"));
            }
            Some(_) => {
                let token = self.parse_bare_token();
                self.classify(&token, line)?
            }
        };
        Ok(Item { value, line })
    }

    fn parse_array(&mut self, open_line: usize) -> Result<Vec<Item>, ConfError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank(&[]);
            match self.peek() {
                None => {
                    return self.err(
                        self.line,
                        format!("unexpected end of file: the array opened on line {open_line} is not closed"),
                    )
                }
                Some(']') => {
                    self.bump();
                    return Ok(items);
                }
                Some(',') => return self.err(self.line, "unexpected ',' in array"),
                _ => {}
            }
            items.push(self.parse_value()?);
            self.skip_inline();
            match self.peek() {
                Some(',' | '\n') => {
                    self.bump();
                }
                Some(']') | None => {}
                Some(c) => {
                    return self.err(
                        self.line,
                        format!("expected ',' or ']' in array, found '{c}'"),
                    );
                }
            }
        }
    }

    /// An unquoted token: up to whitespace or a structural character.
    fn parse_bare_token(&mut self) -> String {
        let mut token = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | ';' | '}' | ']') {
                break;
            }
            token.push(c);
            self.bump();
        }
        token
    }

    fn classify(&self, token: &str, line: usize) -> Result<Value, ConfError> {
        match token.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => return Ok(Value::Bool(true)),
            "false" | "no" | "off" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if let Some(name) = token.strip_prefix('$') {
            return self.lookup_variable(name, line);
        }
        let unsigned = token.strip_prefix('-').unwrap_or(token);
        if unsigned.starts_with(|c: char| c.is_ascii_digit()) {
            let digits_end = unsigned
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(unsigned.len());
            let suffix = &unsigned[digits_end..];
            let number = &token[..token.len() - suffix.len()];
            if let Some(mult) = size_multiplier(suffix) {
                let value = number.parse::<i64>().ok().and_then(|n| n.checked_mul(mult));
                return match value {
                    Some(value) => Ok(Value::Int {
                        value,
                        raw: token.to_string(),
                    }),
                    None => self.err(line, format!("integer {token:?} is out of range")),
                };
            }
            if let Some(frac) = suffix.strip_prefix('.') {
                if !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()) {
                    if let Ok(f) = token.parse::<f64>() {
                        return Ok(Value::Float(f));
                    }
                }
            }
        } else if token.starts_with('.') {
            return self.err(
                line,
                format!("invalid value {token:?}: numbers must start with a digit"),
            );
        }
        Ok(Value::Str(token.to_string()))
    }

    fn lookup_variable(&self, name: &str, line: usize) -> Result<Value, ConfError> {
        for scope in self.scopes.iter().rev() {
            if let Some((_, item)) = scope.entries.iter().rev().find(|(k, _)| k == name) {
                return Ok(item.value.clone());
            }
        }
        match std::env::var(name) {
            Ok(v) => self.classify(&v, line).or(Ok(Value::Str(v))),
            Err(_) => self.err(line, format!("variable reference ${name} cannot be found")),
        }
    }

    /// A string opened by the quote `q` (at the current position; consumed here), which
    /// starts on `line`.
    fn parse_quoted(&mut self, q: char, line: usize) -> Result<String, ConfError> {
        self.bump();
        if q == '"' {
            self.parse_dq_string(line)
        } else {
            self.parse_sq_string(line)
        }
    }

    fn parse_sq_string(&mut self, line: usize) -> Result<String, ConfError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return self.err(line, "unterminated string"),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn parse_dq_string(&mut self, line: usize) -> Result<String, ConfError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return self.err(line, "unterminated string"),
                Some('"') => return Ok(s),
                Some('\\') => {
                    let esc_line = self.line;
                    match self.bump() {
                        Some('t') => s.push('\t'),
                        Some('n') => s.push('\n'),
                        Some('r') => s.push('\r'),
                        Some('"') => s.push('"'),
                        Some('\\') => s.push('\\'),
                        Some('x') => {
                            let hex: String = (0..2).filter_map(|_| self.bump()).collect();
                            match u8::from_str_radix(&hex, 16) {
                                Ok(b) => s.push(char::from(b)),
                                Err(_) => {
                                    return self.err(esc_line, format!("invalid escape \\x{hex}"));
                                }
                            }
                        }
                        Some(c) => {
                            return self.err(
                                esc_line,
                                format!("invalid escape character '{c}' (allowed: \\xXX \\t \\n \\r \\\" \\\\)"),
                            );
                        }
                        None => return self.err(line, "unterminated string"),
                    }
                }
                Some(c) => s.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Map {
        parse_str(text, Path::new("test.conf")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(text: &str) -> ConfError {
        parse_str(text, Path::new("test.conf")).expect_err("expected a parse error")
    }

    fn int(map: &Map, key: &str) -> i64 {
        match map.get(key).map(|i| &i.value) {
            Some(Value::Int { value, .. }) => *value,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn string(map: &Map, key: &str) -> String {
        match map.get(key).map(|i| &i.value) {
            Some(Value::Str(s)) => s.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    fn sub<'m>(map: &'m Map, key: &str) -> &'m Map {
        match map.get(key).map(|i| &i.value) {
            Some(Value::Map(m)) => m,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn separators() {
        let m = parse("a: 1\nb = 2\nc 3\nd:4; e=5, f 6\n");
        for (k, v) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)] {
            assert_eq!(int(&m, k), v);
        }
    }

    #[test]
    fn comments() {
        let m = parse("# top\n// also\nport: 4222 # trailing\nhost: h // trailing\n  # indented\n");
        assert_eq!(int(&m, "port"), 4222);
        assert_eq!(string(&m, "host"), "h");
        assert_eq!(m.entries.len(), 2);
    }

    #[test]
    fn strings() {
        let m = parse(
            "a: \"x y\\t\\\"z\\\"\\x41\"\nb: 'raw \\n'\nc: nats://u:p@127.0.0.1:4222\nd: 127.0.0.1:4222\ne: 1h30m\nf: 10s\n",
        );
        assert_eq!(string(&m, "a"), "x y\t\"z\"A");
        assert_eq!(string(&m, "b"), "raw \\n");
        assert_eq!(string(&m, "c"), "nats://u:p@127.0.0.1:4222");
        assert_eq!(string(&m, "d"), "127.0.0.1:4222");
        assert_eq!(string(&m, "e"), "1h30m");
        assert_eq!(string(&m, "f"), "10s");
    }

    #[test]
    fn numbers_and_sizes() {
        let m = parse("a: 1KB\nb: 1k\nc: 2MB\nd: 1GB\ne: 1g\nf: -5\ng: 1.5\nh: 1m\ni: 3gib\n");
        assert_eq!(int(&m, "a"), 1024);
        assert_eq!(int(&m, "b"), 1000);
        assert_eq!(int(&m, "c"), 2 << 20);
        assert_eq!(int(&m, "d"), 1 << 30);
        assert_eq!(int(&m, "e"), 1_000_000_000);
        assert_eq!(int(&m, "f"), -5);
        assert_eq!(m.get("g").unwrap().value, Value::Float(1.5));
        assert_eq!(
            m.get("h").unwrap().value,
            Value::Int {
                value: 1_000_000,
                raw: "1m".into()
            }
        );
        assert_eq!(int(&m, "i"), 3 << 30);
    }

    #[test]
    fn booleans() {
        let m = parse("a: true\nb: FALSE\nc: yes\nd: off\ne: On\n");
        let b = |k| m.get(k).unwrap().value.clone();
        assert_eq!(b("a"), Value::Bool(true));
        assert_eq!(b("b"), Value::Bool(false));
        assert_eq!(b("c"), Value::Bool(true));
        assert_eq!(b("d"), Value::Bool(false));
        assert_eq!(b("e"), Value::Bool(true));
    }

    #[test]
    fn blocks_and_arrays() {
        let m = parse(
            "streaming {\n  id: c1\n  store_limits: {\n    channels {\n      \"foo.*\": { mm: 10 }\n      'bar' { max_msgs = 0 }\n    }\n  }\n}\nroutes = [\n  nats://a:1\n  \"nats://b:2\", nats://c:3 # c\n]\nempty {}\nlist: []\n",
        );
        let s = sub(&m, "streaming");
        assert_eq!(string(s, "id"), "c1");
        let ch = sub(sub(s, "store_limits"), "channels");
        assert_eq!(int(sub(ch, "foo.*"), "mm"), 10);
        assert_eq!(int(sub(ch, "bar"), "max_msgs"), 0);
        match &m.get("routes").unwrap().value {
            Value::Array(items) => {
                let v: Vec<_> = items.iter().map(|i| i.value.clone()).collect();
                assert_eq!(
                    v,
                    [
                        Value::Str("nats://a:1".into()),
                        Value::Str("nats://b:2".into()),
                        Value::Str("nats://c:3".into())
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sub(&m, "empty").entries.len(), 0);
        assert_eq!(m.get("list").unwrap().value, Value::Array(vec![]));
    }

    #[test]
    fn inline_map_and_line_numbers() {
        let m = parse("\n\nauthorization { user: a, password: \"b\" }\nport: 1\n");
        let auth = m.get("authorization").unwrap();
        assert_eq!(auth.line, 3);
        assert_eq!(m.get("port").unwrap().line, 4);
        let Value::Map(a) = &auth.value else { panic!() };
        assert_eq!(string(a, "user"), "a");
        assert_eq!(string(a, "password"), "b");
    }

    #[test]
    fn json_style_document() {
        let m = parse("// json\n{\n  \"port\": 4222,\n  \"streaming\": {\"id\": \"j\"}\n}\n");
        assert_eq!(int(&m, "port"), 4222);
        assert_eq!(string(sub(&m, "streaming"), "id"), "j");
        let e = parse_err("{ a: 1 }\nb: 2\n");
        assert_eq!(e.line(), 2);
    }

    #[test]
    fn keys_are_case_insensitive_and_last_wins() {
        let m = parse("Port: 1\nport: 2\n");
        assert_eq!(int(&m, "PORT"), 2);
    }

    #[test]
    fn variables() {
        let m = parse("limit: 42\nstreaming { mm: $limit }\n");
        assert_eq!(int(sub(&m, "streaming"), "mm"), 42);
        let e = parse_err("a: $nope_not_defined_anywhere_x\n");
        assert_eq!(e.line(), 1);
        assert!(e.problem().contains("$nope_not_defined_anywhere_x"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_err("port: 1\nstreaming {\n  id: x\n");
        assert!(e.problem().contains("line 2"), "{e}");
        assert_eq!(e.to_string().split(':').next(), Some("test.conf"));

        let e = parse_err("a: 1\nb: \"open\n\n");
        assert_eq!(e.line(), 2);
        assert!(e.problem().contains("unterminated"), "{e}");

        let e = parse_err("a: 1\n\nkey_without_value\n");
        assert_eq!(e.line(), 3);
        assert!(e.problem().contains("no value"), "{e}");

        let e = parse_err("a: 1\nb: [1, 2\n");
        assert!(e.problem().contains("array opened on line 2"), "{e}");

        let e = parse_err("x: 1\n}\n");
        assert_eq!(e.line(), 2);

        let e = parse_err("x: \"a\\q\"\n");
        assert!(e.problem().contains("escape"), "{e}");

        let e = parse_err("a {\n b: 1 2\n}\n");
        assert_eq!(e.line(), 2);

        let e = parse_err("x: .5\n");
        assert!(e.problem().contains("digit"), "{e}");

        let e = parse_err("x: 99999999999999999999\n");
        assert!(e.problem().contains("out of range"), "{e}");
    }

    #[test]
    fn include_files() {
        let dir = std::env::temp_dir().join(format!("stan-conf-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("inc.conf"), "mm: 7\n").unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "streaming {\n  include \"inc.conf\"\n  id: z\n}\n",
        )
        .unwrap();
        let m = parse_file(&dir.join("main.conf")).unwrap();
        assert_eq!(int(sub(&m, "streaming"), "mm"), 7);
        std::fs::write(dir.join("bad.conf"), "x: 1\ninclude missing.conf\n").unwrap();
        let e = parse_file(&dir.join("bad.conf")).unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(e.to_string().contains("missing.conf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[char] = &[
            '{', '}', '[', ']', '"', '\'', '\\', ':', '=', ',', ';', '#', '/', '$', '-', '.', '1',
            'k', 'b', 'a', ' ', '\n', '\t', 'x', 'µ', '(', ')',
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut text = String::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 58) as usize;
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push(ALPHABET[(seed >> 33) as usize % ALPHABET.len()]);
            }
            if let Err(e) = parse_str(&text, Path::new("r.conf")) {
                assert!(e.line() >= 1, "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "{",
            "}",
            "[",
            "]",
            "a",
            "a:",
            "a: {",
            "a: [",
            "\"",
            "'",
            "a: \"\\",
            "= 1",
            ": 1",
            "a: $",
            "a: \"\\x4\"",
            "a: -",
            "include",
            "\u{0}",
        ] {
            let _ = parse_str(text, Path::new("g.conf"));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let n = 200_000;
        for text in [
            format!("a: {}{}", "[".repeat(n), "]".repeat(n)),
            format!("a: {}1{}", "{b: ".repeat(n), "}".repeat(n)),
        ] {
            let e = parse_err(&text);
            assert!(e.to_string().contains("nested more than 100 deep"), "{e}");
        }
        // 100 levels are fine.
        let ok = format!("a: {}1{}", "[".repeat(100), "]".repeat(100));
        parse(&ok);
    }
}
