"""The perceived-expression network (PyTorch, training only; mien ships the ONNX export)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Block(nn.Module):
    """ResNet basic block."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)), inplace=True)
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)), inplace=True)


class PerceivedNet(nn.Module):
    """Input (N, 1, 48, 48) grey 0..255; each face is standardised inside the net; output 8 logits."""

    def __init__(self, widths=(32, 64, 128, 256), dropout: float = 0.3):
        super().__init__()
        w = widths
        self.stem = nn.Sequential(conv_bn(1, w[0]), conv_bn(w[0], w[0], 2))  # 48 -> 24
        self.stages = nn.Sequential(Block(w[0], w[0], 1), Block(w[0], w[1], 2),  # 24 -> 12
                                    Block(w[1], w[2], 2), Block(w[2], w[3], 2))  # 12 -> 6 -> 3
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(w[3], 8)

    @staticmethod
    def standardise(x):
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        s = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - m) / (s + 1.0)

    def forward(self, x):
        x = self.stages(self.stem(self.standardise(x)))
        return self.fc(self.drop(x.mean(dim=(2, 3))))


class FlipAveraged(nn.Module):
    """Export wrapper: mean of the logits of the face and its mirror image (test-time flip)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = x.shape[0]
        logits = self.net(torch.cat([x, torch.flip(x, dims=[3])], 0))
        return 0.5 * (logits[:n] + logits[n:])


class TeacherNet(PerceivedNet):
    """A larger network to distil from (training/teacher.py): full-resolution stem and two blocks per stage,
    48 -> 48 -> 24 -> 12 -> 6; the same input, standardisation and 8 logits as PerceivedNet."""

    def __init__(self, widths=(64, 128, 256, 512), dropout: float = 0.3):
        super().__init__(widths, dropout)
        w = widths
        self.stem = conv_bn(1, w[0])
        self.stages = nn.Sequential(Block(w[0], w[0], 1), Block(w[0], w[0], 1),
                                    Block(w[0], w[1], 2), Block(w[1], w[1], 1),
                                    Block(w[1], w[2], 2), Block(w[2], w[2], 1),
                                    Block(w[2], w[3], 2), Block(w[3], w[3], 1))
