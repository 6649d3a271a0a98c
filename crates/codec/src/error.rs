//! The one error type of this crate.

use std::io;

/// Everything that can go wrong encoding, decoding, compressing or
/// hashing.
///
/// Decoding errors carry the byte offset (in the uncompressed Fressian
/// stream) of the code or field that failed, and say what was expected
/// there. No error is ever a panic: hostile input only ever produces one of
/// these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The underlying reader or writer failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done (e.g. "reading Fressian input at byte offset 12").
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The input ended inside a value.
    #[error("unexpected end of input at byte offset {offset}: expected {expected}")]
    UnexpectedEof {
        /// Where the missing bytes should have been.
        offset: u64,
        /// What was being read.
        expected: &'static str,
    },

    /// A byte code that is not valid at this point (or not valid at all).
    #[error("unexpected code 0x{code:02X} ({name}) at byte offset {offset}: expected {expected}")]
    UnexpectedCode {
        /// Offset of the code byte.
        offset: u64,
        /// The code.
        code: u8,
        /// The code's name in the Fressian specification.
        name: &'static str,
        /// What was expected instead.
        expected: &'static str,
    },

    /// A string whose bytes are not in the reference's UTF-8 variant, or
    /// that holds a lone UTF-16 surrogate while lone surrogates are
    /// rejected.
    #[error("invalid string at byte offset {offset}: {reason}")]
    InvalidString {
        /// Offset of the string's first byte.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// A well-formed value that does not make sense where it was found
    /// (a UUID that is not 16 bytes, a negative length, a map with an odd
    /// number of elements, a wrong datom shape, …).
    #[error("invalid {what} at byte offset {offset}: {reason}")]
    Invalid {
        /// Offset of the value.
        offset: u64,
        /// The kind of thing that was being read.
        what: &'static str,
        /// What was expected and what was found.
        reason: String,
    },

    /// A cache reference that points outside the cache, or at an entry that
    /// is still being read (a circular reference).
    #[error("{cache} cache reference {index} at byte offset {offset} is invalid: {reason}")]
    CacheReference {
        /// Offset of the reference.
        offset: u64,
        /// `priority` or `struct`.
        cache: &'static str,
        /// The index referred to.
        index: i64,
        /// Why it cannot be resolved.
        reason: String,
    },

    /// A resource limit of [`ReadOptions`](crate::fressian::ReadOptions)
    /// was hit (nesting depth, cache expansion).
    #[error("limit exceeded at byte offset {offset}: {reason}")]
    Limit {
        /// Where the limit was hit.
        offset: u64,
        /// Which limit and its value.
        reason: String,
    },

    /// A footer whose magic, length or Adler-32 checksum is wrong.
    #[error("invalid footer at byte offset {offset}: {reason}")]
    Footer {
        /// Offset of the footer.
        offset: u64,
        /// What did not match, with the expected and found values.
        reason: String,
    },

    /// A value that the reference implementation could not represent, so
    /// it is refused rather than written in a form Clojure cannot read.
    #[error("cannot encode {what}: {reason}")]
    Unencodable {
        /// The value.
        what: String,
        /// Why.
        reason: String,
    },

    /// A serde `Serialize` or `Deserialize` implementation refused the
    /// data (a missing field, a value of the wrong type for the Rust type
    /// being read, …); `offset` is where the value being read starts.
    #[error("{message}{}", at_offset(.offset))]
    Serde {
        /// Where the value being deserialized starts, when known.
        offset: Option<u64>,
        /// What the implementation said.
        message: String,
    },

    /// A decoded Fressian value that has no datom counterpart (e.g. a map
    /// as a datom value, `nil` as the value itself rather than inside a
    /// tuple).
    #[error("cannot convert {found} to a datom value: {reason}")]
    NotADatomValue {
        /// A short description of the value found.
        found: String,
        /// Why, or what was expected.
        reason: String,
    },
}

impl CodecError {
    /// The byte offset the error refers to, when it refers to one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CodecError::UnexpectedEof { offset, .. }
            | CodecError::UnexpectedCode { offset, .. }
            | CodecError::InvalidString { offset, .. }
            | CodecError::Invalid { offset, .. }
            | CodecError::CacheReference { offset, .. }
            | CodecError::Limit { offset, .. }
            | CodecError::Footer { offset, .. } => Some(*offset),
            CodecError::Serde { offset, .. } => *offset,
            CodecError::Io { .. }
            | CodecError::Unencodable { .. }
            | CodecError::NotADatomValue { .. } => None,
        }
    }

    #[cfg(feature = "serde")]
    pub(crate) fn serde(message: impl Into<String>) -> CodecError {
        CodecError::Serde {
            offset: None,
            message: message.into(),
        }
    }

    /// Gives a serde error without a position the offset of the value
    /// being read.
    #[cfg(feature = "serde")]
    pub(crate) fn at(self, at: u64) -> CodecError {
        match self {
            CodecError::Serde {
                offset: None,
                message,
            } => CodecError::Serde {
                offset: Some(at),
                message,
            },
            other => other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> CodecError {
        CodecError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        offset: u64,
        what: &'static str,
        reason: impl Into<String>,
    ) -> CodecError {
        CodecError::Invalid {
            offset,
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn unexpected(offset: u64, code: u8, expected: &'static str) -> CodecError {
        CodecError::UnexpectedCode {
            offset,
            code,
            name: crate::fressian::codes::name(code),
            expected,
        }
    }
}

fn at_offset(offset: &Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!(" (value at byte offset {o})"))
}

#[cfg(feature = "serde")]
impl serde::ser::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> CodecError {
        CodecError::serde(msg.to_string())
    }
}

#[cfg(feature = "serde")]
impl serde::de::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> CodecError {
        CodecError::serde(msg.to_string())
    }
}

/// `Result` with [`CodecError`].
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
