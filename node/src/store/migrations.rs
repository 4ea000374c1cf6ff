//! Numbered schema migrations, run on every open.
//!
//! The file records the number of the last migration applied in
//! [`META`]`["schema-version"]`. An open runs every later migration, in order,
//! inside one write transaction that also records the new version, and commits
//! once: an upgrade is all or nothing. A file whose version is above
//! [`SCHEMA_VERSION`] was written by a newer build and is refused, untouched.
//!
//! Each migration is a function `migration_NNN_name(&WriteTransaction)` that
//! returns [`Outcome::Skip`] when there was nothing to do and
//! [`Outcome::Execute`] with the number of tables or rows it touched otherwise.
//! A migration never edits an existing table's layout in place: it creates the
//! table under its next versioned name, copies, and drops the old one.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::tables::{
    CREDENTIALS, GROUPS, IDENTITIES, META, RECORDS, RECORDS_BY_EXPIRY, RECORDS_BY_TYPE,
    SCHEMA_VERSION_KEY,
};

/// The schema version this build writes: the number of the last migration.
pub(super) const SCHEMA_VERSION: u64 = 1;

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing to do: the file already had what the migration creates.
    Skip,
    /// The migration changed this many tables or rows.
    Execute(u64),
}

/// A migration step.
type Migration = fn(&WriteTransaction) -> Result<Outcome, redb::Error>;

/// Every migration, by number: entry `n - 1` brings a file from version
/// `n - 1` to `n`. Append only; never renumber.
const MIGRATIONS: [(u64, &str, Migration); 1] = [(1, "initial", migration_001_initial)];

/// Where the schema stands after reading [`META`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// The file holds no table at all: a new store (version 0).
    Empty,
    /// The file records this schema version.
    Version(u64),
    /// The file holds tables but no [`META`] table: another program's database.
    Foreign,
    /// The [`META`] table exists without a schema version.
    MissingVersion,
}

/// Reads the schema version recorded in the file.
pub(super) fn found_version(txn: &WriteTransaction) -> Result<Found, redb::Error> {
    let mut has_tables = false;
    let mut has_meta = false;
    for table in txn.list_tables()? {
        has_tables = true;
        has_meta |= table.name() == META.name();
    }
    if !has_meta {
        return Ok(if has_tables {
            Found::Foreign
        } else {
            Found::Empty
        });
    }
    let meta = txn.open_table(META)?;
    let version = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
    Ok(version.map_or(Found::MissingVersion, Found::Version))
}

/// Runs the migrations after `from`, recording each new version in [`META`].
/// Returns what each one did, by number. The caller commits.
pub(super) fn migrate(
    txn: &WriteTransaction,
    from: u64,
) -> Result<Vec<(u64, &'static str, Outcome)>, redb::Error> {
    let mut done = Vec::new();
    for (number, name, migration) in MIGRATIONS {
        if number <= from {
            continue;
        }
        let outcome = migration(txn)?;
        txn.open_table(META)?.insert(SCHEMA_VERSION_KEY, number)?;
        done.push((number, name, outcome));
    }
    Ok(done)
}

/// Migration 1: creates the schema-1 tables (`meta`, `records-1`,
/// `records-by-type-1`, `records-by-expiry-1`, `identities-1`, `groups-1`,
/// `credentials-1`). Skips when they all exist.
pub(super) fn migration_001_initial(txn: &WriteTransaction) -> Result<Outcome, redb::Error> {
    let names = [
        META.name(),
        RECORDS.name(),
        RECORDS_BY_TYPE.name(),
        RECORDS_BY_EXPIRY.name(),
        IDENTITIES.name(),
        GROUPS.name(),
        CREDENTIALS.name(),
    ];
    let mut existing = 0u64;
    for table in txn.list_tables()? {
        if names.contains(&table.name()) {
            existing = existing.saturating_add(1);
        }
    }
    // Opening a table in a write transaction creates it when absent.
    txn.open_table(META)?;
    txn.open_table(RECORDS)?;
    txn.open_table(RECORDS_BY_TYPE)?;
    txn.open_table(RECORDS_BY_EXPIRY)?;
    txn.open_table(IDENTITIES)?;
    txn.open_table(GROUPS)?;
    txn.open_table(CREDENTIALS)?;
    let created = (names.len() as u64).saturating_sub(existing);
    Ok(if created == 0 {
        Outcome::Skip
    } else {
        Outcome::Execute(created)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use redb::{Database, ReadableDatabase};

    use super::*;

    fn fresh() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        (dir, db)
    }

    #[test]
    fn migration_001_creates_every_table_then_skips() {
        let (_dir, db) = fresh();
        let txn = db.begin_write().unwrap();
        assert_eq!(found_version(&txn).unwrap(), Found::Empty);
        assert_eq!(migration_001_initial(&txn).unwrap(), Outcome::Execute(7));
        assert_eq!(migration_001_initial(&txn).unwrap(), Outcome::Skip);
        txn.commit().unwrap();

        let read = db.begin_read().unwrap();
        let names: Vec<String> = read
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        for table in [
            "meta",
            "records-1",
            "records-by-type-1",
            "records-by-expiry-1",
            "identities-1",
            "groups-1",
            "credentials-1",
        ] {
            assert!(names.iter().any(|n| n == table), "{table} in {names:?}");
        }
    }

    #[test]
    fn migrate_records_each_version_and_reruns_nothing() {
        let (_dir, db) = fresh();
        let txn = db.begin_write().unwrap();
        let done = migrate(&txn, 0).unwrap();
        assert_eq!(done, vec![(1, "initial", Outcome::Execute(7))]);
        assert_eq!(found_version(&txn).unwrap(), Found::Version(SCHEMA_VERSION));
        assert_eq!(migrate(&txn, SCHEMA_VERSION).unwrap(), vec![]);
        txn.commit().unwrap();
    }

    #[test]
    fn foreign_tables_and_missing_versions_are_recognised() {
        let (_dir, db) = fresh();
        let txn = db.begin_write().unwrap();
        let other: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("theirs");
        txn.open_table(other).unwrap().insert(1, 2).unwrap();
        assert_eq!(found_version(&txn).unwrap(), Found::Foreign);
        txn.open_table(META).unwrap();
        assert_eq!(found_version(&txn).unwrap(), Found::MissingVersion);
    }

    #[test]
    fn the_migration_list_is_numbered_without_gaps() {
        for (i, (number, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*number, i as u64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
