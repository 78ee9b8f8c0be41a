"""A two-layer attention-only induction circuit set by hand (a previous-token head whose output a second head reads
through K-composition) scores induction near 1, copies a repeated sequence and makes the in-context-learning score
large; a freshly initialised model scores at the chance level."""
import math

import pytest
import torch

from srr.circuits import (AttentionOnlyGPT, attention_patterns, chance_levels, composition_scores, head_weights,
                          icl_score, pattern_scores, position_losses, repeated_tokens)

pytestmark = pytest.mark.usefixtures("one_thread")
V, C, T = 12, 20, 10  # vocabulary, context, length of the repeated sequence
D = 2 * V + C         # token block [0, V), position block [V, V + C), previous-token block [V + C, 2V + C)


def hand_built(sharp=30.0, copy=10.0):
    model = AttentionOnlyGPT(AttentionOnlyGPT.Config(vocab_size=V, context=C, dim=D, depth=2, heads=1, dim_head=D,
                                                     norm=False, attention="untied"))
    beta = sharp * math.sqrt(D)  # the operator divides scores by √p
    tok, pos, prev = range(V), range(V, V + C), range(V + C, 2 * V + C)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.wte.weight[:, :V] = torch.eye(V)                   # token t → e_t
        model.wpe.weight[:, V:V + C] = torch.eye(C)              # position i → e_{V+i}
        a0, a1 = model.block_list[0].attn, model.block_list[1].attn
        q0, k0, v0 = a0.qkv.weight[:D], a0.qkv.weight[D:2 * D], a0.qkv.weight[2 * D:]
        for i in range(1, C):
            q0[pos[i - 1], pos[i]] = beta                        # position i queries position i − 1
        for j in range(C):
            k0[pos[j], pos[j]] = 1.0
        for t in range(V):
            v0[tok[t], tok[t]] = 1.0
            a0.proj.weight[prev[t], tok[t]] = 1.0                # writes the attended token into the previous block
        q1, k1, v1 = a1.qkv.weight[:D], a1.qkv.weight[D:2 * D], a1.qkv.weight[2 * D:]
        for t in range(V):
            q1[t, tok[t]] = beta                                 # the current token ...
            k1[t, prev[t]] = 1.0                                 # ... matches the token before the key
            v1[t, tok[t]] = 1.0
            a1.proj.weight[tok[t], t] = copy                     # and copies the key's token to the logits
    return model.eval()


def distinct_repeats(batch=6):
    """Sequences of T distinct tokens repeated twice (each token's earlier occurrence is unique)."""
    g = torch.Generator().manual_seed(1)
    first = torch.stack([torch.randperm(V, generator=g)[:T] for _ in range(batch)])
    return torch.cat((first, first), dim=1)


def test_the_hand_built_circuit_is_an_induction_head_and_copies():
    model, ids = hand_built(), distinct_repeats()
    scores = pattern_scores(attention_patterns(model, ids), T)
    layer0, layer1 = scores
    assert layer0["previous_token"] > 0.99
    # every row of the second copy reads the token after the earlier occurrence, except the first (i = T): position
    # 0 has no predecessor and attends to itself, so its previous-token slot also holds token 0 and the row splits
    # in half between positions 0 and 1
    assert layer1["induction"] == pytest.approx((T - 0.5) / T, abs=1e-6)
    assert layer1["duplicate_token"] == pytest.approx(0.5 / T, abs=1e-6) and layer0["induction"] < 0.01
    with torch.no_grad():
        predicted = model(ids).argmax(-1)
    # the second copy is predicted token by token after its first token (whose row is split, see above)
    assert torch.equal(predicted[:, T + 1:2 * T - 1], ids[:, T + 2:])
    losses = position_losses(model, ids)
    assert float(losses[T + 1:].max()) < 1e-3
    icl = icl_score(losses, T)
    assert icl["loss_first_copy"] > 1.0 and icl["icl_score"] < -1.0
    assert icl["icl_score"] == pytest.approx(icl["loss_second_copy"] - icl["loss_first_copy"])
    k = composition_scores(head_weights(model))[0]
    assert k["from"] == [0, 0] and k["to"] == [1, 0] and k["k"] > 0.1 and k["q"] == 0.0  # K-, not Q-composition


def test_a_random_model_scores_at_chance():
    torch.manual_seed(0)
    model = AttentionOnlyGPT(AttentionOnlyGPT.Config(vocab_size=V, context=C, dim=32, depth=2, heads=2)).eval()
    ids = repeated_tokens(V, T, batch=8, seed=0)
    chance = chance_levels(T)
    for row in pattern_scores(attention_patterns(model, ids), T):
        for key in ("previous_token", "induction", "duplicate_token"):
            assert row[key] == pytest.approx(chance[key], rel=0.05)
    icl = icl_score(position_losses(model, ids), T)
    assert icl["loss_first_copy"] == pytest.approx(math.log(V), rel=0.02)
    assert abs(icl["icl_score"]) < 0.05


def test_chance_levels_and_the_probe():
    ids = repeated_tokens(50, 4, batch=3, seed=2)
    assert ids.shape == (3, 8) and torch.equal(ids[:, :4], ids[:, 4:])
    chance = chance_levels(4)
    assert chance["previous_token"] == pytest.approx(sum(1 / (i + 1) for i in range(1, 8)) / 7)
    assert chance["induction"] == pytest.approx(sum(1 / (i + 1) for i in range(4, 8)) / 4)
