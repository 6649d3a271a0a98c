//! `datacamp inspect fressian FILE [--gzip auto|yes|no]`: any Fressian
//! stream as EDN, one top-level value per line; malformed input is an error
//! naming the byte offset, with exit code 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp::codec::compress::gzip_compress;
use datacamp::codec::fressian::{Value, Writer};
use datacamp_tests::datacamp;

/// Three top-level values, a footer between the first two, cache
/// references in the third.
fn stream() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    w.write_value(&Value::Map(vec![(
        Value::keyword(Some("db"), "id"),
        Value::Int(42),
    )]))
    .unwrap();
    w.write_footer().unwrap();
    w.write_value(&Value::Inst(0)).unwrap();
    w.write_value(&Value::List(vec![
        Value::keyword(Some("a"), "b"),
        Value::keyword(Some("a"), "b"),
        Value::Set(vec![Value::string("s")]),
        Value::Tagged {
            tag: "my/rec".into(),
            fields: vec![Value::BigInt(7.into())],
        },
    ]))
    .unwrap();
    w.into_inner().unwrap()
}

const EXPECTED: &str = "{:db/id 42}\n#inst \"1970-01-01T00:00:00.000-00:00\"\n[:a/b :a/b #{\"s\"} #fressian/struct [\"my/rec\" 7N]]\n";

#[test]
fn prints_each_top_level_value_as_edn_plain_or_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("stream.fressian");
    let gz = dir.path().join("stream.fressian.gz");
    std::fs::write(&plain, stream()).unwrap();
    std::fs::write(&gz, gzip_compress(&stream(), 6).unwrap()).unwrap();
    for (file, mode) in [
        (&plain, "auto"),
        (&plain, "no"),
        (&gz, "auto"),
        (&gz, "yes"),
    ] {
        let run = datacamp(&[
            "inspect",
            "fressian",
            file.to_str().unwrap(),
            "--gzip",
            mode,
        ])
        .expect_code(0);
        assert_eq!(run.stdout, EXPECTED, "{mode}");
    }
    let run = datacamp(&["inspect", "fressian", plain.to_str().unwrap()]).expect_code(0);
    assert_eq!(run.stdout, EXPECTED);
}

#[test]
fn the_wrong_gzip_mode_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("stream.fressian");
    let gz = dir.path().join("stream.fressian.gz");
    std::fs::write(&plain, stream()).unwrap();
    std::fs::write(&gz, gzip_compress(&stream(), 6).unwrap()).unwrap();
    let run =
        datacamp(&["inspect", "fressian", gz.to_str().unwrap(), "--gzip", "no"]).expect_code(1);
    assert!(
        run.stderr.contains("cannot read Fressian file"),
        "{}",
        run.stderr
    );
    // 0x1F (the first gzip byte) is the int 31; 0x8B refers to a cache
    // entry that does not exist.
    assert_eq!(run.stdout, "31\n");
    assert!(
        run.stderr.contains("at byte offset 1 is invalid"),
        "{}",
        run.stderr
    );
    let run = datacamp(&[
        "inspect",
        "fressian",
        plain.to_str().unwrap(),
        "--gzip",
        "yes",
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains("cannot read Fressian file"),
        "{}",
        run.stderr
    );
    let run = datacamp(&[
        "inspect",
        "fressian",
        plain.to_str().unwrap(),
        "--gzip",
        "maybe",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn hostile_input_is_an_error_with_the_byte_offset_after_the_good_values() {
    let dir = tempfile::tempdir().unwrap();
    let good = stream();
    // Truncated in the middle of the third value.
    let cut = dir.path().join("cut.fressian");
    std::fs::write(&cut, &good[..good.len() - 3]).unwrap();
    let run = datacamp(&["inspect", "fressian", cut.to_str().unwrap()]).expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, EXPECTED.lines().take(2).collect::<Vec<_>>());
    assert!(
        run.stderr.contains(&format!(
            "unexpected end of input at byte offset {}",
            good.len() - 3
        )),
        "{}",
        run.stderr
    );
    // A code no Fressian value starts with, at a known offset.
    let mut bad = good.clone();
    bad.push(0xF3);
    let badf = dir.path().join("bad.fressian");
    std::fs::write(&badf, &bad).unwrap();
    let run = datacamp(&["inspect", "fressian", badf.to_str().unwrap()]).expect_code(1);
    assert_eq!(run.stdout, EXPECTED);
    assert!(
        run.stderr.contains(&format!(
            "unexpected code 0xF3 (unassigned) at byte offset {}",
            good.len()
        )),
        "{}",
        run.stderr
    );
    // A length prefix far beyond the file is refused without allocating it.
    let lie = dir.path().join("lie.fressian");
    std::fs::write(&lie, [0xD9, 0xF8, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]).unwrap();
    let run = datacamp(&["inspect", "fressian", lie.to_str().unwrap()]).expect_code(1);
    assert!(run.stderr.contains("byte offset"), "{}", run.stderr);
    // A missing file names the file.
    let run = datacamp(&["inspect", "fressian", "/nonexistent/x.fressian"]).expect_code(1);
    assert!(
        run.stderr.contains("/nonexistent/x.fressian"),
        "{}",
        run.stderr
    );
}
