"""Writes a TorchScript module with the calling convention of the inception-2015-12-05.pt that
common FID tools use: forward(images uint8-valued [N, 3, H, W], return_features=False,
no_output_bias=False). Features are the per-channel means of the 0..255 values; probabilities the
softmax of features @ W (+ 1 unless no_output_bias). The C++ test checks both calls against the
same formulas."""
import sys

import torch


class FakeInception(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.tensor([[0.01, -0.02, 0.0, 0.03],
                                                [0.0, 0.01, -0.01, 0.0],
                                                [0.02, 0.0, 0.01, -0.03]]))

    def forward(self, x: torch.Tensor, return_features: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        assert x.dtype == torch.uint8, "expects uint8 images"
        f = x.to(torch.float32).mean(dim=(2, 3))
        if return_features:
            return f
        logits = f @ self.w
        if not no_output_bias:
            logits = logits + torch.tensor([1.0, 0.0, 0.0, 0.0])
        return torch.softmax(logits, dim=1)


torch.jit.script(FakeInception()).save(sys.argv[1])
