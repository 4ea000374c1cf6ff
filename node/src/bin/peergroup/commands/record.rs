//! `peergroup record ...` and `peergroup events`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use peergroup_node::{
    Request, Response,
    protocol::{
        AttributeValue, Attributes, MAX_RECORD_DATA, NewRecord, PeerName, Record, RecordId,
        RecordType,
    },
};

use super::{
    Ctx, date, done, file_or_stdin, parse_pair, parse_record_id, parse_record_type, read_limited,
    refused, unexpected,
};
use crate::exit::Exit;
use crate::exit::out;

/// The record type the CLI uses when `--type` is not given: an application
/// type of its own (not reserved; any GUID works).
pub(crate) const DEFAULT_RECORD_TYPE: &str = "70656572-6772-6f75-7000-00000000c11d";

/// How long a record lives when `--expires-in` is not given.
const DEFAULT_RECORD_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Adds a record (`PeerGroupAddRecord`); prints its id.
    Add {
        /// The group.
        group: PeerName,
        #[command(flatten)]
        body: RecordBody,
        /// The record's type (a GUID).
        #[arg(long = "type", default_value = DEFAULT_RECORD_TYPE, value_parser = parse_record_type)]
        record_type: RecordType,
        /// How long the record lives (e.g. 30d, 12h).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// Adds this many records, the data of each followed by its number
        /// (` 1`, ` 2`, ...), over one connection: for load and sync tests.
        /// Prints every id.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
    },
    /// Updates a record (`PeerGroupUpdateRecord`): new data and attributes
    /// replace what is given; the rest stays.
    ///
    /// Only the data, attributes and expiration (never shortened) change.
    /// The type, flags and format cannot (the node refuses a change); the
    /// creator, group, version and creation time are the node's to keep or
    /// set (the version goes up by one, the modifier is the updating
    /// identity, the modification time now): values given for them through
    /// the API are ignored, as Windows ignores those members.
    Update {
        /// The group.
        group: PeerName,
        /// The record's id.
        #[arg(value_parser = parse_record_id)]
        id: RecordId,
        #[command(flatten)]
        body: RecordBody,
        /// A new lifetime from now (e.g. 30d).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Deletes a record (`PeerGroupDeleteRecord`).
    Delete {
        /// The group.
        group: PeerName,
        /// The record's id.
        #[arg(value_parser = parse_record_id)]
        id: RecordId,
    },
    /// Prints a record (`PeerGroupGetRecord`): its data as text, or to a file.
    Get {
        /// The group.
        group: PeerName,
        /// The record's id.
        #[arg(value_parser = parse_record_id)]
        id: RecordId,
        /// Write the data to this file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lists the group's live records in id order (`PeerGroupEnumRecords`),
    /// one a line: id, version, creator, attributes, data (as text when it
    /// is short text). The group's internal records (its members'
    /// credentials) are left out unless asked for. When more records
    /// follow the page, stderr says which --after gives the next.
    List {
        /// The group.
        group: PeerName,
        /// Only records of this type (a GUID; a reserved type too).
        #[arg(long = "type", value_parser = parse_record_type)]
        record_type: Option<RecordType>,
        /// Also the group's internal records, of the reserved types (its
        /// members' credentials, for one).
        #[arg(long)]
        internal: bool,
        /// At most this many records, or `all` (read from the node a page
        /// of up to 1,000 at a time).
        #[arg(long, value_parser = parse_limit, default_value = "100")]
        limit: Limit,
        /// Only the records after this id: the cursor a previous page
        /// printed, to page on.
        #[arg(long, value_parser = parse_record_id)]
        after: Option<RecordId>,
    },
    /// Searches the local replica (`PeerGroupSearchRecords`): the live
    /// records that match a query, in id order, printed as `record list`
    /// prints them; works before the group is connected.
    #[command(
        group(clap::ArgGroup::new("search").required(true).args(["query", "xml"])),
        override_usage = "peergroup record search [OPTIONS] <GROUP> <QUERY|--xml <FILE>>"
    )]
    Search {
        /// The group.
        group: PeerName,
        /// The query in the short form, such as
        /// `'Priority<=3 and peercreatorid="*.James*"'` (docs/search.md).
        query: Option<String>,
        /// The query in Windows' XML form (`<peersearch>`), from this file
        /// (`-`: stdin), UTF-8.
        #[arg(long, value_name = "FILE")]
        xml: Option<PathBuf>,
    },
}

/// `record list --limit`: a number of records, or all of them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    Count(u64),
    All,
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "all" {
        return Ok(Limit::All);
    }
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Limit::Count(n)),
        _ => Err(format!(
            "{s:?} is not a number of records (1 or more) or `all`"
        )),
    }
}

/// The most records `record list` asks the node for at once (the API's
/// largest page).
const LIST_PAGE: u64 = 1000;

