//! `forget`: removing complete backups by a retention policy, in restic's
//! vocabulary and with its semantics (`restic forget --keep-*`).
//!
//! The policy is evaluated by [`apply_policy`] over the complete backups
//! of one database, newest first, by their creation instant in UTC; each
//! `--keep-<period> N` rule keeps the newest backup of each of the N newest
//! periods that have one (and, while it has count left at the end, the
//! oldest backup); `--keep-last N` the N newest; `--keep-within D` those
//! created within D before the newest backup (not before now). Rules
//! combine: a backup is kept when any rule keeps it. On top of the policy:
//! the newest complete backup is always kept, and so is every backup that
//! a kept incremental backup is built on ([`base_of`]).
//!
//! Removal order makes an interrupted forget safe: the completion marker
//! goes first (the backup then lists as incomplete and no restore or verify
//! takes it), then the chunks, then the checkpoint, and the manifest with
//! the folder last; `cleanup` removes what an interrupted forget left.

use std::collections::{BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt};

use datacamp_manifest::{validate_id, IdKind};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::list::{list_backups_in, BackupSummary};

/// A `--keep-within` duration, restic's `1y2m3d4h`: calendar years,
/// months and days, and hours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Within {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl Within {
    /// Parses `7d`, `1y6m`, `36h`, `2y5m7d3h` (each unit at most once,
    /// in that order). Negative or unknown units are refused in words.
    pub fn parse(text: &str) -> std::result::Result<Within, String> {
        let bad = |why: &str| {
            format!("{text:?} is not a duration: {why} (expected e.g. 7d, 36h, 1y6m, 2y5m7d3h)")
        };
        if text.starts_with('-') {
            return Err(bad("it is negative"));
        }
        let mut within = Within::default();
        let mut number = String::new();
        let mut seen = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let order = match c {
                'y' => 1,
                'm' => 2,
                'd' => 3,
                'h' => 4,
                _ => return Err(bad(&format!("unknown unit {c:?}; use y, m, d, h"))),
            };
            if order <= seen {
                return Err(bad("units go y, m, d, h, each once"));
            }
            seen = order;
            let n: u32 = number
                .parse()
                .map_err(|_| bad("each unit needs a number before it"))?;
            number.clear();
            match c {
                'y' => within.years = n,
                'm' => within.months = n,
                'd' => within.days = n,
                _ => within.hours = n,
            }
        }
        if !number.is_empty() {
            return Err(bad("a number without a unit"));
        }
        if seen == 0 {
            return Err(bad("no amount given"));
        }
        Ok(within)
    }

    fn is_zero(&self) -> bool {
        *self == Within::default()
    }

    /// `instant_ms` moved back by this duration, calendar-wise, as Go's
    /// `AddDate(-y, -m, -d).Add(-h hours)` (so 31 March less one month is
    /// 3 March, not 28 February), in UTC.
    fn before(&self, instant_ms: i64) -> i64 {
        let days = instant_ms.div_euclid(DAY_MS);
        let in_day = instant_ms.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let months = i64::from(y) * 12 + i64::from(m)
            - 1
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
        let day = i64::from(d) - i64::from(self.days);
        let days = days_from_civil(year, month as u32, 1) + day - 1;
        days * DAY_MS + in_day - i64::from(self.hours) * HOUR_MS
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// Which backups to keep; 0 (and `None`) means the rule is not used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The N newest backups.
    pub keep_last: u32,
    /// The newest backup of each of the N newest hours that have one.
    pub keep_hourly: u32,
    /// The newest backup of each of the N newest days that have one.
    pub keep_daily: u32,
    /// The newest backup of each of the N newest ISO weeks that have one.
    pub keep_weekly: u32,
    /// The newest backup of each of the N newest months that have one.
    pub keep_monthly: u32,
    /// The newest backup of each of the N newest years that have one.
    pub keep_yearly: u32,
    /// Every backup created within this of the newest backup.
    pub keep_within: Option<Within>,
}

