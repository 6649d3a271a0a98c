//! Encryption at rest in the age format: a per-backup data identity, chunks
//! as age files to its public recipient, and `keys.edn` holding the data
//! identity wrapped for the user's recipients. Design and threat model:
//! `docs/security.md`, "Encryption at rest"; bytes: `docs/FORMAT.md`.
//!
//! No cryptography is written here: sealing, opening and wrapping are the
//! `age` crate's.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use age::secrecy::ExposeSecret;
pub use age::secrecy::SecretString;
use age::x25519;
use datacamp_codec::compress::{self, Compression};
use datacamp_codec::CodecError;
use datacamp_manifest::{short_id, Document, KeysFile, Manifest, Wrap, KEYS_SCHEME};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::read::read_metadata_opt;

/// The `:format/encryption` keyword of an encrypted backup.
pub const ENCRYPTION_SCHEME: &str = KEYS_SCHEME;

/// The largest identity or recipient file read (a real one is a few
/// hundred bytes).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The highest scrypt work factor (log2 N) a passphrase wrapping may ask
/// for: age's own default target is about one second of work (~2^18); a
/// forged keys.edn asking for more would make unwrapping take hours.
const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// Who a new backup's data key is wrapped for: public X25519 recipients
/// and/or a passphrase. Never printed (`Debug` shows only counts).
#[derive(Clone, Default)]
pub struct Recipients {
    x25519: Vec<x25519::Recipient>,
    passphrase: Option<SecretString>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipients")
            .field("x25519", &self.x25519.len())
            .field("passphrase", &self.passphrase.is_some())
            .finish()
    }
}

impl Recipients {
    /// No recipients: an unencrypted backup.
    pub fn none() -> Recipients {
        Recipients::default()
    }

    /// Whether nothing is given (the backup is not encrypted).
    pub fn is_empty(&self) -> bool {
        self.x25519.is_empty() && self.passphrase.is_none()
    }

    /// Adds a public recipient (`age1…`).
    pub fn add(&mut self, recipient: &str) -> Result<()> {
        self.x25519.push(parse_recipient(recipient)?);
        Ok(())
    }

    /// Adds every recipient of a recipients file (one `age1…` a line, `#`
    /// comments and blank lines skipped).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        for (line_no, line) in key_file_lines(path)? {
            let recipient =
                x25519::Recipient::from_str(&line).map_err(|reason| Error::KeyFile {
                    path: path.to_path_buf(),
                    reason: format!("line {line_no} is not an age X25519 recipient ({reason})"),
                })?;
            self.x25519.push(recipient);
        }
        Ok(())
    }

    /// Wraps for a passphrase too (age's scrypt recipient).
    pub fn set_passphrase(&mut self, passphrase: SecretString) {
        self.passphrase = Some(passphrase);
    }

    /// Whether a passphrase is given.
    pub fn has_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// The passphrase given, if any (for a job that must open what it
    /// encrypts with the same one).
    pub fn passphrase(&self) -> Option<&SecretString> {
        self.passphrase.as_ref()
    }

    /// The public recipients, as `age1…` strings.
    pub fn public(&self) -> Vec<String> {
        self.x25519.iter().map(|r| r.to_string()).collect()
    }
}

/// Parses a public age recipient; the error quotes it (it is public).
pub fn parse_recipient(text: &str) -> Result<x25519::Recipient> {
    x25519::Recipient::from_str(text.trim()).map_err(|reason| Error::InvalidOption {
        option: "recipient",
        reason: format!("{text:?} is not an age X25519 recipient (age1…): {reason}"),
    })
}

/// What may open a backup's data key: identities from identity files and/or
/// a passphrase. Never printed (`Debug` shows only counts).
#[derive(Clone, Default)]
pub struct Identities {
    x25519: Vec<x25519::Identity>,
    passphrase: Option<SecretString>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("x25519", &self.x25519.len())
            .field("passphrase", &self.passphrase.is_some())
            .finish()
    }
}

