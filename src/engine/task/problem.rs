//! A problem of any task: its id and what its task needs ([`Spec`]). Stored as it always
//! was, one flat record: Countdown's `nums`, `target` and what is known of its solutions;
//! a math problem's `question` and `answer` beside empty numbers and a zero target. Old
//! problem files, checkpoints and stores read unchanged.
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{countdown, fnv1a, math, TaskKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub id: String,
    pub spec: Spec,
}

/// The task-specific part of a problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    Countdown(countdown::Instance),
    Math(math::Instance),
}

impl Problem {
    /// The task the problem belongs to.
    pub fn kind(&self) -> TaskKind {
        match self.spec {
            Spec::Countdown(_) => TaskKind::Countdown,
            Spec::Math(_) => TaskKind::Math,
        }
    }

    /// The Countdown numbers and target, for a Countdown problem.
    pub fn countdown(&self) -> Option<&countdown::Instance> {
        match &self.spec {
            Spec::Countdown(c) => Some(c),
            Spec::Math(_) => None,
        }
    }

    /// The question and ground truth, for a math problem.
    pub fn math(&self) -> Option<&math::Instance> {
        match &self.spec {
            Spec::Math(m) => Some(m),
            Spec::Countdown(_) => None,
        }
    }

    /// The prompt the policy sees.
    pub fn prompt(&self) -> String {
        match &self.spec {
            Spec::Countdown(c) => c.prompt(),
            Spec::Math(m) => m.prompt(),
        }
    }

    /// Identity for deduplication (and the warm start's key): a Countdown problem's
    /// sorted numbers and target; a math problem's question hash.
    pub fn key(&self) -> (Vec<i64>, i64) {
        match &self.spec {
            Spec::Countdown(c) => c.key(),
            Spec::Math(m) => m.key(),
        }
    }

    /// The bootstrap's unit for a problem: a Countdown problem's number multiset (several
    /// targets share one, so problems of a multiset are not independent), else the problem.
    pub fn multiset_key(&self) -> u64 {
        match &self.spec {
            Spec::Countdown(c) if !c.nums.is_empty() => {
                fnv1a(format!("{:?}", c.multiset()).as_bytes())
            }
            _ => fnv1a(self.id.as_bytes()),
        }
    }

    /// The value a wrong numeric answer is measured against (the dense reward), if the
    /// task has one.
    pub fn numeric_target(&self) -> Option<f64> {
        self.countdown().map(|c| c.target as f64)
    }
}

/// The stored shape, as written before problems had a task-specific part.
#[derive(Serialize)]
struct RecordRef<'a> {
    id: &'a str,
    nums: &'a [i64],
    target: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    solution: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_solutions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_numbers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    question: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a str>,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    nums: Vec<i64>,
    target: i64,
    #[serde(default)]
    solution: Option<String>,
    #[serde(default)]
    num_solutions: Option<u64>,
    #[serde(default)]
    min_numbers: Option<usize>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    answer: Option<String>,
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = match &self.spec {
            Spec::Countdown(c) => RecordRef {
                id: &self.id,
                nums: &c.nums,
                target: c.target,
                solution: c.solution.as_deref(),
                num_solutions: c.num_solutions,
                min_numbers: c.min_numbers,
                question: None,
                answer: None,
            },
            Spec::Math(m) => RecordRef {
                id: &self.id,
                nums: &[],
                target: 0,
                solution: None,
                num_solutions: None,
                min_numbers: None,
                question: Some(&m.question),
                answer: Some(&m.answer),
            },
        };
        r.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Problem {
    /// A record with a question or an answer is a math problem; any other is Countdown's.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Record::deserialize(d)?;
        let spec = if r.question.is_some() || r.answer.is_some() {
            Spec::Math(math::Instance {
                question: r.question.unwrap_or_default(),
                answer: r.answer.unwrap_or_default(),
            })
        } else {
            Spec::Countdown(countdown::Instance {
                nums: r.nums,
                target: r.target,
                solution: r.solution,
                num_solutions: r.num_solutions,
                min_numbers: r.min_numbers,
            })
        };
        Ok(Problem { id: r.id, spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Problem records as written before problems had a task-specific part.
    #[test]
    fn old_records_read_and_write_back_identically() {
        let countdown = [
            r#"{"id":"train-000001","nums":[3,7,12],"target":72}"#,
            r#"{"id":"a","nums":[1,2,3],"target":6,"solution":"1+2=3\nans 3","num_solutions":2,"min_numbers":3}"#,
        ];
        for old in countdown {
            let p: Problem = serde_json::from_str(old).unwrap();
            assert_eq!(p.kind(), TaskKind::Countdown);
            assert_eq!(serde_json::to_string(&p).unwrap(), old);
        }
        let p: Problem = serde_json::from_str(countdown[1]).unwrap();
        let c = p.countdown().unwrap();
        assert_eq!((c.nums.as_slice(), c.target), (&[1, 2, 3][..], 6));
        assert_eq!(c.solution.as_deref(), Some("1+2=3\nans 3"));
        assert_eq!(p.prompt(), "1 2 3:6\n");

        let old_math =
            r#"{"id":"m-1","nums":[],"target":0,"question":"What is 6*7?","answer":"42"}"#;
        let m: Problem = serde_json::from_str(old_math).unwrap();
        assert_eq!(m.kind(), TaskKind::Math);
        assert_eq!(m.math().unwrap().answer, "42");
        assert!(m.countdown().is_none());
        assert_eq!(serde_json::to_string(&m).unwrap(), old_math);
        assert_eq!(
            m,
            math::problem("m-1".into(), "What is 6*7?".into(), "42".into())
        );
        assert!(m.prompt().starts_with("What is 6*7?\n"));

        // Inside a checkpoint's list, as `trainer_state.json` and RunData hold them.
        let list = format!("[{},{old_math}]", countdown[0]);
        let ps: Vec<Problem> = serde_json::from_str(&list).unwrap();
        assert_eq!(serde_json::to_string(&ps).unwrap(), list);
    }

    #[test]
    fn keys_and_multisets() {
        let p = countdown::problem("x", vec![12, 3, 7], 72);
        assert_eq!(p.prompt(), "12 3 7:72\n");
        assert_eq!(p.key(), (vec![3, 7, 12], 72));
        assert_eq!(
            p.multiset_key(),
            countdown::problem("y", vec![7, 12, 3], 5).multiset_key()
        );
        assert_eq!(p.multiset_key(), fnv1a(b"[3, 7, 12]"));
        let m = math::problem("m".into(), "q".into(), "1".into());
        assert_eq!(m.multiset_key(), fnv1a(b"m"));
        assert_eq!(m.key(), (Vec::new(), fnv1a(b"q") as i64));
        assert_eq!(m.numeric_target(), None);
        assert_eq!(p.numeric_target(), Some(72.0));
    }
}
