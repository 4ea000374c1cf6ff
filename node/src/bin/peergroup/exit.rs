//! The CLI's exit codes (documented in `--help` and `docs/cli.md`).

/// Success.
pub(crate) const OK: u8 = 0;
/// A failure of another kind (I/O, a fault inside the node).
pub(crate) const FAILURE: u8 = 1;
/// The command line is wrong (clap uses 2 for its own usage errors too).
pub(crate) const USAGE: u8 = 2;
/// The node refused the operation: a `PEER_E_*` (or `E_INVALIDARG`) error.
pub(crate) const REFUSED: u8 = 3;
/// No node answered: none running, wrong address, or a token it refused.
pub(crate) const UNREACHABLE: u8 = 4;

/// The text `--help` shows after the commands.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  failure of another kind (I/O error, a fault inside the node)
  2  usage error: the command line, the configuration or an argument is wrong
  3  the node refused the operation (a PEER_E_* error; its name and code are printed)
  4  the node is unreachable: none running with this data directory, or it refused the token

Every command takes --json for machine-readable output. The CLI finds the node through
the api.url and api.token files in its data directory (--data-dir), or --api and --token-file.";

/// A failure that picks the exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Exit {
    /// The command line or an argument is wrong.
    #[error("{0}")]
    Usage(String),
    /// The node refused the operation.
    #[error("{message}")]
    Refused {
        /// `PEER_E_*`.
        name: String,
        /// The HRESULT.
        code: u32,
        /// The node's message.
        message: String,
    },
    /// No node answered.
    #[error("{0}")]
    Unreachable(String),
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Exit::Usage(_) => USAGE,
            Exit::Refused { .. } => REFUSED,
            Exit::Unreachable(_) => UNREACHABLE,
        }
    }
}

/// Writes a line to stdout. A reader that went away (`peergroup record list
/// | head -1`) ends the command quietly with success, as in other Unix
/// tools, where `println!` would panic.
pub(crate) fn print_line(line: std::fmt::Arguments<'_>) {
    write_stdout(format_args!("{line}\n"));
}

/// Writes to stdout as [`print_line`] does, without a newline.
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(OK));
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(i32::from(FAILURE));
    }
}

/// `println!` for the CLI's output: see [`print_line`].
macro_rules! out {
    () => {
        $crate::exit::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::exit::print_line(format_args!($($arg)*))
    };
}
pub(crate) use out;