impl Identities {
    /// No identity: reads of encrypted backups fail with
    /// [`Error::Encrypted`].
    pub fn none() -> Identities {
        Identities::default()
    }

    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.x25519.is_empty() && self.passphrase.is_none()
    }

    /// Adds every identity of an age identity file (`AGE-SECRET-KEY-1…`
    /// lines, `#` comments and blank lines skipped). A bad line is named by
    /// its number, never quoted.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let lines = key_file_lines(path)?;
        if lines.is_empty() {
            return Err(Error::KeyFile {
                path: path.to_path_buf(),
                reason: "it holds no identity".into(),
            });
        }
        for (line_no, line) in lines {
            let identity = x25519::Identity::from_str(&line).map_err(|_| Error::KeyFile {
                path: path.to_path_buf(),
                reason: format!("line {line_no} is not an age X25519 identity (AGE-SECRET-KEY-1…)"),
            })?;
            self.x25519.push(identity);
        }
        Ok(())
    }

    /// Adds an identity.
    pub fn add_identity(&mut self, identity: x25519::Identity) {
        self.x25519.push(identity);
    }

    /// Tries a passphrase too.
    pub fn set_passphrase(&mut self, passphrase: SecretString) {
        self.passphrase = Some(passphrase);
    }

    /// Whether these open what is encrypted to `recipients`: an identity
    /// whose public key is one of them, or the same passphrase. Checked
    /// before a job that must read back what it encrypts (a migration's
    /// snapshot), so it fails before writing anything.
    pub fn opens(&self, recipients: &Recipients) -> bool {
        let public = recipients.public();
        let by_key = self
            .x25519
            .iter()
            .any(|id| public.contains(&id.to_public().to_string()));
        let by_passphrase = match (&self.passphrase, &recipients.passphrase) {
            (Some(mine), Some(theirs)) => mine.expose_secret() == theirs.expose_secret(),
            _ => false,
        };
        by_key || by_passphrase
    }

    /// The recipients `public` (and, when `passphrase`, these identities'
    /// passphrase): to encrypt again to whom something was encrypted
    /// before (a recovered migration's new snapshot).
    pub fn recipients_again(&self, public: &[String], passphrase: bool) -> Result<Recipients> {
        let mut again = Recipients::none();
        for r in public {
            again.add(r)?;
        }
        if passphrase {
            let Some(p) = &self.passphrase else {
                return Err(Error::InvalidOption {
                    option: "passphrase",
                    reason: "it was encrypted to a passphrase too: set DATACAMP_PASSPHRASE".into(),
                });
            };
            again.set_passphrase(p.clone());
        }
        Ok(again)
    }
}

/// The non-comment lines of a small key file, with their line numbers.
fn key_file_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let file_error = |reason: String| Error::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| file_error(e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(file_error(format!(
            "it is larger than {MAX_KEY_FILE_BYTES} bytes, expected a key file"
        )));
    }
    let mut lines = Vec::new();
    for (i, line) in text.as_bytes().lines().enumerate() {
        let line = line.map_err(|e| file_error(e.to_string()))?;
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            lines.push((i + 1, line.to_owned()));
        }
    }
    Ok(lines)
}

/// A new identity file's text and its public recipient
/// (`datacamp key generate`).
pub fn generate_identity(created_ms: i64) -> (SecretString, String) {
    let identity = x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        datacamp_datom::format_instant(created_ms),
        identity.to_string().expose_secret()
    );
    (SecretString::from(text), public)
}

/// Writes a new identity file with mode 0600, refusing to overwrite one;
/// returns the public recipient.
pub fn write_identity_file(path: &Path) -> Result<String> {
    let (text, public) = generate_identity(crate::now_ms());
    let file_error = |e: io::Error| Error::KeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(file_error)?;
    file.write_all(text.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(file_error)?;
    Ok(public)
}

/// How a backup's chunks are sealed: not at all, or as age files to its
/// data recipient.
#[derive(Clone)]
pub(crate) enum Sealer {
    Plain,
    Age(x25519::Recipient),
}

impl Sealer {
    /// Compresses `plain` into `out` (cleared first) and, for an encrypted
    /// backup, seals it on the way: the compressor writes into the age
    /// stream, so the compressed chunk never sits unsealed in a buffer of
    /// its own and sealing holds one age block (64 KiB) per worker.
    pub(crate) fn compress_into(
        &self,
        plain: &[u8],
        compression: Compression,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), CodecError> {
        out.clear();
        let Sealer::Age(recipient) = self else {
            return compress::compress_into(plain, compression, out);
        };
        let age_error = |e: io::Error| CodecError::Io {
            context: "encrypting the chunk (age)".into(),
            source: e,
        };
        let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as _))
            .map_err(|e| age_error(io::Error::other(e)))?;
        let writer = encryptor.wrap_output(out).map_err(age_error)?;
        compress::compress_to(plain, compression, writer)?
            .finish()
            .map_err(age_error)?;
        Ok(())
    }

    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Sealer::Plain)
    }
}

