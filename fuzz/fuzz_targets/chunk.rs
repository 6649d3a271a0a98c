//! Arbitrary bytes into the datom-chunk decoder. Decoded datoms must
//! re-encode to a chunk that decodes and re-encodes to the same bytes.
#![no_main]

use datacamp_codec::chunk::{decode_chunk, encode_chunk_to_vec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, datoms)) = decode_chunk(data) {
        let id = header.chunk_id.unwrap_or(0);
        let bytes = encode_chunk_to_vec(id, &datoms).expect("decoded datoms encode");
        let (_, again) = decode_chunk(&bytes).expect("re-encoded chunk decodes");
        assert_eq!(again.len(), datoms.len());
        let bytes_again = encode_chunk_to_vec(id, &again).expect("decoded datoms encode");
        assert_eq!(bytes, bytes_again, "encoding is stable");
    }
});
