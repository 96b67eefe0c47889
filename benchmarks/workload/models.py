"""The two benchmark models: an MLP where Lightning's per-step overhead dominates, a CNN where compute does."""

from torch import nn


class MLP(nn.Module):
    """8x8 digits, flattened, through one hidden layer."""

    def __init__(self, in_features: int = 64, hidden: int = 64, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Three conv blocks over 3x32x32 images, then a linear head."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        blocks = []
        channels = 3
        for out in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 4 * 4, num_classes))

    def forward(self, x):
        return self.head(self.features(x))
