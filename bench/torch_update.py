"""PyTorch eager on CPU running arbor's update step on the same weights and batch.

Loads a checkpoint folder arbor wrote in Hugging Face layout into transformers'
Qwen2ForCausalLM, reads the packed batches (token ids, next-token targets, response
mask, per-token advantages) and the loss and optimizer settings from batches.json in
that folder, and runs one step as arbor does: forward with gradients, log-probabilities
of the targets, the clipped policy-gradient loss with clip-higher and dual clip
(token-mean over the mask; the old log-probabilities are the detached new ones),
backward, global gradient-norm clipping, AdamW.

    python bench/torch_update.py --model DIR [--threads 1] [--check FILE] [--reps 20,5]
                                 [--flush-denormal]

With --check FILE (arbor's step on batch 16: grad.<name>, m.<name>, v.<name> in
safetensors) it first prints {"check": {"loss_rel", "grad_rel", "m_rel", "v_rel"}}: for
each, the largest |difference| over a tensor divided by that tensor's largest |value|
(the loss: relative difference), the worst tensor reported. Then one JSON line per batch
size: {"batch": B, "ms": X}, the median of --reps timed steps after one warm-up step
(the median, as arbor's side reports, so one step slowed by another process on the
machine does not move the figure). Run
through bench/run_torch.sh torch_update.py, never by CI.
"""
import argparse
import json
import os
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2ForCausalLM


def policy_loss(model, b, clip):
    logits = model(input_ids=b["ids"]).logits
    logp = torch.log_softmax(logits, dim=-1).gather(-1, b["targets"].unsqueeze(-1)).squeeze(-1)
    rho = torch.exp(logp - logp.detach())
    neg_a = -b["advantages"]
    unclipped = neg_a * rho
    clipped = neg_a * rho.clamp(1.0 - clip["low"], 1.0 + clip["high"])
    l = torch.maximum(unclipped, clipped)
    if clip["dual"] is not None:
        cap = neg_a * clip["dual"]
        negative = (b["advantages"] < 0).float()
        l = l + negative * (torch.minimum(l, cap) - l)
    count = max(b["mask"].sum().item(), 1.0)
    return (l * b["mask"]).sum() / count


def step(model, opt, b, clip, max_norm):
    opt.zero_grad(set_to_none=True)
    loss = policy_loss(model, b, clip)
    loss.backward()
    # arbor: scale = max_norm / (norm + 1e-12) when norm > max_norm.
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads:
            g.mul_(scale)
    opt.step()
    return loss


def tensors(raw):
    return {
        "ids": torch.tensor(raw["ids"], dtype=torch.long),
        "targets": torch.tensor(raw["targets"], dtype=torch.long),
        "mask": torch.tensor(raw["mask"], dtype=torch.float32),
        "advantages": torch.tensor(raw["advantages"], dtype=torch.float32),
    }


def load(model_dir, adamw):
    model = Qwen2ForCausalLM.from_pretrained(
        model_dir, torch_dtype=torch.float32, attn_implementation="eager"
    )
    model.train()
    # No dropout in Qwen2's config path used here, but make it explicit.
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=adamw["lr"],
        betas=(adamw["beta1"], adamw["beta2"]),
        eps=adamw["eps"],
        weight_decay=0.0,
    )
    return model, opt


def rel(a, b):
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / max(scale, 1e-30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check")
    ap.add_argument("--reps", default="20,5")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True), as arbor's binaries do")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        raise SystemExit("this CPU cannot flush denormals")
    spec = json.load(open(os.path.join(args.model, "batches.json")))
    clip, adamw = spec["clip"], spec["adamw"]
    batches = {int(k): tensors(v) for k, v in spec["batches"].items()}

    if args.check:
        model, opt = load(args.model, adamw)
        want = load_file(args.check)
        loss = step(model, opt, batches[16], clip, adamw["max_grad_norm"])
        # Gradients before clipping, as arbor's GradStore holds them: recompute.
        model2, _ = load(args.model, adamw)
        policy_loss(model2, batches[16], clip).backward()
        names = dict(model2.named_parameters())
        grad_rel = m_rel = v_rel = 0.0
        state = {n: opt.state[p] for n, p in model.named_parameters()}
        for name, p in names.items():
            grad_rel = max(grad_rel, rel(p.grad, want["grad." + name]))
            m_rel = max(m_rel, rel(state[name]["exp_avg"], want["m." + name]))
            v_rel = max(v_rel, rel(state[name]["exp_avg_sq"], want["v." + name]))
        loss_rel = abs(loss.item() - spec["loss"]) / max(abs(spec["loss"]), 1e-30)
        print(json.dumps({"check": {"loss_rel": loss_rel, "grad_rel": grad_rel,
                                    "m_rel": m_rel, "v_rel": v_rel}}), flush=True)

    reps = dict(zip([16, 128], [int(r) for r in args.reps.split(",")]))
    model, opt = load(args.model, adamw)
    for n in [16, 128]:
        b = batches[n]
        step(model, opt, b, clip, adamw["max_grad_norm"])
        times = []
        for _ in range(reps[n]):
            t = time.perf_counter()
            step(model, opt, b, clip, adamw["max_grad_norm"])
            times.append((time.perf_counter() - t) * 1000.0)
        ms = sorted(times)[len(times) // 2]
        print(json.dumps({"batch": n, "ms": ms}), flush=True)


if __name__ == "__main__":
    main()
