//! Text <-> value for each format, and the rules for the text of a scalar file.
//!
//! Every format has a strict parser (`parse`), a canonical compact printer (`print`: the same
//! value always gives the same bytes) and a pretty printer. The file rules of the mount and of
//! `valfs set` sit on top: one trailing newline is not part of the value, and text that does not
//! parse is a string.

pub mod edn;
pub mod json;
pub mod name;

use crate::value::Value;
use std::fmt;

/// Collections nested deeper than this are refused with a clear error instead of
/// overflowing the stack of a parser, a printer or the store.
pub const MAX_DEPTH: usize = 1000;

/// The format of a store: how scalars are written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Edn,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Edn => "edn",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "edn" => Some(Format::Edn),
            _ => None,
        }
    }

    /// Parses a whole document strictly.
    pub fn parse(self, text: &str) -> Result<Value, CodecError> {
        match self {
            Format::Json => json::parse(text),
            Format::Edn => edn::parse(text),
        }
    }

    /// The canonical compact text of a value.
    pub fn print(self, value: &Value) -> Result<String, CodecError> {
        match self {
            Format::Json => json::print(value),
            Format::Edn => Ok(edn::print(value)),
        }
    }

    /// Indented text for people.
    pub fn print_pretty(self, value: &Value) -> Result<String, CodecError> {
        match self {
            Format::Json => json::print_pretty(value),
            Format::Edn => Ok(edn::print_pretty(value)),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a text is not a value of the format, or a value has no text in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("invalid {format} at line {line}, column {column}: {message}")]
    Syntax {
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{what} at {path} cannot be written as JSON")]
    NotJson { what: String, path: String },
    #[error("text is not valid UTF-8")]
    NotUtf8,
}

impl CodecError {
    /// A syntax error at byte offset `pos` of `text`.
    pub(crate) fn syntax(
        format: &'static str,
        text: &str,
        pos: usize,
        message: impl Into<String>,
    ) -> Self {
        let before = &text.as_bytes()[..pos.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        CodecError::Syntax {
            format,
            line,
            column,
            message: message.into(),
        }
    }
}

/// The bytes of a scalar file: the canonical text plus one newline.
pub fn scalar_file_text(format: Format, value: &Value) -> Result<Vec<u8>, CodecError> {
    let mut text = format.print(value)?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// What the bytes written to a file mean (SPEC §3): one trailing newline is dropped; text that
/// parses is that value (a collection's text is a subtree); any other text is a string.
/// Bytes that are not UTF-8 are refused.
pub fn parse_file_text(format: Format, bytes: &[u8]) -> Result<Value, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CodecError::NotUtf8)?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    match format.parse(text) {
        Ok(v) => Ok(v),
        Err(CodecError::TooDeep) => Err(CodecError::TooDeep),
        Err(_) => Ok(Value::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_rules() {
        let f = Format::Json;
        assert_eq!(parse_file_text(f, b"Bob\n").unwrap(), Value::string("Bob"));
        assert_eq!(
            parse_file_text(f, b"\"Bob\"\n").unwrap(),
            Value::string("Bob")
        );
        assert_eq!(parse_file_text(f, b"41\n").unwrap(), Value::int(41));
        assert_eq!(parse_file_text(f, b"").unwrap(), Value::string(""));
        assert_eq!(
            parse_file_text(f, b"two\n\n").unwrap(),
            Value::string("two\n")
        );
        assert!(parse_file_text(f, b"[1,2]\n").unwrap().is_collection());
        assert_eq!(parse_file_text(f, b"\xff"), Err(CodecError::NotUtf8));
    }

    #[test]
    fn scalar_file_has_one_newline() {
        assert_eq!(
            scalar_file_text(Format::Json, &Value::string("Joe")).unwrap(),
            b"\"Joe\"\n"
        );
    }
}
