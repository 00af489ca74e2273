"""train.common.choose_device: ``--device`` resolved by recognizer.models.engine.choose_device, plus the
training recipes' own rules (case, torchrun's local rank, a CUDA device always indexed)."""
from __future__ import annotations

import pytest
import torch

from train.common import UsageError, choose_device


@pytest.mark.parametrize("name", ["auto", None, "", "cpu", " CPU "])
def test_cpu_and_auto(name: str | None) -> None:
    expected = torch.device("cuda", 0) if torch.cuda.is_available() and name in ("auto", None, "") else torch.device("cpu")
    assert choose_device(name) == expected


@pytest.mark.parametrize(("name", "message"), [
    ("tpu", "--device 'tpu' is not a torch device"),
    ("meta", "--device 'meta' holds no data"),
])
def test_unknown_devices_are_usage_errors_naming_the_option(name: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        choose_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1", "CUDA"])
def test_cuda_without_cuda_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="CUDA is not available"):
        choose_device(name, local_rank=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gets_an_index_from_the_local_rank() -> None:
    assert choose_device("cuda") == torch.device("cuda", 0)
    assert choose_device("auto", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(UsageError, match="no CUDA device"):
        choose_device("cuda", local_rank=torch.cuda.device_count())
