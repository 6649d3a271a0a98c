//! The full restore's read pipeline, as named steps: **fetch** the chunks
//! `parallel` ahead (async), then on `parallel` decoder threads of the
//! pipeline's own **check** each chunk's checksum, **inflate** and **decode** it
//! (through [`open_chunk`], the one place stored bytes become datoms) into
//! batches, which the load takes **in manifest order**.
//!
//! Memory is bounded by batches, not by chunks (a 64 MiB chunk decodes to
//! a few hundred MB of datoms): each decoder holds at most two batches of
//! [`BATCH_DATOMS`] ahead of the load (one queued, one waiting to be), and
//! at most `parallel + 2` chunks are in flight between the fetch and the
//! load, of which at most `parallel` are being decoded. A decoder ahead of
//! the load waits for it; the load never waits for a later chunk.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

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
    let decoders = match Decoders::start(parallel, &decoding) {
        Ok(d) => d,
        Err(e) => {
            let _ = sender.send(Err(e)).await;
            return;
        }
    };
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
                Ok(slot) => Ok(decoders.decode(info, &key, bytes, slot)),
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

/// One chunk for a decoder thread, with the decoding slot it holds until
/// it is done.
struct Job {
    info: ChunkInfo,
    key: String,
    bytes: Bytes,
    sender: SyncSender<Piece>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// The pipeline's decoder threads; they end when this is dropped (with
/// the fetching task) and the jobs queued so far are done or dropped.
struct Decoders {
    jobs: Sender<Job>,
}

impl Decoders {
    /// Starts `parallel` decoder threads.
    fn start(parallel: usize, decoding: &Decoding) -> Result<Decoders> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..parallel {
            let (queue, decoding) = (queue.clone(), decoding.clone());
            std::thread::Builder::new()
                .name(format!("datacamp-decode-{n}"))
                .spawn(move || decode_jobs(&queue, &decoding))
                .map_err(|e| Error::Internal(format!("cannot start a decoder thread: {e}")))?;
        }
        Ok(Decoders { jobs })
    }

    /// Queues one chunk; its feed carries the batches, or, if no decoder
    /// is left to take it, ends without its end-of-chunk (an error for the
    /// load, never a short chunk).
    fn decode(
        &self,
        info: ChunkInfo,
        key: &Key,
        bytes: Bytes,
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
        let job = Job {
            info,
            key: feed.key.clone(),
            bytes,
            sender,
            _slot: slot,
        };
        // A failed send drops the job and with it the feed's sender.
        let _ = self.jobs.send(job);
        feed
    }
}

/// A decoder thread: takes chunks until the queue is closed.
fn decode_jobs(queue: &Mutex<Receiver<Job>>, decoding: &Decoding) {
    loop {
        // The lock is held only while waiting for a job, never while a
        // job runs, so a panic in one leaves it unpoisoned (and a poisoned
        // queue is still a queue).
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            return;
        };
        if let Err(e) = decode_chunk(&job.bytes, &job.info, &job.key, decoding, &job.sender) {
            // The load may have gone already; then nobody needs the error.
            let _ = job.sender.send(Err(e));
        }
    }
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
