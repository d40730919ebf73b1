#!/usr/bin/python3
"""Self-checks of the reference implementation (block_transformer_ref.py).

  /usr/bin/python3 tools/reference/self_test.py

Checks, on small random models of several shapes:
  1. safetensors round trip (F32/F16/BF16 bit-exact; BF16 decoding equals torch's own).
  2. An independent naive float64 implementation (loops over heads and positions, manual
     LayerNorm/GELU, complex-number rotary, explicit expansion slicing) gives the same
     log-probabilities as the reference (block and vanilla models).
  3. Block model: teacher-forced scoring of prompt + generated tokens equals the per-step
     log-probabilities of greedy generation.
  4. KV-cached (incremental) generation equals full recompute at every step.
  5. float32 vs float64 log-probabilities differ by far less than the engine tolerance (1e-3).
  6. A block model's token decoder stack, run on plain tokens, equals a vanilla GPT-NeoX model
     built from the same weights (one shared notion of a GPT-NeoX stack).
Exits non-zero on the first failure.
"""

import math
import os
import random
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import block_transformer_ref as ref  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Naive float64 implementation, deliberately written differently from the reference.
# ---------------------------------------------------------------------------------------------


def naive_layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def naive_gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def naive_rotary(vec, pos, rot, base):
    """vec [hd]; pairs (i, i + rot/2) rotated by pos * base^(-2i/rot) as complex numbers."""
    if rot == 0:
        return vec
    half = rot // 2
    out = vec.clone()
    for i in range(half):
        theta = pos * (base ** (-(2.0 * i) / rot))
        z = complex(float(vec[i]), float(vec[i + half])) * complex(math.cos(theta),
                                                                     math.sin(theta))
        out[i], out[i + half] = z.real, z.imag
    return out


def naive_stack(x, tensors, prefix, cfg):
    """x [T, D] float64 at positions 0..T-1."""
    T, D = x.shape
    hd = D // cfg.num_heads
    rot = int(hd * cfg.rotary_pct)
    W = lambda name: tensors[name].double()
    for n in range(cfg.num_layers):
        p = f"{prefix}gpt_neox.layers.{n}."
        h = naive_layer_norm(x, W(p + "input_layernorm.weight"), W(p + "input_layernorm.bias"),
                             cfg.layer_norm_eps)
        qkv = (h @ W(p + "attention.query_key_value.weight").T
               + W(p + "attention.query_key_value.bias"))
        heads_out = []
        for head in range(cfg.num_heads):
            base_col = head * 3 * hd
            q = [naive_rotary(qkv[t, base_col:base_col + hd], t, rot, cfg.rotary_base)
                 for t in range(T)]
            k = [naive_rotary(qkv[t, base_col + hd:base_col + 2 * hd], t, rot, cfg.rotary_base)
                 for t in range(T)]
            v = [qkv[t, base_col + 2 * hd:base_col + 3 * hd] for t in range(T)]
            rows = []
            for t in range(T):
                s = torch.tensor([float(q[t] @ k[u]) / math.sqrt(hd) for u in range(t + 1)],
                                 dtype=torch.float64)
                w = torch.exp(s - s.max())
                w = w / w.sum()
                rows.append(sum(w[u] * v[u] for u in range(t + 1)))
            heads_out.append(torch.stack(rows))
        attn = torch.cat(heads_out, dim=1) @ W(p + "attention.dense.weight").T + W(
            p + "attention.dense.bias")

        def mlp(inp):
            a = inp @ W(p + "mlp.dense_h_to_4h.weight").T + W(p + "mlp.dense_h_to_4h.bias")
            return (naive_gelu(a) @ W(p + "mlp.dense_4h_to_h.weight").T
                    + W(p + "mlp.dense_4h_to_h.bias"))

        ln2 = lambda inp: naive_layer_norm(inp, W(p + "post_attention_layernorm.weight"),
                                           W(p + "post_attention_layernorm.bias"),
                                           cfg.layer_norm_eps)
        if cfg.parallel_residual:
            x = x + attn + mlp(ln2(x))
        else:
            x = x + attn
            x = x + mlp(ln2(x))
    return naive_layer_norm(x, W(prefix + "gpt_neox.final_layer_norm.weight"),
                            W(prefix + "gpt_neox.final_layer_norm.bias"), cfg.layer_norm_eps)


