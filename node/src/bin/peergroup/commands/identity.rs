//! `peergroup identity ...`: `PeerIdentityCreate` and friends.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use peergroup_node::{ExportedIdentity, Request, Response, protocol::PeerName};

use super::{Ctx, done, file_or_stdin, unexpected};
use crate::exit::Exit;
use crate::exit::out;

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Creates an identity (`PeerIdentityCreate`).
    Create {
        /// Its classifier: the part of the peer name after the dot.
        classifier: String,
        /// Its display name (default: the peer name).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Lists the node's identities (`PeerEnumIdentities`).
    List,
    /// Shows an identity and its public text, which an inviter passes to
    /// `invite create` (`PeerIdentityGetXML`).
    Show {
        /// The identity (default: the default identity).
        identity: Option<PeerName>,
        /// Print only the public text (for scripts: `invite create G "$(...)"`).
        #[arg(long)]
        text: bool,
    },
    /// Prints an identity with its secret key as JSON (`PeerIdentityExport`).
    /// The output is the identity: keep it secret. It is also its backup:
    /// the secret key lives only in the node's database file.
    Export {
        /// The identity.
        identity: PeerName,
        /// Write to this file (created with mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Imports an identity that `export` wrote (`PeerIdentityImport`).
    Import {
        /// The file (`-` for stdin).
        file: PathBuf,
    },
    /// Deletes an identity that no group uses (`PeerIdentityDelete`).
    Delete {
        /// The identity.
        identity: PeerName,
    },
}

pub(crate) fn identity(ctx: &Ctx, command: IdentityCommand) -> Result<()> {
    match command {
        IdentityCommand::Create { classifier, name } => {
            let r = ctx.send(Request::CreateIdentity {
                classifier,
                friendly_name: name,
            })?;
            ctx.print(&r, |r| {
                if let Response::Identity(info) = r {
                    out!("{}", info.payload().peer_name);
                }
            })
        }
        IdentityCommand::List => {
            let r = ctx.send(Request::Identities)?;
            ctx.print(&r, |r| {
                if let Response::Identities(list) = r {
                    for info in list {
                        let p = info.payload();
                        out!("{}\t{}", p.peer_name, p.friendly_name);
                    }
                }
            })
        }
        IdentityCommand::Show {
            identity,
            text: only_text,
        } => {
            let name = ctx.identity_or_default(identity)?;
            let info = ctx
                .identities()?
                .into_iter()
                .find(|i| i.payload().peer_name == name)
                .ok_or_else(|| Exit::Refused {
                    name: "PEER_E_NOT_FOUND".into(),
                    code: peergroup_node::protocol::Error::NotFound(String::new()).code(),
                    message: format!("not found: identity {name}"),
                })?;
            let text = info.to_text(peergroup_node::protocol::IDENTITY_TEXT_PREFIX);
            if only_text {
                out!("{text}");
            } else if ctx.json {
                let value = serde_json::json!({
                    "peer_name": info.payload().peer_name,
                    "friendly_name": info.payload().friendly_name,
                    "key": info.payload().key,
                    "public_text": text,
                });
                out!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                out!("peer name     {}", info.payload().peer_name);
                out!("friendly name {}", info.payload().friendly_name);
                out!("public text   {text}");
            }
            Ok(())
        }
        IdentityCommand::Export { identity, out } => {
            let r = ctx.send(Request::ExportIdentity { identity })?;
            let Response::ExportedIdentity(exported) = r else {
                return Err(unexpected(&r));
            };
            let json = serde_json::to_string_pretty(&exported)?;
            match out {
                Some(path) => {
                    write_private(&path, json.as_bytes())?;
                    if !ctx.json {
                        out!("wrote {} to {}", exported.peer_name, path.display());
                    }
                }
                None => out!("{json}"),
            }
            Ok(())
        }
        IdentityCommand::Import { file } => {
            let bytes = file_or_stdin(&file, 64 * 1024)?;
            let exported: ExportedIdentity = serde_json::from_slice(&bytes).map_err(|e| {
                Exit::Usage(format!(
                    "{} is not an exported identity: {e}",
                    file.display()
                ))
            })?;
            if exported.secret.len() != 32 {
                return Err(Exit::Usage(format!(
                    "{}: the secret key is {} bytes, not 32",
                    file.display(),
                    exported.secret.len()
                ))
                .into());
            }
            let r = ctx.send(Request::ImportIdentity {
                secret: exported.secret.clone(),
                classifier: exported.classifier.clone(),
                friendly_name: exported.friendly_name.clone(),
            })?;
            ctx.print(&r, |r| {
                if let Response::Identity(info) = r {
                    out!("{}", info.payload().peer_name);
                }
            })
        }
        IdentityCommand::Delete { identity } => {
            let r = ctx.send(Request::DeleteIdentity {
                identity: identity.clone(),
            })?;
            done(ctx, r, &format!("deleted identity {identity}"))
        }
    }
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