impl RetentionPolicy {
    /// No rule at all.
    pub fn is_empty(&self) -> bool {
        let within = self.keep_within.is_none_or(|w| w.is_zero());
        within
            && [
                self.keep_last,
                self.keep_hourly,
                self.keep_daily,
                self.keep_weekly,
                self.keep_monthly,
                self.keep_yearly,
            ]
            .iter()
            .all(|&n| n == 0)
    }
}

/// A backup the policy is applied to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The backup id.
    pub backup_id: String,
    /// Its creation instant, ms since the epoch (UTC).
    pub created_at_ms: i64,
    /// The backup it is built on (an incremental's base), if any.
    pub base_backup_id: Option<String>,
}

/// Keep or remove, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The backup id.
    pub backup_id: String,
    /// Its creation instant, ms since the epoch (UTC).
    pub created_at_ms: i64,
    /// Whether it is kept.
    pub keep: bool,
    /// The rules that keep it (`last`, `daily`, `within 7d`, `oldest
    /// monthly`, `newest complete backup`, `base of kept …`); empty for a
    /// removed backup.
    pub reasons: Vec<String>,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Applies `policy` to `candidates`: the decisions, newest first (by
/// creation instant; candidates created in the same instant keep their
/// order, so give them newest first, as `list` does). `now_ms` bounds the
/// "newest" that `keep_within` counts from (a backup dated in the future
/// does not move it), as restic does.
pub fn apply_policy(
    candidates: &[Candidate],
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Vec<Decision> {
    let mut list: Vec<&Candidate> = candidates.iter().collect();
    list.sort_by_key(|c| std::cmp::Reverse(c.created_at_ms));
    let mut decisions: Vec<Decision> = list
        .iter()
        .map(|c| Decision {
            backup_id: c.backup_id.clone(),
            created_at_ms: c.created_at_ms,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    apply_buckets(&mut decisions, policy);
    apply_within(&mut decisions, policy, now_ms);
    if let Some(newest) = decisions.first_mut() {
        if !newest.keep {
            newest.keep = true;
            newest.reasons.push("newest complete backup".to_owned());
        }
    }
    keep_bases(&mut decisions, &list);
    decisions
}

/// The counted rules: each keeps the first (newest) backup of every new
/// period while it has count left, and the oldest backup when count is
/// still left at the end (restic 0.17's rule, for the longest history).
fn apply_buckets(decisions: &mut [Decision], policy: &RetentionPolicy) {
    type Period = fn(i64, usize) -> i64;
    let mut buckets: [(u32, Period, Option<i64>, &str); 6] = [
        (policy.keep_last, |_, nr| nr as i64, None, "last"),
        (
            policy.keep_hourly,
            |t, _| t.div_euclid(HOUR_MS),
            None,
            "hourly",
        ),
        (
            policy.keep_daily,
            |t, _| t.div_euclid(DAY_MS),
            None,
            "daily",
        ),
        (policy.keep_weekly, iso_week, None, "weekly"),
        (policy.keep_monthly, month, None, "monthly"),
        (
            policy.keep_yearly,
            |t, _| i64::from(civil_from_days(t.div_euclid(DAY_MS)).0),
            None,
            "yearly",
        ),
    ];
    let oldest = decisions.len().saturating_sub(1);
    for (nr, decision) in decisions.iter_mut().enumerate() {
        for (count, period, last, reason) in buckets.iter_mut() {
            if *count == 0 {
                continue;
            }
            let value = period(decision.created_at_ms, nr);
            if Some(value) != *last || nr == oldest {
                let new_period = Some(value) != *last;
                *last = Some(value);
                *count -= 1;
                decision.keep = true;
                decision.reasons.push(if new_period {
                    (*reason).to_owned()
                } else {
                    format!("oldest {reason}")
                });
            }
        }
    }
}

fn apply_within(decisions: &mut [Decision], policy: &RetentionPolicy, now_ms: i64) {
    let Some(within) = policy.keep_within.filter(|w| !w.is_zero()) else {
        return;
    };
    let Some(latest) = decisions
        .iter()
        .map(|d| d.created_at_ms)
        .filter(|&t| t < now_ms)
        .max()
    else {
        return;
    };
    let cutoff = within.before(latest);
    for decision in decisions.iter_mut() {
        if decision.created_at_ms > cutoff {
            decision.keep = true;
            decision.reasons.push(format!("within {within}"));
        }
    }
}

/// Keeps, transitively, the base of every kept backup.
fn keep_bases(decisions: &mut [Decision], list: &[&Candidate]) {
    let index: HashMap<&str, usize> = list
        .iter()
        .enumerate()
        .map(|(i, c)| (c.backup_id.as_str(), i))
        .collect();
    // Newest first, so a base (older) is reached after its dependents.
    for i in 0..decisions.len() {
        if !decisions[i].keep {
            continue;
        }
        let Some(base) = list[i].base_backup_id.as_deref() else {
            continue;
        };
        if let Some(&j) = index.get(base) {
            let reason = format!("base of kept incremental {}", decisions[i].backup_id);
            decisions[j].keep = true;
            decisions[j].reasons.push(reason);
        }
    }
}

fn iso_week(t: i64, _: usize) -> i64 {
    let days = t.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: weekday 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(i64::from(year), 1, 1)) / 7 + 1;
    i64::from(year) * 100 + week
}

fn month(t: i64, _: usize) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY_MS));
    i64::from(y) * 100 + i64::from(m)
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        m,
        d,
    )
}

