import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every inference test starts from the same global RNG state, on one thread.

    These workloads are many tiny tensor operations: intra-op threads only add
    synchronisation, which is very slow when the 2 cores are shared.
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
