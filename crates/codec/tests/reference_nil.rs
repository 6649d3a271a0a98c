//! `nil` inside tuple values (issue 11, item 13): Datahike's composite
//! tuples hold `nil` for a missing component. The chunk codec writes them
//! byte for byte as the reference (clojure.data.fressian) does, reads the
//! reference's bytes back to the same datoms, and the reference reads ours
//! — through the Clojure scripts in tests/clojure/codec/, skipped (with
//! `SKIPPED: …`) when `clojure` or the jars are missing, unless CI=true.
//! Without the reference, the round trip and the refusals still run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use datacamp_codec::chunk::{decode_chunk, encode_chunk_to_vec, from_fressian, to_fressian};
use datacamp_codec::compress::{gunzip_reader, gzip_compress};
use datacamp_codec::fressian::{codes, Value};
use datacamp_codec::CodecError;
use datacamp_datom::{Datom, Keyword, Value as DValue, TX0};

struct Clojure {
    classpath: String,
    scripts: PathBuf,
}

fn clojure() -> Option<Clojure> {
    let skip = |why: &str| {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("reference interop tests cannot run on CI: {why}");
        }
        // Straight to stderr: libtest captures `eprintln!`, not this.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIPPED: {why}\n").as_bytes(),
        );
        None
    };
    let found = Command::new("clojure").arg("-e").arg("nil").output();
    if !matches!(found, Ok(ref o) if o.status.success()) {
        return skip("clojure not found");
    }
    let classpath = match std::env::var("DATACAMP_FRESSIAN_CP") {
        Ok(cp) => cp,
        Err(_) => {
            let jars = [
                "/usr/share/java/data.fressian.jar",
                "/usr/share/java/fressian.jar",
            ];
            if let Some(missing) = jars.iter().find(|j| !Path::new(j).exists()) {
                return skip(&format!("{missing} not found (set DATACAMP_FRESSIAN_CP)"));
            }
            jars.join(":")
        }
    };
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clojure/codec");
    Some(Clojure { classpath, scripts })
}

impl Clojure {
    fn run(&self, script: &str, dir: &Path) -> Vec<String> {
        let out = Command::new("clojure")
            .arg("-cp")
            .arg(&self.classpath)
            .arg(self.scripts.join(script))
            .arg(dir)
            .output()
            .expect("running clojure");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{script} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().map(str::to_owned).collect()
    }
}

fn tuple(items: Vec<DValue>) -> DValue {
    DValue::Tuple(items.into())
}

/// Tuples with nil first, in the middle, last, only nils, nested, and
/// beside every kind of neighbour the composite tuples of Datahike hold.
fn nil_datoms() -> Vec<Datom> {
    let k = Keyword::parse;
    let values = vec![
        tuple(vec![DValue::Long(1), DValue::Nil, DValue::string("b")]),
        tuple(vec![DValue::Nil, DValue::keyword("x/y")]),
        tuple(vec![DValue::string("a"), DValue::Nil]),
        tuple(vec![DValue::Nil]),
        tuple(vec![DValue::Nil, DValue::Nil, DValue::Nil]),
        tuple(vec![tuple(vec![DValue::Nil, DValue::Long(2)]), DValue::Nil]),
        tuple(vec![
            DValue::Instant(1_700_000_000_000),
            DValue::Nil,
            DValue::Double(1.5),
        ]),
    ];
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Datom::new(100 + i as i64, k("item/pair"), v, TX0 + 1))
        .collect()
}

fn edn_chunk(id: u64, datoms: &[Datom]) -> String {
    let mut text = format!("{{:id {id}\n :datoms [\n");
    for d in datoms {
        text.push_str(&d.to_string());
        text.push('\n');
    }
    text.push_str("]}\n");
    text
}

#[test]
fn tuples_with_nil_round_trip_and_nil_is_null_on_the_wire() {
    let datoms = nil_datoms();
    let bytes = encode_chunk_to_vec(0, &datoms).unwrap();
    let (_, back) = decode_chunk(&bytes).unwrap();
    assert_eq!(back, datoms);
    // [1 nil "b"] is LIST_PACKED 3, 1, NULL, "b".
    let first = [
        codes::LIST_PACKED_LENGTH_START + 3,
        0x01,
        codes::NULL,
        codes::STRING_PACKED_LENGTH_START + 1,
        b'b',
    ];
    assert!(bytes.windows(first.len()).any(|w| w == first));
    // The generic model agrees.
    let v = tuple(vec![DValue::Long(1), DValue::Nil, DValue::string("b")]);
    assert_eq!(
        to_fressian(&v),
        Value::List(vec![Value::Int(1), Value::Null, Value::string("b")])
    );
    assert_eq!(from_fressian(to_fressian(&v)).unwrap(), v);
}

#[test]
fn nil_as_the_datom_value_itself_is_refused_both_ways() {
    let d = Datom::new(1, Keyword::parse("a/b"), DValue::Nil, TX0 + 1);
    let err = encode_chunk_to_vec(0, &[d]).unwrap_err();
    assert!(matches!(err, CodecError::Unencodable { .. }), "{err}");
    assert!(matches!(
        from_fressian(Value::Null),
        Err(CodecError::NotADatomValue { .. })
    ));
    // A chunk whose datom value is NULL: the value 7 replaced by NULL.
    let mut bytes = encode_chunk_to_vec(
        0,
        &[Datom::new(
            1,
            Keyword::parse("a/b"),
            DValue::Long(7),
            TX0 + 1,
        )],
    )
    .unwrap();
    let at = bytes.len() - 7;
    assert_eq!(bytes[at], 7);
    bytes[at] = codes::NULL;
    let err = decode_chunk(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("entity 1, attribute :a/b"),
        "{err}"
    );
}

#[test]
fn tuples_with_nil_match_the_reference_byte_for_byte_both_ways() {
    let Some(clj) = clojure() else { return };
    let dir = tempfile::tempdir().unwrap();
    let datoms = nil_datoms();
    std::fs::write(dir.path().join("nil.edn"), edn_chunk(5, &datoms)).unwrap();
    let out = clj.run("chunk_fixtures.clj", dir.path());
    assert_eq!(out.last().map(String::as_str), Some("DONE 1"));

    let theirs = std::fs::read(dir.path().join("nil.clj.fress")).unwrap();
    let theirs_gz = std::fs::read(dir.path().join("nil.clj.fress.gz")).unwrap();
    let ours = encode_chunk_to_vec(5, &datoms).unwrap();
    assert!(
        ours == theirs,
        "bytes differ at {:?}",
        ours.iter().zip(&theirs).position(|(a, b)| a != b)
    );
    let (header, decoded) = {
        let mut reader =
            datacamp_codec::chunk::ChunkReader::new(gunzip_reader(&theirs_gz[..])).unwrap();
        let decoded: Vec<Datom> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        (reader.header().clone(), decoded)
    };
    assert_eq!(header.chunk_id, Some(5));
    assert_eq!(decoded, datoms);

    std::fs::write(
        dir.path().join("nil.rust.fress.gz"),
        gzip_compress(&ours, 6).unwrap(),
    )
    .unwrap();
    let out = clj.run("chunk_check.clj", dir.path());
    assert_eq!(
        out,
        vec![format!("OK nil {}", datoms.len()), "DONE 1".to_owned()]
    );
}
