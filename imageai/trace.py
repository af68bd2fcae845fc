"""Tracing: every stage's output for one image, recorded by forward hooks on a private copy of the model."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from imageai.model import CNN, CNNConfig, stage_kind

HookFn = Callable[[nn.Module, tuple, torch.Tensor], None]


@contextmanager
def capture(model: CNN) -> Iterator[dict[str, torch.Tensor]]:
    """Hook every stage after `input`; yields {stage name: detached output}, filled as the model runs.

    The hooks are removed on exit, also when the body raises, so a model never keeps stale hooks.
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in model.stage_names[1:]:
            handles.append(getattr(model, name).register_forward_hook(_recorder(outputs, name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _recorder(outputs: dict[str, torch.Tensor], name: str) -> HookFn:
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        outputs[name] = output.detach()

    return hook


@dataclass(frozen=True)
class Trace:
    """What one image did in every stage; arrays are float32, read-only, without the batch dimension."""

    config: CNNConfig
    stage_names: tuple[str, ...]
    values: dict[str, np.ndarray]  # stage name -> its output; "input" is the normalised tensor entering conv1
    weights: dict[str, tuple[np.ndarray, np.ndarray]]  # conv and dense stage name -> (weight, bias)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.values[name].shape)

    def kind(self, name: str) -> str:
        return stage_kind(name)

    def previous(self, name: str) -> str:
        """The stage whose output feeds `name` (its input)."""
        i = self.stage_names.index(name)
        if i == 0:
            raise ValueError("the input stage has no previous stage")
        return self.stage_names[i - 1]

    @property
    def probabilities(self) -> np.ndarray:
        return self.values["output"]  # (classes,)

    @property
    def scores(self) -> np.ndarray:
        return self.values["dense"]  # (classes,) raw scores (logits) before softmax

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.probabilities))


def trace(model: CNN, x: torch.Tensor) -> Trace:
    """Run one normalised image (1, C, H, W) through a private CPU float32 copy of `model` and record each stage.

    Many sessions share one cached model, so the hooks go on a copy and never on `model` itself; the model
    is tiny, so the copy costs about half a millisecond (a whole digits trace takes about 1 ms on one core).
    """
    config = model.config
    expected = (1, config.in_channels, config.input_size, config.input_size)
    if tuple(x.shape) != expected:
        raise ValueError(f"expected an input of shape {expected}, not {tuple(x.shape)}")
    private = copy.deepcopy(model).to("cpu", torch.float32).eval()
    x = x.detach().to("cpu", torch.float32)
    with torch.inference_mode(), capture(private) as outputs:
        private(x)
    values = {"input": _numpy(x[0])}
    values.update({name: _numpy(outputs[name][0]) for name in private.stage_names[1:]})
    weights = {name: (_numpy(getattr(private, name).weight), _numpy(getattr(private, name).bias))
               for name in private.stage_names if stage_kind(name) in ("conv", "dense")}
    return Trace(config=config, stage_names=tuple(private.stage_names), values=values, weights=weights)


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A read-only float32 copy, so a cached trace cannot be changed by whoever draws it."""
    array = t.detach().to("cpu", torch.float32).numpy().copy()
    array.flags.writeable = False
    return array
