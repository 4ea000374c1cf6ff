//! [`RedbStore`]: opening the file and the record database ([`Store`]).

use peergroup_protocol::ReadStore;
use std::{
    fs::{self, File, OpenOptions},
    ops::Bound,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

use peergroup_protocol::{
    Change, Merged, PeerName, RecordId, RecordType, SignedRecord, Store, StoreError, Timestamp,
};
use redb::{Builder, Database, ReadableTable, WriteTransaction, backends::FileBackend};

use super::{
    AccessError, OpenError,
    error::Failure,
    migrations::{self, Found, SCHEMA_VERSION},
    tables::{
        EXPIRY_VALUE_LEN, RECORD_SUMMARIES, RECORDS, RECORDS_BY_EXPIRY, RECORDS_BY_TYPE,
        expiry_key, group_prefix, parse_expiry_key, parse_type_tail, record_key, type_key,
    },
};

/// The store file's name inside a node's data directory.
pub const FILE_NAME: &str = "peergroup.redb";

/// redb's page cache (read cache and write buffer together), in bytes
/// (16 MiB). redb's own default is 1 GiB. The cache keeps every page a
/// transaction writes, so it fills with the file, about 1.5 KB per record
/// added, until it reaches this size: at 64 MiB it was the node's largest
/// memory cost up to about 50,000 records (BENCHMARKS.md, "Memory as the
/// store grows"). Pages it misses are read from the operating system's
/// page cache.
const CACHE_SIZE: usize = 16 * 1024 * 1024;

/// The persistent [`Store`]: every group's records, the node's identities, its
/// groups and its credentials, in one redb file.
///
/// Every write is one durable, two-phase-commit redb transaction; see
/// `docs/store.md` for the tables, the durability argument and how damaged
/// files are reported. Reads decode and re-verify each envelope they return,
/// so a record altered on disk is reported as [`AccessError::Corrupt`] and
/// never served.
pub struct RedbStore {
    pub(super) db: Database,
    pub(super) path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it if no file is there.
    ///
    /// An existing file is opened with redb's full integrity check (every page
    /// checksum is verified), then brought to the current schema by the
    /// numbered migrations. A file that is empty, not a peergroup store,
    /// truncated, damaged or from a newer build is an [`OpenError`] that names
    /// it, and is left as it was. A new store is built in `<path>.new` (mode
    /// 0600: it will hold secret keys) and moved to `path` only once
    /// initialised, so a file at `path` is never a half-made store.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, OpenError> {
        let path = path.as_ref().to_path_buf();
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.len() == 0 => Err(OpenError::NotAStore {
                path,
                reason: "the file is empty (a store is never empty: delete the file to start over)"
                    .into(),
            }),
            Ok(_) => RedbStore::open_existing(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RedbStore::create(path),
            Err(source) => Err(OpenError::Io { path, source }),
        }
    }

    /// Opens (or creates) the store [`FILE_NAME`] in the data directory `dir`,
    /// creating the directory (mode 0700) if needed.
    pub fn open_in_dir(dir: impl AsRef<Path>) -> Result<RedbStore, OpenError> {
        let dir = dir.as_ref();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        RedbStore::open(dir.join(FILE_NAME))
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn builder() -> Builder {
        let mut builder = Builder::new();
        builder
            .set_cache_size(CACHE_SIZE)
            .set_check_integrity_on_open(true);
        builder
    }

    fn open_existing(path: PathBuf) -> Result<RedbStore, OpenError> {
        // redb verifies every page checksum before trusting the file (see
        // `set_check_integrity_on_open`), and reports damage as `Corrupted`.
        // A panic from parsing a damaged file would still be a bug there; it
        // must not take the node down with a file that is merely bad, so it
        // is reported as corruption too.
        let opened = catch_unwind(AssertUnwindSafe(|| RedbStore::builder().open(&path)));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(OpenError::from_redb(path, e)),
            Err(_) => {
                return Err(OpenError::Corrupt {
                    path,
                    reason: "redb could not parse the file".into(),
                });
            }
        };
        // A create that crashed after linking the store into place leaves
        // `<path>.new` as a second name of this file (or, earlier, as an
        // empty store): either way it holds nothing of its own.
        let _ = fs::remove_file(RedbStore::fresh_path(&path));
        RedbStore::migrate(db, path, false)
    }

    /// `<path>.new`, where a new store is built before it gets its name.
    fn fresh_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".new");
        path.with_file_name(name)
    }

    fn create(path: PathBuf) -> Result<RedbStore, OpenError> {
        let fresh = RedbStore::fresh_path(&path);
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        // A `.new` file is only ever a store that was never moved into place:
        // it holds nothing but empty tables.
        match fs::remove_file(&fresh) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&fresh).map_err(io)?;
        let backend = FileBackend::new(file).map_err(|e| OpenError::from_redb(path.clone(), e))?;
        let db = RedbStore::builder()
            .create_with_backend(backend)
            .map_err(|e| OpenError::from_redb(path.clone(), e))?;
        let store = RedbStore::migrate(db, path.clone(), true)?;
        // `hard_link` refuses to replace a file that appeared meanwhile; the
        // open database follows its inode, whatever its name.
        if let Err(e) = fs::hard_link(&fresh, &path) {
            let _ = fs::remove_file(&fresh);
            return Err(io(e));
        }
        fs::remove_file(&fresh).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(store)
    }

    /// Reads the schema version and runs the migrations after it, in one
    /// transaction. `new` says the file was just created (so it is empty).
    fn migrate(db: Database, path: PathBuf, new: bool) -> Result<RedbStore, OpenError> {
        let redb_error = |e| OpenError::from_redb(path.clone(), e);
        let mut txn = db.begin_write().map_err(|e| redb_error(e.into()))?;
        txn.set_two_phase_commit(true);
        let from = match migrations::found_version(&txn).map_err(redb_error)? {
            Found::Version(v) if v > SCHEMA_VERSION => {
                return Err(OpenError::UnknownSchema {
                    path,
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Found::Version(v) => v,
            Found::Empty => 0,
            Found::Foreign if !new => {
                return Err(OpenError::NotAStore {
                    path,
                    reason: "it is a redb database without peergroup's metadata table".into(),
                });
            }
            Found::Foreign | Found::MissingVersion => {
                return Err(OpenError::Corrupt {
                    path,
                    reason: "the metadata table has no schema version".into(),
                });
            }
        };
        if from == SCHEMA_VERSION {
            // Nothing to write: leave the file as the integrity check left it.
            txn.abort().map_err(|e| redb_error(e.into()))?;
        } else {
            migrations::migrate(&txn, from).map_err(|failure| match failure {
                Failure::Redb(e) => OpenError::from_redb(path.clone(), e),
                Failure::Corrupt(reason) | Failure::Refused(reason) => OpenError::Corrupt {
                    path: path.clone(),
                    reason,
                },
            })?;
            txn.commit().map_err(|e| redb_error(e.into()))?;
        }
        Ok(RedbStore { db, path })
    }

    /// A durable write transaction with two-phase commit: after a crash the
    /// last committed state is intact, and a page damaged later is reported
    /// instead of silently rolled back to the previous commit.
    pub(super) fn begin_write(&self) -> Result<WriteTransaction, Failure> {
        let mut txn = self.db.begin_write()?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    pub(super) fn commit(&self, txn: WriteTransaction) -> Result<(), Failure> {
        Ok(txn.commit()?)
    }

    /// Removes every record and tombstone expired at `now` (see [`Store::expire`]).
    ///
    /// Uses the expiry index only: nothing is decoded. Outcomes come in
    /// (group, id) order, as [`peergroup_protocol::MemoryStore`] reports them.
    pub fn expire_records(&self, now: Timestamp) -> Result<Vec<Merged>, AccessError> {
        let result = (|| -> Result<Vec<Merged>, Failure> {
            let txn = self.begin_write()?;
            let (outcomes, removed) = self.expire_in(&txn, now, &[])?;
            if removed == 0 {
                // Nothing expired: leave the file as it was.
                txn.abort()?;
            } else {
                self.commit(txn)?;
            }
            Ok(outcomes)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// The expiry pass inside `txn`: the live records it removed, and how
    /// many rows (tombstones included) it removed.
    pub(super) fn expire_in(
        &self,
        txn: &WriteTransaction,
        now: Timestamp,
        keep: &[PeerName],
    ) -> Result<(Vec<Merged>, u64), Failure> {
        let mut outcomes = Vec::new();
        let mut removed = 0u64;
        let mut records = txn.open_table(RECORDS)?;
        let mut summaries = txn.open_table(RECORD_SUMMARIES)?;
        let mut by_type = txn.open_table(RECORDS_BY_TYPE)?;
        let mut by_expiry = txn.open_table(RECORDS_BY_EXPIRY)?;
        // Expired means `expires_at <= now`: every key below `now + 1`.
        let upper = now.as_millis().checked_add(1).map(u64::to_be_bytes);
        let hi = upper
            .as_ref()
            .map_or(Bound::Unbounded, |u| Bound::Excluded(u.as_slice()));
        let mut due = Vec::new();
        for row in by_expiry.range::<&[u8]>((Bound::Unbounded, hi))? {
            let (key, value) = row?;
            due.push((key.value().to_vec(), value.value().to_vec()));
        }
        for (key, value) in due {
            let parsed = parse_expiry_key(&key);
            let Some((_, row_key, group, id)) = parsed else {
                return Err(Failure::Corrupt(format!(
                    "malformed expiry index key {key:02x?}"
                )));
            };
            let Ok(value) = <[u8; EXPIRY_VALUE_LEN]>::try_from(value.as_slice()) else {
                return Err(Failure::Corrupt(format!(
                    "malformed expiry index value {value:02x?}"
                )));
            };
            let (record_type, deleted) = value.split_at(16);
            let record_type = RecordType(record_type.try_into().unwrap_or_default());
            let group = PeerName::parse(group).map_err(|err| {
                Failure::Corrupt(format!("the expiry index names group {group:?}: {err}"))
            })?;
            if keep.contains(&group) {
                continue;
            }
            if records.remove(row_key)?.is_none() {
                return Err(Failure::Corrupt(format!(
                    "the expiry index names record {id} of group {group}, which is missing"
                )));
            }
            summaries.remove(row_key)?;
            by_type.remove(type_key(&group, &record_type, &id).as_slice())?;
            by_expiry.remove(key.as_slice())?;
            removed = removed.saturating_add(1);
            if deleted != [0] {
                continue;
            }
            outcomes.push(Merged {
                group,
                id,
                record_type,
                change: Change::Expired,
            });
        }
        outcomes.sort_by(|a, b| (&a.group, a.id).cmp(&(&b.group, b.id)));
        Ok((outcomes, removed))
    }

    /// Removes all of `group`'s records (see [`Store::remove_group`]).
    pub fn remove_group_records(&self, group: &PeerName) -> Result<u64, AccessError> {
        let result = (|| -> Result<u64, Failure> {
            let txn = self.begin_write()?;
            let removed = self.remove_group_in(&txn, group)?;
            self.commit(txn)?;
            Ok(removed)
        })();
        result.map_err(|f| f.at(&self.path))
    }

    /// Removes `group`'s records, summaries and index entries inside `txn`,
    /// finding them through the type index (whose values carry the expiry).
    pub(super) fn remove_group_in(
        &self,
        txn: &WriteTransaction,
        group: &PeerName,
    ) -> Result<u64, Failure> {
        let mut records = txn.open_table(RECORDS)?;
        let mut summaries = txn.open_table(RECORD_SUMMARIES)?;
        let mut by_type = txn.open_table(RECORDS_BY_TYPE)?;
        let mut by_expiry = txn.open_table(RECORDS_BY_EXPIRY)?;
        let prefix = group_prefix(group);
        let mut hi = prefix.clone();
        hi.extend_from_slice(&[0xff; 32]);
        let mut entries = Vec::new();
        for row in by_type.range::<&[u8]>(prefix.as_slice()..=hi.as_slice())? {
            let (key, expires_at) = row?;
            entries.push((key.value().to_vec(), expires_at.value()));
        }
        for (key, expires_at) in &entries {
            let Some((_, id)) = key.get(prefix.len()..).and_then(parse_type_tail) else {
                return Err(Failure::Corrupt(format!(
                    "malformed type index key {key:02x?}"
                )));
            };
            let row_key = record_key(group, &id);
            records.remove(row_key.as_slice())?;
            summaries.remove(row_key.as_slice())?;
            by_expiry.remove(expiry_key(*expires_at, group, &id).as_slice())?;
            by_type.remove(key.as_slice())?;
        }
        Ok(entries.len() as u64)
    }
}

impl ReadStore for RedbStore {
    fn get(&self, group: &PeerName, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        Ok(self.get_record(group, id)?)
    }

    fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        Ok(self.list_records(group, record_type, after, limit)?)
    }
}

impl Store for RedbStore {
    fn merge(&mut self, batch: Vec<SignedRecord>) -> Result<Vec<Merged>, StoreError> {
        Ok(self.merge_records(batch)?)
    }

    fn expire(&mut self, now: Timestamp) -> Result<Vec<Merged>, StoreError> {
        Ok(self.expire_records(now)?)
    }

    fn remove_group(&mut self, group: &PeerName) -> Result<u64, StoreError> {
        Ok(self.remove_group_records(group)?)
    }
}
