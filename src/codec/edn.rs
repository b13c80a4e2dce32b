//! EDN text <-> value. (Filled in by the EDN work; see issue 5.)

use super::CodecError;
use crate::value::Value;

pub fn parse(text: &str) -> Result<Value, CodecError> {
    Err(CodecError::syntax(
        "EDN",
        text,
        0,
        "EDN is not supported yet",
    ))
}

pub fn print(value: &Value) -> String {
    format!("{value:?}")
}

pub fn print_pretty(value: &Value) -> String {
    print(value)
}
