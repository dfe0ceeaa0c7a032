//! Arbitrary bytes (as lossy UTF-8) into the Countdown verifier, in both formats and under
//! both rule sets. Any panic, stack overflow or timeout is a finding.
#![no_main]
use arbor::engine::task::countdown::{verify, Instance, Rules, UseRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let p = Instance::new(vec![3, 7, 12, 25], 72);
    let strict = Rules::default();
    let loose = Rules {
        use_rule: UseRule::AtMostOnce,
        nonneg_integers: false,
    };
    let _ = verify(&p, &text, &strict);
    let _ = verify(&p, &text, &loose);
    let _ = verify(&p, &format!("<answer>{text}</answer>"), &strict);
});
