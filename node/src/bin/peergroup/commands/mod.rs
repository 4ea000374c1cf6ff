//! The CLI's operations: each builds a [`Request`], sends it through the
//! control API and prints the [`Response`] for a person, or as JSON with
//! `--json` (the API's own JSON, so scripts see what the API gives). One
//! file per command family.

mod group;
mod identity;
mod invite;
mod record;

use std::io::Read;

use anyhow::{Context, Result};
use peergroup_node::{
    Request, Response,
    protocol::{IdentityInfo, PeerName, RecordId, RecordType, Role, Signed, Timestamp},
};

pub(crate) use self::{
    group::{GroupCommand, group},
    identity::{IdentityCommand, identity},
    invite::{InviteCommand, JoinArgs, invite, join},
    record::{EventsArgs, RecordCommand, events, record},
};
use crate::exit::out;
use crate::{client::Client, daemon::DEFAULT_IDENTITY, exit::Exit};

/// The first second humantime cannot format (year 10000).
const YEAR_10000_SECS: u64 = 253_402_300_800;

/// A time for a person: an RFC 3339 date in UTC to the second
/// (`2027-01-06T10:00:00Z`). `--json` keeps the API's integers
/// (milliseconds since the Unix epoch).
pub(crate) fn date(t: Timestamp) -> String {
    if t == Timestamp::MAX {
        return "never".into();
    }
    let ms = t.as_millis();
    if ms / 1000 >= YEAR_10000_SECS {
        return format!("{ms} ms after the Unix epoch (after the year 9999)");
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "member" => Ok(Role::Member),
        "inviting-member" => Ok(Role::InvitingMember),
        "admin" => Ok(Role::Admin),
        other => Err(format!(
            "{other:?} is no role (member, inviting-member or admin)"
        )),
    }
}

fn parse_record_type(s: &str) -> Result<RecordType, String> {
    RecordType::parse(s).map_err(|e| e.to_string())
}

fn parse_record_id(s: &str) -> Result<RecordId, String> {
    RecordId::parse(s).map_err(|e| e.to_string())
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not name=value"))
}

/// Reads `text`, or stdin when it is `-`.
fn text_or_stdin(text: &str) -> Result<String> {
    if text == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("cannot read stdin")?;
        Ok(buf.trim().to_owned())
    } else {
        Ok(text.trim().to_owned())
    }
}

/// Reads a file, or stdin for `-`.
/// More than `max` bytes is refused before it is sent (and without reading
/// all of it): `PEER_E_MAX_RECORD_SIZE_EXCEEDED`, as the node would say.
fn file_or_stdin(path: &std::path::Path, max: usize) -> Result<Vec<u8>> {
    read_limited(path, max, |size| {
        peergroup_node::protocol::Error::MaxRecordSizeExceeded {
            size,
            max: max as u64,
        }
    })
}

/// A refusal of the node's kind (exit 3, with the error's `PEER_E_*` name),
/// made here before anything is sent; the message names `path`.
fn refused(path: &std::path::Path, e: &peergroup_node::protocol::Error) -> anyhow::Error {
    Exit::Refused {
        name: e.name().into(),
        code: e.code(),
        message: format!("{}: {e}", path.display()),
    }
    .into()
}

/// [`file_or_stdin`] with the refusal for more than `max` bytes made by
/// `too_big` from the size.
fn read_limited(
    path: &std::path::Path,
    max: usize,
    too_big: impl FnOnce(u64) -> peergroup_node::protocol::Error,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
    } else {
        // A file that cannot be read is an I/O failure (exit 1), not a
        // usage error.
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut buf))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if buf.len() > max {
        let size = if path.as_os_str() == "-" {
            buf.len() as u64
        } else {
            std::fs::metadata(path).map_or(buf.len() as u64, |m| m.len())
        };
        return Err(refused(path, &too_big(size)));
    }
    Ok(buf)
}

/// The CLI's output mode and connection.
pub(crate) struct Ctx {
    pub(crate) json: bool,
    pub(crate) client: Client,
}

impl Ctx {
    fn send(&self, request: Request) -> Result<Response> {
        Ok(self.client.request(&request)?)
    }

