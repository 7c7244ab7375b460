import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The engine leaves threads to its caller; here the caller is the test. One thread is the
    fastest setting for these tiny networks and keeps CPU results bit-for-bit reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
