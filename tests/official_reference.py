"""An independent re-statement of the official DGTRS-CLIP forward pass, for parity tests only.

Written from the checkpoint format's definition (the DGTRS / Long-CLIP releases' state-dict keys), not
from our model code and not copied from the official repository: OpenAI-CLIP modules in
sequence-first layout (``nn.MultiheadAttention`` with ``in_proj_weight``), QuickGELU, fp32
LayerNorm, the text positions ``mask1 * positional_embedding + mask2 * positional_embedding_res``
with ``mask1`` = rows < keep, EOT pooling by argmax, and the input padded to the full context.
"""
import re

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Stack(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])

    def forward(self, x, mask=None):
        for block in self.resblocks:
            x = block(x, mask)
        return x


class Visual(nn.Module):
    def __init__(self, res, patch, width, layers, out_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros((res // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Stack(width, layers, width // 64)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, out_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)                     # [N, grid*grid, W]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)                               # sequence first
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class OfficialLongCLIP(nn.Module):
    """The official inference graph, sized from a state dict like ``build_model``."""

    def __init__(self, state, keep=20):
        super().__init__()
        def count(rx):
            return len({m.group(1) for k in state if (m := re.match(rx, k))})

        conv = state["visual.conv1.weight"]
        grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        embed = state["text_projection"].shape[1]
        width = state["ln_final.weight"].shape[0]
        self.context_length = state["positional_embedding"].shape[0]
        self.visual = Visual(conv.shape[-1] * grid, conv.shape[-1], conv.shape[0],
                             count(r"visual\.transformer\.resblocks\.(\d+)\."), embed)
        self.transformer = Stack(width, count(r"transformer\.resblocks\.(\d+)\."), width // 64)
        self.token_embedding = nn.Embedding(state["token_embedding.weight"].shape[0], width)
        self.positional_embedding = nn.Parameter(torch.zeros(self.context_length, width))
        self.positional_embedding_res = nn.Parameter(torch.zeros(self.context_length, width))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, embed))
        self.logit_scale = nn.Parameter(torch.zeros(()))
        self.mask1 = torch.zeros(self.context_length, 1)
        self.mask1[:keep] = 1
        self.mask2 = 1 - self.mask1
        self.load_state_dict(state, strict=True)

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        n = self.context_length
        assert text.shape[1] == n, "the official encoder takes exactly context_length tokens"
        x = self.token_embedding(text)
        x = x + self.positional_embedding * self.mask1 + self.positional_embedding_res * self.mask2
        causal = torch.full((n, n), float("-inf")).triu_(1)
        x = self.transformer(x.permute(1, 0, 2), causal).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
