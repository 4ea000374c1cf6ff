//! The short form for people, translated to the same query tree as the XML
//! form:
//!
//! ```text
//! query  := or
//! or     := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "(" or ")" | clause
//! clause := NAME OP value          NAME: letters and digits
//! OP     := "=" | "!=" | "<" | "<=" | ">" | ">="
//! value  := "quoted text"          a string ("\"" is a quote)
//!         | bare                   up to whitespace or ")"
//! ```
//!
//! `and` and `or` are words of any case; `and` binds tighter. A bare value's
//! type follows from the attribute where it is reserved (the two times are
//! dates, the other four strings); otherwise digits with an optional sign
//! are an int, a `YYYY-MM…` date a date, anything else a string. Strings take
//! the XML form's wildcards and escapes.

use super::{Attrib, Clause, Compare, MAX_QUERY_BYTES, Node, Query, Value, ValueType, invalid};
use crate::error::Error;

pub(super) fn parse(text: &str) -> Result<Query, Error> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!(
            "a query of {} bytes (at most {MAX_QUERY_BYTES})",
            text.len()
        )));
    }
    let mut parser = Parser {
        chars: text.chars().collect(),
        at: 0,
        depth: 0,
    };
    let root = parser.or()?;
    parser.skip_space();
    if let Some(c) = parser.peek() {
        return Err(invalid(format!(
            "unexpected {c:?} at character {}",
            parser.at.saturating_add(1)
        )));
    }
    Query::new(root)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at = self.at.saturating_add(1);
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at = self.at.saturating_add(1);
        }
    }

    /// Consumes the word `word` (any case) if it comes next, followed by a
    /// space, a parenthesis or the end.
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let len = word.chars().count();
        let end = self.at.saturating_add(len);
        let Some(found) = self.chars.get(self.at..end) else {
            return false;
        };
        let matches = found
            .iter()
            .zip(word.chars())
            .all(|(a, b)| a.eq_ignore_ascii_case(&b));
        let boundary = self
            .chars
            .get(end)
            .is_none_or(|c| c.is_whitespace() || *c == '(' || *c == ')');
        if matches && boundary {
            self.at = end;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Node, Error> {
        let mut children = vec![self.and()?];
        while self.keyword("or") {
            children.push(self.and()?);
        }
        Ok(match <[Node; 1]>::try_from(children) {
            Ok([only]) => only,
            Err(children) => Node::Or(children),
        })
    }

    fn and(&mut self) -> Result<Node, Error> {
        let mut children = vec![self.unary()?];
        while self.keyword("and") {
            children.push(self.unary()?);
        }
        Ok(match <[Node; 1]>::try_from(children) {
            Ok([only]) => only,
            Err(children) => Node::And(children),
        })
    }

    fn unary(&mut self) -> Result<Node, Error> {
        self.skip_space();
        if self.peek() == Some('(') {
            self.at = self.at.saturating_add(1);
            self.depth = self.depth.saturating_add(1);
            if self.depth > super::MAX_QUERY_DEPTH {
                return Err(invalid(format!(
                    "nested deeper than {}",
                    super::MAX_QUERY_DEPTH
                )));
            }
            let inner = self.or()?;
            self.skip_space();
            if self.bump() != Some(')') {
                return Err(invalid(format!(
                    "a \"(\" without \")\" before character {}",
                    self.at.saturating_add(1)
                )));
            }
            self.depth = self.depth.saturating_sub(1);
            return Ok(inner);
        }
        self.clause().map(Node::Clause)
    }

    fn clause(&mut self) -> Result<Clause, Error> {
        self.skip_space();
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.at = self.at.saturating_add(1);
        }
        let name: String = self
            .chars
            .get(start..self.at)
            .unwrap_or_default()
            .iter()
            .collect();
        if name.is_empty() {
            return Err(invalid(match self.peek() {
                Some(c) => format!(
                    "expected an attribute name at {c:?} (character {})",
                    start.saturating_add(1)
                ),
                None => "expected an attribute name at the end".into(),
            }));
        }
        self.skip_space();
        let compare = match (self.bump(), self.peek()) {
            (Some('='), _) => Compare::Equal,
            (Some('!'), Some('=')) => {
                self.at = self.at.saturating_add(1);
                Compare::NotEqual
            }
            (Some('<'), Some('=')) => {
                self.at = self.at.saturating_add(1);
                Compare::LessOrEqual
            }
            (Some('>'), Some('=')) => {
                self.at = self.at.saturating_add(1);
                Compare::GreaterOrEqual
            }
            (Some('<'), _) => Compare::Less,
            (Some('>'), _) => Compare::Greater,
            (Some(c), _) if !c.is_whitespace() && !"=!<>\"()".contains(c) => {
                return Err(invalid(format!(
                    "{c:?} at character {} after `{name}`: attribute names are letters and digits",
                    self.at
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "expected =, !=, <, <=, > or >= after `{name}`"
                )));
            }
        };
        self.skip_space();
        let attrib = Attrib::named(&name);
        let value = if self.peek() == Some('"') {
            self.at = self.at.saturating_add(1);
            Value::parse(ValueType::String, &self.quoted()?)?
        } else {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|c| !c.is_whitespace() && c != ')' && c != '(')
            {
                self.at = self.at.saturating_add(1);
            }
            let bare: String = self
                .chars
                .get(start..self.at)
                .unwrap_or_default()
                .iter()
                .collect();
            if bare.is_empty() {
                return Err(invalid(format!("`{name}` has no value")));
            }
            // `Priority==1`, `Priority<>1`, `name='x'`: a typo, not a value.
            if let Some(c) = bare.chars().next().filter(|c| "=!<>'".contains(*c)) {
                return Err(invalid(format!(
                    "the value of `{name}` starts with {c:?}: comparisons are =, !=, <, <=, > and >=; quote strings with \"…\""
                )));
            }
            Value::parse(bare_type(&attrib, &bare), &bare)?
        };
        Ok(Clause {
            attrib,
            compare,
            value,
        })
    }

    /// The rest of a quoted string (after its opening quote), with `\"`
    /// resolved; the search escapes are left for [`super::Pattern::parse`].
    fn quoted(&mut self) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') if self.peek() == Some('"') => {
                    self.at = self.at.saturating_add(1);
                    out.push('"');
                }
                Some('\\') => {
                    out.push('\\');
                    if let Some(c) = self.bump() {
                        out.push(c);
                    }
                }
                Some(c) => out.push(c),
                None => return Err(invalid("a quoted value without its closing quote".into())),
            }
        }
    }
}

/// The type of a bare value (see the module's documentation).
fn bare_type(attrib: &Attrib, bare: &str) -> ValueType {
    if let Some(kind) = attrib.reserved_type() {
        return kind;
    }
    let digits = bare.strip_prefix(['+', '-']).unwrap_or(bare);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return ValueType::Int;
    }
    let bytes = bare.as_bytes();
    let date_like = bytes.len() >= 7
        && bytes
            .get(..4)
            .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
        && bytes.get(4) == Some(&b'-');
    if date_like {
        ValueType::Date
    } else {
        ValueType::String
    }
}
