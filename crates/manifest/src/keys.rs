//! `keys.edn`: an encrypted backup's data key, wrapped for its recipients
//! (`docs/FORMAT.md`, "Encryption").
//!
//! The document holds no secret in clear: the data identity appears only
//! as age files (ASCII-armored) encrypted to the user's recipients. The
//! data key's *public* recipient is in clear, so that a resumed backup can
//! go on encrypting chunks without any secret at hand.

use crate::edn::{parse_document, Edn, Fields};
use crate::error::{Document, Result};

/// The one scheme this build writes and reads: chunks are age files.
pub const KEYS_SCHEME: &str = "age";

/// The keys document's format version.
pub const KEYS_FORMAT_VERSION: &str = "1";

/// How many wrappings a keys document may hold (one per recipient set,
/// plus one per passphrase); more is refused as not written by Datacamp.
pub const MAX_WRAPS: usize = 64;

/// `keys.edn` of one backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysFile {
    /// The encryption scheme (`:keys/scheme`), `age`.
    pub scheme: String,
    /// The data key's public age recipient (`age1…`): chunks are encrypted
    /// to it.
    pub data_recipient: String,
    /// The data identity, wrapped once per recipient group.
    pub wraps: Vec<Wrap>,
    /// When the wrappings were last written (milliseconds since the epoch).
    pub updated_at_ms: i64,
}

/// One wrapping of the data identity: an age file any of whose recipients
/// can open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrap {
    /// The public X25519 recipients the wrapping is encrypted to (empty for
    /// a passphrase wrapping). Public keys: listed so that rotation can name
    /// what it removes.
    pub recipients: Vec<String>,
    /// Whether it is encrypted to a passphrase (age's scrypt recipient,
    /// which age allows only alone).
    pub passphrase: bool,
    /// The ASCII-armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`).
    pub armored: String,
}

impl KeysFile {
    /// The document as EDN.
    pub fn to_edn(&self) -> String {
        let wraps = self
            .wraps
            .iter()
            .map(|w| {
                Edn::Map(vec![
                    (
                        Edn::kw("wrap/recipients"),
                        Edn::Vector(w.recipients.iter().map(|r| Edn::str(r)).collect()),
                    ),
                    (Edn::kw("wrap/passphrase"), Edn::Bool(w.passphrase)),
                    (Edn::kw("wrap/age"), Edn::str(&w.armored)),
                ])
            })
            .collect();
        Edn::Map(vec![
            (Edn::kw("keys/version"), Edn::str(KEYS_FORMAT_VERSION)),
            (Edn::kw("keys/scheme"), Edn::kw(&self.scheme)),
            (
                Edn::kw("keys/data-recipient"),
                Edn::str(&self.data_recipient),
            ),
            (Edn::kw("keys/updated-at"), Edn::Inst(self.updated_at_ms)),
            (Edn::kw("keys/wrapped"), Edn::Vector(wraps)),
        ])
        .pretty()
    }

    /// Reads a keys document; unknown keys are ignored.
    pub fn from_edn(text: &str) -> Result<KeysFile> {
        let root = parse_document(Document::Keys, text)?;
        let f = Fields::top(Document::Keys, text, &root)?;
        let scheme = f.keyword("keys/scheme")?;
        let scheme = f.required("keys/scheme", scheme)?.as_str().to_owned();
        let data_recipient = f.string("keys/data-recipient")?;
        let data_recipient = f.required("keys/data-recipient", data_recipient)?;
        let items = f.items("keys/wrapped")?;
        let items = f.required("keys/wrapped", items)?;
        if items.len() > MAX_WRAPS {
            return Err(f.invalid(
                "keys/wrapped",
                format!("{} wrappings, expected at most {MAX_WRAPS}", items.len()),
            ));
        }
        let mut wraps = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let w = f.map_item("keys/wrapped", i, item)?;
            let mut recipients = Vec::new();
            for r in w.items("wrap/recipients")?.unwrap_or_default() {
                match &r.kind {
                    datacamp_datom::edn::FormKind::String(s) => recipients.push(s.clone()),
                    _ => return Err(w.wrong_type("wrap/recipients", "strings", r)),
                }
            }
            let armored = w.string("wrap/age")?;
            wraps.push(Wrap {
                recipients,
                passphrase: w.bool("wrap/passphrase")?.unwrap_or(false),
                armored: w.required("wrap/age", armored)?,
            });
        }
        Ok(KeysFile {
            scheme,
            data_recipient,
            wraps,
            updated_at_ms: f.inst("keys/updated-at")?.unwrap_or(0),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> KeysFile {
        KeysFile {
            scheme: KEYS_SCHEME.into(),
            data_recipient: "age1xyz".into(),
            wraps: vec![
                Wrap {
                    recipients: vec!["age1a".into(), "age1b".into()],
                    passphrase: false,
                    armored: "-----BEGIN AGE ENCRYPTED FILE-----\nabc\n-----END AGE ENCRYPTED FILE-----\n"
                        .into(),
                },
                Wrap {
                    recipients: vec![],
                    passphrase: true,
                    armored: "x".into(),
                },
            ],
            updated_at_ms: 1_760_000_000_123,
        }
    }

    #[test]
    fn round_trips() {
        let k = sample();
        let text = k.to_edn();
        assert!(text.contains(":keys/scheme :age"), "{text}");
        assert_eq!(KeysFile::from_edn(&text).unwrap(), k);
    }

    #[test]
    fn bad_documents_name_the_key() {
        let err = KeysFile::from_edn(r#"{:keys/scheme :age :keys/wrapped []}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "keys file is missing the required key :keys/data-recipient"
        );
        let err = KeysFile::from_edn(
            r#"{:keys/scheme :age :keys/data-recipient "a" :keys/wrapped [{:wrap/recipients [1]}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("wrap/recipients"), "{err}");
    }
}
