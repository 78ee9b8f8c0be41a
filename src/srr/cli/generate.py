"""``srr generate``: sample text from a language model saved by ``srr train`` (objective lm)."""
from __future__ import annotations

NAME = "generate"
HELP = "sample text from a trained causal language model"


def add_arguments(p) -> None:
    p.add_argument("source", metavar="DIR", help="a folder written by `srr train` for a language model")
    p.add_argument("--prompt", default="", help="text to continue (default: a newline)")
    p.add_argument("--tokens", type=int, default=200, help="number of tokens (bytes) to generate (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 is greedy (default 1)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")


def run(args) -> int:
    import sys

    import torch

    from ..data import ByteTokenizer
    from ..errors import CheckpointError, ConfigError
    from ..models import CausalTransformer, from_pretrained, read_config

    from ..checks import check_int, check_number

    check_int(args.tokens, "--tokens", low=0, high=1 << 20)
    check_number(args.temperature, "--temperature", low=0.0, high=1e6)
    if args.top_k is not None:
        check_int(args.top_k, "--top-k", low=1, high=1 << 24)
    check_int(args.seed, "--seed", low=0, high=(1 << 63) - 1)
    tokenizer = ByteTokenizer()
    prompt = args.prompt or "\n"
    prompt_ids = tokenizer.encode(prompt)  # refuses a prompt that is not valid UTF-8 text
    if len(prompt_ids) > 1 << 20:
        raise ConfigError(f"--prompt of {len(prompt_ids):,} bytes; at most {1 << 20:,}")
    config = read_config(args.source)
    if config.get("tokenizer", ByteTokenizer.name) != ByteTokenizer.name:
        raise CheckpointError(f"{args.source} uses the tokenizer {config['tokenizer']!r}; only 'bytes' is known")
    model = from_pretrained(args.source, map_location=args.device)
    if not isinstance(model, CausalTransformer):
        raise CheckpointError(f"{args.source} holds {config['model']}, not a language model")
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.wte.weight.device)
    generator = torch.Generator().manual_seed(args.seed)
    out = model.generate(ids, args.tokens, temperature=args.temperature, top_k=args.top_k, generator=generator)
    text = tokenizer.decode(out[0, ids.shape[1]:].cpu())
    sys.stdout.write((args.prompt + text) + ("" if text.endswith("\n") else "\n"))
    return 0