    /// Prints `response` as JSON when asked, else with `human`.
    fn print(&self, response: &Response, human: impl FnOnce(&Response)) -> Result<()> {
        if self.json {
            out!("{}", serde_json::to_string_pretty(response)?);
        } else {
            human(response);
        }
        Ok(())
    }

    /// The node's time now (peer time), for expirations.
    fn now(&self) -> Result<Timestamp> {
        match self.send(Request::PeerTime)? {
            Response::Time(t) => Ok(t),
            other => Err(unexpected(&other)),
        }
    }

    /// `identity`, or the node's default identity: the one with classifier
    /// `default`, or the only one.
    pub(crate) fn identity_or_default(&self, identity: Option<PeerName>) -> Result<PeerName> {
        if let Some(identity) = identity {
            return Ok(identity);
        }
        let identities = self.identities()?;
        if let Some(info) = identities
            .iter()
            .find(|i| i.payload().peer_name.classifier() == DEFAULT_IDENTITY)
        {
            return Ok(info.payload().peer_name.clone());
        }
        match identities.as_slice() {
            [only] => Ok(only.payload().peer_name.clone()),
            [] => Err(Exit::Usage(
                "this node has no identity: create one with `peergroup identity create NAME`"
                    .into(),
            )
            .into()),
            _ => Err(Exit::Usage(
                "this node has several identities and none is `default`: pass --identity".into(),
            )
            .into()),
        }
    }

    fn identities(&self) -> Result<Vec<Signed<IdentityInfo>>> {
        match self.send(Request::Identities)? {
            Response::Identities(list) => Ok(list),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(response: &Response) -> anyhow::Error {
    anyhow::anyhow!("unexpected answer from the node: {response:?}")
}

fn done(ctx: &Ctx, response: Response, message: &str) -> Result<()> {
    ctx.print(&response, |_| out!("{message}"))
}

/// `sync status GROUP`.
pub(crate) fn sync_status(ctx: &Ctx, group: PeerName) -> Result<()> {
    let r = ctx.send(Request::SyncStatus { group })?;
    ctx.print(&r, |r| {
        if let Response::Sync(status) = r {
            if status.running.is_empty() {
                out!("no synchronization running");
            }
            for run in &status.running {
                out!(
                    "running with {}: {} of about {} records{}",
                    run.peer,
                    run.received,
                    run.estimated_total,
                    if run.first { " (first)" } else { "" }
                );
            }
            for last in &status.last_completed {
                out!("last completed with {} at {}", last.peer, date(last.at));
            }
        }
    })
}

/// `status`: the node's peer id, addresses and API (the health check).
pub(crate) fn node_status(ctx: &Ctx) -> Result<()> {
    let Response::PeerId(peer) = ctx.send(Request::PeerId)? else {
        anyhow::bail!("unexpected answer");
    };
    let Response::Addresses(addrs) = ctx.send(Request::ListenAddrs)? else {
        anyhow::bail!("unexpected answer");
    };
    if ctx.json {
        let value = serde_json::json!({
            "peer_id": peer.to_string(),
            "listen_addrs": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "api": ctx.client.base(),
            "version": peergroup_node::VERSION,
        });
        out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        out!("peer id {peer}");
        for a in addrs {
            out!("listening on {a}");
        }
        out!("control api {}", ctx.client.base());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use peergroup_node::protocol::Timestamp;

    use super::date;

    #[test]
    fn dates_are_rfc_3339_to_the_second() {
        assert_eq!(date(Timestamp::EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            date(Timestamp::from_millis(1_799_229_600_999)),
            "2027-01-06T10:00:00Z"
        );
        assert_eq!(date(Timestamp::MAX), "never");
        // Beyond what RFC 3339 can write (a creator's credential lasts
        // about a thousand years, but not this long).
        assert!(date(Timestamp::from_millis(253_402_300_800_000)).contains("after the year 9999"));
        assert_eq!(
            date(Timestamp::from_millis(33_332_649_576_760)),
            "3026-04-09T13:19:36Z"
        );
    }
}
