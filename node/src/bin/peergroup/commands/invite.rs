//! `peergroup invite ...` and `peergroup join`.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use libp2p::Multiaddr;
use peergroup_node::{
    GroupPassword, Request, Response,
    protocol::{DecodeError, IdentityInfo, InvitationInfo, PeerName, Role, Signed},
};

use super::{Ctx, date, parse_role, text_or_stdin};
use crate::exit::Exit;
use crate::exit::out;

#[derive(Debug, Subcommand)]
pub(crate) enum InviteCommand {
    /// Invites an identity (`PeerGroupCreateInvitation`); prints the invitation.
    Create {
        /// The group.
        group: PeerName,
        /// The invitee's public identity text (`identity show` on its node).
        identity_text: String,
        /// The role to grant: member, inviting-member or admin.
        #[arg(long, value_parser = parse_role, default_value = "member")]
        role: Role,
        /// How long the invitation is valid, and with it the invitee's
        /// membership unless an admin renews it (e.g. 7d; default: a year,
        /// or until the inviter's own credential ends if that is sooner;
        /// never beyond it).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// A password invitation (`PeerGroupCreatePasswordInvitation`).
    Password {
        /// The group.
        group: PeerName,
    },
    /// Shows what an invitation contains (`PeerGroupParseInvitation`);
    /// needs no node.
    Parse {
        /// The invitation text (`-` for stdin).
        invitation: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The invitation text (`-` for stdin).
    pub(crate) invitation: String,
    /// The joining identity (default: the default identity).
    #[arg(long)]
    pub(crate) identity: Option<PeerName>,
    /// Join with the group password (a password invitation).
    #[arg(long, env = "PEERGROUP_GROUP_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// A member's address to dial besides discovery (repeatable).
    #[arg(long = "address")]
    pub(crate) addresses: Vec<Multiaddr>,
    /// Do not show a progress bar.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

pub(crate) fn invite(ctx: Option<&Ctx>, json: bool, command: InviteCommand) -> Result<()> {
    let node = || ctx.ok_or_else(|| anyhow::anyhow!("no node"));
    match command {
        InviteCommand::Create {
            group,
            identity_text,
            role,
            expires_in,
        } => {
            let ctx = node()?;
            // A text that does not read is a wrong argument (exit 2), found
            // here rather than refused by the node.
            let subject = text_or_stdin(&identity_text)?;
            Signed::<IdentityInfo>::from_identity_text(&subject).map_err(|e| {
                Exit::Usage(match e {
                    // Already in words about the text.
                    peergroup_node::protocol::Error::Decode(DecodeError::Text { reason }) => reason,
                    other => format!("the identity text does not verify: {other}"),
                })
            })?;
            let expires = match expires_in {
                Some(d) => Some(ctx.now()?.saturating_add(d)),
                None => None,
            };
            let r = ctx.send(Request::CreateInvitation {
                group,
                subject,
                role,
                expires,
            })?;
            print_invitation(ctx, &r)
        }
        InviteCommand::Password { group } => {
            let ctx = node()?;
            let r = ctx.send(Request::CreatePasswordInvitation { group })?;
            print_invitation(ctx, &r)
        }
        InviteCommand::Parse { invitation } => {
            let text = text_or_stdin(&invitation)?;
            let info = InvitationInfo::parse(&text).map_err(|e| Exit::Usage(e.to_string()))?;
            if json {
                let value = serde_json::json!({
                    "group": info.group,
                    "group_friendly_name": info.group_friendly_name,
                    "cloud": info.cloud,
                    "scheme": format!("{:?}", info.scheme),
                    "issuer": info.issuer,
                    "issuer_role": info.issuer_role,
                    "subject": info.subject,
                    "role": info.role,
                    "not_before": info.not_before,
                    "not_after": info.not_after,
                });
                out!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                out!("group       {}", info.group);
                out!("name        {}", info.group_friendly_name);
                out!("scheme      {:?}", info.scheme);
                out!("issuer      {} ({:?})", info.issuer, info.issuer_role);
                if let Some(subject) = &info.subject {
                    out!("for         {subject}");
                }
                out!("role        {:?}", info.role);
                out!("valid from  {}", date(info.not_before));
                out!("valid until {}", date(info.not_after));
            }
            Ok(())
        }
    }
}

fn print_invitation(ctx: &Ctx, r: &Response) -> Result<()> {
    ctx.print(r, |r| {
        if let Response::Invitation(text) = r {
            out!("{text}");
        }
    })
}

/// Whether `e` is the node's refusal named `name`.
fn is_refusal(e: &anyhow::Error, name: &str) -> bool {
    matches!(e.downcast_ref::<Exit>(), Some(Exit::Refused { name: n, .. }) if n == name)
}

/// `join`: `PeerGroupJoin` (or the password join), then connect until the
/// group is ready, with a progress bar fed by the node's `SyncProgress`
/// events.
pub(crate) fn join(ctx: &Ctx, args: JoinArgs) -> Result<()> {
    let identity = ctx.identity_or_default(args.identity)?;
    let invitation = text_or_stdin(&args.invitation)?;
    let info = InvitationInfo::parse(&invitation).map_err(|e| Exit::Usage(e.to_string()))?;
    let group = info.group.clone();
    let progress = (!args.no_progress && !ctx.json)
        .then(|| crate::progress::SyncBar::start(&ctx.client, &group));
    let result = (|| -> Result<()> {
        match args.password {
            Some(password) => {
                ctx.send(Request::PasswordJoin {
                    identity,
                    invitation,
                    password: GroupPassword::new(password),
                    addresses: args.addresses,
                })?;
            }
            None => {
                // A join whose connect failed left the group here: joining
                // again resumes it (connects) instead of refusing.
                match ctx.send(Request::Join {
                    identity,
                    invitation,
                }) {
                    Ok(_) => {}
                    Err(e) if is_refusal(&e, "PEER_E_GROUP_IN_USE") => {}
                    Err(e) => return Err(e),
                }
                ctx.send(Request::Connect {
                    group: group.clone(),
                    addresses: args.addresses,
                })
                .map_err(|e| match e.downcast::<Exit>() {
                    Ok(Exit::Refused {
                        name,
                        code,
                        message,
                    }) => Exit::Refused {
                        name,
                        code,
                        message: format!(
                            "{message} (the group stays joined: run this join again, or \
                             `peergroup group connect {group} --address ...`)"
                        ),
                    }
                    .into(),
                    Ok(other) => other.into(),
                    Err(e) => e,
                })?;
            }
        }
        Ok(())
    })();
    if let Some(bar) = progress {
        bar.finish(result.is_ok());
    }
    result?;
    let r = Response::Group(group.clone());
    ctx.print(&r, |_| out!("{group}"))
}
