//! Prints every top-level value of a Fressian file (gzip'd or not), one
//! per line, as `fressian::Value`'s debug form.
//!
//! ```text
//! cargo run -p datacamp-codec --example print_fressian -- FILE
//! ```
//!
//! (`datacamp inspect fressian FILE` prints the same as EDN.)

use std::io::{BufReader, Read};

use datacamp_codec::fressian::Value;
use datacamp_codec::Deserializer;
use serde::Deserialize;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or("usage: print_fressian FILE")?;
    let mut file = BufReader::new(std::fs::File::open(&path)?);
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let input: Box<dyn Read> = if magic[..n] == [0x1F, 0x8B] {
        Box::new(datacamp_codec::compress::gunzip_reader(head.chain(file)))
    } else {
        Box::new(head.chain(file))
    };
    let mut de = Deserializer::from_reader(input);
    while de.has_next()? {
        let value = Value::deserialize(&mut de)?;
        println!("{value:?}");
    }
    Ok(())
}
