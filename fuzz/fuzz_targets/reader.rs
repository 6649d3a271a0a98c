//! Arbitrary bytes into the generic Fressian reader. Every value of the
//! stream is decoded; a decoded value the writer accepts must re-encode to
//! bytes that decode and re-encode to the same bytes (encoding canonicalises
//! NaN payloads, so compare bytes, not values).
#![no_main]

use datacamp_codec::fressian::{self, ReadOptions, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::with_options(data, ReadOptions::default().max_depth(64));
    while let Ok(Some(value)) = reader.next_value() {
        if let Ok(bytes) = fressian::to_vec(&value) {
            let again = fressian::from_slice(&bytes).expect("re-encoded value decodes");
            let bytes_again = fressian::to_vec(&again).expect("decoded value encodes");
            assert_eq!(bytes, bytes_again, "encoding is stable");
        }
    }
});
