//! The progress bar of `join`: follows the node's `SyncProgress` events for
//! the group on a thread of its own and draws on stderr (hidden when stderr
//! is not a terminal, so scripts see nothing of it).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use peergroup_node::protocol::PeerName;

use crate::client::Client;

/// A running progress bar.
pub(crate) struct SyncBar {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
}

impl SyncBar {
    /// Starts following `group`'s synchronization progress.
    pub(crate) fn start(client: &Client, group: &PeerName) -> SyncBar {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} records ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("joining");
        bar.enable_steady_tick(Duration::from_millis(120));
        let stop = Arc::new(AtomicBool::new(false));
        let (client, query, thread_bar, thread_stop) = (
            client.clone(),
            format!("kind=SyncProgress&group={group}"),
            bar.clone(),
            stop.clone(),
        );
        // Detached: its blocking read ends with the process (or the node).
        std::thread::spawn(move || {
            let _ = client.events(&query, |event| {
                if thread_stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&event.data) {
                    let received = v["received"].as_u64().unwrap_or(0);
                    let total = v["estimated_total"].as_u64().unwrap_or(received);
                    thread_bar.set_message("synchronizing");
                    thread_bar.set_length(total.max(received));
                    thread_bar.set_position(received);
                }
                Ok(true)
            });
        });
        SyncBar { bar, stop }
    }

    /// Ends the bar.
    pub(crate) fn finish(self, ok: bool) {
        self.stop.store(true, Ordering::Relaxed);
        if ok {
            if let Some(len) = self.bar.length() {
                self.bar.set_position(len);
            }
            self.bar.finish_with_message("ready");
        } else {
            self.bar.abandon_with_message("failed");
        }
        // The bar's line stays; what the command prints next starts below it.
        if !self.bar.is_hidden() {
            eprintln!();
        }
    }
}
