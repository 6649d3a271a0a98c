//! Byte codes and range constants of the Fressian format, as defined by the
//! reference implementation (`org.fressian.impl.Codes` and `Ranges`).

#![allow(missing_docs)]

pub const PRIORITY_CACHE_PACKED_START: u8 = 0x80;
pub const PRIORITY_CACHE_PACKED_END: u8 = 0xA0;
pub const STRUCT_CACHE_PACKED_START: u8 = 0xA0;
pub const STRUCT_CACHE_PACKED_END: u8 = 0xB0;
pub const LONG_ARRAY: u8 = 0xB0;
pub const DOUBLE_ARRAY: u8 = 0xB1;
pub const BOOLEAN_ARRAY: u8 = 0xB2;
pub const INT_ARRAY: u8 = 0xB3;
pub const FLOAT_ARRAY: u8 = 0xB4;
pub const OBJECT_ARRAY: u8 = 0xB5;
pub const MAP: u8 = 0xC0;
pub const SET: u8 = 0xC1;
pub const UUID: u8 = 0xC3;
pub const REGEX: u8 = 0xC4;
pub const URI: u8 = 0xC5;
pub const BIGINT: u8 = 0xC6;
pub const BIGDEC: u8 = 0xC7;
pub const INST: u8 = 0xC8;
pub const SYM: u8 = 0xC9;
pub const KEY: u8 = 0xCA;
pub const GET_PRIORITY_CACHE: u8 = 0xCC;
pub const PUT_PRIORITY_CACHE: u8 = 0xCD;
pub const PRECACHE: u8 = 0xCE;
pub const FOOTER: u8 = 0xCF;
pub const FOOTER_MAGIC: u32 = 0xCFCF_CFCF;
pub const BYTES_PACKED_LENGTH_START: u8 = 0xD0;
pub const BYTES_PACKED_LENGTH_END: u8 = 0xD8;
pub const BYTES_CHUNK: u8 = 0xD8;
pub const BYTES: u8 = 0xD9;
pub const STRING_PACKED_LENGTH_START: u8 = 0xDA;
pub const STRING_PACKED_LENGTH_END: u8 = 0xE2;
pub const STRING_CHUNK: u8 = 0xE2;
pub const STRING: u8 = 0xE3;
pub const LIST_PACKED_LENGTH_START: u8 = 0xE4;
pub const LIST_PACKED_LENGTH_END: u8 = 0xEC;
pub const LIST: u8 = 0xEC;
pub const BEGIN_CLOSED_LIST: u8 = 0xED;
pub const BEGIN_OPEN_LIST: u8 = 0xEE;
pub const STRUCTTYPE: u8 = 0xEF;
pub const STRUCT: u8 = 0xF0;
pub const META: u8 = 0xF1;
pub const ANY: u8 = 0xF4;
pub const TRUE: u8 = 0xF5;
pub const FALSE: u8 = 0xF6;
pub const NULL: u8 = 0xF7;
pub const INT: u8 = 0xF8;
pub const FLOAT: u8 = 0xF9;
pub const DOUBLE: u8 = 0xFA;
pub const DOUBLE_0: u8 = 0xFB;
pub const DOUBLE_1: u8 = 0xFC;
pub const END_COLLECTION: u8 = 0xFD;
pub const RESET_CACHES: u8 = 0xFE;
pub const INT_PACKED_2_ZERO: u8 = 0x50;
pub const INT_PACKED_3_ZERO: u8 = 0x68;
pub const INT_PACKED_4_ZERO: u8 = 0x72;
pub const INT_PACKED_5_ZERO: u8 = 0x76;
pub const INT_PACKED_6_ZERO: u8 = 0x7A;
pub const INT_PACKED_7_ZERO: u8 = 0x7E;

