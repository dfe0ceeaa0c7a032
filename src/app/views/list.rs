//! The cursor of a list view and the keys that move it, shared by every view with a list.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::KeyHelp;

/// The selected row of a list, and whether `g` waits for a second `g`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListCursor {
    pub sel: usize,
    pending_g: bool,
}

impl ListCursor {
    /// The keys [`ListCursor::on_key`] answers to.
    pub const KEYS: KeyHelp = KeyHelp::new(
        "j k, Up Down",
        "move the cursor; PgUp PgDn, Ctrl-U Ctrl-D by 10; g g, Home to the top; G, End to the bottom",
    );

    /// The selected row, clamped to a list of `len` rows.
    pub fn at(&self, len: usize) -> usize {
        self.sel.min(len.saturating_sub(1))
    }

    pub fn move_by(&mut self, delta: i64, len: usize) {
        let max = len.saturating_sub(1) as i64;
        self.sel = (self.sel as i64).saturating_add(delta).clamp(0, max.max(0)) as usize;
    }

    /// Moves on a movement key and says whether the key was one.
    pub fn on_key(&mut self, key: KeyEvent, len: usize) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let g = std::mem::take(&mut self.pending_g);
        let delta = match key.code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::PageDown => 10,
            KeyCode::PageUp => -10,
            KeyCode::Char('d') if ctrl => 10,
            KeyCode::Char('u') if ctrl => -10,
            KeyCode::Home => i64::MIN / 2,
            KeyCode::Char('g') if g => i64::MIN / 2,
            KeyCode::Char('g') => {
                self.pending_g = true;
                return true;
            }
            KeyCode::End | KeyCode::Char('G') => i64::MAX / 2,
            _ => return false,
        };
        self.move_by(delta, len);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn moves_within_the_list_and_g_g_goes_to_the_top() {
        let mut c = ListCursor::default();
        assert!(c.on_key(k(KeyCode::Char('G')), 5));
        assert_eq!(c.sel, 4);
        c.on_key(k(KeyCode::Char('j')), 5);
        assert_eq!(c.sel, 4);
        c.on_key(k(KeyCode::Char('g')), 5);
        assert_eq!(c.sel, 4, "one g waits for the second");
        c.on_key(k(KeyCode::Char('g')), 5);
        assert_eq!(c.sel, 0);
        assert!(!c.on_key(k(KeyCode::Enter), 5));
        c.move_by(3, 0);
        assert_eq!(c.sel, 0);
    }
}