/// Days since 1970-01-01 of a (year, month 1–12, day) date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// How to forget.
#[derive(Clone, Debug)]
pub struct ForgetOptions {
    /// The database id (default `default-db`).
    pub database_id: String,
    /// Which backups to keep.
    pub policy: RetentionPolicy,
    /// Decide and report; remove nothing.
    pub dry_run: bool,
    /// "Now", ms since the epoch, for `keep_within` (default: the clock).
    pub now_ms: Option<i64>,
}

impl Default for ForgetOptions {
    fn default() -> Self {
        ForgetOptions {
            database_id: crate::DEFAULT_DATABASE_ID.into(),
            policy: RetentionPolicy::default(),
            dry_run: false,
            now_ms: None,
        }
    }
}

/// What forget decided and did.
#[derive(Clone, Debug, PartialEq)]
pub struct ForgetResult {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Every complete backup, newest first, kept or removed and why.
    pub decisions: Vec<Decision>,
    /// Incomplete backups, left to `cleanup`.
    pub incomplete: Vec<String>,
    /// Objects removed (0 in a dry run).
    pub objects_removed: u64,
}

/// Removes the complete backups of `opts.database_id` that
/// `opts.policy` does not keep (see the module docs), holding the
/// database's lease. An empty policy is refused.
pub async fn forget(store: &BackupStore, opts: &ForgetOptions) -> Result<ForgetResult> {
    validate_id(IdKind::Database, &opts.database_id)?;
    if opts.policy.is_empty() {
        return Err(Error::InvalidOption {
            option: "keep",
            reason: "the policy has no rule, so it would keep nothing but the newest complete \
                     backup (which forget never removes); give at least one of --keep-last, \
                     --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, \
                     --keep-within"
                .to_owned(),
        });
    }
    if opts.dry_run {
        return decide(store, opts).await;
    }
    let lease = crate::lock::acquire(store, &opts.database_id, "forget").await?;
    lease
        .hold(async {
            let mut result = decide(store, opts).await?;
            for decision in result.decisions.iter().filter(|d| !d.keep) {
                result.objects_removed +=
                    remove_backup(store, &opts.database_id, &decision.backup_id).await?;
            }
            Ok(result)
        })
        .await
}

