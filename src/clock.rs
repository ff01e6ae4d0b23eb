//! The clock the schedule follows: the system's, or (in tests) one moved by hand. Below the
//! configuration that holds it and the scheduler that reads it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// What the schedule follows: the system clock, or (in tests) one moved by hand.
#[derive(Clone)]
pub struct Clock {
    /// Seconds added to the system time (0 for the real clock).
    offset: Arc<watch::Sender<i64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(offset {}s)", *self.offset.borrow())
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        let (tx, _) = watch::channel(0);
        Self { offset: Arc::new(tx) }
    }

    /// A clock that reads `at` (Unix seconds) now and moves on with real time; tests move it
    /// further with [`Clock::advance`].
    pub fn starting_at(at: i64) -> Self {
        let c = Self::system();
        c.offset.send_replace(at - crate::db::now());
        c
    }

    /// Moves the clock forward; the scheduler looks again at once.
    pub fn advance(&self, by: Duration) {
        self.offset.send_modify(|o| *o += by.as_secs() as i64);
    }

    /// A receiver that sees every move by hand (see [`Clock::moved`]).
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.offset.subscribe()
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        crate::db::now() + *self.offset.borrow()
    }

    /// Resolves when the clock is moved by hand (never for the system clock).
    pub(crate) async fn moved(rx: &mut watch::Receiver<i64>) {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