/// A record's data and attributes on the command line.
#[derive(Debug, Args)]
pub(crate) struct RecordBody {
    /// The data, as text.
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// The data from a file (`-` for stdin).
    #[arg(long)]
    data_file: Option<PathBuf>,
    /// A string attribute `name=value` (repeatable).
    #[arg(long = "attr", value_parser = parse_pair)]
    attrs: Vec<(String, String)>,
    /// An integer attribute `name=123` (repeatable).
    #[arg(long = "int-attr", value_parser = parse_pair)]
    int_attrs: Vec<(String, String)>,
}

/// Filters of `events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only these kinds (repeatable or comma-separated): StatusChanged,
    /// PropertiesChanged, RecordChanged, MemberChanged, NeighborConnection,
    /// ConnectionFailed, SyncProgress, AuthenticationFailed, StoreFailed.
    #[arg(long = "kind", value_delimiter = ',')]
    pub(crate) kinds: Vec<String>,
    /// Only this group's events.
    #[arg(long)]
    pub(crate) group: Option<PeerName>,
    /// Only record changes of this type.
    #[arg(long = "type", value_parser = parse_record_type)]
    pub(crate) record_type: Option<RecordType>,
    /// Stop after this many events (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
}

impl RecordBody {
    /// The data, if given.
    fn data(&self) -> Result<Option<Vec<u8>>> {
        match (&self.data, &self.data_file) {
            (Some(text), _) => Ok(Some(text.as_bytes().to_vec())),
            (None, Some(path)) => file_or_stdin(path, MAX_RECORD_DATA).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Applies the attributes to `attributes`.
    fn apply(&self, attributes: &mut Attributes) -> Result<()> {
        for (name, value) in &self.attrs {
            attributes
                .set(name, AttributeValue::String(value.clone()))
                .map_err(|e| Exit::Usage(format!("attribute {name}: {e}")))?;
        }
        for (name, value) in &self.int_attrs {
            let n: i64 = value.parse().map_err(|_| {
                Exit::Usage(format!("attribute {name}: {value:?} is not an integer"))
            })?;
            attributes
                .set(name, AttributeValue::Int(n))
                .map_err(|e| Exit::Usage(format!("attribute {name}: {e}")))?;
        }
        Ok(())
    }
}

pub(crate) fn record(ctx: &Ctx, command: RecordCommand) -> Result<()> {
    match command {
        RecordCommand::Add {
            group,
            body,
            record_type,
            expires_in,
            repeat,
        } => {
            let expires_at = ctx
                .now()?
                .saturating_add(expires_in.unwrap_or(DEFAULT_RECORD_LIFETIME));
            let mut record = NewRecord::new(record_type, expires_at);
            if let Some(data) = body.data()? {
                record.data = data;
            }
            body.apply(&mut record.attributes)?;
            for n in 1..=repeat {
                let mut record = record.clone();
                if repeat > 1 {
                    record.data.extend_from_slice(format!(" {n}").as_bytes());
                }
                let r = ctx.send(Request::AddRecord {
                    group: group.clone(),
                    record,
                })?;
                ctx.print(&r, |r| {
                    if let Response::RecordId(id) = r {
                        out!("{id}");
                    }
                })?;
            }
            Ok(())
        }
        RecordCommand::Update {
            group,
            id,
            body,
            expires_in,
        } => {
            let mut record = get_record(ctx, &group, id)?;
            if let Some(data) = body.data()? {
                record.data = data;
            }
            body.apply(&mut record.attributes)?;
            if let Some(d) = expires_in {
                record.expires_at = ctx.now()?.saturating_add(d);
            }
            let r = ctx.send(Request::UpdateRecord { group, record })?;
            done(ctx, r, &format!("updated {id}"))
        }
        RecordCommand::Delete { group, id } => {
            let r = ctx.send(Request::DeleteRecord { group, id })?;
            done(ctx, r, &format!("deleted {id}"))
        }
        RecordCommand::Get { group, id, out } => {
            let r = ctx.send(Request::GetRecord { group, id })?;
            let Response::Record(record) = &r else {
                return Err(unexpected(&r));
            };
            if let Some(path) = out {
                std::fs::write(&path, &record.data)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if ctx.json {
                    ctx.print(&r, |_| {})?;
                }
                return Ok(());
            }
            ctx.print(&r, |_| {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&record.data);
                if !record.data.ends_with(b"\n") {
                    out!();
                }
            })
        }
        RecordCommand::List {
            group,
            record_type,
            internal,
            limit,
            after,
        } => list(ctx, group, record_type, internal, limit, after),
        RecordCommand::Search { group, query, xml } => {
            let xml = match &xml {
                Some(path) => Some(read_query(path)?),
                None => None,
            };
            let r = ctx.send(Request::SearchRecords { group, xml, query })?;
            let Response::Records(records) = &r else {
                return Err(unexpected(&r));
            };
            ctx.print(&r, |_| {
                for record in records {
                    print_record_line(record);
                }
            })
        }
    }
}

/// Reads an XML query: at most `MAX_QUERY_BYTES` of UTF-8, else refused as
/// the node would refuse it (`PEER_E_INVALID_SEARCH`).
fn read_query(path: &std::path::Path) -> Result<String> {
    use peergroup_node::protocol::{Error, search::MAX_QUERY_BYTES};
    let bytes = read_limited(path, MAX_QUERY_BYTES, |size| {
        Error::InvalidSearch(format!(
            "a query of {size} bytes (at most {MAX_QUERY_BYTES})"
        ))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let utf16 =
            e.as_bytes().starts_with(&[0xFF, 0xFE]) || e.as_bytes().starts_with(&[0xFE, 0xFF]);
        let hint = if utf16 {
            " (it looks like UTF-16: save it as UTF-8)"
        } else {
            ""
        };
        refused(
            path,
            &Error::InvalidSearch(format!(
                "the XML query is not UTF-8: {}{hint}",
                e.utf8_error()
            )),
        )
    })
}

fn get_record(ctx: &Ctx, group: &PeerName, id: RecordId) -> Result<Record> {
    match ctx.send(Request::GetRecord {
        group: group.clone(),
        id,
    })? {
        Response::Record(record) => Ok(record),
        other => Err(unexpected(&other)),
    }
}

/// `record list`: pages of up to [`LIST_PAGE`] records until `limit`
/// records or the last page (one of fewer than asked). People see each
/// page as it comes; `--json` prints one `Records` response, the API's
/// array, with every record read. When `limit` stopped the listing and
/// more records follow, stderr says which `--after` (the last id listed)
/// lists the next page, with or without `--json`.
fn list(
    ctx: &Ctx,
    group: PeerName,
    record_type: Option<RecordType>,
    internal: bool,
    limit: Limit,
    mut after: Option<RecordId>,
) -> Result<()> {
    let mut all = Vec::new();
    let mut listed = 0u64;
    let more = loop {
        // With a count, one record beyond it tells whether more follow
        // (when the count is reached, the request is that one record).
        let (ask, left) = match limit {
            Limit::Count(n) => {
                let left = n.saturating_sub(listed);
                (left.saturating_add(1).min(LIST_PAGE), left)
            }
            Limit::All => (LIST_PAGE, u64::MAX),
        };
        let r = ctx.send(Request::Records {
            group: group.clone(),
            record_type,
            internal,
            after,
            limit: Some(u32::try_from(ask).unwrap_or(u32::MAX)),
        })?;
        let Response::Records(mut records) = r else {
            return Err(unexpected(&r));
        };
        let full = records.len() as u64 == ask;
        let beyond = records.len() as u64 > left;
        records.truncate(usize::try_from(left).unwrap_or(usize::MAX));
        listed = listed.saturating_add(records.len() as u64);
        if let Some(last) = records.last() {
            after = Some(last.id);
        }
        if ctx.json {
            all.extend(records);
        } else {
            for record in &records {
                print_record_line(record);
            }
        }
        if beyond || !full {
            break beyond;
        }
    };
    if ctx.json {
        ctx.print(&Response::Records(all), |_| {})?;
    }
    if more && let Some(id) = after {
        eprintln!("more records follow: list the next page with --after {id}");
    }
    Ok(())
}

/// One line per record: id, version, creator, attributes (`-` for none),
/// data (as text when it is short text).
fn print_record_line(record: &Record) {
    let data = match std::str::from_utf8(&record.data) {
        Ok(text) if text.len() <= 80 && !text.contains('\n') => text.to_owned(),
        _ => format!("<{} bytes>", record.data.len()),
    };
    out!(
        "{}\tv{}\t{}\t{}\t{}",
        record.id,
        record.version,
        record.creator,
        attributes_text(&record.attributes),
        data
    );
}

/// Attributes as `name=value` words: strings quoted when they hold
/// whitespace, quotes, `=` or nothing; dates in RFC 3339; `-` for none.
fn attributes_text(attributes: &Attributes) -> String {
    if attributes.is_empty() {
        return "-".into();
    }
    attributes
        .iter()
        .map(|a| {
            let value = match &a.value {
                AttributeValue::Int(n) => n.to_string(),
                AttributeValue::Date(t) => date(*t),
                AttributeValue::String(s)
                    if s.is_empty()
                        || s.chars()
                            .any(|c| c.is_whitespace() || c.is_control() || "\"'=".contains(c)) =>
                {
                    format!("{s:?}")
                }
                AttributeValue::String(s) => s.clone(),
            };
            format!("{}={value}", a.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `events`: follows the event stream, one line (or JSON object) per event.
pub(crate) fn events(ctx: &Ctx, args: EventsArgs) -> Result<()> {
    let mut query = Vec::new();
    if !args.kinds.is_empty() {
        query.push(format!("kind={}", args.kinds.join(",")));
    }
    if let Some(group) = &args.group {
        query.push(format!("group={group}"));
    }
    if let Some(t) = &args.record_type {
        query.push(format!("record_type={t}"));
    }
    let mut seen = 0u64;
    ctx.client.events(&query.join("&"), |event| {
        if ctx.json {
            out!("{}", event.data);
        } else {
            out!("{}\t{}", event.kind, event.data);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        seen += 1;
        Ok(args.count.is_none_or(|n| seen < n))
    })
}
