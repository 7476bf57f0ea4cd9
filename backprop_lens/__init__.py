"""Backprop Lens from your own scripts.

`backprop_lens.torch.watch(model, optimizer, url=...)` streams the per-layer gradient statistics
of a PyTorch training run to a Backprop Lens server, which shows it as an "external" session on
the same page as the engine's runs. Importing this package imports neither torch nor the server.
"""

__all__: list[str] = []
