"""Independent transcriptions of operator formulas (loops over heads, column notation), shared by the operator
and model tests, and a helper that randomises a module's parameters."""
import torch


def randomise(module, scale=0.5, seed=3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def odl_reference(x, D, Dhat, eta=0.1, lam=0.1):
    """§3 literally: A1 = ReLU(η x D − ηλ), A2 = ReLU(A1 − η (A1 Dᵀ − x) D − ηλ), out = A2 D̂ᵀ."""
    a1 = torch.relu(eta * torch.einsum("bnd,dk->bnk", x, D) - eta * lam)
    grad = torch.einsum("bnd,dk->bnk", torch.einsum("bnk,dk->bnd", a1, D) - x, D)
    a2 = torch.relu(a1 - eta * grad - eta * lam)
    return torch.einsum("bnk,dk->bnd", a2, Dhat), a2


def tssa_reference(x, qkv_w, qkv_b, temp, out_w, out_b, heads):
    """§4 with a loop over heads: w = U_kᵀ x; ŵ per coordinate normalised over tokens; Π softmax over heads of
    Σ_coords ŵ² τ_k; s = (Π / Σ_tokens Π) · w²; out = −(w Π)/(1 + s); Linear output."""
    p = qkv_w.shape[0] // heads
    ws, scores = [], []
    for k in range(heads):
        w = x @ qkv_w[k * p:(k + 1) * p].T
        if qkv_b is not None:
            w = w + qkv_b[k * p:(k + 1) * p]
        norms = torch.sqrt((w * w).sum(dim=1, keepdim=True)).clamp_min(1e-12)  # over tokens (dim 1)
        scores.append(((w / norms) ** 2).sum(-1) * temp[k, 0])  # (B, N)
        ws.append(w)
    pi = torch.softmax(torch.stack(scores, 0), dim=0)  # over heads
    outs = []
    for k in range(heads):
        weights = pi[k] / (pi[k].sum(-1, keepdim=True) + 1e-8)  # (B, N)
        s = torch.einsum("bn,bnj->bj", weights, ws[k] ** 2)  # (B, p)
        outs.append(-(ws[k] * pi[k][..., None]) / (1 + s[:, None, :]))
    return torch.cat(outs, -1) @ out_w.T + out_b, pi


def ssa_columns(Z, U_k, scale):
    """(U_kᵀZ) softmax((U_kᵀZ)ᵀ(U_kᵀZ) · scale), softmax over each column (Z is d × N)."""
    W = U_k.T @ Z
    return W @ torch.softmax(W.T @ W * scale, dim=0)
