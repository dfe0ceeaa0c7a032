//! What the list views show and in which order: the problems filter and sort, and the
//! tree view's node filter.
use super::snapshot::ProblemStatus;
use crate::engine::rl::record::NodeRecord;

/// Which problems the Problems view lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Filter {
    #[default]
    All,
    Solved,
    WrongOnly,
    Cached,
}

impl Filter {
    pub(crate) fn next(self) -> Self {
        match self {
            Filter::All => Filter::Solved,
            Filter::Solved => Filter::WrongOnly,
            Filter::WrongOnly => Filter::Cached,
            Filter::Cached => Filter::All,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Solved => "solved",
            Filter::WrongOnly => "wrong only",
            Filter::Cached => "cached",
        }
    }
    pub(crate) fn keeps(self, s: ProblemStatus) -> bool {
        match self {
            Filter::All => true,
            Filter::Solved => s == ProblemStatus::Solved,
            Filter::WrongOnly => s == ProblemStatus::ConfidentWrongOnly,
            Filter::Cached => s == ProblemStatus::Cached,
        }
    }
}

/// How the Problems view is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Order,
    Success,
    Nodes,
}

impl SortBy {
    pub(crate) fn next(self) -> Self {
        match self {
            SortBy::Order => SortBy::Success,
            SortBy::Success => SortBy::Nodes,
            SortBy::Nodes => SortBy::Order,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Order => "batch order",
            SortBy::Success => "success, lowest first",
            SortBy::Nodes => "tree size, largest first",
        }
    }
}

/// Which nodes the tree view lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeFilter {
    #[default]
    All,
    Terminal,
    Recorded,
    ConfidentWrong,
}

impl NodeFilter {
    pub(crate) fn next(self) -> Self {
        match self {
            NodeFilter::All => NodeFilter::Terminal,
            NodeFilter::Terminal => NodeFilter::Recorded,
            NodeFilter::Recorded => NodeFilter::ConfidentWrong,
            NodeFilter::ConfidentWrong => NodeFilter::All,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            NodeFilter::All => "all nodes",
            NodeFilter::Terminal => "terminals",
            NodeFilter::Recorded => "recorded",
            NodeFilter::ConfidentWrong => "confident-wrong path",
        }
    }
    pub(crate) fn keeps(self, n: &NodeRecord) -> bool {
        n.id == 0
            || match self {
                NodeFilter::All => true,
                NodeFilter::Terminal => n.is_terminal(),
                NodeFilter::Recorded => n.recorded,
                NodeFilter::ConfidentWrong => n.confident_wrong,
            }
    }
}