/// How a backup's stored chunks are opened: as they are, or decrypted with
/// its data identity.
#[derive(Clone)]
pub(crate) enum Opener {
    Plain,
    /// An encrypted backup read without its data identity: opening a chunk
    /// says so ([`Error::Encrypted`]), never tries it as plaintext.
    Locked(String),
    Age(Arc<x25519::Identity>),
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opener::Plain => "Opener::Plain",
            Opener::Locked(_) => "Opener::Locked",
            Opener::Age(_) => "Opener::Age",
        })
    }
}

impl Opener {
    /// A reader of `input`'s plaintext. An age header that does not open
    /// with the data identity is an error here; a block that fails
    /// authentication is an error of the returned reader.
    pub(crate) fn open<R: Read>(&self, input: R, chunk_id: u64, key: &str) -> Result<Unsealed<R>> {
        match self {
            Opener::Plain => Ok(Unsealed::Plain(input)),
            Opener::Locked(backup_id) => Err(Error::Encrypted {
                backup_id: backup_id.clone(),
            }),
            Opener::Age(identity) => {
                let fail = |e: age::DecryptError| Error::Unseal {
                    chunk_id,
                    key: key.to_owned(),
                    reason: e.to_string(),
                };
                let decryptor = age::Decryptor::new(input).map_err(fail)?;
                let reader = decryptor
                    .decrypt(std::iter::once(&**identity as &dyn age::Identity))
                    .map_err(fail)?;
                Ok(Unsealed::Age(Box::new(reader)))
            }
        }
    }
}

/// The plaintext of a stored chunk.
pub(crate) enum Unsealed<R> {
    Plain(R),
    Age(Box<age::stream::StreamReader<R>>),
}

impl<R> fmt::Debug for Unsealed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unsealed::Plain(_) => "Unsealed::Plain",
            Unsealed::Age(_) => "Unsealed::Age",
        })
    }
}

impl<R: Read> Read for Unsealed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Unsealed::Plain(r) => r.read(buf),
            Unsealed::Age(r) => r.read(buf).map_err(|e| {
                // Name it for what it is: age reports a failed block as
                // InvalidData, which would read as corrupt compression.
                io::Error::new(
                    e.kind(),
                    format!("encrypted chunk failed authentication (age): {e}"),
                )
            }),
        }
    }
}

/// A new backup's data key: the sealer for its chunks and its keys.edn.
pub(crate) fn new_data_key(recipients: &Recipients, now_ms: i64) -> Result<(Sealer, KeysFile)> {
    let identity = x25519::Identity::generate();
    let keys = KeysFile {
        scheme: KEYS_SCHEME.to_owned(),
        data_recipient: identity.to_public().to_string(),
        wraps: wrap(&identity, recipients)?,
        updated_at_ms: now_ms,
    };
    Ok((Sealer::Age(identity.to_public()), keys))
}

