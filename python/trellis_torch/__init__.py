"""torch.distributed backend "trellis": collectives on CPU tensors through the Trellis C API.

Importing this package registers the backend; then, on every rank::

    import torch.distributed as dist
    import trellis_torch  # noqa: F401
    dist.init_process_group("trellis", init_method=..., rank=rank, world_size=world_size)
    # or dist.new_group(backend="trellis") next to a gloo default group

The group joins through torch's c10d store: rank 0 creates the Trellis unique id and sets it in the
group's store, the other ranks read it from there. Every call returns at once; the Trellis call runs on
the group's progress thread, in call order, and completes the returned Work and its Future there.
"""

import torch.distributed as _dist

from . import _C  # noqa: F401  (the C++ extension, built by `make torch`)
from ._C import ProcessGroupTrellis, create_process_group, trellis_version

__all__ = ["ProcessGroupTrellis", "create_process_group", "trellis_version", "BACKEND"]

#: The name to pass to init_process_group / new_group.
BACKEND = "trellis"

if BACKEND.upper() not in _dist.Backend._plugins:
    _dist.Backend.register_backend(BACKEND, create_process_group)