/// The decisions over the database's complete backups.
async fn decide(store: &BackupStore, opts: &ForgetOptions) -> Result<ForgetResult> {
    let summaries = list_backups_in(store, &opts.database_id).await?;
    let (complete, incomplete): (Vec<BackupSummary>, Vec<BackupSummary>) =
        summaries.into_iter().partition(|s| s.completed);
    let mut candidates = Vec::with_capacity(complete.len());
    for s in &complete {
        candidates.push(Candidate {
            backup_id: s.backup_id.clone(),
            created_at_ms: s.created_at_ms.unwrap_or(0),
            base_backup_id: base_of(store, &opts.database_id, s).await?,
        });
    }
    let now = opts.now_ms.unwrap_or_else(crate::now_ms);
    Ok(ForgetResult {
        dry_run: opts.dry_run,
        decisions: apply_policy(&candidates, &opts.policy, now),
        incomplete: incomplete.into_iter().map(|s| s.backup_id).collect(),
        objects_removed: 0,
    })
}

/// The backup `summary`'s backup is built on: an incremental backup's
/// base (`:datacamp/chain :base-backup-id`, issue 13); `None` for full and
/// history backups.
pub(crate) async fn base_of(
    _store: &BackupStore,
    _database_id: &str,
    summary: &BackupSummary,
) -> Result<Option<String>> {
    Ok(summary
        .chain
        .as_ref()
        .and_then(|chain| chain.base_backup_id.clone()))
}

/// Removes one backup in the order that keeps an interruption safe (see
/// the module docs); returns the objects removed.
async fn remove_backup(store: &BackupStore, database_id: &str, backup_id: &str) -> Result<u64> {
    let layout = store.layout();
    store
        .delete(&layout.complete_marker(database_id, backup_id)?)
        .await?;
    let objects = store.list_backup_objects(database_id, backup_id).await?;
    let chunks = layout.chunks(database_id, backup_id)?;
    let chunk_keys: BTreeSet<_> = objects
        .iter()
        .filter(|o| o.key.as_str().starts_with(chunks.as_str()))
        .map(|o| o.key.clone())
        .collect();
    futures::stream::iter(chunk_keys.iter().map(|key| store.delete(key)))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    store
        .delete(&layout.checkpoint(database_id, backup_id)?)
        .await?;
    // The manifest and the folder (with anything else in it) last.
    store.delete_backup(database_id, backup_id).await?;
    Ok(objects.len() as u64 + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_restic() {
        assert_eq!(
            Within::parse("2y5m7d3h"),
            Ok(Within {
                years: 2,
                months: 5,
                days: 7,
                hours: 3
            })
        );
        assert_eq!(Within::parse("7d").map(|w| w.to_string()), Ok("7d".into()));
        assert!(Within::parse("-1d").unwrap_err().contains("negative"));
        assert!(Within::parse("3w")
            .unwrap_err()
            .contains("unknown unit 'w'"));
        assert!(Within::parse("5").unwrap_err().contains("without a unit"));
        assert!(Within::parse("").unwrap_err().contains("no amount"));
        assert!(Within::parse("1d1y").unwrap_err().contains("each once"));
    }

    #[test]
    fn calendar_arithmetic_follows_go() {
        let t = |s: &str| datacamp_datom::parse_instant(s).unwrap();
        let month = Within {
            months: 1,
            ..Within::default()
        };
        // Go normalises 31 February to 3 March.
        assert_eq!(
            month.before(t("2023-03-31T12:00:00Z")),
            t("2023-03-03T12:00:00Z")
        );
        let mixed = Within {
            years: 1,
            days: 1,
            hours: 2,
            ..Within::default()
        };
        assert_eq!(
            mixed.before(t("2024-03-01T01:00:00Z")),
            t("2023-02-27T23:00:00Z")
        );
    }

    #[test]
    fn iso_weeks_cross_years() {
        let t = |s: &str| datacamp_datom::parse_instant(s).unwrap();
        assert_eq!(iso_week(t("2021-01-03T00:00:00Z"), 0), 202_053);
        assert_eq!(iso_week(t("2021-01-04T00:00:00Z"), 0), 202_101);
        assert_eq!(iso_week(t("2024-12-30T00:00:00Z"), 0), 202_501);
    }
}
