"""Interoperability: exporting models for deployment (ONNX, ``torch.export``) and converting the authors' official
checkpoints (CRATE, CRATE-α, ToST, SimDINO) into srr models."""
from .convert import KINDS, convert
from .export import FORMATS, example_input, export_model

__all__ = ["FORMATS", "example_input", "export_model", "KINDS", "convert"]
