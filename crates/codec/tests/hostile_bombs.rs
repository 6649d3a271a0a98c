//! Decompression bombs (issue 11, item 10): a small gzip stream that
//! inflates to far more datoms than its manifest entry says, and one whose
//! single string claims 2 GiB. Each must fail with a limit error naming
//! the limit, and memory must stay bounded: every scenario runs in a child
//! process (this test binary, re-run with `BOMB_CHILD` set) that reports
//! its peak RSS from `getrusage`, so the measurement is of the decode
//! alone, not of tests running beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;

use datacamp_codec::chunk::{encode_chunk_to_vec, ChunkLimits, ChunkReader};
use datacamp_codec::compress::gunzip_reader;
use datacamp_codec::fressian::{codes, ReadOptions, Reader};
use datacamp_codec::CodecError;
use datacamp_datom::{Datom, Keyword, Value, TX0};

/// Peak RSS a child may reach: the bombs inflate to 300 MB and 2 GiB.
const RSS_LIMIT_KB: i64 = 96 * 1024;

const CHILD_ENV: &str = "BOMB_CHILD";

/// Runs `scenario` in a child process when this is the parent, or runs it
/// here and prints its outcome when this is the child; returns the child's
/// outcome line and peak RSS in KiB.
fn in_child(name: &str, scenario: fn() -> String) -> Option<(String, i64)> {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        let outcome = scenario();
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
        println!("OUTCOME {outcome}");
        println!("MAXRSS {}", usage.max_rss());
        return None;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {name} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(tag).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("child {name} printed no {tag}: {stdout}"))
            .to_owned()
    };
    Some((line("OUTCOME "), line("MAXRSS ").trim().parse().unwrap()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    datacamp_codec::compress::gzip_compress(data, 9).unwrap()
}

fn datom(e: i64) -> Datom {
    Datom::new(e, Keyword::parse("bomb/n"), Value::Long(7), TX0 + 1)
}

/// The parts of a chunk document as the reference writes it: the header
/// up to the `:datoms` list's length, the first datom (which puts its
/// keyword in the cache) and a following datom (which refers to it).
struct Parts {
    head: Vec<u8>,
    first: Vec<u8>,
    next: Vec<u8>,
}

fn parts() -> Parts {
    let empty = encode_chunk_to_vec(0, &[]).unwrap();
    let one = encode_chunk_to_vec(0, &[datom(1)]).unwrap();
    let two = encode_chunk_to_vec(0, &[datom(1), datom(1)]).unwrap();
    // The list length is one packed byte for 0, 1 and 2 datoms.
    let head = empty[..empty.len() - 1].to_vec();
    Parts {
        first: one[empty.len()..].to_vec(),
        next: two[one.len()..].to_vec(),
        head,
    }
}

/// A gzip stream of concatenated members (read as one stream, as Java's
/// `GZIPInputStream` does): `prefix`, then `unit` repeated `times` × per
/// member, then `suffix`. One member is compressed once and repeated, so
/// building a 2 GiB bomb costs a few megabytes and milliseconds.
fn bomb(prefix: &[u8], unit: &[u8], per_member: usize, times: usize, suffix: &[u8]) -> Vec<u8> {
    let mut out = gzip(prefix);
    let member = gzip(&unit.repeat(per_member));
    for _ in 0..times {
        out.extend_from_slice(&member);
    }
    out.extend(gzip(suffix));
    out
}

/// 30 M datoms in about a megabyte of gzip, in an open `:datoms` list (so
/// no count is announced up front).
fn datom_bomb() -> Vec<u8> {
    let p = parts();
    let mut prefix = p.head.clone();
    prefix.push(codes::BEGIN_OPEN_LIST);
    prefix.extend_from_slice(&p.first);
    let per_member = 100_000;
    bomb(
        &prefix,
        &p.next,
        per_member,
        30_000_000 / per_member,
        &[codes::END_COLLECTION],
    )
}

/// Decodes datoms until the end or an error: how many came out, and the
/// error.
fn drain(reader: Result<ChunkReader<impl std::io::Read>, CodecError>) -> (u64, Option<CodecError>) {
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => return (0, Some(e)),
    };
    let mut n = 0;
    loop {
        match reader.next_datom() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return (n, None),
            Err(e) => return (n, Some(e)),
        }
    }
}

