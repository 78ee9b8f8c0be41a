"""The model card: a ``README.md`` that :func:`srr.save_pretrained` writes into every saved folder.

It says what the folder holds in words a person (and the Hugging Face Hub, which shows it as the model's page) reads:
the registry name and family, the task, every configuration field, the data and its preprocessing, the training
objective, the metrics when the writer knows them, how to load it, and the citation of the paper the family comes
from. The card is generated from ``config.json``'s record and never read back: loading needs only ``config.json``
and ``model.safetensors``.
"""
from __future__ import annotations

import json

__all__ = ["FAMILIES", "family_of", "model_card"]

#: registry-name prefix → (family, BibTeX of the paper it comes from); the longest matching prefix wins
FAMILIES = {
    "crate_alpha": ("CRATE-α", """@inproceedings{yang2024scaling,
  title={Scaling White-Box Transformers for Vision},
  author={Yang, Jinrui and Li, Xianhang and Pai, Druv and Zhou, Yuyin and Ma, Yi and Yu, Yaodong and Xie, Cihang},
  booktitle={Advances in Neural Information Processing Systems},
  year={2024}
}"""),
    "crate": ("CRATE", """@inproceedings{yu2023white,
  title={White-Box Transformers via Sparse Rate Reduction},
  author={Yu, Yaodong and Buchanan, Sam and Pai, Druv and Chu, Tianzhe and Wu, Ziyang and Tong, Shengbang and
          Haeffele, Benjamin D and Ma, Yi},
  booktitle={Advances in Neural Information Processing Systems},
  year={2023}
}"""),
    "tost": ("ToST", """@inproceedings{wu2025token,
  title={Token Statistics Transformer: Linear-Time Attention via Variational Rate Reduction},
  author={Wu, Ziyang and Ding, Tianjiao and Lu, Yifu and Pai, Druv and Zhang, Jingyuan and Wang, Weida and
          Yu, Yaodong and Ma, Yi and Haeffele, Benjamin D},
  booktitle={International Conference on Learning Representations},
  year={2025}
}"""),
    "aot": ("AoT (attention-only transformer)", """@misc{wang2025attention,
  title={Attention-Only Transformers via Unrolled Subspace Denoising},
  author={Wang, Peng and Lu, Yifu and Yu, Yaodong and Pai, Druv and Qu, Qing and Ma, Yi},
  year={2025}
}"""),
    "vit": ("ViT", """@inproceedings{dosovitskiy2021image,
  title={An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale},
  author={Dosovitskiy, Alexey and Beyer, Lucas and Kolesnikov, Alexander and Weissenborn, Dirk and Zhai, Xiaohua
          and Unterthiner, Thomas and Dehghani, Mostafa and Minderer, Matthias and Heigold, Georg and Gelly, Sylvain
          and Uszkoreit, Jakob and Houlsby, Neil},
  booktitle={International Conference on Learning Representations},
  year={2021}
}"""),
    "gpt": ("GPT", """@article{radford2019language,
  title={Language Models are Unsupervised Multitask Learners},
  author={Radford, Alec and Wu, Jeffrey and Child, Rewon and Luan, David and Amodei, Dario and Sutskever, Ilya},
  year={2019}
}"""),
    "mlp": ("ReLU MLP (feature ansatz)", """@article{radhakrishnan2024mechanism,
  title={Mechanism for feature learning in neural networks and backpropagation-free machine learning models},
  author={Radhakrishnan, Adityanarayanan and Beaglehole, Daniel and Pandit, Parthe and Belkin, Mikhail},
  journal={Science},
  volume={383},
  number={6690},
  pages={1461--1467},
  year={2024}
}"""),
    "redunet": ("ReduNet", """@article{chan2022redunet,
  title={ReduNet: A White-box Deep Network from the Principle of Maximizing Rate Reduction},
  author={Chan, Kwan Ho Ryan and Yu, Yaodong and You, Chong and Qi, Haozhi and Wright, John and Ma, Yi},
  journal={Journal of Machine Learning Research},
  volume={23},
  number={114},
  pages={1--103},
  year={2022}
}"""),
}


def family_of(name: str) -> tuple[str, str]:
    """``(family, citation)`` of a registry name (the longest matching prefix of :data:`FAMILIES`)."""
    for prefix in sorted(FAMILIES, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "_"):
            return FAMILIES[prefix]
    return name, ""


def _value(v) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def model_card(record: dict, metrics: dict | None = None) -> str:
    """The README.md text for a saved model's ``config.json`` ``record`` (and headline ``metrics``, if known)."""
    name = str(record.get("model", "model"))
    family, citation = family_of(name)
    task = record.get("task", "")
    what = {"image": "an image classifier", "lm": "a byte-level language model",
            "features": "a feature map (ReduNet)"}.get(task, "a model")
    lines = ["---", "library_name: srr", "tags:", "- srr", "- white-box", f"- {family.split()[0].lower()}", "---", "",
             f"# {name}", "", f"{family}, {what}, saved by srr {record.get('srr_version', '')}.".replace(" ,", ","),
             "", "## Use", "", "```python", "import srr", "", 'model = srr.from_pretrained("PATH_OR_HUB_ID")',
             "```", "", "or from the command line: `srr evaluate PATH --data SPEC`, `srr predict PATH IMAGE…`"
             + (", `srr generate PATH`" if task == "lm" else "") + ".", "", "## Configuration", "",
             "| field | value |", "|---|---|"]
    lines += [f"| `{k}` | `{_value(v)}` |" for k, v in (record.get("args") or {}).items()]
    lines += ["", "## Data", ""]
    if record.get("data"):
        lines.append(f"Trained on `{record['data']}`" + (f" with the objective `{record['objective']}`."
                                                          if record.get("objective") else "."))
    else:
        lines.append("No training data recorded (an initialised or converted model).")
    pre = record.get("preprocessing")
    if pre:
        size = pre.get("image_size", [])
        size = [size, size] if isinstance(size, int) else size
        lines += ["", "Preprocessing: images of " + "x".join(str(s) for s in size) +
                  f" pixels, {pre.get('channels')} channel(s), standardised by mean "
                  f"{_value(pre.get('mean'))} and std {_value(pre.get('std'))} (pixel values in [0, 1])" +
                  (f", resized to {pre['resize']} x {pre['resize']}" if pre.get("resize") else "") + "."]
    if record.get("tokenizer"):
        lines += ["", f"Tokenizer: `{_value(record['tokenizer'])}`."]
    if record.get("converted_from"):
        lines += ["", f"Converted from `{record['converted_from']}`."]
    shown = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if shown:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" for k, v in shown.items()]
    if citation:
        lines += ["", "## Citation", "", "```bibtex", citation, "```"]
    return "\n".join(lines) + "\n"
