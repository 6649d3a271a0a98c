//! The full restore's read pipeline, as named steps: **fetch** the chunks
//! `parallel` ahead (async), then on up to `parallel` blocking threads at
//! once **check** each chunk's checksum, **inflate** and **decode** it
//! (through [`open_chunk`], the one place stored bytes become datoms) into
//! batches, which the load takes **in manifest order**.
//!
//! Memory is bounded by batches, not by chunks (a 64 MiB chunk decodes to
//! a few hundred MB of datoms): each decoder holds at most two batches of
//! [`BATCH_DATOMS`] ahead of the load (one queued, one waiting to be), and
//! at most `parallel + 2` chunks are in flight between the fetch and the
//! load, of which at most `parallel` are being decoded. A decoder ahead of
//! the load waits for it; the load never waits for a later chunk.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use bytes::Bytes;
use datacamp_codec::compress::Compression;
use datacamp_datom::Datom;
use datacamp_manifest::ChunkInfo;
use datacamp_storage::{BackupStore, Key};
use futures::StreamExt;
use tokio::sync::{mpsc, Semaphore};

use crate::error::{Error, Result};
use crate::read::{check_checksum, chunk_error, open_chunk};
use crate::seal::Opener;

/// Datoms per batch handed from a decoder to the load: large enough that
/// the hand-off costs nothing per datom, small enough (about half a MB)
/// that the batches ahead of the load are a few MB in all.
pub(super) const BATCH_DATOMS: usize = 8192;

/// One piece of a chunk's datoms: a batch, or the end of the chunk (so
/// that a decoder that stopped without saying so is an error, not a short
/// chunk).
pub(super) type Piece = Result<Option<Vec<Datom>>>;

/// A chunk on its way to the load: what the manifest says of it and the
/// batches its decoder sends.
pub(super) struct ChunkFeed {
    pub(super) info: ChunkInfo,
    pub(super) key: String,
    /// Stored (compressed) bytes fetched.
    pub(super) stored_bytes: u64,
    pub(super) batches: Receiver<Piece>,
}

/// What the decoders need to know of the backup.
#[derive(Clone)]
pub(super) struct Decoding {
    pub(super) compression: Compression,
    /// Undoes the seal of an encrypted backup's chunks (plain otherwise).
    pub(super) opener: Opener,
    /// The most bytes one chunk may inflate to.
    pub(super) max_chunk_bytes: u64,
}

/// The running pipeline; dropping it stops the fetching (decoders stop
/// when their feed is dropped).
pub(super) struct Pipeline {
    pub(super) feeds: mpsc::Receiver<Result<ChunkFeed>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the pipeline over `chunks` (manifest order).
pub(super) fn spawn(
    store: BackupStore,
    chunks: Vec<(ChunkInfo, Key)>,
    decoding: Decoding,
    parallel: usize,
) -> Pipeline {
    let (sender, feeds) = mpsc::channel(parallel);
    let task = tokio::spawn(fetch_and_dispatch(
        store, chunks, decoding, parallel, sender,
    ));
    Pipeline { feeds, task }
}

/// Fetches in order, `parallel` ahead, and starts a decoder for each chunk
/// when one of the `parallel` decoding slots is free; forwards the first
/// fetch failure and stops, or stops when the load has gone.
async fn fetch_and_dispatch(
    store: BackupStore,
    chunks: Vec<(ChunkInfo, Key)>,
    decoding: Decoding,
    parallel: usize,
    sender: mpsc::Sender<Result<ChunkFeed>>,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    let mut fetched = futures::stream::iter(chunks)
        .map(|(info, key)| {
            let store = store.clone();
            async move {
                let bytes = store.get(&key).await;
                (info, key, bytes)
            }
        })
        .buffered(parallel);
    while let Some((info, key, bytes)) = fetched.next().await {
        let feed = match bytes {
            Err(e) => Err(Error::from(e)),
            Ok(bytes) => match slots.clone().acquire_owned().await {
                Ok(slot) => Ok(start_decoder(info, &key, bytes, decoding.clone(), slot)),
                // The semaphore is never closed; nothing to decode then.
                Err(_) => return,
            },
        };
        let failed = feed.is_err();
        if sender.send(feed).await.is_err() || failed {
            return;
        }
    }
}

/// Decodes one chunk on a blocking thread, holding a decoding slot until
/// it is done.
fn start_decoder(
    info: ChunkInfo,
    key: &Key,
    bytes: Bytes,
    decoding: Decoding,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> ChunkFeed {
    // One batch queued: with the one the decoder waits to hand over, two
    // batches ahead of the load at most.
    let (sender, batches) = sync_channel(1);
    let feed = ChunkFeed {
        info: info.clone(),
        key: key.as_str().to_owned(),
        stored_bytes: bytes.len() as u64,
        batches,
    };
    let key = feed.key.clone();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if let Err(e) = decode_chunk(&bytes, &info, &key, &decoding, &sender) {
            // The load may have gone already; then nobody needs the error.
            let _ = sender.send(Err(e));
        }
    });
    feed
}

/// Check, inflate, decode: sends the chunk's datoms in batches, then the
/// end. Returns early, without error, when the load has gone.
fn decode_chunk(
    bytes: &[u8],
    info: &ChunkInfo,
    key: &str,
    decoding: &Decoding,
    sender: &SyncSender<Piece>,
) -> Result<()> {
    check_checksum(bytes, key, info)?;
    let mut reader = open_chunk(
        bytes,
        decoding.compression,
        &decoding.opener,
        info,
        key,
        decoding.max_chunk_bytes,
    )?;
    let mut batch = Vec::with_capacity(BATCH_DATOMS);
    while let Some(datom) = reader
        .next_datom()
        .map_err(|source| chunk_error(info, key, source))?
    {
        batch.push(datom);
        if batch.len() == BATCH_DATOMS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_DATOMS));
            if sender.send(Ok(Some(full))).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() && sender.send(Ok(Some(batch))).is_err() {
        return Ok(());
    }
    // Nobody to tell when the load has gone.
    let _ = sender.send(Ok(None));
    Ok(())
}
