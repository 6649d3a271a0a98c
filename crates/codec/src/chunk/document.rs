//! The chunk document's fields other than its datoms: [`ChunkHeader`] and
//! how each header entry is checked.

use super::FORMAT_TYPE;
use crate::error::{CodecError, Result};
use crate::fressian::{Named, Value};

/// The fields of a chunk document other than its datoms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkHeader {
    /// `:format/type`, as keyword text without the colon (`datom-chunk`).
    pub format_type: Option<String>,
    /// `:format/version` (`"1.0.0"`).
    pub format_version: Option<String>,
    /// `:format/serialization`, as keyword text (`fressian`).
    pub serialization: Option<String>,
    /// `:chunk/id`.
    pub chunk_id: Option<u64>,
    /// The number of datoms announced by the `:datoms` list, when it is a
    /// counted list (the reference always writes one).
    pub datom_count: Option<u64>,
}

pub(super) fn is_datoms_key(key: &Value) -> bool {
    matches!(key, Value::Keyword(Named { namespace: None, name }) if name == "datoms")
}

fn keyword_text(n: &Named) -> String {
    match &n.namespace {
        Some(ns) => format!("{ns}/{}", n.name),
        None => n.name.clone(),
    }
}

pub(super) fn apply_header_field(
    header: &mut ChunkHeader,
    key: &Value,
    value: Value,
    offset: u64,
) -> Result<()> {
    let Value::Keyword(k) = key else {
        return Ok(());
    };
    let field = (k.namespace.as_deref(), k.name.as_str());
    let bad = |expected: &str, found: &Value| {
        CodecError::invalid(
            offset,
            "chunk header",
            format!(
                ":{} should be {expected}, found a {}",
                keyword_text(k),
                found.type_name()
            ),
        )
    };
    match field {
        (Some("format"), "type") => match &value {
            Value::Keyword(n) => {
                let text = keyword_text(n);
                if text != FORMAT_TYPE {
                    return Err(CodecError::invalid(
                        offset,
                        "chunk header",
                        format!(":format/type is :{text}, expected :{FORMAT_TYPE}"),
                    ));
                }
                header.format_type = Some(text);
            }
            other => return Err(bad("a keyword", other)),
        },
        (Some("format"), "version") => match value {
            Value::String(s) => header.format_version = Some(s),
            other => return Err(bad("a string", &other)),
        },
        (Some("format"), "serialization") => match &value {
            Value::Keyword(n) => header.serialization = Some(keyword_text(n)),
            other => return Err(bad("a keyword", other)),
        },
        (Some("chunk"), "id") => match value {
            Value::Int(i) if i >= 0 => header.chunk_id = Some(i as u64),
            other => return Err(bad("a non-negative integer", &other)),
        },
        _ => {}
    }
    Ok(())
}