/// The data identity wrapped for `recipients`: one age file to all X25519
/// recipients, one to the passphrase (age allows it only alone).
pub(crate) fn wrap(identity: &x25519::Identity, recipients: &Recipients) -> Result<Vec<Wrap>> {
    let secret = identity.to_string();
    let mut wraps = Vec::new();
    if !recipients.x25519.is_empty() {
        let all = recipients.x25519.iter().map(|r| r as &dyn age::Recipient);
        wraps.push(Wrap {
            recipients: recipients.public(),
            passphrase: false,
            armored: armor(all, secret.expose_secret())?,
        });
    }
    if let Some(passphrase) = &recipients.passphrase {
        let recipient = age::scrypt::Recipient::new(passphrase.clone());
        wraps.push(Wrap {
            recipients: Vec::new(),
            passphrase: true,
            armored: armor(
                std::iter::once(&recipient as &dyn age::Recipient),
                secret.expose_secret(),
            )?,
        });
    }
    if wraps.is_empty() {
        return Err(Error::InvalidOption {
            option: "recipient",
            reason: "encryption needs at least one recipient or a passphrase".into(),
        });
    }
    Ok(wraps)
}

/// An ASCII-armored age file of `plain` to `recipients`.
fn armor<'a>(
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    plain: &str,
) -> Result<String> {
    let internal = |e: String| Error::Internal(format!("wrapping the data key: {e}"));
    let encryptor =
        age::Encryptor::with_recipients(recipients).map_err(|e| internal(e.to_string()))?;
    let mut out = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| internal(e.to_string()))?;
    let mut writer = encryptor
        .wrap_output(armored)
        .map_err(|e| internal(e.to_string()))?;
    writer
        .write_all(plain.as_bytes())
        .and_then(|()| writer.finish())
        .and_then(|armored| armored.finish())
        .map_err(|e| internal(e.to_string()))?;
    String::from_utf8(out).map_err(|e| internal(e.to_string()))
}

/// The data identity of a backup, from the first wrapping `ids` open,
/// checked against the recipient keys.edn says chunks are encrypted to.
pub(crate) fn unwrap(
    keys: &KeysFile,
    ids: &Identities,
    backup_id: &str,
) -> Result<x25519::Identity> {
    if ids.is_empty() {
        return Err(Error::Encrypted {
            backup_id: short_id(backup_id),
        });
    }
    let keys_error = |reason: String| Error::Keys {
        backup_id: short_id(backup_id),
        reason,
    };
    for (i, wrap) in keys.wraps.iter().enumerate() {
        let Some(text) = open_wrap(wrap, ids)
            .map_err(|e| keys_error(format!("wrapping {i} cannot be opened: {e}")))?
        else {
            continue;
        };
        let identity = x25519::Identity::from_str(text.expose_secret().trim()).map_err(|_| {
            keys_error(format!(
                "wrapping {i} does not hold an age identity (edited or not written by Datacamp)"
            ))
        })?;
        if identity.to_public().to_string() != keys.data_recipient {
            return Err(keys_error(format!(
                "wrapping {i} holds a data key whose recipient is not :keys/data-recipient \
                 (keys.edn was edited)"
            )));
        }
        return Ok(identity);
    }
    Err(Error::NoMatchingIdentity {
        backup_id: short_id(backup_id),
    })
}

