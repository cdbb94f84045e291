"""A run's searched network as one standalone file (`nasbench export`).

The file is a ``torch.export`` program (``torch.export.save``): a user loads it with
``torch.export.load(path).module()`` and needs torch alone, not this suite. It holds the
discrete network of the run's final genotype (``RunFolder.space().network(genotype)``, the
network a search hands to training from scratch) in eval mode, traced at the run's input
size (1 x C x H x W; the batch dimension is dynamic), returning the logits only (the
auxiliary head, used in training alone, is not built).

Its weights are freshly initialised (torch's default initialisation after
``torch.manual_seed(seed)``, the run's seed unless another is given): a search trains a
supernet, not this network, so the file is for training from scratch or for studying the
architecture, not for predictions. Beside the program, the file's extra files hold the
genotype (``genotype.json``) and what the network is (``nasbench.json``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

#: extra files of an exported network
GENOTYPE_FILE = "genotype.json"
META_FILE = "nasbench.json"


def exportable(network: Any) -> Any:
    """``network`` returning its logits only (a Network returns (logits, auxiliary))."""
    import torch

    class Logits(torch.nn.Module):
        """The logits of the wrapped network: a plain tensor is what any user expects."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)[0]

    return Logits(network).eval()


def export_run(folder: Any, dest: Path, seed: int | None = None) -> dict[str, Any]:
    """Write ``folder``'s network to ``dest``; returns the metadata stored with it."""
    import torch

    from nasbench_suite import __version__
    from nasbench_suite.files import atomic_write

    genotype = folder.genotype()
    space = folder.space()
    shape = space.shape
    seed = int(folder.config_dict().get("seed", 0)) if seed is None else seed
    torch.manual_seed(seed)
    model = exportable(space.network(genotype))
    example = torch.randn(2, shape.in_channels, shape.image_size, shape.image_size)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    meta = {"space": genotype.space, "input": [shape.in_channels, shape.image_size,
                                               shape.image_size],
            "num_classes": shape.num_classes, "channels": shape.channels,
            "layers": shape.layers, "weights": f"untrained: torch's initialisation after "
                                                f"torch.manual_seed({seed})",
            "run": str(folder.path), "nasbench_suite": __version__, "torch": torch.__version__}
    extra = {GENOTYPE_FILE: genotype.to_json(), META_FILE: json.dumps(meta, sort_keys=True)}
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=extra)
    atomic_write(dest, buffer.getvalue())
    return meta
