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

use peergroup_protocol::{
    CredentialChain, PeerName, SignedProperties, SignedRecord, session::GroupState,
};
use redb::{ReadableTable, ReadableTableMetadata, TableHandle, WriteTransaction};

use super::{
    error::Failure,
    read::envelope_hash,
    tables::{
        CREDENTIALS, GROUP_STATES, GROUPS, IDENTITIES, KNOWN_PEERS, META, NODE_STATE,
        RECORD_SUMMARIES, RECORDS, RECORDS_BY_EXPIRY, RECORDS_BY_TYPE, SCHEMA_VERSION_KEY, Summary,
        credential_key, encode_group_state, group_prefix,
    },
};

/// The schema version this build writes: the number of the last migration.
pub(super) const SCHEMA_VERSION: u64 = 3;

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing to do: the file already had what the migration creates.
    Skip,
    /// The migration changed this many tables or rows.
    Execute(u64),
}

/// A migration step.
type Migration = fn(&WriteTransaction) -> Result<Outcome, Failure>;

/// Every migration, by number: entry `n - 1` brings a file from version
/// `n - 1` to `n`. Append only; never renumber.
const MIGRATIONS: [(u64, &str, Migration); 3] = [
    (1, "initial", migration_001_initial),
    (
        2,
        "group-states-and-summaries",
        migration_002_group_states_and_summaries,
    ),
    (
        3,
        "known-peers-and-node-state",
        migration_003_known_peers_and_node_state,
    ),
];

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
) -> Result<Vec<(u64, &'static str, Outcome)>, Failure> {
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
pub(super) fn migration_001_initial(txn: &WriteTransaction) -> Result<Outcome, Failure> {
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

/// Migration 2: every record gets a summary row (`record-summaries-2`:
/// version, envelope hash, tombstone flag, type, expiry), so that merges,
/// stale detection and reads need no signature check; and each group's
/// properties, member and credential move into one `groups-2` row with the
/// group's readiness, so that they can never disagree after a crash.
///
/// Each record is fully verified once here. A group's readiness was not
/// kept by schema 1: a creator's group is ready, another member's is ready
/// if the group holds records (what schema 1 assumed). A group whose member
/// is not the creator and has no usable credential is dropped: schema 1
/// wrote the credential after the group row, in a second transaction, so
/// such a row is a join that never returned. Then `groups-1` and
/// `credentials-1` are deleted. Skips when `groups-1` is gone and every
/// record has its summary.
pub(super) fn migration_002_group_states_and_summaries(
    txn: &WriteTransaction,
) -> Result<Outcome, Failure> {
    let has_old_groups = txn
        .list_tables()?
        .any(|t| t.name() == GROUPS.name() || t.name() == CREDENTIALS.name());
    let mut changed = 0u64;
    {
        let records = txn.open_table(RECORDS)?;
        let mut summaries = txn.open_table(RECORD_SUMMARIES)?;
        if summaries.len()? != records.len()? {
            for row in records.iter()? {
                let (key, value) = row?;
                if summaries.get(key.value())?.is_some() {
                    continue;
                }
                let record = SignedRecord::from_bytes(value.value())
                    .map_err(|e| Failure::Corrupt(format!("a record row does not verify: {e}")))?;
                let summary = Summary::of(record.record(), envelope_hash(value.value()));
                summaries.insert(key.value(), summary.encode().as_slice())?;
                changed = changed.saturating_add(1);
            }
        }
    }
    txn.open_table(GROUP_STATES)?;
    if !has_old_groups {
        return Ok(if changed == 0 {
            Outcome::Skip
        } else {
            Outcome::Execute(changed)
        });
    }
    {
        let groups = txn.open_table(GROUPS)?;
        let credentials = txn.open_table(CREDENTIALS)?;
        let by_type = txn.open_table(RECORDS_BY_TYPE)?;
        let mut states = txn.open_table(GROUP_STATES)?;
        for row in groups.iter()? {
            let (key, value) = row?;
            let (member, properties) = parse_group_1(key.value(), value.value())?;
            let group = properties.properties().group_peer_name.clone();
            let is_creator = member == properties.properties().creator_peer_name;
            let chain = if is_creator {
                Some(CredentialChain::creator())
            } else {
                credentials
                    .get(credential_key(&group, &member).as_slice())?
                    .and_then(|c| CredentialChain::from_bytes(c.value()).ok())
            };
            let Some(chain) = chain else { continue };
            let prefix = group_prefix(&group);
            let has_records = by_type
                .range::<&[u8]>(prefix.as_slice()..)?
                .next()
                .transpose()?
                .is_some_and(|(k, _)| k.value().starts_with(&prefix));
            let state = GroupState {
                properties,
                member,
                chain,
                ready: is_creator || has_records,
                keys: Vec::new(),
                password: None,
            };
            if state.check().is_err() {
                continue;
            }
            let encoded = encode_group_state(&state)
                .map_err(|e| Failure::Corrupt(format!("group {group}: {e}")))?;
            states.insert(group.as_str(), encoded.as_slice())?;
            changed = changed.saturating_add(1);
        }
    }
    txn.delete_table(GROUPS)?;
    txn.delete_table(CREDENTIALS)?;
    Ok(Outcome::Execute(changed.saturating_add(2)))
}

/// Migration 3: creates `known-peers-3` (the members each group was
/// connected to, and where they listen) and `node-3` (the node's peer-time
/// offset). Skips when both exist.
pub(super) fn migration_003_known_peers_and_node_state(
    txn: &WriteTransaction,
) -> Result<Outcome, Failure> {
    let names = [KNOWN_PEERS.name(), NODE_STATE.name()];
    let existing = txn
        .list_tables()?
        .filter(|t| names.contains(&t.name()))
        .count() as u64;
    txn.open_table(KNOWN_PEERS)?;
    txn.open_table(NODE_STATE)?;
    let created = (names.len() as u64).saturating_sub(existing);
    Ok(if created == 0 {
        Outcome::Skip
    } else {
        Outcome::Execute(created)
    })
}

/// Parses a schema-1 `groups-1` row: `u16 BE len(member) || member ||
/// signed properties envelope`.
fn parse_group_1(key: &str, value: &[u8]) -> Result<(PeerName, SignedProperties), Failure> {
    let malformed = || Failure::Corrupt(format!("group {key}: malformed schema-1 row"));
    let (len, rest) = value.split_first_chunk::<2>().ok_or_else(malformed)?;
    let (member, envelope) = rest
        .split_at_checked(usize::from(u16::from_be_bytes(*len)))
        .ok_or_else(malformed)?;
    let member = std::str::from_utf8(member)
        .ok()
        .and_then(|m| PeerName::parse(m).ok())
        .ok_or_else(malformed)?;
    let properties = SignedProperties::from_bytes(envelope)
        .map_err(|error| Failure::Corrupt(format!("group {key}: {error}")))?;
    if properties.properties().group_peer_name.as_str() != key {
        return Err(malformed());
    }
    Ok((member, properties))
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
    fn migration_002_moves_groups_drops_credentials_then_skips() {
        use peergroup_protocol::{
            GroupSpec,
            testing::{T0, add, identity},
        };
        let (_dir, db) = fresh();
        let txn = db.begin_write().unwrap();
        migration_001_initial(&txn).unwrap();
        let alice = identity(1, "alice");
        let bob = identity(2, "bob");
        let props = GroupSpec::new(alice.peer_name(), "g")
            .create(&alice, T0, |_| false)
            .unwrap();
        let group = props.properties().group_peer_name.clone();
        let record = add(&alice, &group, 1, b"x", T0, 60);
        {
            let mut row = Vec::new();
            let member = alice.peer_name().as_str().as_bytes();
            row.extend_from_slice(&(member.len() as u16).to_be_bytes());
            row.extend_from_slice(member);
            row.extend_from_slice(props.as_bytes());
            txn.open_table(GROUPS)
                .unwrap()
                .insert(group.as_str(), row.as_slice())
                .unwrap();
            // A second group joined by bob, whose credential was never written.
            let other = GroupSpec::new(alice.peer_name(), "h")
                .create(&alice, T0, |_| false)
                .unwrap();
            let mut row = Vec::new();
            let member = bob.peer_name().as_str().as_bytes();
            row.extend_from_slice(&(member.len() as u16).to_be_bytes());
            row.extend_from_slice(member);
            row.extend_from_slice(other.as_bytes());
            txn.open_table(GROUPS)
                .unwrap()
                .insert(other.properties().group_peer_name.as_str(), row.as_slice())
                .unwrap();
            let key = super::super::tables::record_key(&group, &record.record().id);
            txn.open_table(RECORDS)
                .unwrap()
                .insert(key.as_slice(), record.as_bytes())
                .unwrap();
        }
        assert_eq!(
            migration_002_group_states_and_summaries(&txn).unwrap(),
            Outcome::Execute(4),
            "one summary, one group, two dropped tables"
        );
        {
            let states = txn.open_table(GROUP_STATES).unwrap();
            assert_eq!(
                states.len().unwrap(),
                1,
                "bob's half-written join is dropped"
            );
            let state = super::super::tables::decode_group_state(
                states.get(group.as_str()).unwrap().unwrap().value(),
            )
            .unwrap();
            assert!(state.is_creator() && state.ready && state.chain.is_empty());
            assert_eq!(txn.open_table(RECORD_SUMMARIES).unwrap().len().unwrap(), 1);
        }
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n == "groups-1" || n == "credentials-1"),
            "{names:?}"
        );
        assert_eq!(
            migration_002_group_states_and_summaries(&txn).unwrap(),
            Outcome::Skip
        );
    }

    #[test]
    fn migrate_records_each_version_and_reruns_nothing() {
        let (_dir, db) = fresh();
        let txn = db.begin_write().unwrap();
        let done = migrate(&txn, 0).unwrap();
        assert_eq!(
            done,
            vec![
                (1, "initial", Outcome::Execute(7)),
                (2, "group-states-and-summaries", Outcome::Execute(2)),
                (3, "known-peers-and-node-state", Outcome::Execute(2)),
            ]
        );
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
