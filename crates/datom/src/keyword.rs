//! Keywords and symbols: an optional namespace plus a name.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Marks "no namespace" in [`Name::ns_len`].
const NO_NS: u32 = u32::MAX;

/// The shared representation of keywords and symbols.
///
/// One `Arc<str>` holds `ns/name` (or just `name`), so cloning is a single
/// reference-count increment: datoms clone their attribute keyword on every
/// index scan, and two allocations per keyword would show up there.
#[derive(Clone)]
pub struct Name {
    repr: Arc<str>,
    ns_len: u32,
}

impl Name {
    fn new(namespace: Option<&str>, name: &str) -> Name {
        match namespace {
            Some(ns) => {
                let mut s = String::with_capacity(ns.len() + 1 + name.len());
                s.push_str(ns);
                s.push('/');
                s.push_str(name);
                // A namespace longer than 4 GiB cannot be represented; such a
                // keyword is absurd, so it is kept whole as a bare name.
                match u32::try_from(ns.len()) {
                    Ok(len) if len != NO_NS => Name {
                        repr: s.into(),
                        ns_len: len,
                    },
                    _ => Name {
                        repr: s.into(),
                        ns_len: NO_NS,
                    },
                }
            }
            None => Name {
                repr: name.into(),
                ns_len: NO_NS,
            },
        }
    }

    fn parse(text: &str) -> Name {
        // Clojure splits at the first '/', unless the whole name is "/".
        match text.find('/') {
            Some(i) if text != "/" && i > 0 && i + 1 < text.len() => {
                Name::new(Some(&text[..i]), &text[i + 1..])
            }
            _ => Name::new(None, text),
        }
    }

    fn namespace(&self) -> Option<&str> {
        if self.ns_len == NO_NS {
            None
        } else {
            self.repr.get(..self.ns_len as usize)
        }
    }

    fn name(&self) -> &str {
        if self.ns_len == NO_NS {
            &self.repr
        } else {
            self.repr.get(self.ns_len as usize + 1..).unwrap_or("")
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.ns_len == other.ns_len && self.repr == other.repr
    }
}
impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.repr.hash(state);
        self.ns_len.hash(state);
    }
}

impl Ord for Name {
    /// Clojure's order: no namespace first, then by namespace, then by name.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.namespace(), other.namespace()) {
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (a, b) => a.cmp(&b).then_with(|| self.name().cmp(other.name())),
        }
    }
}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

macro_rules! named {
    ($(#[$doc:meta])* $ty:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(Name);

        impl $ty {
            /// Builds one from an optional namespace and a name.
            pub fn new(namespace: Option<&str>, name: &str) -> Self {
                $ty(Name::new(namespace, name))
            }
            /// Parses `ns/name` or `name` (without the leading `:` of a keyword).
            pub fn parse(text: &str) -> Self {
                $ty(Name::parse(text))
            }
            /// The namespace, if any.
            pub fn namespace(&self) -> Option<&str> {
                self.0.namespace()
            }
            /// The name.
            pub fn name(&self) -> &str {
                self.0.name()
            }
            /// `ns/name` or `name`, as written in EDN without any prefix.
            pub fn as_str(&self) -> &str {
                &self.0.repr
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.repr)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

named!(
    /// A keyword such as `:person/name` (namespace `person`, name `name`).
    Keyword,
    ":"
);
named!(
    /// A symbol such as `my.ns/f`.
    Symbol,
    ""
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_parts() {
        let k = Keyword::parse("person/name");
        assert_eq!(k.namespace(), Some("person"));
        assert_eq!(k.name(), "name");
        assert_eq!(k.to_string(), ":person/name");
        let bare = Keyword::new(None, "a/b");
        assert_eq!(bare.namespace(), None);
        assert_eq!(bare.name(), "a/b");
        assert_ne!(bare, Keyword::parse("a/b"));
        assert_eq!(Keyword::parse("/").name(), "/");
    }

    #[test]
    fn keyword_order_is_clojures() {
        let mut ks = [
            Keyword::parse("b/a"),
            Keyword::parse("z"),
            Keyword::parse("a/z"),
            Keyword::parse("a/b"),
        ];
        ks.sort();
        let printed: Vec<String> = ks.iter().map(|k| k.to_string()).collect();
        assert_eq!(printed, [":z", ":a/b", ":a/z", ":b/a"]);
    }
}