def naive_log_softmax(z):
    m = z.max()
    return z - m - torch.log(torch.exp(z - m).sum())


def naive_block_score(tensors, cfg: ref.BlockConfig, tokens):
    LB, R = cfg.block_length, cfg.expansion_ratio
    H = cfg.token_decoder.hidden_size
    pad = (LB - len(tokens) % LB) % LB
    seq = [0] * pad + list(tokens)
    nb = len(seq) // LB
    emb = tensors["embedder.embeddings.weight"].double()
    blocks = torch.stack([torch.cat([emb[seq[b * LB + i]] for i in range(LB)]) for b in range(nb)])
    ctx = naive_stack(blocks, tensors, "block_decoder.", cfg.block_decoder)
    conv_w = tensors["token_decoder.expansion_layer.weight"].double()
    conv_b = tensors["token_decoder.expansion_layer.bias"].double()
    tok_emb = tensors["token_decoder.gpt_neox.embed_in.weight"].double()
    out_w = tensors["token_decoder.embed_out.weight"].double()
    result = [None] * len(seq)
    for b in range(1, nb):
        c = ctx[b - 1]
        rows = []
        for r in range(R):  # prefix r = output channels [r*H, (r+1)*H)
            rows.append(torch.tensor([float(conv_w[r * H + o, :, 0] @ c + conv_b[r * H + o])
                                      for o in range(H)], dtype=torch.float64))
        block = seq[b * LB:(b + 1) * LB]
        for j in range(LB - 1):
            rows.append(tok_emb[block[j]])
        h = naive_stack(torch.stack(rows), tensors, "token_decoder.", cfg.token_decoder)
        for j in range(LB):
            result[b * LB + j] = float(naive_log_softmax(out_w @ h[R - 1 + j])[block[j]])
    return result[pad:]


def naive_vanilla_score(tensors, cfg: ref.VanillaConfig, tokens):
    x = torch.stack([tensors["gpt_neox.embed_in.weight"].double()[t] for t in tokens])
    h = naive_stack(x, tensors, "", cfg.stack)
    out_w = tensors["embed_out.weight"].double()
    return [None] + [float(naive_log_softmax(out_w @ h[i - 1])[tokens[i]])
                     for i in range(1, len(tokens))]


# ---------------------------------------------------------------------------------------------


def stack(D, layers, heads=None, inter=None, **kw):
    return ref.StackConfig(hidden_size=D, num_layers=layers,
                           num_heads=heads or D // ref.default_head_dim(D),
                           intermediate_size=inter or 4 * D, **kw)


BLOCK_CONFIGS = [
    ref.BlockConfig(vocab_size=64, block_length=4, expansion_ratio=2,
                    block_decoder=stack(64, 2), token_decoder=stack(32, 2)),
    ref.BlockConfig(vocab_size=50, block_length=2, expansion_ratio=3,
                    block_decoder=stack(96, 1, inter=100), token_decoder=stack(96, 2)),
    ref.BlockConfig(vocab_size=40, block_length=8, expansion_ratio=1,
                    block_decoder=stack(32, 1, heads=4, rotary_pct=0.5, rotary_base=500.0),
                    token_decoder=stack(48, 1, heads=3, parallel_residual=False,
                                        layer_norm_eps=1e-6)),
    ref.BlockConfig(vocab_size=40, block_length=1, expansion_ratio=2,
                    block_decoder=stack(32, 2, rotary_pct=1.0), token_decoder=stack(32, 1)),
]
VANILLA_CONFIGS = [
    ref.VanillaConfig(vocab_size=64, stack=stack(48, 2, heads=3)),
    ref.VanillaConfig(vocab_size=64, stack=stack(64, 2, heads=4, rotary_pct=1.0,
                                                 parallel_residual=False)),
]