fn describe(result: (u64, Option<CodecError>)) -> String {
    match result {
        (n, None) => format!("ok {n} datoms"),
        (n, Some(CodecError::Limit { offset, reason })) => {
            format!("limit after {n} datoms at {offset}: {reason}")
        }
        (n, Some(e)) => format!("other error after {n} datoms: {e}"),
    }
}

#[test]
fn datom_bomb_fails_on_the_first_datom_beyond_the_expected_count() {
    let Some((outcome, rss)) = in_child(
        "datom_bomb_fails_on_the_first_datom_beyond_the_expected_count",
        || {
            let gz = datom_bomb();
            assert!(gz.len() < 2 << 20, "the bomb is {} bytes", gz.len());
            let limits = ChunkLimits::default().max_datoms(Some(1000));
            describe(drain(ChunkReader::with_limits(
                gunzip_reader(&gz[..]),
                ReadOptions::default(),
                limits,
            )))
        },
    ) else {
        return;
    };
    assert!(
        outcome.starts_with("limit after 1000 datoms")
            && outcome.contains("holds more than the 1000 datoms expected"),
        "{outcome}"
    );
    assert!(rss < RSS_LIMIT_KB, "peak RSS {rss} KiB");
}

#[test]
fn datom_bomb_inflates_no_further_than_the_document_limit() {
    let Some((outcome, rss)) = in_child(
        "datom_bomb_inflates_no_further_than_the_document_limit",
        || {
            let gz = datom_bomb();
            let limits = ChunkLimits::default().max_document_bytes(4 << 20);
            describe(drain(ChunkReader::with_limits(
                gunzip_reader(&gz[..]),
                ReadOptions::default(),
                limits,
            )))
        },
    ) else {
        return;
    };
    // Each datom is a few bytes: well under 4 MiB of them decode, then the
    // byte after the limit is an error at the limit's offset.
    assert!(outcome.starts_with("limit after "), "{outcome}");
    assert!(
        outcome.contains(&format!("at {}:", 4u64 << 20)),
        "{outcome}"
    );
    assert!(
        outcome.contains("longer than its limit of 4194304 bytes"),
        "{outcome}"
    );
    assert!(rss < RSS_LIMIT_KB, "peak RSS {rss} KiB");
}

#[test]
fn an_announced_count_beyond_the_expected_one_is_refused_on_opening() {
    let datoms: Vec<Datom> = (1..=5).map(datom).collect();
    let doc = encode_chunk_to_vec(0, &datoms).unwrap();
    let limits = ChunkLimits::default().max_datoms(Some(4));
    let err = ChunkReader::with_limits(&doc[..], ReadOptions::default(), limits).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("announces 5 datoms, more than the 4 expected"),
        "{err}"
    );
    // The exact count passes.
    let limits = ChunkLimits::default().max_datoms(Some(5));
    let (n, err) = drain(ChunkReader::with_limits(
        &doc[..],
        ReadOptions::default(),
        limits,
    ));
    assert_eq!((n, err.map(|e| e.to_string())), (5, None));
}

/// A chunk whose one datom holds a string of 2^31 - 1 bytes of `a`, in
/// about 2 MB of gzip.
fn string_bomb() -> Vec<u8> {
    let p = parts();
    let len = i32::MAX as usize;
    let mut prefix = p.head.clone();
    prefix.push(codes::LIST_PACKED_LENGTH_START + 1);
    // The first datom with its value replaced: the value `7` is one packed
    // byte before the transaction id (5 bytes) and the added flag.
    let v = p.first.len() - 7;
    assert_eq!(p.first[v], 7);
    let mut first = p.first[..v].to_vec();
    first.push(codes::STRING);
    first.push(codes::INT);
    first.extend_from_slice(&(len as u64).to_be_bytes());
    prefix.extend_from_slice(&first);
    let per_member = 1 << 20;
    let mut suffix = vec![b'a'; len % per_member];
    suffix.extend_from_slice(&p.first[v + 1..]);
    bomb(&prefix, b"a", per_member, len / per_member, &suffix)
}

