//! # datacamp
//!
//! The umbrella crate: everything a user of Datacamp needs from one
//! dependency. Today it re-exports the datom vocabulary and the embedded
//! database; the backup, restore, verify and migration operations join it as
//! they are built (see `docs/ARCHITECTURE.md`).
//!
//! ```
//! use datacamp::datom::{Keyword, Value};
//! let name = Keyword::new(Some("person"), "name");
//! assert_eq!(name.to_string(), ":person/name");
//! assert_eq!(Value::Long(42).to_string(), "42");
//! ```

pub use datacamp_datom as datom;
pub use datacamp_db as db;
