import pytest
import torch
import torch.nn.functional as F

from nucleikit.inference import sliding_window_predict, tile_predict


def _small_fcn(seed: int = 0) -> torch.nn.Module:
    """Three 3x3 convs: receptive field radius 3, far inside the 64 px overlap margin."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 2, 3, padding=1),
    )
    return net.eval()


@pytest.mark.parametrize(("h", "w"), [(300, 257), (128, 128), (97, 400)])
def test_sliding_window_equals_whole_image_inference(h, w):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, h, w, generator=g)
    net = _small_fcn()
    m = 64
    padded = F.pad(image[None], (m, m, m, m), mode="reflect" if min(h, w) > m else "replicate")
    whole = net(padded)[0, :, m : m + h, m : m + w]
    slid = sliding_window_predict(net, image, window=256, stride=128, batch_size=3)
    assert slid.shape == (2, h, w)
    torch.testing.assert_close(slid, whole, atol=1e-5, rtol=1e-5)  # float32 summation order only


def test_naive_tiling_differs_at_the_seams_only():
    g = torch.Generator().manual_seed(2)
    image = torch.rand(3, 256, 256, generator=g)
    net = _small_fcn()
    whole = net(image[None])[0]
    tiled = tile_predict(net, image, tile=128)
    diff = (tiled - whole).abs().amax(0)
    seam = torch.zeros(256, 256, dtype=torch.bool)
    seam[125:131, :] = True
    seam[:, 125:131] = True
    assert diff[~seam].max() < 1e-5
    assert diff[seam].max() > 1e-3


def test_input_is_not_modified_and_bad_input_is_refused():
    image = torch.rand(3, 64, 64)
    before = image.clone()
    sliding_window_predict(_small_fcn(), image, window=32, stride=16)
    assert torch.equal(image, before)
    with pytest.raises(ValueError, match="even overlap"):
        sliding_window_predict(_small_fcn(), image, window=32, stride=15)
    with pytest.raises(ValueError, match=r"expected one image"):
        sliding_window_predict(_small_fcn(), torch.rand(2, 3, 64, 64))
    with pytest.raises(TypeError, match="torch tensor"):
        sliding_window_predict(_small_fcn(), image.numpy())
