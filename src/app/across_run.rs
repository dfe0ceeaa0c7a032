//! Reading across a run's iterations rather than one: a problem's history, and going to a
//! problem in another iteration. The trees come from the run's source (the store, or the
//! live trainer), one iteration at a time.
use super::explorer::{App, Screen};
use super::views::history::{HistoryRow, HistoryView};
use crate::engine::rl::record::TreeRecord;
use crate::store::StoreError;

impl App {
    /// Every committed iteration's trees, oldest first, handed to `each` one iteration at
    /// a time (the one on screen is not read again).
    pub fn each_iteration(
        &self,
        mut each: impl FnMut(u64, &[TreeRecord]),
    ) -> Result<(), StoreError> {
        for m in self.snapshot.iterations.iter().filter(|m| m.iteration > 0) {
            if m.iteration == self.iteration {
                each(m.iteration, &self.trees);
            } else {
                let trees = self.source.trees(&self.snapshot.run.name, m.iteration)?;
                each(m.iteration, &trees);
            }
        }
        Ok(())
    }

    /// Opens the history of `problem` (index into the iteration's trees): the iterations
    /// that trained it, read from the run.
    pub(crate) fn open_history(&mut self, problem: usize) -> Result<(), StoreError> {
        let Some(t) = self.trees.get(problem) else {
            return Ok(());
        };
        let (id, prompt) = (t.problem.clone(), t.prompt.clone());
        let mut rows = Vec::new();
        self.each_iteration(|it, trees| {
            if let Some(t) = trees.iter().find(|t| t.problem == id) {
                rows.push(HistoryRow::of(it, t));
            }
        })?;
        self.views.history = HistoryView::new(id, prompt, rows);
        self.screen = Screen::History;
        self.hold_still();
        Ok(())
    }

    /// Goes to `iteration` (holding it) and opens the tree, or the samples, of the
    /// problem named `problem` there.
    pub(crate) fn open_at(
        &mut self,
        iteration: u64,
        problem: &str,
        samples: bool,
    ) -> Result<(), StoreError> {
        self.hold_still();
        self.goto(iteration)?;
        let Some(index) = self.trees.iter().position(|t| t.problem == problem) else {
            self.message = format!("{problem} is not in iteration {}", self.iteration);
            return Ok(());
        };
        if samples {
            self.views.samples.open(index);
            self.screen = Screen::Samples;
        } else {
            let (views, ctx) = self.split();
            views.tree.open(index, None, &ctx);
            self.screen = Screen::Tree;
        }
        Ok(())
    }
}
