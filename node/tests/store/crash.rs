//! Crash safety under SIGKILL (placeholder, written next).
