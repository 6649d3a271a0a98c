//! From [`Form`]s to values, datoms and tx-data.

use std::collections::HashSet;

use base64::Engine as _;

use super::reader::{Form, FormKind};
use super::EdnError;
use crate::datom::Datom;
use crate::keyword::Keyword;
use crate::tx::{EntityMap, EntityRef, TempId, TxOp, TxValue};
use crate::value::{parse_instant, Uuid, Value};

/// Longest statement text quoted in an error message.
const EXCERPT_CHARS: usize = 60;

/// Converts a form to a datom value; `text` is what the form was read from.
pub fn value_from_form(text: &str, form: &Form) -> Result<Value, EdnError> {
    let err = |message: String| EdnError::at(text, form.start, message);
    Ok(match &form.kind {
        FormKind::Boolean(b) => Value::Boolean(*b),
        FormKind::Long(n) => Value::Long(*n),
        FormKind::BigInt(n) => Value::BigInt(n.clone()),
        FormKind::Double(d) => Value::Double(*d),
        FormKind::BigDec(d) => Value::BigDec(d.clone()),
        FormKind::String(s) => Value::String(s.as_str().into()),
        FormKind::Keyword(k) => Value::Keyword(k.clone()),
        FormKind::Symbol(s) => Value::Symbol(s.clone()),
        FormKind::Vector(items) | FormKind::List(items) => Value::Tuple(
            items
                .iter()
                .map(|item| tuple_element_from_form(text, item))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        FormKind::Tagged(tag, inner) => tagged_value(text, form.start, tag.as_str(), inner)?,
        FormKind::Nil => return Err(err("nil is not a datom value".to_owned())),
        other @ (FormKind::Char(_) | FormKind::Map(_) | FormKind::Set(_)) => {
            return Err(err(format!(
                "{} is not a datom value; expected a scalar, a tagged literal or a tuple vector",
                other.describe()
            )));
        }
    })
}

/// An element of a tuple: a datom value or `nil` (a composite tuple's
/// missing component).
fn tuple_element_from_form(text: &str, form: &Form) -> Result<Value, EdnError> {
    match form.kind {
        FormKind::Nil => Ok(Value::Nil),
        _ => value_from_form(text, form),
    }
}

fn tagged_value(text: &str, tag_start: usize, tag: &str, inner: &Form) -> Result<Value, EdnError> {
    let err = |message: String| EdnError::at(text, inner.start, message);
    let string = || match &inner.kind {
        FormKind::String(s) => Ok(s.as_str()),
        other => Err(err(format!(
            "#{tag} must be followed by a string, found {}",
            other.describe()
        ))),
    };
    match tag {
        "inst" => {
            let s = string()?;
            parse_instant(s).map(Value::Instant).ok_or_else(|| {
                err(format!(
                    "#inst {s:?} is not an RFC 3339 timestamp like \"2025-10-18T19:51:32.123Z\" within ±292 million years"
                ))
            })
        }
        "uuid" => {
            let s = string()?;
            Uuid::parse_str(s)
                .map(Value::Uuid)
                .map_err(|e| err(format!("#uuid {s:?} is not a UUID: {e}")))
        }
        "datacamp/bytes" => {
            let s = string()?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| Value::Bytes(b.into()))
                .map_err(|e| {
                    err(format!(
                        "#datacamp/bytes {s:?} is not padded standard base64: {e}"
                    ))
                })
        }
        "datacamp/float" => match &inner.kind {
            // Read the digits as f32 directly: going through f64 would round
            // twice and could land on the wrong neighbour.
            FormKind::Double(d) => Ok(Value::Float(
                text.get(inner.start..inner.end)
                    .and_then(|digits| digits.parse::<f32>().ok())
                    .unwrap_or(*d as f32),
            )),
            FormKind::Long(n) => Ok(Value::Float(*n as f32)),
            other => Err(err(format!(
                "#datacamp/float must be followed by a number, found {}",
                other.describe()
            ))),
        },
        _ => Err(EdnError::at(
            text,
            tag_start,
            format!(
                "unknown tag #{tag}; expected #inst, #uuid, #datacamp/float or #datacamp/bytes"
            ),
        )),
    }
}

