//! `peergroup group ...`: the group lifecycle, properties, members.

use anyhow::Result;
use clap::{Args, Subcommand};
use libp2p::Multiaddr;
use peergroup_node::{
    GroupPassword, Request, Response,
    protocol::{Cloud, GroupSpec, PeerName, Role},
};

use super::{Ctx, done, parse_role, unexpected};
use crate::exit::out;

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Creates a group and brings it online (`PeerGroupCreate`, then
    /// `PeerGroupConnect`, which a creator completes at once); prints its
    /// peer name.
    Create(CreateGroup),
    /// Lists the groups this node knows.
    List,
    /// Opens a group (`PeerGroupOpen`).
    Open {
        /// The group.
        group: PeerName,
    },
    /// Connects an open group to its members (`PeerGroupConnect`); waits
    /// until it is ready or fails.
    Connect {
        /// The group.
        group: PeerName,
        /// A member's address to dial besides discovery (repeatable).
        #[arg(long = "address")]
        addresses: Vec<Multiaddr>,
    },
    /// Closes a group (`PeerGroupClose`).
    Close {
        /// The group.
        group: PeerName,
    },
    /// Deletes a group and its data from this node (`PeerGroupDelete`).
    Delete {
        /// The group.
        group: PeerName,
    },
    /// Shows a group's properties (`PeerGroupGetProperties`).
    Properties {
        /// The group.
        group: PeerName,
    },
    /// Changes a group's friendly name or comment (`PeerGroupSetProperties`; admins).
    SetProperties {
        /// The group.
        group: PeerName,
        /// The new friendly name.
        #[arg(long)]
        name: Option<String>,
        /// The new comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Lists the group's members (`PeerGroupEnumMembers`).
    Members {
        /// The group.
        group: PeerName,
    },
    /// Lists the group's neighbours (`PeerGroupEnumConnections`).
    Connections {
        /// The group.
        group: PeerName,
    },
    /// Shows a group's status (`PeerGroupGetStatus`).
    Status {
        /// The group.
        group: PeerName,
    },
    /// Prints the digest of the group's database: replicas that hold the
    /// same records print the same digest.
    Digest {
        /// The group.
        group: PeerName,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CreateGroup {
    /// The group's classifier: the part of its peer name after the dot.
    pub(crate) classifier: String,
    /// The creating identity (default: the default identity).
    #[arg(long)]
    pub(crate) identity: Option<PeerName>,
    /// The display name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// A description.
    #[arg(long)]
    pub(crate) comment: Option<String>,
    /// Only link-local discovery (mDNS), no Kademlia.
    #[arg(long)]
    pub(crate) link_local: bool,
    /// Makes a password group: joiners who know it are admitted.
    #[arg(long, env = "PEERGROUP_GROUP_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// The role password joiners get.
    #[arg(long, value_parser = parse_role, default_value = "member")]
    pub(crate) password_role: Role,
    /// Leave the new group open but offline (`group connect` brings it online).
    #[arg(long)]
    pub(crate) offline: bool,
}

pub(crate) fn group(ctx: &Ctx, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create(args) => {
            let identity = ctx.identity_or_default(args.identity)?;
            let mut spec = GroupSpec::new(&identity, &args.classifier);
            spec.friendly_name = args.name;
            spec.comment = args.comment;
            if args.link_local {
                spec.cloud = Cloud::LinkLocal;
            }
            let request = match args.password {
                Some(password) => Request::CreatePasswordGroup {
                    spec,
                    password: GroupPassword::new(password),
                    role: args.password_role,
                },
                None => Request::CreateGroup { spec },
            };
            let r = ctx.send(request)?;
            if let (Response::Group(group), false) = (&r, args.offline) {
                ctx.send(Request::Connect {
                    group: group.clone(),
                    addresses: Vec::new(),
                })?;
            }
            ctx.print(&r, |r| {
                if let Response::Group(group) = r {
                    out!("{group}");
                }
            })
        }
        GroupCommand::List => {
            let r = ctx.send(Request::Groups)?;
            ctx.print(&r, |r| {
                if let Response::Groups(groups) = r {
                    for g in groups {
                        out!("{}\t{:?}", g.group, g.lifecycle);
                    }
                }
            })
        }
        GroupCommand::Open { group } => {
            let r = ctx.send(Request::Open {
                group: group.clone(),
            })?;
            done(ctx, r, &format!("opened {group}"))
        }
        GroupCommand::Connect { group, addresses } => {
            let r = ctx.send(Request::Connect {
                group: group.clone(),
                addresses,
            })?;
            done(ctx, r, &format!("connected {group}"))
        }
        GroupCommand::Close { group } => {
            let r = ctx.send(Request::Close {
                group: group.clone(),
            })?;
            done(ctx, r, &format!("closed {group}"))
        }
        GroupCommand::Delete { group } => {
            let r = ctx.send(Request::DeleteGroup {
                group: group.clone(),
            })?;
            done(ctx, r, &format!("deleted {group}"))
        }
        GroupCommand::Properties { group } => {
            let r = ctx.send(Request::Properties { group })?;
            ctx.print(&r, |r| {
                if let Response::Properties(p) = r {
                    out!("group         {}", p.group_peer_name);
                    out!("creator       {}", p.creator_peer_name);
                    out!("friendly name {}", p.friendly_name);
                    out!("comment       {}", p.comment);
                    out!("cloud         {:?}", p.cloud);
                }
            })
        }
        GroupCommand::SetProperties {
            group,
            name,
            comment,
        } => {
            let r = ctx.send(Request::Properties {
                group: group.clone(),
            })?;
            let Response::Properties(mut properties) = r else {
                return Err(unexpected(&r));
            };
            if let Some(name) = name {
                properties.friendly_name = name;
            }
            if let Some(comment) = comment {
                properties.comment = comment;
            }
            let r = ctx.send(Request::SetProperties {
                group: group.clone(),
                properties,
            })?;
            done(ctx, r, &format!("updated the properties of {group}"))
        }
        GroupCommand::Members { group } => {
            let r = ctx.send(Request::Members { group })?;
            ctx.print(&r, |r| {
                if let Response::Members(members) = r {
                    for m in members {
                        out!("{}\t{:?}", m.subject, m.role);
                    }
                }
            })
        }
        GroupCommand::Connections { group } => {
            let r = ctx.send(Request::Connections { group })?;
            ctx.print(&r, |r| {
                if let Response::Peers(peers) = r {
                    for p in peers {
                        out!("{p}");
                    }
                }
            })
        }
        GroupCommand::Digest { group } => {
            let r = ctx.send(Request::Digest { group })?;
            ctx.print(&r, |r| {
                if let Response::Digest(d) = r {
                    out!("{d}");
                }
            })
        }
        GroupCommand::Status { group } => {
            let r = ctx.send(Request::Status { group })?;
            ctx.print(&r, |r| {
                if let Response::Status(s) = r {
                    out!("listening       {}", s.listening);
                    out!("has connections {}", s.has_connections);
                    out!("ready           {}", s.ready);
                }
            })
        }
    }
}