/// The plaintext of a wrapping if `ids` open it; `None` when none of them
/// matches its recipients.
fn open_wrap(wrap: &Wrap, ids: &Identities) -> std::result::Result<Option<SecretString>, String> {
    let reader = age::armor::ArmoredReader::new(wrap.armored.as_bytes());
    let decryptor = age::Decryptor::new_buffered(reader).map_err(|e| e.to_string())?;
    let mut scrypt = None;
    let mut candidates: Vec<&dyn age::Identity> = Vec::new();
    if decryptor.is_scrypt() {
        let Some(passphrase) = &ids.passphrase else {
            return Ok(None);
        };
        let mut identity = age::scrypt::Identity::new(passphrase.clone());
        identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
        scrypt = Some(identity);
    } else {
        candidates.extend(ids.x25519.iter().map(|i| i as &dyn age::Identity));
    }
    if let Some(identity) = &scrypt {
        candidates.push(identity);
    }
    match decryptor.decrypt(candidates.into_iter()) {
        Ok(mut reader) => {
            let mut text = String::new();
            // An identity is ~75 bytes; anything much longer is not one.
            (&mut reader)
                .take(4096)
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            Ok(Some(SecretString::from(text)))
        }
        Err(age::DecryptError::NoMatchingKeys) => Ok(None),
        // A wrong passphrase fails as a failed decryption of the stanza.
        Err(age::DecryptError::DecryptionFailed) if scrypt.is_some() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// A backup's keys.edn, `None` when it has none.
pub(crate) async fn read_keys(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Option<KeysFile>> {
    let key = store.layout().keys(database_id, backup_id)?;
    let Some(text) = read_metadata_opt(store, &key, Document::Keys).await? else {
        return Ok(None);
    };
    Ok(Some(
        KeysFile::from_edn(&text).map_err(|e| e.in_file(key.as_str()))?,
    ))
}

/// Whether a manifest says its chunks are encrypted; an unknown scheme is
/// refused (never read as plaintext).
pub(crate) fn is_encrypted(manifest: &Manifest) -> Result<bool> {
    match &manifest.encryption {
        None => Ok(false),
        Some(k) if k.as_str() == ENCRYPTION_SCHEME => Ok(true),
        Some(k) => Err(Error::EncryptionUnsupported {
            backup_id: short_id(&manifest.backup_id),
            reason: format!(
                "its :format/encryption is :{}, this build reads :{ENCRYPTION_SCHEME}",
                k.as_str()
            ),
        }),
    }
}

/// The opener of a backup read without identities: plain, or locked when
/// its manifest says it is encrypted.
pub(crate) fn keyless_opener(manifest: &Manifest) -> Opener {
    if is_encrypted(manifest).unwrap_or(true) {
        Opener::Locked(short_id(&manifest.backup_id))
    } else {
        Opener::Plain
    }
}

/// How to open the chunks of the backup `manifest` describes: its data
/// identity unwrapped from its keys.edn with `ids`, when it is encrypted.
pub(crate) async fn opener_for(
    store: &BackupStore,
    manifest: &Manifest,
    ids: &Identities,
) -> Result<Opener> {
    if !is_encrypted(manifest)? {
        return Ok(Opener::Plain);
    }
    if ids.is_empty() {
        return Err(Error::Encrypted {
            backup_id: short_id(&manifest.backup_id),
        });
    }
    let keys = read_keys(store, &manifest.database_id, &manifest.backup_id)
        .await?
        .ok_or_else(|| Error::Keys {
            backup_id: short_id(&manifest.backup_id),
            reason: "keys.edn is missing, so its chunks cannot be decrypted".into(),
        })?;
    let identity = unwrap(&keys, ids, &manifest.backup_id)?;
    Ok(Opener::Age(Arc::new(identity)))
}

/// The sealer of a backup being resumed: its keys.edn's data recipient, or
/// plain when it has none. Asking to encrypt a backup started plain is
/// refused.
pub(crate) async fn resumed_sealer(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
    asked: &Recipients,
) -> Result<Sealer> {
    match read_keys(store, database_id, backup_id).await? {
        Some(keys) => {
            check_resume_recipients(&keys, asked, backup_id)?;
            let recipient =
                x25519::Recipient::from_str(&keys.data_recipient).map_err(|reason| {
                    Error::Keys {
                        backup_id: short_id(backup_id),
                        reason: format!(":keys/data-recipient is not an age recipient ({reason})"),
                    }
                })?;
            Ok(Sealer::Age(recipient))
        }
        None if !asked.is_empty() => Err(Error::EncryptionUnsupported {
            backup_id: short_id(backup_id),
            reason: "it was started unencrypted, and a resume continues as it started \
                     (resume without --recipient/--passphrase, or start a new backup)"
                .into(),
        }),
        None => Ok(Sealer::Plain),
    }
}

/// A resume given recipients must be given the ones the backup was started
/// with: it keeps sealing to the data key they already wrap, so other
/// recipients would silently not be able to read it. (Given none, it
/// continues with the original ones: it needs no secret.) A passphrase is
/// checked by opening the passphrase wrapping with it.
fn check_resume_recipients(keys: &KeysFile, asked: &Recipients, backup_id: &str) -> Result<()> {
    if asked.is_empty() {
        return Ok(());
    }
    let mut started: Vec<String> = keys
        .wraps
        .iter()
        .flat_map(|w| w.recipients.iter().cloned())
        .collect();
    let mut given = asked.public();
    started.sort();
    started.dedup();
    given.sort();
    given.dedup();
    let started_with_passphrase = keys.wraps.iter().any(|w| w.passphrase);
    let differ = |what: &str| Error::EncryptionUnsupported {
        backup_id: short_id(backup_id),
        reason: format!(
            "it was started encrypted for other recipients ({what}), and a resume keeps \
             sealing to the key those recipients hold (resume with the same \
             --recipient/--passphrase or with none, or start a new backup)"
        ),
    };
    if started != given {
        return Err(differ("the public recipients differ"));
    }
    if started_with_passphrase != asked.has_passphrase() {
        return Err(differ(if started_with_passphrase {
            "it was started with a passphrase"
        } else {
            "it was started without a passphrase"
        }));
    }
    if let Some(passphrase) = asked.passphrase() {
        let mut ids = Identities::none();
        ids.set_passphrase(passphrase.clone());
        let only_passphrase = KeysFile {
            wraps: keys
                .wraps
                .iter()
                .filter(|w| w.passphrase)
                .cloned()
                .collect(),
            ..keys.clone()
        };
        match unwrap(&only_passphrase, &ids, backup_id) {
            Ok(_) => {}
            Err(Error::NoMatchingIdentity { .. }) => {
                return Err(differ("the passphrase is not the one it was started with"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The opener of a loose encrypted chunk file: one of `identities` if it
/// is the chunk's data identity, else the data identity unwrapped from the
/// `keys.edn` of the backup folder the file is in.
pub(crate) fn loose_chunk_opener(path: &Path, identities: &Identities) -> Result<Opener> {
    let name = path.display().to_string();
    if identities.is_empty() {
        return Err(Error::Encrypted { backup_id: name });
    }
    let header_opens = |identity: &x25519::Identity| -> bool {
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        age::Decryptor::new(io::BufReader::new(file))
            .and_then(|d| {
                d.decrypt(std::iter::once(identity as &dyn age::Identity))
                    .map(drop)
            })
            .is_ok()
    };
    if let Some(identity) = identities.x25519.iter().find(|i| header_opens(i)) {
        return Ok(Opener::Age(Arc::new(identity.clone())));
    }
    let backup_dir = path.parent().and_then(Path::parent);
    let keys_path = backup_dir.map(|d| d.join("keys.edn"));
    let Some(keys_path) = keys_path.filter(|p| p.is_file()) else {
        return Err(Error::NoMatchingIdentity { backup_id: name });
    };
    let text = read_small(&keys_path)?;
    let keys = KeysFile::from_edn(&text)
        .map_err(|e| Error::Manifest(e.in_file(keys_path.display().to_string())))?;
    let backup_id = backup_dir
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(name);
    Ok(Opener::Age(Arc::new(unwrap(
        &keys, identities, &backup_id,
    )?)))
}

/// A small local file's text (a keys.edn beside a loose chunk).
fn read_small(path: &Path) -> Result<String> {
    let file_error = |reason: String| Error::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(e.to_string()))?;
    let limit = datacamp_manifest::MAX_DOCUMENT_BYTES as u64;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| file_error(e.to_string()))?;
    if text.len() as u64 > limit {
        return Err(file_error(format!("it is larger than {limit} bytes")));
    }
    Ok(text)
}

/// The plaintext (the compressed chunk) of one stored encrypted chunk,
/// whole: for tools and tests that compare chunks across backups (a
/// restore streams instead).
pub fn decrypt_chunk(
    keys: &KeysFile,
    ids: &Identities,
    backup_id: &str,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let opener = Opener::Age(Arc::new(unwrap(keys, ids, backup_id)?));
    let mut out = Vec::new();
    opener
        .open(stored, 0, "chunk")?
        .read_to_end(&mut out)
        .map_err(|e| Error::Unseal {
            chunk_id: 0,
            key: "chunk".into(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn sealed(sealer: &Sealer, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        sealer
            .compress_into(plain, Compression::None, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_sealed_chunk_opens_with_the_unwrapped_data_key_only() {
        let user = x25519::Identity::generate();
        let mut to = Recipients::none();
        to.add(&user.to_public().to_string()).unwrap();
        let (sealer, keys) = new_data_key(&to, 1).unwrap();
        let plain = vec![7u8; 200_000];
        let stored = sealed(&sealer, &plain);
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        assert!(!stored.windows(64).any(|w| w == &plain[..64]));

        let mut ids = Identities::none();
        ids.add_identity(user);
        assert_eq!(decrypt_chunk(&keys, &ids, "b", &stored).unwrap(), plain);

        let mut other = Identities::none();
        other.add_identity(x25519::Identity::generate());
        let err = decrypt_chunk(&keys, &other, "b", &stored).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no identity matches the recipients of backup b"
        );
        let err = decrypt_chunk(&keys, &Identities::none(), "b", &stored).unwrap_err();
        assert!(matches!(err, Error::Encrypted { .. }), "{err}");
    }

    #[test]
    fn a_flipped_or_truncated_chunk_fails_authentication() {
        let data = x25519::Identity::generate();
        let sealer = Sealer::Age(data.to_public());
        let opener = Opener::Age(Arc::new(data));
        let stored = sealed(&sealer, &[1u8; 150_000]);
        let mut flipped = stored.clone();
        let at = flipped.len() - 100;
        flipped[at] ^= 1;
        for bad in [flipped, stored[..stored.len() - 10].to_vec()] {
            let mut out = Vec::new();
            let err = opener
                .open(&bad[..], 3, "k")
                .unwrap()
                .read_to_end(&mut out)
                .unwrap_err();
            assert!(err.to_string().contains("failed authentication"), "{err}");
        }
    }

    #[test]
    fn a_resume_refuses_other_recipients_than_the_backup_was_started_with() {
        let (a, b) = (x25519::Identity::generate(), x25519::Identity::generate());
        let recipients = |ids: &[&x25519::Identity], passphrase: Option<&str>| {
            let mut to = Recipients::none();
            for id in ids {
                to.add(&id.to_public().to_string()).unwrap();
            }
            if let Some(p) = passphrase {
                to.set_passphrase(SecretString::from(p.to_owned()));
            }
            to
        };
        let (_, keys) = new_data_key(&recipients(&[&a, &b], Some("right")), 1).unwrap();
        let check = |to: &Recipients| check_resume_recipients(&keys, to, "b-1");
        check(&Recipients::none()).unwrap();
        check(&recipients(&[&b, &a], Some("right"))).unwrap();
        for (given, why) in [
            (
                recipients(&[&a], Some("right")),
                "the public recipients differ",
            ),
            (
                recipients(&[&a, &b], None),
                "it was started with a passphrase",
            ),
            (
                recipients(&[&a, &b], Some("wrong")),
                "the passphrase is not the one it was started with",
            ),
        ] {
            let err = check(&given).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(err.contains("b-1"), "{err}");
            assert!(!err.contains("right") && !err.contains("wrong"), "{err}");
        }
    }

    #[test]
    fn sealing_while_compressing_opens_to_the_compressed_bytes() {
        let data = x25519::Identity::generate();
        let sealer = Sealer::Age(data.to_public());
        let plain: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let gzip = Compression::default();
        let mut stored = Vec::new();
        sealer.compress_into(&plain, gzip, &mut stored).unwrap();
        let mut opened = Vec::new();
        Opener::Age(Arc::new(data))
            .open(&stored[..], 1, "k")
            .unwrap()
            .read_to_end(&mut opened)
            .unwrap();
        assert_eq!(opened, compress::compress(&plain, gzip).unwrap());
    }

    #[test]
    fn key_files_are_named_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "# comment\nAGE-SECRET-KEY-1NOTREALLYAKEY\n").unwrap();
        let err = Identities::none().add_file(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 2 is not an age X25519 identity"),
            "{text}"
        );
        assert!(!text.contains("NOTREALLY"), "{text}");
        let err = parse_recipient("age1nope").unwrap_err();
        assert!(err.to_string().contains("age1nope"), "{err}");
    }
}
