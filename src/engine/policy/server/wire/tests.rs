//! The request builders and response parsers against the engines' documented bodies.
//! SGLang and vLLM cannot run on a CPU-only machine: these bodies follow SGLang's
//! `docs/basic_usage/sampling_params.md` and `native_api` page (GenerateReqInput, the
//! `meta_info.output_token_logprobs` triples) and vLLM's
//! `vllm/entrypoints/openai/completion/protocol.py` (v0.26: `return_token_ids`,
//! `choices[].token_ids`, `logprobs.token_logprobs`), written out by hand, not captured
//! from a running engine. llama.cpp's are checked against a real `llama-server` by
//! `scripts/llamacpp_check.sh`.
use super::*;

fn ask() -> Ask<'static> {
    Ask {
        context: &[5, 6, 7],
        copies: 2,
        max_tokens: 16,
        temperature: 0.8,
        stop_ids: vec![11, 2],
        stop_text: Some("\n".into()),
        seed: Some(9),
        model: Some("policy".into()),
    }
}

#[test]
fn every_sampling_parameter_is_explicit() {
    let s = body(Engine::Sglang, &ask());
    assert_eq!(s["input_ids"], json!([5, 6, 7]));
    let sp = &s["sampling_params"];
    assert_eq!(sp["n"], 2);
    assert_eq!(sp["max_new_tokens"], 16);
    assert_eq!(sp["top_p"], 1.0);
    assert_eq!(sp["top_k"], -1);
    assert_eq!(sp["min_p"], 0.0);
    assert_eq!(sp["repetition_penalty"], 1.0);
    assert_eq!(sp["stop_token_ids"], json!([11, 2]));
    assert_eq!(s["return_logprob"], true);

    let v = body(Engine::Vllm, &ask());
    assert_eq!(v["prompt"], json!([5, 6, 7]));
    assert_eq!(v["return_token_ids"], true);
    assert_eq!(v["logprobs"], 0);
    assert_eq!(v["stop_token_ids"], json!([11, 2]));
    assert_eq!(v["model"], "policy");
    assert_eq!(v["seed"], 9);

    let l = body(Engine::Llamacpp, &ask());
    assert_eq!(l["prompt"], json!([5, 6, 7]));
    assert_eq!(l["n_cmpl"], 2);
    assert_eq!(l["n_probs"], 1);
    assert_eq!(l["return_tokens"], true);
    // The prompt cache gave some requests a state that was not their prompt.
    assert_eq!(l["cache_prompt"], false);
    assert_eq!(l["stop"], json!(["\n"]));
    assert_eq!(l["top_k"], 0);
    assert_eq!(l["repeat_penalty"], 1.0);
}

#[test]
fn sglang_answers_are_read_one_per_sample() {
    let v = json!([
        {"text": "1+2", "meta_info": {
            "id": "a", "prompt_tokens": 3, "completion_tokens": 2, "cached_tokens": 3,
            "finish_reason": {"type": "stop", "matched": 11},
            "output_token_logprobs": [[-0.5, 20, null], [-0.25, 11, null]]}},
        {"text": "3", "meta_info": {
            "finish_reason": {"type": "length", "length": 16},
            "output_token_logprobs": [[-1.0, 21, null]]}}
    ]);
    let r = parse(Engine::Sglang, &v).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].tokens, vec![20, 11]);
    assert_eq!(r[0].logprobs, vec![Some(-0.5), Some(-0.25)]);
    assert_eq!((r[0].ended, r[0].cached), (Ended::Stop, Some(3)));
    assert_eq!(r[1].ended, Ended::Length);
    // One sample comes back as an object, not a list.
    let one = parse(Engine::Sglang, &v[0]).unwrap();
    assert_eq!(one.len(), 1);
}

#[test]
fn vllm_answers_are_read_from_choices() {
    let v = json!({
        "id": "cmpl-1", "object": "text_completion", "model": "policy",
        "choices": [
            {"index": 0, "text": "1+2\n", "token_ids": [20, 11],
             "logprobs": {"tokens": ["1", "\n"], "token_logprobs": [-0.5, -0.25],
                          "top_logprobs": null, "text_offset": [0, 1]},
             "finish_reason": "stop", "stop_reason": 11},
            {"index": 1, "text": "3", "token_ids": [21],
             "logprobs": {"token_logprobs": [-1.0]},
             "finish_reason": "length", "stop_reason": null}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6,
                  "prompt_tokens_details": {"cached_tokens": 2}}
    });
    let r = parse(Engine::Vllm, &v).unwrap();
    assert_eq!(r[0].tokens, vec![20, 11]);
    assert_eq!(r[0].logprobs, vec![Some(-0.5), Some(-0.25)]);
    assert_eq!(r[0].cached, Some(2));
    assert_eq!(r[1].ended, Ended::Length);
}