/// `[e a v tx added]` with `added` optional.
pub(super) fn datom(text: &str, form: &Form) -> Result<Datom, EdnError> {
    let items = match &form.kind {
        FormKind::Vector(items) | FormKind::List(items) if matches!(items.len(), 4 | 5) => items,
        other => {
            return Err(EdnError::at(
                text,
                form.start,
                format!(
                    "expected a datom [e a v tx added] (4 or 5 elements), found {}",
                    describe_seq(other)
                ),
            ));
        }
    };
    let long = |f: &Form, what: &str| match f.kind {
        FormKind::Long(n) => Ok(n),
        ref other => Err(EdnError::at(
            text,
            f.start,
            format!(
                "datom {what} must be an integer, found {}",
                other.describe()
            ),
        )),
    };
    let e = long(&items[0], "entity")?;
    let a = match &items[1].kind {
        FormKind::Keyword(k) => k.clone(),
        other => {
            return Err(EdnError::at(
                text,
                items[1].start,
                format!(
                    "datom attribute must be a keyword, found {}",
                    other.describe()
                ),
            ));
        }
    };
    let v = value_from_form(text, &items[2])?;
    let tx = long(&items[3], "tx")?;
    let added = match items.get(4).map(|f| (f, &f.kind)) {
        None => true,
        Some((_, FormKind::Boolean(b))) => *b,
        Some((f, other)) => {
            return Err(EdnError::at(
                text,
                f.start,
                format!(
                    "datom added flag must be true or false, found {}",
                    other.describe()
                ),
            ));
        }
    };
    Ok(Datom { e, a, v, tx, added })
}

fn describe_seq(kind: &FormKind) -> String {
    match kind {
        FormKind::Vector(items) => format!("a vector of {} elements", items.len()),
        FormKind::List(items) => format!("a list of {} elements", items.len()),
        other => other.describe(),
    }
}

/// Tx-data: a vector or list of statements.
pub(super) fn tx_data(text: &str, form: &Form) -> Result<Vec<TxOp>, EdnError> {
    let statements = match &form.kind {
        FormKind::Vector(items) | FormKind::List(items) => items,
        other => {
            return Err(EdnError::at(
                text,
                form.start,
                format!(
                    "tx-data must be a vector of statements such as [{{:db/id \"x\" :attr value}} [:db/add e :attr value]], found {}",
                    other.describe()
                ),
            ));
        }
    };
    statements
        .iter()
        .enumerate()
        .map(|(i, stmt)| {
            Statement {
                text,
                number: i + 1,
                form: stmt,
            }
            .convert()
        })
        .collect()
}

/// One statement being converted; errors name it by number and text.
struct Statement<'a> {
    text: &'a str,
    number: usize,
    form: &'a Form,
}

