//! Buttons of a screen that was edited away do nothing (issue 17). A callback query carries
//! its message as Telegram holds it now, keyboard included: a pressed button that is not on
//! that keyboard comes from an old copy of the screen (a double tap that raced the edit, a
//! menu another press replaced) and is refused with a toast. A message that carries no
//! keyboard any more (a screen edited into a report) is judged by what this process recorded
//! when it last sent or edited it through `crate::bot`'s sending kit. A message never recorded (sent
//! before a restart) is judged by the button's signature alone, as before. A forwarded copy
//! is never the current screen.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use teloxide::types::{InlineKeyboardButtonKind, InlineKeyboardMarkup};

/// Messages remembered; the oldest is forgotten first (then judged by its signature alone).
const CAPACITY: usize = 50_000;

/// A message: its chat and its ID.
type Key = (i64, i32);

/// The current keyboards of the messages this process sent or edited.
pub struct Screens {
    inner: Mutex<Inner>,
    /// How many messages are remembered at most.
    capacity: usize,
}

impl Default for Screens {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

#[derive(Default)]
struct Inner {
    /// The callback data of each message's current buttons, with the generation it was
    /// recorded in.
    current: HashMap<Key, (u64, Vec<String>)>,
    /// Recording order, for forgetting the oldest. An entry whose generation is no longer the
    /// message's (it was forgotten, then recorded anew) is skipped: without the generation, a
    /// message forgotten and shown again was queued twice and evicted at its first place.
    order: VecDeque<(Key, u64)>,
    /// The next generation.
    next: u64,
}

/// What a press is, judged by the message it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// The button is on its message's current keyboard (or the message is not known).
    Current,
    /// The message's screen was edited away since this button showed.
    Stale,
}

impl Screens {
    /// A record of at most `capacity` messages.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
        }
    }

    /// Records `markup` as message `mid`'s current keyboard (`None`: it has none now; an
    /// edit without a keyboard takes the buttons off).
    pub fn shown(&self, chat: i64, mid: i32, markup: Option<&InlineKeyboardMarkup>) {
        let data: Vec<String> = markup
            .into_iter()
            .flat_map(|m| m.inline_keyboard.iter().flatten())
            .filter_map(|b| match &b.kind {
                InlineKeyboardButtonKind::CallbackData(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(now) = g.current.get_mut(&(chat, mid)) {
            now.1 = data;
            return;
        }
        let generation = g.next;
        g.next += 1;
        g.current.insert((chat, mid), (generation, data));
        g.order.push_back(((chat, mid), generation));
        // Forgotten entries still queued count towards the bound too, so the queue never
        // outgrows it either.
        while g.order.len() > self.capacity {
            let Some((old, generation)) = g.order.pop_front() else {
                break;
            };
            if g.current.get(&old).is_some_and(|(gen, _)| *gen == generation) {
                g.current.remove(&old);
            }
        }
    }

    /// Forgets message `mid` (an edit whose outcome is unknown): its buttons are judged by
    /// their signature alone again.
    pub fn forget(&self, chat: i64, mid: i32) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.current.remove(&(chat, mid));
    }

    /// Judges a press of `data` on message `mid`; `forwarded`: the message is a forwarded
    /// copy; `on_message`: whether `data` is on the keyboard the query's message carries
    /// (`None` when it carries none). Telegram's keyboard is the truth when there is one:
    /// two edits of one message (a progress message) may be recorded here in another order
    /// than Telegram applied them. The record decides only for a message without buttons,
    /// which a screen edited into a report is.
    pub fn judge(&self, chat: i64, mid: i32, data: &str, forwarded: bool, on_message: Option<bool>) -> Press {
        match (forwarded, on_message) {
            (true, _) | (false, Some(false)) => return Press::Stale,
            (false, Some(true)) => return Press::Current,
            (false, None) => {}
        }
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match g.current.get(&(chat, mid)) {
            Some((_, now)) if !now.iter().any(|d| d == data) => Press::Stale,
            _ => Press::Current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::InlineKeyboardButton;

    fn kb(data: &[&str]) -> InlineKeyboardMarkup {
        InlineKeyboardMarkup::new(vec![data
            .iter()
            .map(|d| InlineKeyboardButton::callback("x", d.to_string()))
            .collect::<Vec<_>>()])
    }

    #[test]
    fn only_the_current_keyboard_acts() {
        let s = Screens::default();
        assert_eq!(s.judge(1, 5, "a", false, None), Press::Current, "unknown: by signature");
        assert_eq!(
            s.judge(1, 5, "a", false, Some(false)),
            Press::Stale,
            "not on its message"
        );
        s.shown(1, 5, Some(&kb(&["a", "b"])));
        assert_eq!(s.judge(1, 5, "a", false, None), Press::Current);
        s.shown(1, 5, Some(&kb(&["c"])));
        assert_eq!(s.judge(1, 5, "a", false, None), Press::Stale);
        assert_eq!(
            s.judge(1, 5, "a", false, Some(true)),
            Press::Current,
            "Telegram shows it"
        );
        assert_eq!(s.judge(1, 5, "c", false, Some(true)), Press::Current);
        s.shown(1, 5, None);
        assert_eq!(s.judge(1, 5, "c", false, None), Press::Stale, "edited to a report");
        assert_eq!(s.judge(2, 5, "c", false, None), Press::Current, "another chat");
        assert_eq!(s.judge(1, 9, "c", true, None), Press::Stale, "a forwarded copy");
        s.forget(1, 5);
        assert_eq!(s.judge(1, 5, "a", false, None), Press::Current);
    }

    #[test]
    fn a_message_forgotten_and_shown_again_is_not_evicted_early() {
        let s = Screens::with_capacity(3);
        s.shown(1, 1, Some(&kb(&["old"])));
        s.forget(1, 1);
        s.shown(1, 1, Some(&kb(&["new"])));
        s.shown(1, 2, Some(&kb(&["x"])));
        s.shown(1, 3, Some(&kb(&["y"])));
        // Three messages live, within the capacity of three: message 1 is still known, so
        // its old button is judged stale, not by its signature alone.
        assert_eq!(s.judge(1, 1, "old", false, None), Press::Stale);
        // The oldest goes once a fourth arrives, and only then.
        s.shown(1, 4, Some(&kb(&["z"])));
        assert_eq!(s.judge(1, 1, "old", false, None), Press::Current);
        assert_eq!(s.judge(1, 2, "old", false, None), Press::Stale);
    }
}
