//! Property tests tying the solver, the traces and the verifier together, and the
//! verifier against an independent evaluator.
use proptest::prelude::*;

use crate::engine::task::Outcome;
use rand::SeedableRng;

use super::*;

fn problem(nums: Vec<i64>, target: i64) -> Instance {
    Instance::new(nums, target)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn canonical_solutions_verify(nums in prop::collection::vec(1i64..=15, 2..=4), nonneg in any::<bool>()) {
        let rules = Rules {
            use_rule: UseRule::ExactlyOnce, nonneg_integers: nonneg };
        let s = solve(&nums, &rules);
        for t in s.reachable_integers().into_iter().take(20) {
            let info = s.get(t).unwrap();
            let v = verify(&problem(nums.clone(), t), &info.canonical, &rules);
            prop_assert!(v.is_correct(), "{nums:?} -> {t}: {} gave {v:?}", info.canonical);
        }
    }

    #[test]
    fn traces_are_legal_and_judged_by_value(nums in prop::collection::vec(1i64..=20, 2..=4), seed in any::<u64>(), target in 1i64..=100) {
        let rules = Rules::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let trace = random_trace(&nums, &rules, &mut rng);
        let v = verify(&problem(nums.clone(), target), &trace, &rules);
        let last: i64 = trace.rsplit(' ').next().unwrap().parse().unwrap();
        match v.outcome {
            Outcome::Correct => prop_assert_eq!(last, target),
            Outcome::WrongValue { .. } => prop_assert_ne!(last, target),
            _ => prop_assert!(false, "{trace:?} for {nums:?}: {v:?}"),
        }
    }

    #[test]
    fn expressions_agree_with_an_independent_evaluator(a in 1i64..50, b in 1i64..50, c in 1i64..50, ops in prop::collection::vec(0usize..4, 2)) {
        // ((a o1 b) o2 c) evaluated in floating point as the reference.
        let sym = ['+', '-', '*', '/'];
        let f = |x: f64, o: usize, y: f64| match o { 0 => x + y, 1 => x - y, 2 => x * y, _ => x / y };
        let want = f(f(a as f64, ops[0], b as f64), ops[1], c as f64);
        let expr = format!("<answer>(({a}{}{b}){}{c})</answer>", sym[ops[0]], sym[ops[1]]);
        let rules = Rules {
            use_rule: UseRule::ExactlyOnce, nonneg_integers: false };
        let v = verify(&problem(vec![a, b, c], 0), &expr, &rules);
        match v.outcome {
            Outcome::Correct => prop_assert!(want.abs() < 1e-9),
            Outcome::WrongValue { value } => prop_assert!((value - want).abs() < 1e-6 * want.abs().max(1.0)),
            other => prop_assert!(false, "{expr}: {other:?}"),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = verify(&problem(vec![1, 2, 3], 6), &s, &Rules::default());
    }
}