/// Priority-cache indices below this get a one-byte reference.
pub const PRIORITY_CACHE_PACKED_COUNT: u32 = 32;
/// Struct-cache indices below this get a one-byte reference.
pub const STRUCT_CACHE_PACKED_COUNT: u32 = 16;
/// Strings, byte arrays and lists shorter than this have packed lengths.
pub const PACKED_LENGTH_COUNT: usize = 8;
/// The writer cuts byte arrays into chunks of this many bytes.
pub const BYTE_CHUNK_SIZE: usize = 65_535;
/// The writer's string buffer: no string chunk holds more encoded bytes.
pub const STRING_CHUNK_SIZE: usize = 65_536;

/// The specification's name of a code, for error messages.
pub fn name(code: u8) -> &'static str {
    match code {
        0x00..=0x3F | 0xFF => "packed int, 1 byte",
        0x40..=0x5F => "packed int, 2 bytes",
        0x60..=0x6F => "packed int, 3 bytes",
        0x70..=0x73 => "packed int, 4 bytes",
        0x74..=0x77 => "packed int, 5 bytes",
        0x78..=0x7B => "packed int, 6 bytes",
        0x7C..=0x7F => "packed int, 7 bytes",
        0x80..=0x9F => "PRIORITY_CACHE_PACKED",
        0xA0..=0xAF => "STRUCT_CACHE_PACKED",
        LONG_ARRAY => "LONG_ARRAY",
        DOUBLE_ARRAY => "DOUBLE_ARRAY",
        BOOLEAN_ARRAY => "BOOLEAN_ARRAY",
        INT_ARRAY => "INT_ARRAY",
        FLOAT_ARRAY => "FLOAT_ARRAY",
        OBJECT_ARRAY => "OBJECT_ARRAY",
        MAP => "MAP",
        SET => "SET",
        UUID => "UUID",
        REGEX => "REGEX",
        URI => "URI",
        BIGINT => "BIGINT",
        BIGDEC => "BIGDEC",
        INST => "INST",
        SYM => "SYM",
        KEY => "KEY",
        GET_PRIORITY_CACHE => "GET_PRIORITY_CACHE",
        PUT_PRIORITY_CACHE => "PUT_PRIORITY_CACHE",
        PRECACHE => "PRECACHE",
        FOOTER => "FOOTER",
        0xD0..=0xD7 => "BYTES_PACKED_LENGTH",
        BYTES_CHUNK => "BYTES_CHUNK",
        BYTES => "BYTES",
        0xDA..=0xE1 => "STRING_PACKED_LENGTH",
        STRING_CHUNK => "STRING_CHUNK",
        STRING => "STRING",
        0xE4..=0xEB => "LIST_PACKED_LENGTH",
        LIST => "LIST",
        BEGIN_CLOSED_LIST => "BEGIN_CLOSED_LIST",
        BEGIN_OPEN_LIST => "BEGIN_OPEN_LIST",
        STRUCTTYPE => "STRUCTTYPE",
        STRUCT => "STRUCT",
        META => "META",
        ANY => "ANY",
        TRUE => "TRUE",
        FALSE => "FALSE",
        NULL => "NULL",
        INT => "INT",
        FLOAT => "FLOAT",
        DOUBLE => "DOUBLE",
        DOUBLE_0 => "DOUBLE_0",
        DOUBLE_1 => "DOUBLE_1",
        END_COLLECTION => "END_COLLECTION",
        RESET_CACHES => "RESET_CACHES",
        _ => "unassigned",
    }
}

/// The shortcut code the reference writer uses instead of a struct type for
/// these built-in tags (`Handlers.tagToCode`).
pub fn tag_code(tag: &str) -> Option<u8> {
    Some(match tag {
        "map" => MAP,
        "set" => SET,
        "uuid" => UUID,
        "regex" => REGEX,
        "uri" => URI,
        "bigint" => BIGINT,
        "bigdec" => BIGDEC,
        "inst" => INST,
        "sym" => SYM,
        "key" => KEY,
        "int[]" => INT_ARRAY,
        "float[]" => FLOAT_ARRAY,
        "double[]" => DOUBLE_ARRAY,
        "long[]" => LONG_ARRAY,
        "boolean[]" => BOOLEAN_ARRAY,
        "Object[]" => OBJECT_ARRAY,
        _ => return None,
    })
}