#[test]
fn string_bomb_is_refused_before_it_is_read() {
    let Some((outcome, rss)) = in_child("string_bomb_is_refused_before_it_is_read", || {
        let gz = string_bomb();
        assert!(gz.len() < 4 << 20, "the bomb is {} bytes", gz.len());
        // The default limits: 1 GiB of document, whatever the manifest.
        describe(drain(ChunkReader::new(gunzip_reader(&gz[..]))))
    }) else {
        return;
    };
    assert!(outcome.starts_with("limit after 0 datoms"), "{outcome}");
    assert!(
        outcome.contains("claims 2147483647 bytes")
            && outcome.contains("limit of 1073741824 bytes"),
        "{outcome}"
    );
    assert!(rss < RSS_LIMIT_KB, "peak RSS {rss} KiB");
}

#[test]
fn string_bomb_within_a_tighter_manifest_limit_is_refused_too() {
    let Some((outcome, rss)) = in_child(
        "string_bomb_within_a_tighter_manifest_limit_is_refused_too",
        || {
            let gz = string_bomb();
            let limits = ChunkLimits::default().max_document_bytes(1 << 20);
            describe(drain(ChunkReader::with_limits(
                gunzip_reader(&gz[..]),
                ReadOptions::default(),
                limits,
            )))
        },
    ) else {
        return;
    };
    assert!(outcome.contains("claims 2147483647 bytes"), "{outcome}");
    assert!(rss < RSS_LIMIT_KB, "peak RSS {rss} KiB");
}

#[test]
fn generic_reader_bounds_strings_bytes_and_lists_by_the_input_limit() {
    // A string, a byte array, a list and a long[] that each claim 2^31 - 1
    // elements in a 64-byte input: refused at their length, as a limit,
    // not read until the input ends.
    let mut claims = Vec::new();
    for code in [codes::STRING, codes::BYTES, codes::LIST, codes::LONG_ARRAY] {
        let mut b = vec![code, codes::INT];
        b.extend_from_slice(&(i32::MAX as u64).to_be_bytes());
        b.resize(64, 0);
        claims.push(b);
    }
    for bytes in claims {
        let mut r = Reader::with_options(&bytes[..], ReadOptions::default().max_input_bytes(64));
        let err = r.read_value().unwrap_err();
        assert!(
            matches!(&err, CodecError::Limit { reason, .. } if reason.contains("claims 2147483647")),
            "code 0x{:02X}: {err}",
            bytes[0]
        );
    }
    // Input beyond the limit is an error at the limit.
    let doc =
        datacamp_codec::fressian::to_vec(&datacamp_codec::fressian::Value::string("x".repeat(100)))
            .unwrap();
    let mut r = Reader::with_options(&doc[..], ReadOptions::default().max_input_bytes(50));
    assert!(matches!(
        r.read_value().unwrap_err(),
        CodecError::Limit { .. }
    ));
    let mut r = Reader::with_options(
        &doc[..],
        ReadOptions::default().max_input_bytes(doc.len() as u64),
    );
    assert!(r.read_value().is_ok());
}

#[test]
fn generic_datoms_list_is_bounded_by_the_expected_count() {
    // `:datoms` behind a cache put is read as a tree; the expected count
    // still bounds it (beyond the floor of 65,536 elements any list may
    // hold), before the datoms are converted.
    // Each datom names its attribute inline (no cache references, which
    // the cache put in front would shift).
    let mut unit = vec![codes::LIST_PACKED_LENGTH_START + 5, 1, codes::KEY];
    unit.push(codes::STRING_PACKED_LENGTH_START + 4);
    unit.extend_from_slice(b"bomb");
    unit.push(codes::STRING_PACKED_LENGTH_START + 1);
    unit.extend_from_slice(b"n");
    unit.extend_from_slice(&[7, 5, codes::TRUE]);
    let p = parts();
    let n = 70_000;
    let mut doc = p.head.clone();
    doc.push(codes::PUT_PRIORITY_CACHE);
    doc.push(codes::BEGIN_CLOSED_LIST);
    for _ in 0..n {
        doc.extend_from_slice(&unit);
    }
    doc.push(codes::END_COLLECTION);
    let (count, err) = drain(ChunkReader::new(&doc[..]));
    assert_eq!(
        (count, err.map(|e| e.to_string())),
        (n as u64, None),
        "the form is readable"
    );
    let limits = ChunkLimits::default().max_datoms(Some(10));
    let err = ChunkReader::with_limits(&doc[..], ReadOptions::default(), limits).unwrap_err();
    assert!(
        matches!(&err, CodecError::Limit { reason, .. } if reason.contains("more than 65536 elements")),
        "{err}"
    );
    let _ = std::io::stdout().flush();
}
