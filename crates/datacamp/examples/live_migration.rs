//! Live-migrates an in-memory database to a durable file while four
//! writers keep writing through the router, then checks that every
//! acknowledged write reached the target.
//!
//! Run: `cargo run -p datacamp --example live_migration`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datacamp::datom::edn::parse_tx_data;
use datacamp::datom::{synthetic, Connection, DbConfig};
use datacamp::storage::{BackupStore, Target};
use datacamp::{live_migrate, MigrateOptions, MigrationEvent, MigrationTarget, Route};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // A source with 100 k datoms: the embedded database, in memory.
    let source = datacamp::db::create("mem://example-source", DbConfig::default())?;
    source.load(&mut synthetic::datoms(100_000).map(Ok))?;

    // The snapshot backup and the migration state go to a directory (an
    // S3 target works the same way).
    let store = BackupStore::open(&Target::Directory(dir.path().join("backups")))?;
    let mut opts = MigrateOptions::new(store).with_engines(datacamp::engines());
    opts.database_id = "example-db".into();
    opts.progress = Some(Arc::new(|event: &MigrationEvent| {
        if let MigrationEvent::State(state) = event {
            println!("  state: {state}");
        }
    }));
    let target = format!("file://{}", dir.path().join("target.db").display());
    let router = live_migrate(Arc::new(source), MigrationTarget::Url(target), opts).await?;

    // Writers use the router, never the source directly.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (router, stop) = (router.clone(), stop.clone());
            std::thread::spawn(move || -> Result<Vec<i64>, String> {
                let mut acknowledged = Vec::new();
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tx = parse_tx_data(&format!(
                        r#"[{{:db/id "p" :person/name "writer {w} #{k}"}}]"#
                    ))
                    .map_err(|e| e.to_string())?;
                    let report = router.transact(&tx).map_err(|e| e.to_string())?;
                    acknowledged.extend(report.tempids.get("p"));
                    k += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(acknowledged)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = router.finalize().await?;
    assert_eq!(router.route(), Route::Target);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let mut written = 0;
    let target_db = result.target.db()?;
    for writer in writers {
        let acknowledged = writer.join().map_err(|_| "a writer thread panicked")??;
        for eid in acknowledged {
            let found = target_db
                .datoms(
                    datacamp::datom::Index::Eavt,
                    &[datacamp::datom::Component::Entity(eid)],
                )?
                .count();
            assert!(found > 0, "entity {eid} missing from the target");
            written += 1;
        }
    }
    let s = &result.stats;
    println!(
        "migration {} completed: {} snapshot datoms, {} transactions replayed, \
         {written} acknowledged writes all in the target, writes waited {:.2} ms at cutover",
        result.migration_id, s.snapshot_datoms, s.transactions_replayed, s.fence_ms
    );
    Ok(())
}
