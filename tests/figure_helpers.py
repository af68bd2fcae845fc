"""Shared by the figure tests: a real CNN's stage outputs, and plotly's own validation of a built figure."""
import plotly.graph_objects as go
import torch

from imageai.model import CNN, CNNConfig


def valid(fig: go.Figure) -> go.Figure:
    """Figures are built without plotly's (slow) validation; rebuilding with it proves every property is valid."""
    go.Figure(fig.to_dict())  # raises ValueError naming any invalid property
    return fig


def digits_trace(seed=0, config=CNNConfig()):
    """Every stage's output for one random image through a real CNN, computed by torch."""
    torch.manual_seed(seed)
    model = CNN(config).eval()
    x = torch.rand(1, config.in_channels, config.input_size, config.input_size)
    values = {"input": x}
    with torch.no_grad():
        for name in model.stage_names[1:]:
            x = getattr(model, name)(x)
            values[name] = x
    return model, {k: v[0].numpy() for k, v in values.items()}