FAILURES = []


def check(cond, message):
    print(("ok    " if cond else "FAIL  ") + message)
    if not cond:
        FAILURES.append(message)


def max_abs_diff(a, b):
    assert len(a) == len(b)
    assert all((x is None) == (y is None) for x, y in zip(a, b)), "None positions differ"
    return max([abs(x - y) for x, y in zip(a, b) if x is not None], default=0.0)


def test_safetensors(tmp):
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 5, generator=g) * 10
    tensors = {"f32": base.clone(), "bf16": base.to(torch.bfloat16), "f16": base.to(torch.float16),
               "neg_zero": torch.tensor([-0.0, float("inf"), -1e-3]).to(torch.bfloat16),
               "empty": torch.zeros(0, 4)}
    path = os.path.join(tmp, "t.safetensors")
    ref.write_safetensors(path, tensors)
    back, dtypes, meta = ref.read_safetensors(path)
    ok = all(torch.equal(back[k].view(-1).to(torch.float32).view(torch.int32),
                         tensors[k].to(torch.float32).view(-1).view(torch.int32))
             for k in tensors)
    check(ok and dtypes["bf16"] == "BF16" and dtypes["f16"] == "F16"
          and back["empty"].shape == (0, 4), "safetensors round trip F32/BF16/F16 bit-exact")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    check(n % 8 == 0, "safetensors header padded to 8 bytes")


def random_tokens(rng, V, n):
    return [rng.randrange(V) for _ in range(n)]


def test_block(cfg, seed, tmp):
    name = f"block V={cfg.vocab_size} LB={cfg.block_length} R={cfg.expansion_ratio} " \
           f"P={cfg.block_decoder.hidden_size} H={cfg.token_decoder.hidden_size}"
    tensors = ref.make_random_model(cfg, seed, "F32")
    d = os.path.join(tmp, f"block{seed}")
    ref.save_model(d, tensors, cfg.to_json())
    m32 = ref.load_model(d)
    m64 = ref.load_model(d, torch.float64)
    check(m32.cfg == cfg, f"{name}: config round trip through config.json")
    rng = random.Random(seed)
    LB = cfg.block_length
    for n in (1, LB, 3 * LB - 1, 3 * LB + 1):
        toks = random_tokens(rng, cfg.vocab_size, n)
        a = m32.score(toks)
        naive = naive_block_score(tensors, cfg, toks)
        check(max_abs_diff(a, naive) < 2e-5,
              f"{name}: score len {n} vs naive float64 (diff {max_abs_diff(a, naive):.2e})")
        d64 = max_abs_diff(a, m64.score(toks))
        check(d64 < 1e-4, f"{name}: float32 vs float64 score len {n} (diff {d64:.2e})")
    # Generation consistency.
    prompt = random_tokens(rng, cfg.vocab_size, 2 * LB)
    n_new = 3 * LB
    g1 = m32.greedy(prompt, n_new, use_cache=True)
    g2 = m32.greedy(prompt, n_new, use_cache=False)
    check(g1["tokens"] == g2["tokens"] and
          max(abs(x - y) for x, y in zip(g1["logprobs"], g2["logprobs"])) < 1e-5,
          f"{name}: KV-cached greedy == full recompute")
    tf = m32.score(prompt + g1["tokens"])[len(prompt):]
    diff = max(abs(x - y) for x, y in zip(tf, g1["logprobs"]))
    check(diff < 1e-5, f"{name}: teacher-forced score == greedy step logprobs (diff {diff:.2e})")
    # A prompt that is not block aligned: scoring pads the (prompt + generated) sequence, so
    # compare with the padded prompt.
    prompt2 = random_tokens(rng, cfg.vocab_size, 2 * LB - 1) if LB > 1 else [5]
    g3 = m32.greedy(prompt2, 2 * LB)
    padded, _ = m32.left_pad(prompt2)
    tf = m32.score(padded + g3["tokens"])[len(padded):]
    diff = max(abs(x - y) for x, y in zip(tf, g3["logprobs"]))
    check(diff < 1e-5, f"{name}: unaligned prompt: greedy == teacher-forced (diff {diff:.2e})")
    # Cut-short last block: the first tokens match the longer run.
    g4 = m32.greedy(prompt2, 2 * LB + 1)
    g5 = m32.greedy(prompt2, 2 * LB + LB)
    check(g4["tokens"] == g5["tokens"][:2 * LB + 1], f"{name}: max_new_tokens cut is a prefix")
    # Token decoder stack == vanilla stack on the same weights.
    vt = {k[len("token_decoder."):]: v for k, v in tensors.items()
          if k.startswith("token_decoder.gpt_neox.")}
    vt["embed_out.weight"] = tensors["token_decoder.embed_out.weight"]
    vcfg = ref.VanillaConfig(vocab_size=cfg.vocab_size, stack=cfg.token_decoder)
    vm = ref.VanillaModel(vt, vcfg)
    toks = random_tokens(rng, cfg.vocab_size, 7)
    h = m32.token_stack.forward(m32.token_embed[torch.tensor(toks)])
    diff = float((m32._token_logits(h) - vm.logits(toks)).abs().max())
    check(diff == 0.0, f"{name}: token decoder stack == vanilla GPT-NeoX on the same weights")


