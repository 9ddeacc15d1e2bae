import pytest
import torch

from gqcodec.layers import GDN


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_compressai(inverse):
    ca = pytest.importorskip("compressai.layers")
    torch.manual_seed(0)
    ours, theirs = GDN(6, inverse=inverse), ca.GDN(6, inverse=inverse)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    # random parameters, some below the lower bounds, to exercise the bound's gradient rule
    with torch.no_grad():
        ours.beta.copy_(torch.rand(6) * 1.2 - 0.1)
        ours.gamma.copy_(torch.rand(6, 6) * 0.5 - 0.05)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 5, 7)
    yo, yt = ours(x), theirs(x)
    assert torch.allclose(yo, yt, atol=1e-6)
    (yo * torch.linspace(-1, 1, yo.numel()).view_as(yo)).sum().backward()
    (yt * torch.linspace(-1, 1, yt.numel()).view_as(yt)).sum().backward()
    assert torch.allclose(ours.beta.grad, theirs.beta.grad, atol=1e-5)
    assert torch.allclose(ours.gamma.grad, theirs.gamma.grad, atol=1e-5)
