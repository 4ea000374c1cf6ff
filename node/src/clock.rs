//! The behaviour's clocks, injectable so that tests control time: the wall
//! clock records and credentials are stamped and checked with, and the
//! monotonic clock every timeout runs on.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::Waker,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use peergroup_protocol::Timestamp;

/// A source of time: the wall clock (milliseconds since the Unix epoch,
/// UTC), which records and credentials are stamped and checked with, and a
/// monotonic clock, which every timeout runs on (a wall clock that steps,
/// or peer time adopting a neighbour's, never moves a timeout).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now, by the wall clock.
    fn now(&self) -> Timestamp;

    /// Now, by the monotonic clock. Default: [`Instant::now`].
    fn instant(&self) -> Instant {
        Instant::now()
    }

    /// Asks to wake `waker` when the clock is moved by hand. The behaviour
    /// sleeps until its earliest deadline by the monotonic clock; a clock
    /// that a test moves must wake it. Default: nothing (real clocks move
    /// on their own).
    fn wake_on_change(&self, waker: &Waker) {
        let _ = waker;
    }
}

/// The operating system's clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// A clock that moves only when told to: for tests. Clones share the time.
/// [`ManualClock::advance`] moves both clocks (time passes);
/// [`ManualClock::set`] steps the wall clock alone (someone set the
/// system's time), as a real clock can.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Times>);

#[derive(Debug)]
struct Times {
    wall: AtomicU64,
    /// Milliseconds the monotonic clock moved since `origin`.
    elapsed: AtomicU64,
    origin: Instant,
    /// Who to wake when the clock moves (every behaviour on this clock).
    wakers: Mutex<Vec<Waker>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Arc::new(Times {
            wall: AtomicU64::new(start.as_millis()),
            elapsed: AtomicU64::new(0),
            origin: Instant::now(),
            wakers: Mutex::new(Vec::new()),
        }))
    }

    fn wake_all(&self) {
        let wakers = match self.0.wakers.lock() {
            Ok(mut wakers) => std::mem::take(&mut *wakers),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Time passes: both clocks move forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        self.0.wall.fetch_add(ms, Ordering::SeqCst);
        self.0.elapsed.fetch_add(ms, Ordering::SeqCst);
        self.wake_all();
    }

    /// Steps the wall clock to `now`; the monotonic clock does not move.
    pub fn set(&self, now: Timestamp) {
        self.0.wall.store(now.as_millis(), Ordering::SeqCst);
        self.wake_all();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.wall.load(Ordering::SeqCst))
    }

    fn instant(&self) -> Instant {
        let elapsed = Duration::from_millis(self.0.elapsed.load(Ordering::SeqCst));
        self.0.origin.checked_add(elapsed).unwrap_or(self.0.origin)
    }

    fn wake_on_change(&self, waker: &Waker) {
        let mut wakers = match self.0.wakers.lock() {
            Ok(wakers) => wakers,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}