def test_vanilla(cfg, seed, tmp):
    name = f"vanilla D={cfg.stack.hidden_size} heads={cfg.stack.num_heads} " \
           f"rot={cfg.stack.rotary_pct} par={cfg.stack.parallel_residual}"
    tensors = ref.make_random_model(cfg, seed, "F32")
    d = os.path.join(tmp, f"vanilla{seed}")
    ref.save_model(d, tensors, cfg.to_json())
    m = ref.load_model(d)
    check(m.cfg == cfg, f"{name}: config round trip")
    rng = random.Random(seed)
    toks = random_tokens(rng, cfg.vocab_size, 20)
    a = m.score(toks)
    diff = max_abs_diff(a, naive_vanilla_score(tensors, cfg, toks))
    check(diff < 2e-5, f"{name}: score vs naive float64 (diff {diff:.2e})")
    g1 = m.greedy(toks[:5], 12, use_cache=True)
    g2 = m.greedy(toks[:5], 12, use_cache=False)
    check(g1["tokens"] == g2["tokens"], f"{name}: KV-cached greedy == full recompute")
    tf = m.score(toks[:5] + g1["tokens"])[5:]
    diff = max(abs(x - y) for x, y in zip(tf, g1["logprobs"]))
    check(diff < 1e-5, f"{name}: teacher-forced == greedy logprobs (diff {diff:.2e})")


def test_bf16_load(tmp):
    cfg = BLOCK_CONFIGS[0]
    t16 = ref.make_random_model(cfg, 7, "BF16")
    t32 = ref.make_random_model(cfg, 7, "F32")
    d = os.path.join(tmp, "bf16")
    ref.save_model(d, t16)
    loaded, dtypes, _ = ref.load_tensors_and_config(d)
    same = all(torch.equal(loaded[k], t32[k].to(torch.bfloat16).float()) for k in t32)
    check(same and set(dtypes.values()) == {"BF16"}, "BF16 model: same weights rounded, upcast")
    m = ref.load_model(d)  # no config.json: inferred from shapes
    check(m.cfg == cfg, "block config inferred from shapes without config.json")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        test_safetensors(tmp)
        test_bf16_load(tmp)
        for i, cfg in enumerate(BLOCK_CONFIGS):
            test_block(cfg, 100 + i, tmp)
        for i, cfg in enumerate(VANILLA_CONFIGS):
            test_vanilla(cfg, 200 + i, tmp)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) FAILED")
        sys.exit(1)
    print("all self-checks passed")


if __name__ == "__main__":
    main()
