//! Values and rows as the store passes them to and from either engine: an
//! integer, text, bytes, or a NULL of one of those kinds (so that
//! PostgreSQL is told each parameter's type), and rows of them.

use super::error::{Result, StoreError};

/// What kind of value a column or parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Blob,
}

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Null(Kind),
}

/// A Rust value that a query takes as a parameter.
pub trait ToValue {
    const KIND: Kind;
    fn to_value(&self) -> Value;
}

impl ToValue for i64 {
    const KIND: Kind = Kind::Int;
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl ToValue for u32 {
    const KIND: Kind = Kind::Int;
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for bool {
    const KIND: Kind = Kind::Int;
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for str {
    const KIND: Kind = Kind::Text;
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    const KIND: Kind = Kind::Text;
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    const KIND: Kind = Kind::Blob;
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    const KIND: Kind = Kind::Blob;
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    const KIND: Kind = T::KIND;
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    const KIND: Kind = T::KIND;
    fn to_value(&self) -> Value {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null(T::KIND),
        }
    }
}

/// The parameters of a query: `params![a, b]` takes each by reference, as
/// rusqlite's macro of the same name does.
macro_rules! params {
    () => { [] as [$crate::store::value::Value; 0] };
    ($($value:expr),+ $(,)?) => {
        [$($crate::store::value::ToValue::to_value(&$value)),+]
    };
}
pub(crate) use params;

/// A Rust value read from a column.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self>;
}

fn mismatch(expected: &'static str, found: &Value) -> StoreError {
    StoreError::Value(format!("expected {expected}, found {found:?}"))
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(mismatch("an integer", other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(mismatch("bytes", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self> {
        match value {
            Value::Null(_) => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    pub fn from_values(values: Vec<Value>) -> Row {
        Row(values)
    }

    pub fn into_values(self) -> Vec<Value> {
        self.0
    }

    pub fn get<T: FromValue>(&self, index: usize) -> Result<T> {
        match self.0.get(index) {
            Some(value) => T::from_value(value),
            None => Err(StoreError::Value(format!("no column {index}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_keeps_the_kind_of_its_rust_type() {
        let none: Option<&str> = None;
        let values = params![1_i64, "a", none, Some(vec![1_u8]), true];
        assert_eq!(
            values,
            [
                Value::Int(1),
                Value::Text("a".into()),
                Value::Null(Kind::Text),
                Value::Blob(vec![1]),
                Value::Int(1)
            ]
        );
    }
}