#[test]
fn llamacpp_answers_are_read_from_tokens_and_probabilities() {
    let v = json!([
        {"index": 0, "content": "1+2", "tokens": [20, 21], "stop_type": "word",
         "stopping_word": "\n", "tokens_cached": 9, "tokens_evaluated": 3,
         "timings": {"cache_n": 5, "prompt_n": 1},
         "completion_probabilities": [
            {"id": 20, "token": "1", "bytes": [49], "logprob": -0.5, "top_logprobs": []},
            {"id": 21, "token": "+", "bytes": [43], "logprob": -0.1, "top_logprobs": []}]},
        {"index": 1, "content": "", "tokens": [2], "stop_type": "eos",
         "completion_probabilities": [{"id": 2, "logprob": -3.0}]}
    ]);
    let r = parse(Engine::Llamacpp, &v).unwrap();
    assert_eq!(r[0].tokens, vec![20, 21]);
    assert_eq!(r[0].logprobs, vec![Some(-0.5), Some(-0.1)]);
    assert_eq!(r[0].cached, Some(5));
    assert_eq!(r[1].tokens, vec![2]);
}

#[test]
fn malformed_answers_are_refused_with_a_message() {
    for (engine, v) in [
        (Engine::Llamacpp, json!({"tokens": ["x"]})),
        (Engine::Llamacpp, json!({"content": "no tokens"})),
        (Engine::Llamacpp, json!({"tokens": [-1]})),
        (Engine::Vllm, json!({"choices": [{"text": "no ids"}]})),
        (Engine::Vllm, json!({"object": "error"})),
        (Engine::Sglang, json!({"text": "no meta"})),
        (
            Engine::Sglang,
            json!({"meta_info": {"output_token_logprobs": [[-0.1, "x"]]}}),
        ),
        (Engine::Sglang, json!({"error": {"message": "bad"}})),
    ] {
        let e = parse(engine, &v).unwrap_err().to_string();
        assert!(e.contains(engine.name()), "{e}");
    }
}

#[test]
fn versions_are_read_and_old_engines_refused_with_the_version_needed() {
    // Shapes from vLLM's /version ({"version": ...}), SGLang's /get_server_info
    // (a `version` key among the server args) and llama-server's /props (`build_info`).
    let v = json!({"version": "0.10.2"});
    assert_eq!(version(Engine::Vllm, &v).unwrap(), "0.10.2");
    let p = json!({"build_info": "b4400-1a2b3c4", "total_slots": 4});
    assert_eq!(version(Engine::Llamacpp, &p).unwrap(), "b4400-1a2b3c4");
    assert!(version(Engine::Sglang, &json!({"tp_size": 1}))
        .unwrap_err()
        .to_string()
        .contains("no `version`"));

    for ok in ["0.10.2", "0.10.2.dev3+g1234", "0.11.0rc1", "1.0.0"] {
        assert!(check_version(Engine::Vllm, ok).is_ok(), "{ok}");
    }
    let old = check_version(Engine::Vllm, "0.10.1.1")
        .unwrap_err()
        .to_string();
    assert!(
        old.contains("0.10.2 or newer") && old.contains("return_token_ids"),
        "{old}"
    );
    assert!(check_version(Engine::Sglang, "0.4.6.post1").is_ok());
    assert!(check_version(Engine::Sglang, "0.3.6").is_err());
    assert!(check_version(Engine::Llamacpp, "b6500-abcdef0").is_ok());
    // The hash's digits are not part of the build number.
    assert!(check_version(Engine::Llamacpp, "b4399-9999").is_err());
    assert!(check_version(Engine::Llamacpp, "b1-unknown").is_ok());
    assert!(check_version(Engine::Vllm, "dev")
        .unwrap_err()
        .to_string()
        .contains("not a version number"));
}

/// llama.cpp's log-probs are matched to the returned tokens by id: an entry list that is
/// one short (a trimmed stop word) leaves the unmatched tokens uncompared instead of
/// comparing every later token with its neighbour's log-prob.
#[test]
fn llamacpp_logprobs_are_aligned_by_token_id() {
    use serde_json::json;
    let probs = vec![
        json!({"id": 5, "logprob": -0.5}),
        json!({"id": 9, "logprob": -1.5}),
        json!({"id": 2, "logprob": -2.5}),
    ];
    assert_eq!(
        super::aligned_logprobs(&[5, 9, 2], &probs),
        vec![Some(-0.5), Some(-1.5), Some(-2.5)]
    );
    // One entry missing in the middle: the rest do not shift onto the wrong tokens.
    let short = vec![probs[0].clone(), probs[2].clone()];
    assert_eq!(
        super::aligned_logprobs(&[5, 9, 2], &short),
        vec![Some(-0.5), None, None]
    );
    // Without ids, positions count only when the lengths agree.
    let bare: Vec<_> = [-0.5, -1.5].iter().map(|l| json!({"logprob": l})).collect();
    assert_eq!(
        super::aligned_logprobs(&[5, 9], &bare),
        vec![Some(-0.5), Some(-1.5)]
    );
    assert_eq!(
        super::aligned_logprobs(&[5, 9, 2], &bare),
        vec![None, None, None]
    );
}