impl Statement<'_> {
    fn err(&self, at: &Form, message: impl std::fmt::Display) -> EdnError {
        let source = self.text.get(self.form.start..self.form.end).unwrap_or("");
        let one_line: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
        let excerpt = if one_line.chars().count() > EXCERPT_CHARS {
            let cut: String = one_line.chars().take(EXCERPT_CHARS).collect();
            format!("{cut}…")
        } else {
            one_line
        };
        EdnError::at(
            self.text,
            at.start,
            format!("statement {} {excerpt}: {message}", self.number),
        )
    }

    fn convert(&self) -> Result<TxOp, EdnError> {
        match &self.form.kind {
            FormKind::Map(entries) => Ok(TxOp::Entity(self.entity_map(entries)?)),
            FormKind::Vector(items) | FormKind::List(items) => self.operation(items),
            other => Err(self.err(
                self.form,
                format!(
                    "expected an entity map or an operation vector such as [:db/add e :attr value], found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn operation(&self, items: &[Form]) -> Result<TxOp, EdnError> {
        let Some(first) = items.first() else {
            return Err(self.err(
                self.form,
                "empty operation; expected [:db/add e :attr value]",
            ));
        };
        let op = match &first.kind {
            FormKind::Keyword(k) => k,
            other => {
                return Err(self.err(
                    first,
                    format!("an operation starts with :db/add, :db/retract or :db/retractEntity, found {}", other.describe()),
                ));
            }
        };
        let args = &items[1..];
        let arity = |expected: &str| {
            self.err(
                self.form,
                format!(
                    "{op} takes {expected}, got {} argument{}",
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
            )
        };
        match (op.namespace(), op.name()) {
            (Some("db"), "add") => match args {
                [e, a, v] => Ok(TxOp::Add {
                    e: self.entity(e)?,
                    a: self.attribute(a)?,
                    v: self.tx_value(v)?,
                }),
                _ => Err(arity("an entity, an attribute and a value (3 arguments)")),
            },
            (Some("db"), "retract") => match args {
                [e, a, v] => Ok(TxOp::Retract {
                    e: self.entity(e)?,
                    a: self.attribute(a)?,
                    v: Some(self.tx_value(v)?),
                }),
                [e, a] => Ok(TxOp::Retract {
                    e: self.entity(e)?,
                    a: self.attribute(a)?,
                    v: None,
                }),
                _ => Err(arity(
                    "an entity, an attribute and optionally a value (2 or 3 arguments)",
                )),
            },
            (Some("db" | "db.fn"), "retractEntity") => match args {
                [e] => Ok(TxOp::RetractEntity { e: self.entity(e)? }),
                _ => Err(arity("one entity (1 argument)")),
            },
            _ => Err(self.err(
                first,
                format!(
                    "unknown operation {op}; expected :db/add, :db/retract or :db/retractEntity"
                ),
            )),
        }
    }

    fn entity_map(&self, entries: &[(Form, Form)]) -> Result<EntityMap, EdnError> {
        let mut map = EntityMap::default();
        let mut seen = HashSet::with_capacity(entries.len());
        for (key, value) in entries {
            let attr = match &key.kind {
                FormKind::Keyword(k) => k,
                other => {
                    return Err(self.err(
                        key,
                        format!(
                            "entity map keys must be keywords, found {}",
                            other.describe()
                        ),
                    ));
                }
            };
            if !seen.insert(attr) {
                return Err(self.err(key, format!("duplicate key {attr} in entity map")));
            }
            if attr.namespace() == Some("db") && attr.name() == "id" {
                map.id = Some(self.entity(value)?);
            } else {
                map.attrs
                    .push((attr.clone(), self.tx_value_for(attr, value)?));
            }
        }
        Ok(map)
    }

    fn entity(&self, form: &Form) -> Result<EntityRef, EdnError> {
        Ok(match &form.kind {
            FormKind::Long(n) if *n >= 0 => EntityRef::Id(*n),
            FormKind::Long(n) => EntityRef::Temp(TempId::Neg(*n)),
            FormKind::String(s) => EntityRef::Temp(TempId::Str(s.clone())),
            FormKind::Keyword(k) => EntityRef::Ident(k.clone()),
            FormKind::Vector(items) | FormKind::List(items) => match items.as_slice() {
                [Form {
                    kind: FormKind::Keyword(attr),
                    ..
                }, value] => EntityRef::Lookup(
                    attr.clone(),
                    value_from_form(self.text, value).map_err(|e| self.wrap(e))?,
                ),
                _ => {
                    return Err(self.err(
                        form,
                        "a lookup ref is a vector of an attribute and a value, such as [:person/email \"a@b.c\"]",
                    ));
                }
            },
            other => {
                return Err(self.err(
                    form,
                    format!(
                        "expected an entity: an id, a tempid string, a negative tempid, a lookup ref [:attr value] or an ident keyword, found {}",
                        other.describe()
                    ),
                ));
            }
        })
    }

    fn attribute(&self, form: &Form) -> Result<Keyword, EdnError> {
        match &form.kind {
            FormKind::Keyword(k) => Ok(k.clone()),
            other => Err(self.err(
                form,
                format!("attribute must be a keyword, found {}", other.describe()),
            )),
        }
    }

    fn tx_value(&self, form: &Form) -> Result<TxValue, EdnError> {
        Ok(match &form.kind {
            FormKind::Map(entries) => TxValue::Map(self.entity_map(entries)?),
            FormKind::Vector(items) | FormKind::List(items) | FormKind::Set(items) => {
                TxValue::List(
                    items
                        .iter()
                        .map(|item| match item.kind {
                            // A tuple's missing component; nil is refused
                            // anywhere else (no value type accepts it).
                            FormKind::Nil => Ok(TxValue::Scalar(Value::Nil)),
                            _ => self.tx_value(item),
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            FormKind::Nil => {
                return Err(self.err(form, "nil is not a value; use :db/retract to remove one"))
            }
            _ => TxValue::Scalar(value_from_form(self.text, form).map_err(|e| self.wrap(e))?),
        })
    }

    /// As [`Statement::tx_value`], naming the attribute when the value is nil.
    fn tx_value_for(&self, attr: &Keyword, form: &Form) -> Result<TxValue, EdnError> {
        if matches!(form.kind, FormKind::Nil) {
            return Err(self.err(
                form,
                format!("nil is not a value (attribute {attr}); leave the key out instead"),
            ));
        }
        self.tx_value(form)
    }

    /// Adds the statement's name to an error from value conversion.
    fn wrap(&self, inner: EdnError) -> EdnError {
        let mut named = self.err(self.form, inner.message);
        named.line = inner.line;
        named.column = inner.column;
        named
    }
}
