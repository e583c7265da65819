"""The network of langevin's learned models, in PyTorch, shared by the PyTorch peers: an MLP on
[x, sin 2πωu, cos 2πωu] (Gaussian Fourier frequencies ω of the noise input u) with SiLU hidden
layers and a linear output."""
import math

import torch


class ScoreNet(torch.nn.Module):
    def __init__(self, d=2, width=256, depth=3, fourier=16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(1, fourier))
        sizes = [d + 2 * fourier] + [width] * depth + [d]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x, u):
        proj = u @ self.freqs * (2 * math.pi)
        h = torch.cat([x, proj.sin(), proj.cos()], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i + 1 < len(self.layers):
                h = torch.nn.functional.silu(h)
        return h
